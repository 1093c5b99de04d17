"""A domain owner shares a product from its Data tab: picks columns and a format, writes a
note, creates the link and copies it with the button. Someone signed out opens it in a
fresh browser, sees the product's name and the note, and downloads exactly those columns;
the owner's "My share links" shows the use."""

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from products.choices import MembershipRole
from sharing.models import AccessEvent, ShareLink
from tests.factories import PASSWORD, MembershipFactory, UserFactory, parquet_product

ROWS = {
    "order_id": [1, 2, 3],
    "country": ["BE", "NL", "FR"],
    "email": ["a@x", "b@x", "c@x"],
    "amount": [10.5, 20.0, 30.25],
}


@pytest.fixture
def owner_and_product(domain, media_root):
    product = parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="browser/share-orders.parquet"
    )
    user = UserFactory(username="sharer")
    MembershipFactory(domain=domain, user=user, role=MembershipRole.OWNER)
    return user, product


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_owner_shares_rows_and_a_signed_out_recipient_downloads_them(
    live_server, page, browser, owner_and_product, screenshot_dir
):
    user, product = owner_and_product
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{product.get_absolute_url()}data/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("link", name="Share", exact=True).click()
    expect(page).to_have_url(re.compile(r"/products/sales/orders/share/\?port=orders$"))
    page.get_by_label("email").uncheck()
    page.get_by_label("amount").uncheck()
    page.get_by_label("CSV", exact=True).check()
    expect(page.get_by_label("Expires after (days)")).to_have_value("7")
    page.get_by_label("Download limit").fill("2")
    page.get_by_label("Note for the recipient").fill("Orders for the Q3 review.")
    page.screenshot(path=str(screenshot_dir / "portal-share-link-form.png"), full_page=True)
    page.get_by_role("button", name="Create link").click()

    url_field = page.get_by_role("textbox", name="The link to send")
    expect(url_field).to_have_value(re.compile(rf"^{re.escape(live_server.url)}/s/[\w-]{{43}}/$"))
    share_url = url_field.input_value()
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == share_url
    page.screenshot(path=str(screenshot_dir / "portal-share-link-created.png"), full_page=True)

    # A recipient without an account, in a browser of their own.
    stranger = browser.new_context(base_url=live_server.url)
    try:
        other = stranger.new_page()
        other.goto(share_url)
        expect(other.get_by_role("heading", level=1)).to_have_text("Orders")
        expect(other.get_by_text("Orders for the Q3 review.")).to_be_visible()
        expect(other.get_by_text("Downloads left")).to_be_visible()
        other.screenshot(path=str(screenshot_dir / "portal-share-link-landing.png"), full_page=True)
        with other.expect_download() as download_info:
            other.get_by_role("link", name="Download CSV").click()
        download = download_info.value
        assert download.suggested_filename == "sales.orders.csv"
        with open(download.path(), newline="") as handle:
            rows = list(csv.DictReader(io.StringIO(handle.read())))
        assert rows == [
            {"order_id": "1", "country": "BE"},
            {"order_id": "2", "country": "NL"},
            {"order_id": "3", "country": "FR"},
        ]
    finally:
        stranger.close()

    link = ShareLink.objects.get()
    assert link.download_count == 1
    event = AccessEvent.objects.get(channel="share_link")
    assert event.client_address == "127.0.0.1"

    page.locator("details.user-menu summary").click()
    page.locator(".user-menu-panel").get_by_role("link", name="My share links").click()
    row = page.locator("table.share-links-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(6)).to_have_text("1 / 2")
    expect(row.get_by_text("active")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "portal-my-share-links.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("is dead")).to_be_visible()
    assert page.console_errors == []
    outside = [url for url in page.requested_urls if not url.startswith(live_server.url)]
    assert outside == []
