"""A grantee with a narrowed grant opens a product's Data tab, sees the preview of the
rows their grant allows with the confidential column masked, and downloads the CSV: the
file holds exactly the allowed rows, and the audit one event per read."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from sharing.models import AccessEvent, AccessGrant
from tests.factories import (
    PASSWORD,
    UserFactory,
    parquet_product,
)

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "email": ["a@x", "b@x", None, "d@x"],
    "amount": [10.5, 20.0, 30.25, 40.0],
}


@pytest.fixture
def grantee(domain, media_root):
    product = parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="browser/data-orders.parquet"
    )
    user = UserFactory(username="analyst")
    AccessGrant.objects.create(
        product=product,
        user=user,
        expires_at=timezone.now() + timedelta(days=30),
        row_filter=[{"column": "country", "op": "in", "value": ["BE", "FR"]}],
    )
    return user, product


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_grantee_previews_masked_rows_and_downloads_the_allowed_csv(
    live_server, page, grantee, screenshot_dir
):
    user, product = grantee
    page.goto(product.get_absolute_url())
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("navigation", name="Product sections").get_by_role("link", name="Data").click()
    expect(page).to_have_url(re.compile(r"/products/sales/orders/data/$"))
    expect(page.locator(".data-row-filter")).to_contain_text("Only rows where country is BE or FR")
    table = page.locator("table.data-table")
    expect(table.locator("thead th")).to_have_text(
        ["order_id", "country", "email masked", "amount"]
    )
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").first.locator("td")).to_have_text(["1", "BE", "****", "10.5"])
    page.screenshot(path=str(screenshot_dir / "portal-data-tab.png"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == "sales.orders.csv"
    with open(download.path(), newline="") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read())))
    assert rows == [
        {"order_id": "1", "country": "BE", "email": "****", "amount": "10.5"},
        {"order_id": "3", "country": "BE", "email": "", "amount": "30.25"},
        {"order_id": "4", "country": "FR", "email": "****", "amount": "40"},
    ]
    channels = sorted(AccessEvent.objects.values_list("channel", flat=True))
    assert channels == ["download", "preview"]
    outside = [url for url in page.requested_urls if not url.startswith(live_server.url)]
    assert outside == []
    assert page.console_errors == []
