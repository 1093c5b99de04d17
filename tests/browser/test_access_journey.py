"""Getting data in a real browser, as an analyst and an owner live it: the analyst finds a
product by searching, is told they cannot read it yet and requests access; the owner, in a
second browser, approves the request; the analyst previews the rows (confidential columns
masked) and downloads them as CSV."""

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from products.choices import LifecycleStatus
from sharing.models import AccessEvent, AccessGrant, AccessRequest
from tests.factories import PASSWORD, UserFactory, parquet_product

ROWS = {
    "order_id": [1, 2, 3],
    "country": ["BE", "NL", "FR"],
    "email": ["a@example.com", "b@example.com", "c@example.com"],
    "amount": [10.5, 20.0, 7.25],
}


def sign_in(page, username: str, next_path: str) -> None:
    page.goto(f"/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_analyst_finds_a_product_requests_access_and_reads_it_once_approved(
    live_server, browser, page, domain, owner, media_root, screenshot_dir
):
    product = parquet_product(
        media_root=media_root,
        domain=domain,
        rows=ROWS,
        file_path="journey/orders.parquet",
        name="Customer orders",
        slug="customer-orders",
        status=LifecycleStatus.PUBLISHED,
    )
    product.owners.add(owner)
    UserFactory(username="analyst")

    # The analyst searches, opens the product, and cannot read its rows yet.
    sign_in(page, "analyst", "/")
    page.get_by_label("Search data products").first.fill("customer orders")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Customer orders").first.click()
    expect(page).to_have_url(re.compile(r"/products/.+/customer-orders/$"))
    page.get_by_role("link", name="Data", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("cannot read"))).to_be_visible()

    # The request: a purpose, the columns, a duration.
    page.get_by_role("link", name="Access", exact=True).click()
    page.get_by_role("button", name="Request access").click()  # no purpose: told so
    expect(page.locator("#request-access")).to_be_visible()
    page.get_by_label("Purpose").fill("Monthly revenue by country for the finance review.")
    page.get_by_role("button", name="Request access").click()
    expect(page.get_by_role("button", name="Cancel my request")).to_be_visible()
    request = AccessRequest.objects.get()
    assert request.status == "pending" and request.requester.username == "analyst"

    # The owner, in another browser, approves it from the product's Access tab.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    owner_page = context.new_page()
    try:
        sign_in(owner_page, owner.username, f"{product.get_absolute_url()}access/")
        pending = owner_page.locator("#pending-heading")
        expect(pending).to_contain_text("Pending requests")
        expect(owner_page.get_by_text("Monthly revenue by country")).to_be_visible()
        owner_page.get_by_role("button", name="Approve", exact=True).click()
        expect(owner_page.locator(".message-success")).to_be_visible()
        owner_page.screenshot(path=str(screenshot_dir / "access-approved.png"), full_page=True)
    finally:
        context.close()
    grant = AccessGrant.objects.get()
    assert grant.user.username == "analyst" and grant.revoked_at is None

    # The analyst now previews the rows: the confidential email is masked.
    page.goto(f"{product.get_absolute_url()}data/")
    table = page.locator("table").first
    expect(table).to_contain_text("BE")
    expect(table).to_contain_text("****")
    expect(table).not_to_contain_text("a@example.com")
    page.screenshot(path=str(screenshot_dir / "access-preview.png"), full_page=True)

    # ... and downloads them as CSV.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").first.click()
    download = download_info.value
    assert download.suggested_filename == f"{product.key}.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path()).read())))
    assert [row["order_id"] for row in rows] == ["1", "2", "3"]
    assert {row["email"] for row in rows} == {"****"}
    channels = sorted(
        AccessEvent.objects.filter(action="read", user=grant.user).values_list("channel", flat=True)
    )
    assert channels == ["download", "preview"]
    outside = [u for u in page.requested_urls if not u.startswith(live_server.url)]
    assert outside == []
