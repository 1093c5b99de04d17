"""A reader searches the way people type: a misspelt word still finds Orders and the page
offers the word ("did you mean"); two words find products matching either, each result
says what matched; the results can be sorted by name."""

import re

import pytest
from playwright.sync_api import expect

from products.catalog.services.search_index import product_search_index_update
from products.choices import LifecycleStatus
from tests.factories import PASSWORD, ColumnFactory, OutputPortFactory, ProductFactory


@pytest.fixture
def catalog(domain, outsider):
    ProductFactory(
        domain=domain,
        name="Orders",
        slug="orders",
        summary="Every order line from the web shop and the stores.",
        tags=["orders", "revenue"],
    )
    ProductFactory(
        domain=domain,
        name="Customers",
        slug="customers",
        summary="One row per customer account.",
        purpose_use_case="Segmentation and churn analysis.",
    )
    health = ProductFactory(
        domain=domain,
        name="Account health",
        slug="account-health",
        summary="Signals that an account may leave.",
    )
    port = OutputPortFactory(product=health)
    ColumnFactory(port=port, name="churn_score", description="Likelihood of leaving in 90 days.")
    product_search_index_update(product_ids=[health.pk])
    ProductFactory(
        domain=domain,
        name="Daily revenue (legacy)",
        slug="daily-revenue",
        summary="Order lines per day. Deprecated: use Orders.",
        status=LifecycleStatus.DEPRECATED,
    )


def test_a_reader_finds_orders_despite_a_typo_and_sees_why_results_match(
    live_server, page, catalog, screenshot_dir
):
    page.goto("/login/?next=/")
    page.get_by_label("Username").fill("outsider")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Find data you can trust")).to_be_visible()

    # A typo: Orders is still found, first, and the page offers the word.
    page.get_by_role("searchbox", name="Search data products").fill("ordrs")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/search/\?q=ordrs$"))
    results = page.locator(".result")
    expect(results.first.locator(".result-title")).to_have_text("Orders")
    expect(results.first.locator(".result-matches")).to_contain_text(
        "name (“orders”, close to “ordrs”)"
    )
    # The deprecated product matches too, below the published one.
    expect(results.last.locator(".result-title")).to_have_text("Daily revenue (legacy)")
    suggestion = page.get_by_role("status").filter(has_text="Did you mean")
    expect(suggestion).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "search-typo-did-you-mean.png"), full_page=True)

    suggestion.get_by_role("link", name="orders").click()
    expect(page).to_have_url(re.compile(r"/search/\?q=orders$"))
    expect(page.get_by_text("Did you mean")).to_have_count(0)
    expect(results.first.locator(".result-title")).to_have_text("Orders")

    # Two words: products matching either; the one matching both first; each result
    # says where it matched.
    searchbox = page.get_by_role("searchbox", name="Search data products")
    searchbox.fill("customers churn")
    page.get_by_role("button", name="Search").click()
    expect(results.first.locator(".result-title")).to_have_text("Customers")
    expect(results.first.locator(".result-matches")).to_contain_text("use case")
    health = results.filter(has_text="Account health")
    expect(health.locator(".result-matches")).to_contain_text("column churn_score")
    page.screenshot(path=str(screenshot_dir / "search-any-word-matched-fields.png"), full_page=True)

    # Sorting by name keeps the search.
    page.get_by_role("navigation", name="Sort results").get_by_role(
        "link", name="Name, A to Z"
    ).click()
    expect(page).to_have_url(re.compile(r"q=customers\+churn&sort=name$"))
    expect(results.first.locator(".result-title")).to_have_text("Account health")
    expect(
        page.get_by_role("navigation", name="Sort results").locator("[aria-current=true]")
    ).to_have_text("Name, A to Z")
    page.screenshot(path=str(screenshot_dir / "search-sorted-by-name.png"), full_page=True)
    assert not page.console_errors
