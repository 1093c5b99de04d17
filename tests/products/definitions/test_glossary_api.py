"""The glossary API: list and search, detail with where a term is used, create, edit,
approve and deprecate, the version history, links to products and columns; four kinds
of callers, bad input answered 400 naming the field."""

import pytest

from products.definitions.services.glossary import term_approve, term_create
from products.models import GlossaryTerm
from tests.factories import ColumnFactory, OutputPortFactory, ProductFactory

LIST = "/api/v1/glossary/terms/"
TERM = "/api/v1/glossary/terms/sales.net-revenue/"


@pytest.fixture
def revenue(domain, member):
    return term_create(
        domain=domain, by=member, name="Net revenue", definition="Paid.", synonyms=["turnover"]
    )


@pytest.fixture
def orders(domain):
    product = ProductFactory(domain=domain, name="Orders", slug="orders")
    port = OutputPortFactory(product=product, slug="orders-table")
    ColumnFactory(port=port, name="net_amount")
    return product


def test_anonymous_is_401(api_client, revenue):
    assert api_client.get(LIST).status_code == 401
    assert api_client.post(LIST, {}, format="json").status_code == 401


def test_drafts_are_listed_for_the_domain_only(client_as, revenue, member, outsider, steward):
    assert client_as(outsider).get(LIST).json()["count"] == 0
    assert client_as(outsider).get(TERM).status_code == 404
    assert [t["key"] for t in client_as(member).get(LIST).json()["results"]] == [
        "sales.net-revenue"
    ]
    term_approve(term=revenue, by=steward)
    data = client_as(outsider).get(LIST, {"q": "turnover"}).json()
    assert [t["key"] for t in data["results"]] == ["sales.net-revenue"]
    assert data["results"][0]["status"] == "approved"
    assert client_as(outsider).get(LIST, {"q": "zebra"}).json()["count"] == 0


def test_list_query_count_is_pinned(
    client_as, domain, steward, outsider, django_assert_max_num_queries
):
    for n in range(30):
        term_approve(
            term=term_create(domain=domain, by=steward, name=f"T{n}", definition="x"), by=steward
        )
    with django_assert_max_num_queries(3):  # session user, count, page with domains
        response = client_as(outsider).get(LIST)
    assert response.json()["count"] == 30 and len(response.json()["results"]) == 25


def test_a_member_proposes_and_a_steward_approves(client_as, domain, member, steward, outsider):
    body = {"domain": "sales", "name": "Churn rate", "definition": "Left.", "synonyms": ["a"]}
    assert client_as(outsider).post(LIST, body, format="json").status_code == 403
    response = client_as(member).post(LIST, body, format="json")
    assert response.status_code == 201, response.content
    assert response["Location"].endswith("/api/v1/glossary/terms/sales.churn-rate/")
    assert response.json()["status"] == "draft" and response.json()["version"] == 1
    url = "/api/v1/glossary/terms/sales.churn-rate/"
    assert client_as(member).post(url + "approve/", {}, format="json").status_code == 403
    approved = client_as(steward).post(url + "approve/", {"note": "Agreed."}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["approved_by"] == "steward"
    again = client_as(steward).post(url + "approve/", {}, format="json")
    assert again.status_code == 400 and "already approved" in str(again.json())
    # Approved: the member no longer edits it; the steward does.
    patch = {"definition": "Left in 90 days.", "note": "Window."}
    assert client_as(member).patch(url, patch, format="json").status_code == 403
    edited = client_as(steward).patch(url, patch, format="json")
    assert edited.status_code == 200 and edited.json()["version"] == 3
    versions = client_as(outsider).get(url + "versions/").json()
    assert [(v["version"], v["changes"], v["changed_by"]) for v in versions] == [
        (3, ["definition"], "steward"),
        (2, ["status"], "steward"),
        (1, ["created"], "member"),
    ]
    assert versions[0]["change_note"] == "Window." and versions[2]["definition"] == "Left."
    deprecated = client_as(steward).post(url + "deprecate/", {}, format="json")
    assert deprecated.json()["status"] == "deprecated"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"domain": "sales", "name": "", "definition": "x"}, "name"),
        ({"domain": "sales", "name": "Churn"}, "definition"),
        ({"domain": "nowhere", "name": "Churn", "definition": "x"}, "domain"),
        ({"domain": "sales", "name": "Churn", "definition": "x", "synonyms": "a"}, "synonyms"),
        ({"domain": "sales", "name": "Net Revenue", "definition": "x"}, "name"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(client_as, revenue, member, body, field):
    response = client_as(member).post(LIST, body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert GlossaryTerm.objects.count() == 1


def test_links_to_products_and_columns(
    client_as, revenue, orders, owner, member, steward, outsider
):
    term_approve(term=revenue, by=steward)
    link = TERM + "link/"
    body = {"product": "sales.orders"}
    assert client_as(member).post(link, body, format="json").status_code == 403
    assert client_as(owner).post(link, body, format="json").status_code == 200
    column = {"product": "sales.orders", "column": "net_amount"}
    response = client_as(owner).post(link, column, format="json")
    assert response.status_code == 200
    assert response.json()["products"] == ["sales.orders"]
    assert response.json()["columns"] == [
        {"product": "sales.orders", "port": "orders-table", "column": "net_amount"}
    ]
    missing = client_as(owner).post(link, {**column, "column": "nope"}, format="json")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert client_as(owner).post(link, {"product": "sales.none"}, format="json").status_code == 404
    detail = client_as(outsider).get(TERM).json()
    assert detail["products"] == ["sales.orders"] and len(detail["columns"]) == 1
    unlinked = client_as(owner).post(TERM + "unlink/", body, format="json")
    assert unlinked.json()["products"] == []
