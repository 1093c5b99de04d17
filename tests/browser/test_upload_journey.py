"""An owner adds a file port by uploading files in a real browser: a Latin-1 CSV is
refused with a message beside the file field (and nothing stored), a file above the size
limit is refused by the page before it is sent, and a UTF-8 CSV with NaN and infinite
prices becomes a port whose rows the Data tab shows as NaN / Infinity / -Infinity."""

import re

import pytest
from playwright.sync_api import expect

from products.models import OutputPort
from tests.factories import PASSWORD, ProductFactory


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_owner_uploads_a_file_port_after_a_refused_file(
    live_server, page, domain, owner, settings, tmp_path, screenshot_dir
):
    product = ProductFactory(domain=domain, name="Prices", slug="prices")
    latin1 = tmp_path / "prices.csv"
    latin1.write_bytes("id,label\n1,café\n".encode("latin-1"))
    big = tmp_path / "big.csv"
    big.write_bytes(b"id\n" + b"1\n" * 5000)
    good = tmp_path / "daily_prices.csv"
    good.write_bytes(b"id,price\n1,1.5\n2,NaN\n3,inf\n4,-inf\n")

    page.goto(product.get_absolute_url())
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Add a file port (upload)").click()
    expect(page).to_have_url(re.compile(r"/products/sales/prices/ports/upload/$"))
    upload_url = page.url

    # A Latin-1 file: refused by the server, the reason beside the field.
    page.locator("#id_file").set_input_files(latin1)
    page.get_by_role("button", name="Upload and add port").click()
    expect(page.locator(".field-error").first).to_contain_text("not UTF-8")
    expect(page.locator(".field-error").first).to_contain_text("line 2")
    assert not OutputPort.objects.filter(product=product).exists()
    page.screenshot(path=str(screenshot_dir / "upload-refused.png"), full_page=True)

    # Above the limit: the page says so without sending the file.
    settings.PORT_UPLOAD_MAX_BYTES = 1_000
    page.goto(upload_url)  # not reload(): that would post the refused form again
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    page.locator("#id_file").set_input_files(big)
    page.get_by_role("button", name="Upload and add port").click()
    expect(page.locator("[data-upload-size-error]")).to_contain_text("larger than 1.0 KB")
    assert posts == []  # nothing was sent
    settings.PORT_UPLOAD_MAX_BYTES = 1_000_000

    page.goto(upload_url)  # not reload(): that would post the refused form again
    page.locator("#id_file").set_input_files(good)
    page.locator("#id_name").fill("Daily prices")
    page.get_by_role("button", name="Upload and add port").click()
    expect(page).to_have_url(re.compile(r"/products/sales/prices/#port-daily-prices$"))
    expect(page.locator(".message-success")).to_contain_text(
        "Added file port Daily prices from daily_prices.csv: 4 rows, 2 columns (CSV)."
    )
    port_card = page.locator("#port-daily-prices")
    expect(port_card.locator("tbody th")).to_have_text(["id", "price"])
    page.screenshot(path=str(screenshot_dir / "upload-file-port.png"), full_page=True)

    page.get_by_role("navigation", name="Product sections").get_by_role("link", name="Data").click()
    cells = page.locator("table.data-table tbody tr td:nth-child(2)")
    expect(cells).to_have_text(["1.5", "NaN", "Infinity", "-Infinity"])

    # The only console error is the browser's note of the refused upload's 400 answer.
    assert [e for e in page.console_errors if "status of 400" not in e] == []
    assert all(url.startswith(live_server.url) for url in page.requested_urls)
