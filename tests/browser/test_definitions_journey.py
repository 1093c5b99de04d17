"""A steward approves a term in the glossary and links it to a product; an analyst with a
narrowed grant finds the term through the catalog search, opens the metric page and sees
its chart drawn by plotly.js (from our own static files), grouped by channel, with the
grant's row filter applied."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portal.core.plotly_assets import PLOTLY_BUNDLE
from products.definitions.services.glossary import term_create
from products.definitions.services.metrics import metric_create
from products.models import GlossaryTerm
from sharing.models import AccessEvent, AccessGrant
from tests.factories import PASSWORD, UserFactory
from tests.products.definitions.metric_data import orders_product


def sign_in(page, username: str, next_url: str) -> None:
    page.context.clear_cookies()
    page.goto(f"/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_glossary_approval_and_the_metric_chart(
    live_server, page, domain, steward, owner, member, media_root, screenshot_dir
):
    orders = orders_product(engine="parquet", domain=domain, media_root=media_root)
    metric_create(
        by=owner,
        port=orders.ports.get(),
        key="sales.revenue",
        name="Net revenue",
        description="What customers paid for lines **not cancelled**.",
        aggregation="sum",
        column="amount",
        filters=[{"column": "status", "op": "!=", "value": "cancelled"}],
        dimensions=["channel", "country"],
        time_column="ordered_at",
    )
    term_create(
        domain=domain,
        by=member,
        name="Net revenue",
        definition="What customers **paid**, cancelled lines left out.",
        synonyms=["turnover"],
    )
    analyst = UserFactory(username="analyst")
    AccessGrant.objects.create(
        product=orders,
        user=analyst,
        columns=["ordered_at", "channel", "status", "amount"],
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
        expires_at=timezone.now() + timedelta(days=30),
    )

    # The steward approves the draft from the glossary and links it to the product.
    sign_in(page, "steward", "/glossary/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Glossary")
    page.get_by_role("link", name="Net revenue").click()
    expect(page.locator(".callout")).to_contain_text("This is a draft")
    page.get_by_label("Note (optional)").first.fill("Agreed with Finance.")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".message-success")).to_contain_text("is now approved")
    expect(page.locator(".term-history")).to_contain_text("Agreed with Finance.")
    assert GlossaryTerm.objects.get().status == "approved"
    page.screenshot(path=str(screenshot_dir / "definitions-term.png"), full_page=True)

    sign_in(page, "owner", "/products/sales/orders/")
    page.get_by_role("link", name="Link glossary terms").click()
    page.get_by_label("Link a term to Orders").select_option(label="Net revenue (Sales)")
    page.get_by_role("button", name="Link term").click()
    expect(page.locator(".message-success")).to_contain_text("Linked “Net revenue”")

    # The analyst searches the catalog for a synonym and finds the term, then the metric.
    sign_in(page, "analyst", "/search/?q=turnover")
    matches = page.locator(".glossary-matches")
    expect(matches).to_contain_text("Net revenue")
    matches.get_by_role("link", name="Net revenue").click()
    expect(page.locator(".term-usage")).to_contain_text("Orders")
    page.goto("/products/sales/orders/")
    page.locator("#definitions").get_by_role("link", name="Net revenue").last.click()
    expect(page).to_have_url(re.compile(r"/metrics/sales.revenue/$"))

    chart = page.locator("[data-metric-chart]")
    expect(chart).to_have_attribute("data-drawn", "true")
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(page.locator(".metric-values")).to_contain_text("country is BE")

    page.get_by_label("channel", exact=True).check()
    page.get_by_label("Per", exact=True).select_option("week")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"grain=week"))
    expect(page.locator("[data-metric-chart]")).to_have_attribute("data-drawn", "true")
    legend = page.locator("[data-metric-chart] .legendtext")
    expect(legend).to_have_count(3)  # web, store, phone
    page.get_by_text(re.compile(r"All \d+ values as a table")).click()
    expect(page.locator(".metric-values-table thead")).to_contain_text("channel")
    expect(page.locator(".metric-values-table thead")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "definitions-metric.png"), full_page=True)

    # A dimension outside the grant: the page says so, no chart.
    page.get_by_label("country", exact=True).check()
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".data-denied")).to_contain_text("country")
    expect(page.locator("[data-metric-chart]")).to_have_count(0)

    assert set(AccessEvent.objects.values_list("channel", flat=True)) == {"web"}
    outside = [url for url in page.requested_urls if not url.startswith(live_server.url)]
    assert outside == []
    assert any(url.endswith("/static/" + PLOTLY_BUNDLE) for url in page.requested_urls)
    assert page.console_errors == []
