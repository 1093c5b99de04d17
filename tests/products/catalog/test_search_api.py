"""The API's `q` ranks like `/search/`: both call products.catalog.selectors.product_search, on
PostgreSQL full-text search weighted name > summary and tags > description > columns."""

import pytest

from products.catalog.selectors import CatalogFilters, product_search
from tests.factories import ColumnFactory, OutputPortFactory, ProductFactory


@pytest.fixture
def catalog(postgres, domain):
    in_description = ProductFactory(
        domain=domain,
        name="Customer churn",
        slug="churn",
        summary="Who left and when.",
        description="Built from returns and complaints per customer.",
    )
    in_name = ProductFactory(
        domain=domain,
        name="Returns",
        slug="returns",
        summary="Every returned item.",
        description="One row per returned item.",
    )
    in_column = ProductFactory(
        domain=domain,
        name="Supplier quality",
        slug="supplier-quality",
        summary="Defect rates by supplier.",
        description="Quality checks on delivered goods.",
    )
    port = OutputPortFactory(product=in_column)
    ColumnFactory(port=port, name="return_rate", description="Share of returns")
    from products.catalog.services.search_index import product_search_index_update

    product_search_index_update(product_ids=[in_column.pk])
    ProductFactory(domain=domain, name="Web sessions", slug="sessions", description="Clicks.")
    return in_name, in_description, in_column


def test_a_name_match_ranks_above_a_description_match(api_client, catalog, outsider):
    api_client.force_authenticate(outsider)
    response = api_client.get("/api/v1/products/", {"q": "returns"})
    assert response.status_code == 200
    keys = [item["key"] for item in response.json()["results"]]
    assert keys == ["sales.returns", "sales.churn", "sales.supplier-quality"]


def test_the_api_and_the_search_selector_agree(api_client, catalog, outsider):
    api_client.force_authenticate(outsider)
    for q in ("returns", "customer", "supplier defect", "returned item"):
        response = api_client.get("/api/v1/products/", {"q": q})
        api_keys = [item["key"] for item in response.json()["results"]]
        selector_keys = [p.key for p in product_search(user=outsider, filters=CatalogFilters(q=q))]
        assert api_keys == selector_keys, q
        assert api_keys, q


def test_search_does_not_find_drafts_the_user_may_not_see(api_client, catalog, outsider, member):
    ProductFactory(
        domain=catalog[0].domain, name="Returns forecast", slug="forecast", status="draft"
    )
    api_client.force_authenticate(outsider)
    keys = [
        i["key"] for i in api_client.get("/api/v1/products/", {"q": "returns"}).json()["results"]
    ]
    assert "sales.forecast" not in keys
    api_client.force_authenticate(member)
    keys = [
        i["key"] for i in api_client.get("/api/v1/products/", {"q": "returns"}).json()["results"]
    ]
    assert "sales.forecast" in keys


def test_a_search_text_that_is_too_long_is_400(api_client, outsider):
    api_client.force_authenticate(outsider)
    response = api_client.get("/api/v1/products/", {"q": "x" * 201})
    assert response.status_code == 400
    assert "q" in response.json()
