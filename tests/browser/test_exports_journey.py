"""A domain owner schedules an export of a product: the cron helper shows the next three
run times as they type (or what is wrong), presets fill the expression; "Run now" shows
progress while a real Celery worker writes the file; the run history lists it with its
size and checksum, and the download holds the product's rows."""

import re

import pyarrow.parquet as pq
import pytest
from playwright.sync_api import expect

from sharing.choices import ExportStatus
from sharing.models import ExportRun, ExportSchedule
from tests.factories import PASSWORD
from tests.sharing.exports.helpers import ROWS, orders_product


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_owner_schedules_an_export_runs_it_and_downloads_the_file(
    celery_worker, live_server, page, domain, owner, media_root, screenshot_dir, tmp_path
):
    orders_product(domain=domain, media_root=media_root)

    page.goto("/login/?next=/products/sales/orders/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Exports").click()
    expect(page).to_have_url(re.compile(r"/products/sales/orders/exports/$"))
    expect(page.locator(".empty-state")).to_contain_text("No scheduled exports yet")
    page.screenshot(path=str(screenshot_dir / "exports-empty.png"), full_page=True)

    # The form: the cron helper answers as the expression changes.
    page.locator(".empty-state").get_by_role("link", name="New schedule").click()
    preview = page.locator("#cron-preview")
    expect(preview).to_contain_text("Next runs (UTC)")
    expect(preview.locator("time")).to_have_count(3)
    cron = page.get_by_label("Schedule (cron)")
    cron.fill("0 25 * * *")
    expect(preview).to_contain_text("The hour field '25' is not valid")
    page.get_by_role("button", name="Weekdays at 06:00").click()
    expect(cron).to_have_value("0 6 * * 1-5")
    expect(preview.locator("time")).to_have_count(3)
    page.get_by_label("Time zone").select_option("Europe/Paris")
    expect(preview).to_contain_text("Next runs (Europe/Paris)")
    expect(preview.locator("time").first).to_contain_text("06:00")
    page.get_by_label("Name").fill("Finance weekdays")
    page.get_by_label("Parquet").check()
    page.screenshot(path=str(screenshot_dir / "exports-form.png"), full_page=True)
    page.get_by_role("button", name="Schedule the export").click()

    expect(page.locator(".message-success")).to_contain_text("Export “Finance weekdays” scheduled")
    expect(page.locator(".export-facts")).to_contain_text("every weekday at 06:00 Europe/Paris")
    schedule = ExportSchedule.objects.get()
    assert (schedule.cron, schedule.timezone, schedule.format) == (
        "0 6 * * 1-5",
        "Europe/Paris",
        "parquet",
    )

    # Run now: progress, then the run in the history, written by the worker.
    runs = page.locator("#export-runs")
    runs.get_by_role("button", name="Run now").click()
    expect(runs.locator(".export-progress, .export-run-succeeded")).not_to_have_count(0)
    row = runs.locator(".export-run-succeeded")
    expect(row).to_have_count(1, timeout=60_000)
    run = ExportRun.objects.get()
    assert run.status == ExportStatus.SUCCEEDED, run.error
    expect(row).to_contain_text(run.sha256[:12])
    expect(row).to_contain_text("6")
    expect(runs.get_by_role("button", name="Run now")).to_be_enabled()
    page.screenshot(path=str(screenshot_dir / "exports-runs.png"), full_page=True)

    with page.expect_download() as download:
        row.get_by_role("link", name="Download").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == run.file_name.rsplit("/", 1)[1]
    assert pq.read_table(path).to_pydict() == ROWS

    # A second run: the schedule's page charts sizes and durations (plotly.js, ours).
    runs.get_by_role("button", name="Run now").click()
    expect(runs.locator(".export-run-succeeded")).to_have_count(2, timeout=60_000)
    page.reload()
    expect(page.locator("#export-runs-chart .main-svg").first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "exports-chart.png"), full_page=True)

    # The tab lists the schedule with its last run.
    page.get_by_role("link", name="Exports", exact=True).click()
    listed = page.get_by_role("row", name=re.compile("Finance weekdays"))
    expect(listed).to_contain_text("Succeeded")
    expect(listed).to_contain_text("Europe/Paris")

    outside = [url for url in page.requested_urls if not url.startswith(live_server.url)]
    assert outside == []
    # The one error is the cron helper's answer to the bad hour: a 400 with the reason.
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
