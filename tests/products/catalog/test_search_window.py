"""A broad search does bounded work (products.catalog.selectors.SEARCH_WINDOW): it ranks, counts
and facets the newest matches plus every product whose name matches, so a product named
after the search text is never lost however many products mention it."""

import pytest

from products.catalog import selectors
from products.catalog.selectors import CatalogFilters, product_facets, product_search
from tests.factories import DomainFactory, OutputPortFactory, ProductFactory


@pytest.fixture
def ledgers(postgres, domain):
    named = ProductFactory(domain=domain, name="General ledger", slug="general-ledger")
    marketing = DomainFactory(name="Marketing", slug="marketing")
    mentions = [
        ProductFactory(
            domain=domain if i % 2 else marketing,
            name=f"Postings {i}",
            slug=f"postings-{i}",
            description="Lines booked to the ledger.",
        )
        for i in range(6)
    ]
    return named, mentions


def keys(products) -> list[str]:
    return [product.key for product in products]


def test_every_match_is_ranked_when_the_window_is_not_full(ledgers, outsider):
    named, mentions = ledgers
    results = product_search(user=outsider, filters=CatalogFilters(q="ledger"))
    assert results.count() == 7
    assert keys(results)[0] == named.key


def test_a_broad_search_ranks_the_newest_matches_and_every_name_match(
    ledgers, outsider, monkeypatch
):
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 3)
    named, mentions = ledgers
    filters = CatalogFilters(q="ledger")

    results = product_search(user=outsider, filters=filters)

    # The oldest product is in the window because its name matches; it ranks first.
    assert keys(results)[0] == named.key
    assert set(keys(results)) == {named.key, *keys(mentions[-3:])}
    assert results.count() == 4
    facets = product_facets(user=outsider, filters=filters)
    assert sum(value["count"] for value in facets["domain"]) == 4
    assert sum(value["count"] for value in facets["status"]) == 4


def test_the_window_respects_visibility_and_facet_filters(ledgers, outsider, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 2)
    named, mentions = ledgers
    sales_mentions = [p for p in mentions if p.domain.slug == "sales"]
    hidden = ProductFactory(
        domain=named.domain, name="Draft ledger", slug="draft-ledger", status="draft"
    )

    results = product_search(user=outsider, filters=CatalogFilters(q="ledger", domain="sales"))

    assert hidden.key not in keys(results)
    assert set(keys(results)) == {named.key, *keys(sales_mentions[-2:])}


def test_page_and_api_say_when_a_count_is_a_lower_bound(ledgers, outsider, client, monkeypatch):
    import portal.site.views
    import products.catalog.api.views

    for module in (selectors, portal.site.views, products.catalog.api.views):
        monkeypatch.setattr(module, "SEARCH_WINDOW", 3)
    client.force_login(outsider)
    page = client.get("/search/?q=ledger").content.decode()
    assert "4+ results for" in page
    assert "add words or a filter" in page
    body = client.get("/api/v1/products/?q=ledger").json()
    assert body["count"] == 4
    assert body["count_is_lower_bound"] is True
    assert client.get("/api/v1/products/?q=chargeback").json()["count_is_lower_bound"] is False


def test_searches_are_cached_within_the_catalogs_generation(
    ledgers, outsider, owner, settings, django_assert_num_queries
):
    """A search's window of matches is cached (SEARCH_CACHE_SECONDS) until the catalog
    changes: a new, edited, published or retired product is found, or no longer found, by
    the very next search; a product hidden behind the services' back is still never shown;
    someone who joins a domain searches its drafts at once."""
    from products.catalog.services.products import (
        product_deprecate,
        product_publish,
        product_retire,
        product_update,
    )
    from tests.factories import MembershipFactory

    settings.SEARCH_CACHE_SECONDS = 60
    named, mentions = ledgers
    filters = CatalogFilters(q="ledger")

    def found(user=outsider) -> set[str]:
        return set(keys(product_search(user=user, filters=filters)))

    first = found()
    assert len(first) == 7
    # Cached: the viewer's domains (the key) and the page; the window is not read again.
    with django_assert_num_queries(3):  # domains, page, its tags
        assert found() == first

    draft = ProductFactory(
        domain=named.domain,
        name="Ledger draft",
        slug="ledger-draft",
        status="draft",
        owners=[owner],
    )
    OutputPortFactory(product=draft)
    assert draft.key not in found()
    product_publish(product=draft, by=owner)
    assert draft.key in found()

    product_update(product=mentions[1], by=owner, description="Booked elsewhere.")
    assert mentions[1].key not in found()

    product_deprecate(product=draft, by=owner)
    product_retire(product=draft, by=owner)
    assert draft.key not in found()

    # Behind the services' back (no new generation): the cached window still holds it,
    # but the visibility rules apply to its rows again.
    hidden = mentions[2]
    assert hidden.key in found()
    type(hidden).objects.filter(pk=hidden.pk).update(status="draft")
    assert hidden.key not in found()

    MembershipFactory(domain=hidden.domain, user=outsider)
    assert hidden.key in found()
