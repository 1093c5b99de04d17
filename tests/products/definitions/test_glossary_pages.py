"""Glossary pages: the list with search, a term's page (definition, where it is used,
history, approval), the term form, linking terms from the product and column pages, and
the catalog search showing matching terms."""

import re

import pytest

from products.definitions.services.glossary import term_approve, term_create, term_link_column
from products.models import GlossaryTerm
from tests.factories import ColumnFactory, OutputPortFactory, ProductFactory

URL = "/glossary/sales/net-revenue/"


@pytest.fixture
def revenue(domain, member, steward):
    term = term_create(
        domain=domain,
        by=member,
        name="Net revenue",
        definition="What customers **paid**.\n\n<script>alert('x')</script>",
        synonyms=["turnover"],
    )
    return term_approve(term=term, by=steward, note="Agreed.")


@pytest.fixture
def orders(domain):
    product = ProductFactory(domain=domain, name="Orders", slug="orders")
    port = OutputPortFactory(product=product, name="Orders table", slug="orders-table")
    ColumnFactory(port=port, name="net_amount", data_type="numeric")
    return product


def test_anonymous_is_sent_to_sign_in(client, revenue):
    for url in ("/glossary/", URL, "/glossary/new/", "/metrics/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_glossary_list_searches_and_pins_its_queries(
    client, domain, steward, outsider, django_assert_max_num_queries
):
    for n in range(30):
        term = term_create(domain=domain, by=steward, name=f"Term {n}", definition=f"Word{n}")
        term_approve(term=term, by=steward)
    client.force_login(outsider)
    with django_assert_max_num_queries(6):  # session, user, domains, count, page, propose?
        response = client.get("/glossary/")
    assert response.status_code == 200 and len(response.context["terms"]) == 25
    response = client.get("/glossary/", {"q": "word7"})
    assert [t.name for t in response.context["terms"]] == ["Term 7"]
    content = client.get("/glossary/", {"q": "zebra"}).content.decode()
    assert "No term matches" in content and "Search the catalog" in content


def test_term_page_shows_definition_usage_and_history(client, revenue, orders, owner, outsider):
    column = orders.ports.get().columns.get()
    term_link_column(term=revenue, column=column, by=owner)
    client.force_login(outsider)
    response = client.get(URL)
    assert response.status_code == 200
    content = response.content.decode()
    assert "<strong>paid</strong>" in content
    assert "<script>alert" not in content  # the definition's script is removed
    assert "net_amount" in content and "/products/sales/orders/" in content
    assert "Version 2" in content and "Agreed." in content and "Version 1" in content
    assert "/approve/" not in content and "Edit term" not in content


def test_drafts_are_404_outside_the_domain(client, domain, member, outsider):
    term_create(domain=domain, by=member, name="Secret", definition="x")
    client.force_login(outsider)
    assert client.get("/glossary/sales/secret/").status_code == 404
    client.force_login(member)
    content = client.get("/glossary/sales/secret/").content.decode()
    assert "This is a draft" in content and "Edit term" in content
    assert "/approve/" not in content


def test_propose_edit_and_approve_through_the_pages(client, domain, member, steward):
    client.force_login(member)
    bad = client.post("/glossary/new/", {"domain": domain.pk, "name": "Churn", "definition": ""})
    assert bad.status_code == 400 and "Write the definition" in bad.content.decode()
    assert not GlossaryTerm.objects.exists()
    response = client.post(
        "/glossary/new/",
        {
            "domain": domain.pk,
            "name": "Churn rate",
            "definition": "Share of customers who left.",
            "synonyms": "attrition, churn",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/glossary/sales/churn-rate/"
    term = GlossaryTerm.objects.get()
    assert term.synonyms == ["attrition", "churn"] and term.status == "draft"

    edit = client.post(
        "/glossary/sales/churn-rate/edit/",
        {"name": "Churn rate", "definition": "Share who left in 90 days.", "note": "Window."},
    )
    assert edit.status_code == 302
    assert client.post("/glossary/sales/churn-rate/approve/").status_code == 403

    client.force_login(steward)
    client.post("/glossary/sales/churn-rate/approve/", {"note": "OK"})
    term.refresh_from_db()
    assert (term.status, term.version, term.synonyms) == ("approved", 3, [])
    content = client.get("/glossary/sales/churn-rate/").content.decode()
    assert "Changed definition, synonyms" in content and "“Window.”" in content


def test_outsiders_cannot_reach_the_form(client, outsider):
    client.force_login(outsider)
    assert client.get("/glossary/new/").status_code == 403
    content = client.get("/glossary/").content.decode()
    assert "Propose a term" not in content


def test_link_terms_from_the_product_page(client, revenue, orders, owner, outsider):
    client.force_login(owner)
    page = client.get(orders.get_absolute_url()).content.decode()
    assert 'href="/products/sales/orders/glossary/"' in page
    response = client.post(
        "/products/sales/orders/glossary/", {"action": "link", "term": revenue.pk}
    )
    assert response.status_code == 302
    assert list(revenue.products.all()) == [orders]
    page = client.get(orders.get_absolute_url()).content.decode()
    assert f'href="{URL}"' in page

    client.force_login(outsider)
    forbidden = client.post(
        "/products/sales/orders/glossary/", {"action": "unlink", "term": revenue.pk}
    )
    assert forbidden.status_code == 403 and list(revenue.products.all()) == [orders]
    assert "Link term" not in client.get("/products/sales/orders/glossary/").content.decode()

    client.force_login(owner)
    client.post("/products/sales/orders/glossary/", {"action": "unlink", "term": revenue.pk})
    assert not revenue.products.exists()


def test_link_a_term_from_the_column_edit_page(client, revenue, orders, owner):
    column = orders.ports.get().columns.get()
    edit_url = f"/products/sales/orders/ports/orders-table/columns/{column.pk}/edit/"
    client.force_login(owner)
    content = client.get(edit_url).content.decode()
    assert "Glossary terms" in content and re.search(rf'<option value="{revenue.pk}"', content)
    link_url = f"/products/sales/orders/ports/orders-table/columns/{column.pk}/glossary/"
    response = client.post(link_url, {"action": "link", "term": revenue.pk})
    assert response.status_code == 302 and response["Location"] == edit_url
    assert list(column.glossary_terms.all()) == [revenue]
    assert f'href="{URL}"' in client.get(edit_url).content.decode()
    bad = client.post(link_url, {"action": "link", "term": "999999"}, follow=True)
    assert "Choose a term" in bad.content.decode()


def test_catalog_search_shows_matching_terms(client, revenue, orders, outsider):
    client.force_login(outsider)
    content = client.get("/search/", {"q": "turnover"}).content.decode()
    assert "In the glossary" in content and f'href="{URL}"' in content
    assert "In the glossary" not in client.get("/search/", {"q": "zebra"}).content.decode()
    assert "In the glossary" not in client.get("/").content.decode()


def test_nav_links_to_the_glossary_and_metrics(client, outsider):
    client.force_login(outsider)
    content = client.get("/glossary/").content.decode()
    assert 'href="/glossary/" aria-current="page"' in content and 'href="/metrics/"' in content
