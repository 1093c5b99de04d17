"""An owner finds an unused product on the usage dashboard, reads its Usage tab (a plotly
chart drawn by our static script from json_script data, under a Content Security
Policy that forbids inline scripts), proposes its retirement (a first try with too short
a notice), and the grantee objects from the retirement page."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from products.catalog.services.page_views import product_view_record
from products.models import DataProduct, RetirementObjection, RetirementProposal
from products.usage.services import usage_summaries_refresh
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent, AccessGrant
from tests.factories import PASSWORD, ProductFactory, UserFactory

# Scripts only from our own files. (Styles are not restricted here: plotly.js injects its
# own <style> rules, which a portal-wide policy has to allow or replace.)
CSP = "script-src 'self'; object-src 'none'"


@pytest.fixture
def catalog(domain, owner):
    now = timezone.now()
    long_ago = now - timedelta(days=200)
    busy = ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])
    legacy = ProductFactory(domain=domain, name="Orders v1", slug="orders-v1", owners=[owner])
    DataProduct.objects.filter(pk__in=[busy.pk, legacy.pk]).update(
        created_at=long_ago, published_at=long_ago
    )
    readers = [UserFactory(username=f"reader{i}") for i in range(3)]
    for days in range(20):
        for i, reader in enumerate(readers[: 1 + days % 3]):
            AccessEvent.objects.create(
                at=now - timedelta(days=days, hours=i),
                action=AuditAction.READ,
                user=reader,
                product=busy,
                product_key=busy.key,
                channel=[Channel.API, Channel.DOWNLOAD, Channel.NOTEBOOK][i],
            )
            product_view_record(
                product=busy, user=reader, by_editor=False, day=(now - timedelta(days=days)).date()
            )
    grantee = UserFactory(username="grantee")
    AccessGrant.objects.create(
        product=legacy, user=grantee, expires_at=now + timedelta(days=60), reason="x"
    )
    usage_summaries_refresh()
    return busy, legacy


def sign_in(page, username: str, next_url: str):
    page.context.clear_cookies()
    page.goto(f"/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_usage_dashboard_tab_and_retirement(live_server, page, catalog, screenshot_dir):
    busy, legacy = catalog

    def with_csp(route):
        response = route.fetch()
        headers = {**response.headers, "content-security-policy": CSP}
        route.fulfill(response=response, headers=headers)

    page.context.route(re.compile(r".*/(usage|retirement)/.*"), with_csp)

    sign_in(page, "owner", "/usage/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Usage")
    expect(page.locator("#most-used")).to_contain_text("Orders")
    expect(page.locator("[data-usage-bars] .main-svg").first).to_be_visible()
    unused = page.locator("#unused")
    expect(unused).to_contain_text("Orders v1")
    page.screenshot(path=str(screenshot_dir / "usage-dashboard.png"), full_page=True)

    # The busy product's Usage tab: the daily chart, totals and readers' names.
    page.locator("#most-used").get_by_role("link", name="Orders").first.click()
    expect(page).to_have_url(re.compile(r"/products/sales/orders/usage/$"))
    expect(page.locator("[data-usage-chart] .main-svg").first).to_be_visible()
    expect(page.locator(".usage-stats")).to_contain_text("distinct readers")
    expect(page.get_by_role("heading", name="Who reads it")).to_be_visible()
    expect(page.locator("table").filter(has_text="reader0")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "usage-tab.png"), full_page=True)

    # The unused product: banner on its page, then the proposal.
    page.goto(legacy.get_absolute_url())
    expect(page.locator(".retirement-flagged")).to_contain_text("No reads in 90 days")
    page.locator(".retirement-flagged").get_by_role("link", name="Propose retirement").click()
    expect(page).to_have_url(re.compile(r"/products/sales/orders-v1/retirement/#propose$"))
    page.get_by_label("Reason").fill("Replaced by Orders; nobody reads v1.")
    page.get_by_label("Notice period (days)").fill("3")
    page.get_by_role("button", name="Propose retirement").click()
    expect(page.locator(".field-error")).to_contain_text("At least 7 days")
    page.screenshot(path=str(screenshot_dir / "retirement-propose-error.png"), full_page=True)
    page.get_by_label("Notice period (days)").fill("14")
    page.get_by_role("button", name="Propose retirement").click()
    expect(page.locator(".message-success")).to_contain_text("Retirement of Orders v1 proposed")
    expect(page.locator("#proposal .countdown")).to_have_text("14 days left")
    assert RetirementProposal.objects.get().notice_days == 14

    # The grantee objects.
    sign_in(page, "grantee", f"{legacy.get_absolute_url()}retirement/")
    page.get_by_label("Why you still need it").fill("The finance close still reads v1.")
    page.get_by_role("button", name="Object").click()
    expect(page.locator(".message-success")).to_contain_text("Your objection is recorded")
    expect(page.locator("#steps")).to_contain_text("Objection")
    assert RetirementObjection.objects.get().reason == "The finance close still reads v1."
    page.screenshot(path=str(screenshot_dir / "retirement-objected.png"), full_page=True)

    assert not [e for e in page.console_errors if "Content Security Policy" in e]
    assert all(url.startswith(live_server.url) for url in page.requested_urls)
