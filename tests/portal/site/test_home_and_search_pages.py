"""Home and search pages: sign-in required, ranked results, facets that keep the other
filters, pagination, empty states that say what to do, and a query count that does not
grow with the catalog."""

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from products.choices import LifecycleStatus
from tests.factories import DomainFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _result_names(response) -> list[str]:
    return [product.name for product in response.context["products"]]


@pytest.mark.parametrize(
    "url",
    ["/", "/search/?q=orders", "/my/products/", "/domains/", "/domains/sales/", "/products/new/"],
)
def test_anonymous_is_sent_to_sign_in(client, url, domain):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login") + "?next=")


def test_sign_in_and_sign_out(client, owner):
    page = client.get(reverse("portal:login"))
    assert page.status_code == 200
    assert b'<label for="id_username">' in page.content

    wrong = client.post(reverse("portal:login"), {"username": "owner", "password": "nope"})
    assert wrong.status_code == 200
    assert b"Please enter a correct username and password" in wrong.content

    response = client.post(
        reverse("portal:login"),
        {"username": "owner", "password": "correct-horse-battery", "next": "/search/"},
    )
    assert response.status_code == 302 and response["Location"] == "/search/"
    assert client.get("/").status_code == 200

    assert client.get(reverse("portal:logout")).status_code == 405  # sign-out is a POST
    response = client.post(reverse("portal:logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_search_ranks_name_matches_first_and_hides_drafts(client, postgres, domain, outsider):
    ProductFactory(domain=domain, name="Web sessions", description="Counts orders per visit.")
    ProductFactory(domain=domain, name="Orders", summary="One row per order line.")
    ProductFactory(domain=domain, name="Order drafts", status=LifecycleStatus.DRAFT)
    ProductFactory(domain=domain, name="Inventory", summary="Stock per warehouse.")
    client.force_login(outsider)

    response = client.get("/search/", {"q": "orders"})

    assert response.status_code == 200
    assert _result_names(response) == ["Orders", "Web sessions"]
    assert b"2 results for" in response.content


def test_members_find_their_domains_drafts(client, postgres, domain, member):
    ProductFactory(domain=domain, name="Order drafts", status=LifecycleStatus.DRAFT)
    client.force_login(member)
    assert _result_names(client.get("/search/", {"q": "order"})) == ["Order drafts"]


def test_facets_count_and_link_keeping_the_other_filters(client, domain, outsider):
    marketing = DomainFactory(name="Marketing", slug="marketing")
    ProductFactory(domain=domain, name="Orders", tags=["revenue"])
    ProductFactory(domain=domain, name="Returns", tags=["revenue", "quality"])
    ProductFactory(domain=marketing, name="Campaigns", tags=["revenue"])
    ProductFactory(domain=marketing, name="Old leads", status=LifecycleStatus.DEPRECATED)
    client.force_login(outsider)

    response = client.get("/search/", {"tag": "revenue"})

    assert sorted(_result_names(response)) == ["Campaigns", "Orders", "Returns"]
    groups = {group["name"]: group for group in response.context["facet_groups"]}
    domains = {value["slug"]: value for value in groups["domain"]["values"]}
    # Domain counts are taken under the tag filter ...
    assert domains["sales"]["count"] == 2 and domains["marketing"]["count"] == 1
    # ... and a domain link keeps it.
    assert domains["sales"]["url"] == "?domain=sales&tag=revenue"
    tags = {value["slug"]: value for value in groups["tag"]["values"]}
    # The tag facet is counted without its own filter, so other tags stay reachable.
    assert tags["revenue"]["count"] == 3 and tags["revenue"]["active"]
    assert tags["revenue"]["url"] == "?"  # clicking the active value removes it
    assert tags["quality"]["count"] == 1

    narrowed = client.get("/search/" + domains["sales"]["url"])
    assert sorted(_result_names(narrowed)) == ["Orders", "Returns"]
    assert b"Domain: sales" in narrowed.content and b"Tag: revenue" in narrowed.content
    statuses = {
        value["slug"]: value["count"] for value in narrowed.context["facet_groups"][2]["values"]
    }
    assert statuses == {"published": 2}


def test_results_show_key_domain_status_summary_and_tags(client, domain, outsider):
    ProductFactory(
        domain=domain,
        name="Orders",
        slug="orders",
        summary="One row per order line.",
        tags=["revenue"],
    )
    client.force_login(outsider)
    content = client.get("/").content.decode()
    assert "sales.orders" in content
    assert 'href="/products/sales/orders/"' in content
    assert 'href="/domains/sales/"' in content
    assert "badge-status-published" in content
    assert "One row per order line." in content
    assert 'href="/search/?tag=revenue"' in content


def test_pagination_twenty_a_page_keeping_filters(client, domain, outsider):
    for n in range(45):
        ProductFactory(domain=domain, name=f"Product {n:02d}", tags=["bulk"])
    client.force_login(outsider)

    first = client.get("/search/", {"tag": "bulk"})
    assert len(first.context["products"]) == 20
    assert b"Page 1 of 3" in first.content
    assert b'href="?tag=bulk&amp;page=2"' in first.content
    last = client.get("/search/", {"tag": "bulk", "page": 3})
    assert len(last.context["products"]) == 5
    # A page number past the end shows the last page rather than an error.
    assert client.get("/search/", {"page": 99}).context["page_obj"].number == 3


def test_no_match_says_what_to_try(client, domain, outsider):
    ProductFactory(domain=domain, name="Orders")
    client.force_login(outsider)
    content = client.get("/search/", {"q": "zebra", "domain": "sales"}).content.decode()
    assert "No data products match “zebra” with these filters" in content
    assert "try other words" in content
    assert "search without filters" in content


def test_empty_catalog_invites_owners_to_create(client, owner, outsider):
    client.force_login(owner)
    content = client.get("/").content.decode()
    assert "The catalog is empty" in content
    assert f'href="{reverse("products:product-create")}"' in content

    client.force_login(outsider)
    content = client.get("/").content.decode()
    assert "The catalog is empty" in content
    assert "New product" not in content


def test_bad_filter_values_are_ignored_not_an_error(client, domain, outsider):
    ProductFactory(domain=domain, name="Orders")
    client.force_login(outsider)
    response = client.get("/search/", {"status": "bogus", "domain": "not a slug!", "q": "x" * 500})
    assert response.status_code == 200


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", ["/", "/search/?q=product", "/search/?tag=t1&domain=sales"])
def test_catalog_query_count_does_not_grow_with_products(
    client, postgres, domain, outsider, django_assert_max_num_queries, url
):
    other = DomainFactory(name="Marketing", slug="marketing")
    ProductFactory(domain=domain, tags=["t1", "t2"])
    client.force_login(outsider)
    cache.clear()  # measure the uncached path: facet counts of a browse are cached
    small = _count_queries(client, url)

    for n in range(30):
        ProductFactory(domain=domain if n % 2 else other, tags=[f"t{n % 5}", "t1"])
    cache.clear()
    # 9, plus one query for the page's trust scores, one for its incident markers and one
    # for the top bar's links (portal_display.main_nav); a search also reads its
    # candidates once (their ids, then their text, tags and matching columns: four
    # queries), and glossary terms.
    with django_assert_max_num_queries(17 if "q=" in url else 12):
        assert client.get(url).status_code == 200
    cache.clear()
    assert _count_queries(client, url) == small


def test_nav_links_every_signed_in_page_needs(client, outsider, admin_user):
    client.force_login(outsider)
    content = client.get("/").content.decode()
    for href in ("/domains/", "/my/products/", "/api/v1/docs/"):
        assert f'href="{href}"' in content
    assert "/admin/" not in content
    assert re.search(r'<form method="post" action="/logout/">', content)
    client.force_login(admin_user)
    assert 'href="/admin/"' in client.get("/").content.decode()


def test_long_facets_fold_away_but_keep_the_active_value(client, domain, outsider):
    for n in range(12):
        ProductFactory(domain=domain, tags=[f"common-{n:02d}", "everywhere"] + ["rare"] * (n == 0))
    client.force_login(outsider)
    response = client.get("/search/")
    tag_group = response.context["facet_groups"][1]
    assert tag_group["values"][0]["slug"] == "everywhere"  # most common first
    assert len(tag_group["values"]) == 8
    assert len(tag_group["more"]) == 14 - 8
    assert b"Show 6 more" in response.content

    active = tag_group["more"][-1]["slug"]
    tag_group = client.get("/search/", {"tag": active}).context["facet_groups"][1]
    assert active in [value["slug"] for value in tag_group["values"] if value["active"]]


def test_every_script_and_stylesheet_is_our_own(client, outsider):
    client.force_login(outsider)
    content = client.get("/").content.decode()
    assert '<script src="/static/vendor/htmx.min.js" defer></script>' in content
    assert '<link rel="stylesheet" href="/static/css/portal.css">' in content
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', content)


def test_browse_facet_counts_are_cached_per_visibility(client, domain, outsider, owner):
    """Facet counts of the unfiltered catalog are cached briefly; people who see
    different products never share an entry."""
    from products.catalog.selectors import CatalogFilters, product_facets
    from products.choices import LifecycleStatus
    from tests.factories import ProductFactory

    ProductFactory(domain=domain, status=LifecycleStatus.PUBLISHED)
    ProductFactory(domain=domain, status=LifecycleStatus.DRAFT)

    def total(user):
        facets = product_facets(user=user, filters=CatalogFilters())
        return sum(row["count"] for row in facets["status"])

    assert total(outsider) == 1
    assert total(owner) == 2  # a member of the domain also sees its draft
    ProductFactory(domain=domain, status=LifecycleStatus.PUBLISHED)
    assert total(outsider) == 1  # cached for a minute
    searched = product_facets(user=outsider, filters=CatalogFilters(q="Product"))
    assert (
        sum(row["count"] for row in searched["status"]) == 2
    )  # a new product starts a new generation of cached searches
