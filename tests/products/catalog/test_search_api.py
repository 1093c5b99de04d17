"""The API's `q` ranks like `/search/`: both call products.catalog.selectors.product_search, on
PostgreSQL full-text search weighted name > summary and tags > description > columns."""

from datetime import timedelta

import pytest

from products.catalog.selectors import CatalogFilters, product_search
from products.models import DataProduct
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


def test_the_api_says_why_each_product_matched_and_offers_a_correction(
    api_client, catalog, outsider
):
    api_client.force_authenticate(outsider)
    body = api_client.get("/api/v1/products/", {"q": "retrns"}).json()
    assert body["did_you_mean"] == "returns"
    assert body["results"][0]["key"] == "sales.returns"
    assert body["results"][0]["search_matches"] == [
        {
            "word": "retrns",
            "field": "name",
            "detail": "",
            "quality": "close",
            "corrected_to": "returns",
        }
    ]
    body = api_client.get("/api/v1/products/", {"q": "share"}).json()
    assert body["did_you_mean"] is None
    (item,) = body["results"]
    assert item["key"] == "sales.supplier-quality"
    assert item["search_matches"][0]["field"] == "column description"
    assert item["search_matches"][0]["detail"] == "return_rate"


def test_the_api_sorts_by_name_or_recent_update(api_client, catalog, outsider):
    in_name, in_description, in_column = catalog
    api_client.force_authenticate(outsider)
    later = in_column.updated_at + timedelta(minutes=5)
    DataProduct.objects.filter(pk=in_description.pk).update(updated_at=later)
    by_name = api_client.get("/api/v1/products/", {"q": "returns", "sort": "name"}).json()
    assert [i["key"] for i in by_name["results"]] == [
        "sales.churn",
        "sales.returns",
        "sales.supplier-quality",
    ]
    recent = api_client.get("/api/v1/products/", {"q": "returns", "sort": "updated"}).json()
    assert recent["results"][0]["key"] == "sales.churn"
    refused = api_client.get("/api/v1/products/", {"sort": "popularity"})
    assert refused.status_code == 400
    assert "sort" in refused.json()
