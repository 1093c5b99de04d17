"""A domain owner shares a product through Delta Sharing from the pages: creates a
share, adds the product as a table narrowed to some columns and rows, adds a recipient
and downloads its profile file, the only time it is offered. The recipient's real
`delta-sharing` client then reads exactly those rows with that file; the audit holds
one read per query; revoked from the page, the file reads nothing."""

import json
import re

import pytest
from playwright.sync_api import expect

from sharing.choices import Channel
from sharing.models import AccessEvent, DeltaRecipient
from tests.conftest import require_service
from tests.factories import PASSWORD, parquet_product
from tests.sharing.delta_sharing.recipient import delta_sharing_python, run_client

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "email": ["a@x", "b@x", None, "d@x"],
    "amount": [10.5, 20.0, 30.25, 40.0],
}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_owner_shares_a_product_and_the_recipient_reads_it(
    live_server, page, owner, domain, media_root, tmp_path, screenshot_dir
):
    python = delta_sharing_python()
    if python is None:
        require_service("the delta-sharing client", "run `make delta-sharing-client`")
    parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="browser/delta-orders.parquet"
    )
    page.goto("/delta-shares/")
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_text("No shares yet")).to_be_visible()
    page.get_by_label("Name").fill("partners")
    page.get_by_label("Description").fill("Orders for Acme")
    page.get_by_role("button", name="Create share").click()
    expect(page).to_have_url(re.compile(r"/delta-shares/partners/$"))

    form = page.locator("#add-table")
    form.get_by_label("Product and port").select_option(label="sales.orders · Orders (orders)")
    form.get_by_label("Schema").fill("eu")
    form.get_by_label("Table name").fill("belgium")
    form.get_by_label("Columns").fill("order_id, country, amount")
    form.get_by_label("Row filter").fill('[{"column": "country", "op": "=", "value": "BE"}]')
    form.get_by_role("button", name="Add table").click()
    expect(page.locator(".message-success")).to_contain_text("partners.eu.belgium")
    expect(page.locator("#tables tbody tr")).to_have_count(1)

    page.get_by_text("Add a recipient…").click()
    recipient_form = page.locator("#add-recipient")
    recipient_form.get_by_label("Name").fill("Acme Analytics")
    recipient_form.get_by_role("button", name="Add recipient").click()
    expect(page.get_by_text("the only time it is shown")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "portal-delta-recipient.png"), full_page=True)
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile(r"^Download partners-acme-analytics")).click()
    download = download_info.value
    assert download.suggested_filename == "partners-acme-analytics.share"
    profile_path = tmp_path / download.suggested_filename
    download.save_as(profile_path)
    profile = json.loads(profile_path.read_text())
    assert profile["endpoint"] == live_server.url + "/delta-sharing/"

    # Back on the share: the recipient is listed, the token is not shown again.
    page.get_by_role("link", name="Back to the share").click()
    expect(page.locator("#recipients tbody tr")).to_have_count(1)
    assert profile["bearerToken"] not in page.content()
    page.screenshot(path=str(screenshot_dir / "portal-delta-share.png"), full_page=True)

    listed, loaded = run_client(
        python,
        profile_path,
        [{"op": "list_all_tables"}, {"op": "load", "table": "partners.eu.belgium"}],
    )
    assert listed == {"result": ["partners.eu.belgium"]}
    assert loaded["result"]["columns"] == ["order_id", "country", "amount"]
    assert loaded["result"]["rows"] == [[1, "BE", 10.5], [3, "BE", 30.25]]
    (event,) = AccessEvent.objects.filter(channel=Channel.DELTA_SHARING)
    assert event.user == owner and event.rows == 2
    assert event.detail["delta_sharing"]["recipient"] == DeltaRecipient.objects.get().pk
    # Revoked from the page: the same profile file reads nothing any more.
    page.get_by_text("Revoke…").click()
    page.get_by_role("button", name="Revoke Acme Analytics").click()
    expect(page.locator(".message-success")).to_contain_text("revoked")
    (refused,) = run_client(python, profile_path, [{"op": "list_all_tables"}])
    assert refused["status"] == 401, refused

    outside = [
        url
        for url in page.requested_urls
        if not url.startswith(live_server.url) and not url.startswith("data:")
    ]
    assert outside == []
