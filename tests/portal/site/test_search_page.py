"""The search page forgives: a typo still finds the product and offers the word ("did you
mean"), each result says what matched, and the results can be sorted. The ranking rules
themselves are tested on PostgreSQL and SQLite in tests/products/catalog/test_search_ranking.py."""

import re

import pytest

from products.catalog.services.search_index import product_search_index_update
from products.choices import LifecycleStatus
from tests.factories import ColumnFactory, OutputPortFactory, ProductFactory


@pytest.fixture
def catalog(postgres, domain):
    orders = ProductFactory(domain=domain, name="Orders", slug="orders", summary="Order lines.")
    health = ProductFactory(
        domain=domain, name="Account health", slug="health", summary="Accounts that may leave."
    )
    ColumnFactory(port=OutputPortFactory(product=health), name="churn_score", description="0-1.")
    product_search_index_update(product_ids=[health.pk])
    legacy = ProductFactory(
        domain=domain,
        name="Orders (legacy)",
        slug="orders-legacy",
        summary="Old order lines.",
        status=LifecycleStatus.DEPRECATED,
    )
    return orders, health, legacy


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_typo_finds_the_product_and_offers_the_word(client, catalog, outsider):
    client.force_login(outsider)
    response = client.get("/search/", {"q": "ordrs"})
    names = [product.name for product in response.context["products"]]
    assert names == ["Orders", "Orders (legacy)"]  # the deprecated one after
    text = _text(response)
    assert "No product contains “ordrs” as you typed it" in text
    assert re.search(r'Did you mean <a [^>]*href="/search/\?q=orders"[^>]*>orders</a>\?', text)
    assert "name (“orders”, close to “ordrs”)" in text


def test_no_result_and_no_close_word_offers_nothing(client, catalog, outsider):
    client.force_login(outsider)
    text = _text(client.get("/search/", {"q": "zebra"}))
    assert "No data products match “zebra”" in text
    assert "Did you mean" not in text


def test_each_result_says_which_field_or_column_matched(client, catalog, outsider):
    client.force_login(outsider)
    text = _text(client.get("/search/", {"q": "churn"}))
    assert 'Matched</span> <span class="match-reason">column <code>churn_score</code>' in text
    text = _text(client.get("/search/", {"q": "accounts leave"}))
    assert "summary" in text and "Did you mean" not in text


def test_results_sort_by_relevance_name_or_recent_update(client, catalog, outsider):
    orders, health, legacy = catalog
    client.force_login(outsider)
    response = client.get("/search/", {"q": "orders"})
    sorts = {link["label"]: link for link in response.context["sorts"]}
    assert list(sorts) == ["Relevance", "Name, A to Z", "Recently updated"]
    assert sorts["Relevance"]["active"]
    assert sorts["Name, A to Z"]["url"] == "?q=orders&sort=name"

    by_name = client.get("/search/", {"q": "order", "sort": "name"})
    assert [p.name for p in by_name.context["products"]] == ["Orders", "Orders (legacy)"]
    legacy.refresh_from_db()
    type(legacy).objects.filter(pk=orders.pk).update(updated_at=legacy.updated_at)
    type(legacy).objects.filter(pk=legacy.pk).update(
        updated_at=legacy.updated_at.replace(year=legacy.updated_at.year + 1)
    )
    recent = client.get("/search/", {"q": "order", "sort": "updated"})
    assert [p.name for p in recent.context["products"]] == ["Orders (legacy)", "Orders"]
    # The search form keeps the chosen order for the next search.
    assert '<input type="hidden" name="sort" value="updated">' in _text(recent)


def test_browsing_without_search_text_offers_no_relevance_sort(client, catalog, outsider):
    client.force_login(outsider)
    response = client.get("/")
    assert [link["label"] for link in response.context["sorts"]] == [
        "Name, A to Z",
        "Recently updated",
    ]
    assert [p.name for p in response.context["products"]][0] == "Account health"


def test_an_unknown_sort_is_ignored(client, catalog, outsider):
    client.force_login(outsider)
    response = client.get("/search/", {"q": "orders", "sort": "popularity"})
    assert response.status_code == 200
    assert [p.name for p in response.context["products"]][0] == "Orders"
