"""The products API: who sees which product, who may change it, what bad input gets back,
and that a page of products costs the same number of queries however many there are."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from products.choices import LifecycleStatus
from products.models import DataProduct
from tests.factories import DomainFactory, OutputPortFactory, ProductFactory, UserFactory

LIST = "/api/v1/products/"


def detail(key: str, suffix: str = "") -> str:
    return f"/api/v1/products/{key}/{suffix}"


@pytest.fixture
def published(domain, owner):
    return ProductFactory(
        domain=domain,
        name="Orders",
        slug="orders",
        summary="Every order placed in the web shop.",
        purpose_use_case="Revenue reporting",
        tags=["finance", "daily"],
        owners=[owner],
    )


@pytest.fixture
def draft(domain, owner):
    return ProductFactory(
        domain=domain, name="Returns", slug="returns", status=LifecycleStatus.DRAFT
    )


def keys(response) -> list[str]:
    return [item["key"] for item in response.json()["results"]]


# --- list --------------------------------------------------------------------------------


def test_anonymous_list_is_401_with_a_token_challenge(client_as, published):
    response = client_as(None).get(LIST)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_list_shows_published_to_everyone_and_drafts_to_the_domain(
    client_as, published, draft, outsider, member, admin_user
):
    retired = ProductFactory(domain=published.domain, slug="old", status=LifecycleStatus.RETIRED)

    assert keys(client_as(outsider).get(LIST)) == ["sales.orders"]
    assert set(keys(client_as(member).get(LIST))) == {"sales.orders", "sales.returns", retired.key}
    assert set(keys(client_as(admin_user).get(LIST))) == {
        "sales.orders",
        "sales.returns",
        retired.key,
    }


def test_list_item_shape(client_as, published, outsider):
    response = client_as(outsider).get(LIST)
    assert response.status_code == 200
    item = response.json()["results"][0]
    assert item["key"] == "sales.orders"
    assert item["url"].endswith("/api/v1/products/sales.orders/")
    assert item["ports_url"].endswith("/api/v1/products/sales.orders/ports/")
    assert item["domain"] == {"slug": "sales", "name": "Sales"}
    assert sorted(item["tags"]) == ["daily", "finance"]
    assert item["owners"] == ["owner"]
    assert item["status"] == "published"
    assert item["purpose_use_case"] == "Revenue reporting"
    for field in ("created_at", "updated_at", "published_at", "audience", "version"):
        assert field in item


def test_list_filters_by_domain_tag_and_status(client_as, domain, owner, admin_user):
    marketing = DomainFactory(name="Marketing", slug="marketing")
    ProductFactory(domain=domain, slug="orders", tags=["finance"])
    ProductFactory(domain=domain, slug="leads", tags=["crm"])
    ProductFactory(domain=marketing, slug="campaigns", tags=["finance"])
    ProductFactory(domain=domain, slug="old", status=LifecycleStatus.DEPRECATED)
    client = client_as(admin_user)

    assert set(keys(client.get(LIST, {"domain": "marketing"}))) == {"marketing.campaigns"}
    assert set(keys(client.get(LIST, {"tag": "finance"}))) == {
        "sales.orders",
        "marketing.campaigns",
    }
    assert keys(client.get(LIST, {"tag": "finance", "domain": "sales"})) == ["sales.orders"]
    assert keys(client.get(LIST, {"status": "deprecated"})) == ["sales.old"]
    assert keys(client.get(LIST, {"domain": "nowhere"})) == []


def test_list_rejects_an_unknown_status_per_parameter(client_as, outsider):
    response = client_as(outsider).get(LIST, {"status": "finished"})
    assert response.status_code == 400
    assert "status" in response.json()


def test_list_is_paginated(client_as, domain, outsider):
    for n in range(5):
        ProductFactory(domain=domain, slug=f"p{n}", name=f"Product {n}")
    response = client_as(outsider).get(LIST, {"page_size": 2, "page": 2})
    body = response.json()
    assert body["count"] == 5
    assert keys(response) == ["sales.p2", "sales.p3"]
    assert body["next"] and body["previous"]


def test_list_search_text_filters(client_as, domain, outsider):
    ProductFactory(domain=domain, slug="orders", name="Orders")
    ProductFactory(domain=domain, slug="stock", name="Inventory", description="Stock levels")
    assert keys(client_as(outsider).get(LIST, {"q": "inventory"})) == ["sales.stock"]


# --- query counts --------------------------------------------------------------------------


def _seed(domain, count: int, owners) -> None:
    for n in range(count):
        ProductFactory(domain=domain, tags=[f"tag-{n % 4}", "shared"], owners=owners)


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(LIST, {"page_size": 50})
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()["count"]


def test_list_queries_do_not_grow_with_products(
    client_as, domain, owner, steward, member, django_assert_max_num_queries
):
    client = client_as(member)
    _seed(domain, 5, owners=[owner, steward])
    queries_at_5, count = _list_queries(client)
    assert count == 5
    _seed(domain, 25, owners=[owner, steward])
    queries_at_30, count = _list_queries(client)
    assert count == 30
    assert queries_at_30 == queries_at_5

    # the viewer's domains (the ranking's cache key), the candidates (their ids, text,
    # tags and matching columns), count, page, tags, owners
    with django_assert_max_num_queries(9):
        client.get(LIST, {"page_size": 50, "q": "product", "tag": "shared"})


# --- detail ------------------------------------------------------------------------------


def test_detail_by_key(client_as, published, outsider):
    response = client_as(outsider).get(detail("sales.orders"))
    assert response.status_code == 200
    assert response.json()["key"] == "sales.orders"
    assert response.json()["summary"] == "Every order placed in the web shop."


def test_detail_anonymous_is_401(client_as, published):
    assert client_as(None).get(detail("sales.orders")).status_code == 401


def test_a_draft_is_404_to_outsiders_and_visible_to_members(
    client_as, draft, outsider, member, admin_user
):
    assert client_as(outsider).get(detail("sales.returns")).status_code == 404
    assert client_as(member).get(detail("sales.returns")).status_code == 200
    assert client_as(admin_user).get(detail("sales.returns")).status_code == 200


@pytest.mark.parametrize("key", ["sales.nothing", "nowhere.orders", "sales", "sales."])
def test_unknown_or_malformed_key_is_a_json_404(client_as, published, outsider, key):
    response = client_as(outsider).get(detail(key))
    assert response.status_code == 404
    assert "detail" in response.json()


def test_hidden_and_missing_products_answer_alike(client_as, draft, outsider):
    hidden = client_as(outsider).get(detail("sales.returns"))
    missing = client_as(outsider).get(detail("sales.missing"))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("returns", "X") == missing.json()["detail"].replace(
        "missing", "X"
    )


# --- create ------------------------------------------------------------------------------


def test_owner_creates_a_draft(client_as, domain, owner, steward):
    response = client_as(owner).post(
        LIST,
        {
            "domain": "sales",
            "name": "Customer lifetime value",
            "summary": "Predicted value per customer",
            "tags": ["Finance", "ML models", "finance"],
            "owners": ["owner", "steward"],
            "audience": "external",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["key"] == "sales.customer-lifetime-value"
    assert response["Location"] == body["url"]
    assert body["status"] == "draft"
    assert body["tags"] == ["finance", "ml-models"]
    assert sorted(body["owners"]) == ["owner", "steward"]
    assert body["audience"] == "external"
    product = DataProduct.objects.get_by_key("sales.customer-lifetime-value")
    assert product.created_by == owner


def test_owners_default_to_the_author(client_as, domain, steward):
    response = client_as(steward).post(LIST, {"domain": "sales", "name": "Leads"}, format="json")
    assert response.status_code == 201
    assert response.json()["owners"] == ["steward"]


@pytest.mark.parametrize("who", ["outsider", "member"])
def test_create_without_a_managing_role_is_403(client_as, domain, request, who):
    user = request.getfixturevalue(who)
    response = client_as(user).post(LIST, {"domain": "sales", "name": "Leads"}, format="json")
    assert response.status_code == 403
    assert "Sales" in response.json()["detail"]
    assert not DataProduct.objects.exists()


def test_create_anonymous_is_401(client_as, domain):
    response = client_as(None).post(LIST, {"domain": "sales", "name": "Leads"}, format="json")
    assert response.status_code == 401


def test_admin_creates_in_any_domain(client_as, domain, admin_user):
    response = client_as(admin_user).post(LIST, {"domain": "sales", "name": "X"}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body, field",
    [
        ({"domain": "nowhere", "name": "Leads"}, "domain"),
        ({"domain": "sales"}, "name"),
        ({"domain": "sales", "name": ""}, "name"),
        ({"domain": "sales", "name": "Leads", "slug": "not a slug!"}, "slug"),
        ({"domain": "sales", "name": "Leads", "audience": "everyone"}, "audience"),
        ({"domain": "sales", "name": "Leads", "owners": ["ghost"]}, "owners"),
        ({"domain": "sales", "name": "Leads", "tags": "finance"}, "tags"),
        ({"domain": "sales", "name": "Leads", "status": "published"}, "status"),
        ({"domain": "sales", "name": "x" * 201}, "name"),
    ],
)
def test_create_bad_input_is_400_per_field(client_as, owner, body, field):
    response = client_as(owner).post(LIST, body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert response.json()[field]  # a message, not an empty list
    assert not DataProduct.objects.exists()


def test_create_duplicate_slug_is_a_message_on_slug(client_as, published, owner):
    response = client_as(owner).post(
        LIST, {"domain": "sales", "name": "Orders again", "slug": "orders"}, format="json"
    )
    assert response.status_code == 400
    assert "slug" in response.json(), response.json()
    assert DataProduct.objects.count() == 1


def test_create_unknown_domain_message_names_it(client_as, owner):
    response = client_as(owner).post(LIST, {"domain": "nowhere", "name": "X"}, format="json")
    assert "nowhere" in response.json()["domain"][0]


# --- update ------------------------------------------------------------------------------


def test_steward_patches_a_product(client_as, published, steward):
    response = client_as(steward).patch(
        detail("sales.orders"),
        {"summary": "  All web-shop orders  ", "tags": ["sales"], "owners": ["steward"]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["summary"] == "All web-shop orders"
    assert body["tags"] == ["sales"]
    assert body["owners"] == ["steward"]
    assert body["name"] == "Orders"  # untouched by PATCH


def test_put_replaces_every_editable_field(client_as, published, owner):
    body = {
        "name": "Orders v2",
        "summary": "",
        "description": "One row per order line.",
        "purpose_use_case": "",
        "purpose_intended_users": "Analysts",
        "purpose_expected_outcome": "",
        "audience": "internal",
        "version": "2.0.0",
        "tags": [],
        "owners": ["owner"],
    }
    response = client_as(owner).put(detail("sales.orders"), body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == "2.0.0"
    assert response.json()["tags"] == []
    assert response.json()["key"] == "sales.orders"  # the key does not change


def test_put_with_missing_fields_is_400_per_field(client_as, published, owner):
    response = client_as(owner).put(detail("sales.orders"), {"name": "X"}, format="json")
    assert response.status_code == 400
    assert {"summary", "version", "owners", "tags"} <= set(response.json())


@pytest.mark.parametrize(
    "body, field",
    [
        ({"audience": "everyone"}, "audience"),
        ({"name": ""}, "name"),
        ({"owners": []}, "owners"),  # a published product keeps an owner
        ({"slug": "renamed"}, "slug"),
        ({"domain": "marketing"}, "domain"),
    ],
)
def test_patch_bad_input_is_400_per_field(client_as, published, owner, body, field):
    response = client_as(owner).patch(detail("sales.orders"), body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    published.refresh_from_db()
    assert published.owners.exists()
    assert published.slug == "orders"


def test_patch_by_a_member_is_403(client_as, draft, member):
    response = client_as(member).patch(detail("sales.returns"), {"summary": "x"}, format="json")
    assert response.status_code == 403
    assert "owners and stewards" in response.json()["detail"]


def test_patch_by_an_outsider_is_403_on_published_and_404_on_draft(
    client_as, published, draft, outsider
):
    client = client_as(outsider)
    assert client.patch(detail("sales.orders"), {"summary": "x"}).status_code == 403
    assert client.patch(detail("sales.returns"), {"summary": "x"}).status_code == 404
    published.refresh_from_db()
    assert published.summary == "Every order placed in the web shop."


def test_patch_anonymous_is_401(client_as, published):
    assert client_as(None).patch(detail("sales.orders"), {"summary": "x"}).status_code == 401


def test_patch_unknown_product_is_404(client_as, owner):
    assert client_as(owner).patch(detail("sales.none"), {"summary": "x"}).status_code == 404


# --- lifecycle ---------------------------------------------------------------------------


def test_publish_needs_description_owner_and_port(client_as, draft, owner):
    draft.description = ""
    draft.save()
    response = client_as(owner).post(detail("sales.returns", "publish/"))
    assert response.status_code == 400
    messages = response.json()["status"]
    assert "Write a description." in messages
    assert "Add at least one output port." in messages
    draft.refresh_from_db()
    assert draft.status == LifecycleStatus.DRAFT


def test_publish_deprecate_retire(client_as, draft, owner, outsider):
    draft.owners.set([owner])
    OutputPortFactory(product=draft)
    client = client_as(owner)

    response = client.post(detail("sales.returns", "publish/"))
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "published"
    assert response.json()["published_at"]
    # Now visible to everyone signed in.
    assert client_as(outsider).get(detail("sales.returns")).status_code == 200

    response = client_as(owner).post(detail("sales.returns", "deprecate/"))
    assert response.status_code == 200
    assert response.json()["status"] == "deprecated"
    assert response.json()["deprecated_at"]

    response = client_as(owner).post(detail("sales.returns", "retire/"))
    assert response.status_code == 200
    assert response.json()["status"] == "retired"
    assert client_as(outsider).get(detail("sales.returns")).status_code == 404


def test_a_draft_cannot_be_deprecated(client_as, draft, owner):
    response = client_as(owner).post(detail("sales.returns", "deprecate/"))
    assert response.status_code == 400
    assert "cannot become deprecated" in response.json()["status"][0]


def test_lifecycle_permissions(client_as, published, draft, member, outsider):
    assert client_as(None).post(detail("sales.orders", "deprecate/")).status_code == 401
    assert client_as(member).post(detail("sales.orders", "deprecate/")).status_code == 403
    assert client_as(outsider).post(detail("sales.orders", "deprecate/")).status_code == 403
    assert client_as(outsider).post(detail("sales.returns", "publish/")).status_code == 404
    assert client_as(member).post(detail("sales.returns", "publish/")).status_code == 403
    published.refresh_from_db()
    assert published.status == LifecycleStatus.PUBLISHED


def test_admin_changes_any_lifecycle(client_as, published, admin_user):
    response = client_as(admin_user).post(detail("sales.orders", "deprecate/"))
    assert response.status_code == 200


def test_users_from_another_domain_cannot_write(client_as, published):
    from products.choices import MembershipRole
    from tests.factories import MembershipFactory

    marketing_owner = UserFactory(username="mowner")
    MembershipFactory(user=marketing_owner, role=MembershipRole.OWNER)
    response = client_as(marketing_owner).patch(detail("sales.orders"), {"summary": "x"})
    assert response.status_code == 403
