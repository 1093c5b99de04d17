"""The domains API: every signed-in user reads domains and their teams."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from products.choices import LifecycleStatus, MembershipRole
from tests.factories import DomainFactory, MembershipFactory, ProductFactory, UserFactory


def test_anonymous_is_401(client_as, domain):
    assert client_as(None).get("/api/v1/domains/").status_code == 401
    assert client_as(None).get("/api/v1/domains/sales/").status_code == 401


def test_list_counts_published_products(client_as, domain, outsider):
    DomainFactory(name="Marketing", slug="marketing")
    ProductFactory(domain=domain)
    ProductFactory(domain=domain, status=LifecycleStatus.DEPRECATED)
    ProductFactory(domain=domain, status=LifecycleStatus.DRAFT)  # not counted

    response = client_as(outsider).get("/api/v1/domains/")
    assert response.status_code == 200
    rows = {row["slug"]: row for row in response.json()["results"]}
    assert rows["sales"]["product_count"] == 2
    assert rows["sales"]["name"] == "Sales"
    assert rows["sales"]["url"].endswith("/api/v1/domains/sales/")
    assert rows["marketing"]["product_count"] == 0


def test_detail_shows_the_team(client_as, domain, owner, steward, member, outsider):
    response = client_as(outsider).get("/api/v1/domains/sales/")
    assert response.status_code == 200
    body = response.json()
    assert {(m["username"], m["role"]) for m in body["team"]} == {
        ("owner", "owner"),
        ("steward", "steward"),
        ("member", "member"),
    }
    assert body["member_count"] == 3
    assert body["products_url"].endswith("/api/v1/products/?domain=sales")
    # Nothing about the people beyond username and role.
    assert set(body["team"][0]) == {"username", "role"}


def test_unknown_domain_is_404(client_as, outsider):
    response = client_as(outsider).get("/api/v1/domains/nowhere/")
    assert response.status_code == 404
    assert "nowhere" in response.json()["detail"]


def test_domains_are_read_only(client_as, admin_user):
    client = client_as(admin_user)
    assert client.post("/api/v1/domains/", {"name": "X"}).status_code == 405
    assert client.delete("/api/v1/domains/sales/").status_code == 405


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_queries_do_not_grow_with_domains_products_or_members(
    client_as, outsider, django_assert_max_num_queries
):
    client = client_as(outsider)
    for n in range(3):
        d = DomainFactory(slug=f"d{n}")
        ProductFactory(domain=d)
    before_list = _queries(client, "/api/v1/domains/")
    before_detail = _queries(client, "/api/v1/domains/d0/")
    for n in range(3, 20):
        d = DomainFactory(slug=f"d{n}")
        ProductFactory(domain=d)
        ProductFactory(domain=DomainFactory(slug="d0"))
        MembershipFactory(domain=d, user=UserFactory(), role=MembershipRole.MEMBER)
        MembershipFactory(
            domain=DomainFactory(slug="d0"), user=UserFactory(), role=MembershipRole.MEMBER
        )
    assert _queries(client, "/api/v1/domains/") == before_list
    assert _queries(client, "/api/v1/domains/d0/") == before_detail

    with django_assert_max_num_queries(2):  # count, page
        client.get("/api/v1/domains/")
    with django_assert_max_num_queries(2):  # domain with counts, team
        client.get("/api/v1/domains/d0/")
