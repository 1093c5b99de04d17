"""One product scope for pages (products.catalog.scope): every page of a product answers a
hidden product exactly like a missing one, refuses its edit pages to non-managers in the
same words, and shows the same header; one rule picks a product's port ("the named port,
or the first by name") for pages, the API and services."""

import re

import pytest
from django.urls import reverse

from products.catalog.permissions import managers_only_message
from products.catalog.selectors import port_for
from products.choices import LifecycleStatus
from tests.factories import OutputPortFactory, ProductFactory

pytestmark = pytest.mark.django_db

# (URL name, the header's active tab) of the product's pages that show its header.
HEADER_PAGES = [
    ("products:product-detail", "overview"),
    ("products:product-quality", "quality"),
    ("products:product-contract", "contract"),
    ("products:contract-diff", "contract"),
    ("products:feedback-list", "feedback"),
    ("products:feedback-create", "feedback"),
    ("products:announcement-list", "feedback"),
    ("products:product-usage", "usage"),
    ("products:product-retirement", "usage"),
    ("sharing:product-access", "access"),
    ("sharing:product-data", "data"),
    ("sharing:product-exports", "exports"),
]
# Pages only the domain's owners and stewards (and admins) open.
EDIT_PAGES = [
    "products:product-edit",
    "products:port-create",
    "products:port-upload",
    "products:check-create",
    "products:slo-create",
    "products:announcement-create",
]
OTHER_PAGES = ["definitions:product-terms", "products:product-odcs-download"]


def _without_tokens(response) -> str:
    """The page without its CSRF tokens (new in every answer)."""
    return re.sub(r'(X-CSRFToken": "|value=")[^"]*"', r'\1"', response.content.decode())


def _url(name: str, domain_slug: str = "sales", product_slug: str = "orders") -> str:
    return reverse(name, kwargs={"domain_slug": domain_slug, "product_slug": product_slug})


@pytest.fixture
def draft(domain):
    return ProductFactory(domain=domain, name="Orders", slug="orders", status=LifecycleStatus.DRAFT)


@pytest.fixture
def published(domain):
    return ProductFactory(domain=domain, name="Orders", slug="orders")


@pytest.mark.parametrize("name", [name for name, _ in HEADER_PAGES] + EDIT_PAGES + OTHER_PAGES)
def test_a_hidden_product_is_a_404_like_a_missing_one(client, draft, outsider, owner, name):
    client.force_login(outsider)
    hidden = client.get(_url(name))
    missing = client.get(_url(name, product_slug="no-such-product"))
    assert hidden.status_code == missing.status_code == 404
    assert _without_tokens(hidden) == _without_tokens(missing)

    client.force_login(owner)  # the domain's team sees its draft
    assert client.get(_url(name)).status_code in (200, 302)  # 302: "add a port first"


@pytest.mark.parametrize("name", EDIT_PAGES)
def test_edit_pages_refuse_non_managers_in_one_sentence(client, published, member, steward, name):
    client.force_login(member)  # sees the product, does not manage the domain
    response = client.get(_url(name))
    assert response.status_code == 403
    sentence = "Only owners and stewards of the Sales domain, and admins, change this product."
    assert sentence in response.content.decode()

    client.force_login(steward)
    assert client.get(_url(name)).status_code in (200, 302)  # 302: "add a port first"


@pytest.mark.parametrize(("name", "tab"), HEADER_PAGES)
def test_every_tab_shows_the_product_header(client, published, owner, name, tab):
    client.force_login(owner)
    response = client.get(_url(name))
    assert response.status_code == 200
    context = response.context
    assert context["product"] == published
    assert context["active_tab"] == tab
    html = response.content.decode()
    assert '<nav class="tabs" aria-label="Product sections">' in html
    # The trust badge links to the Quality tab (from the header's product_trust tag).
    quality = reverse("products:product-quality", args=[published.domain.slug, published.slug])
    assert f'<a class="trust-link" href="{quality}#trust"><span class="trust-badge' in html


def test_an_unknown_port_of_a_page_is_a_404(client, published, owner):
    OutputPortFactory(product=published, name="lines", slug="lines")
    client.force_login(owner)
    kwargs = {"domain_slug": "sales", "product_slug": "orders"}
    known = reverse("products:port-schema", kwargs={**kwargs, "port_slug": "lines"})
    unknown = reverse("products:port-schema", kwargs={**kwargs, "port_slug": "heads"})
    assert client.get(known).status_code == 200
    assert client.get(unknown).status_code == 404


def test_port_for_is_the_named_port_or_the_first_by_name(published, django_assert_num_queries):
    assert port_for(product=published) is None
    assert port_for(product=published, slug="lines") is None
    lines = OutputPortFactory(product=published, name="lines", slug="lines")
    heads = OutputPortFactory(product=published, name="heads", slug="heads")
    OutputPortFactory(name="aaa", slug="aaa")  # another product's port comes first by name

    assert port_for(product=published) == heads
    assert port_for(product=published, slug="lines") == lines
    assert port_for(product=published, slug="aaa") is None
    assert port_for(product=published, slug="lines").product is published

    loaded = [heads, lines]
    with django_assert_num_queries(0):  # among ports already loaded: no query
        assert port_for(product=published, ports=loaded) == heads
        assert port_for(product=published, slug="lines", ports=loaded) == lines
        assert port_for(product=published, slug="nope", ports=loaded) is None
        assert port_for(product=published, ports=[]) is None


def test_the_managers_message(domain):
    assert managers_only_message(domain, "revoke access") == (
        "Only owners and stewards of the Sales domain, and admins, revoke access."
    )
    assert managers_only_message(domain, "create products in it", admins=False) == (
        "Only owners and stewards of the Sales domain create products in it."
    )
