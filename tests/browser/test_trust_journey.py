"""A domain owner adds a not-null check to a Parquet port with nulls, runs the checks,
watches the progress, and sees the failing result with its failing rows, the incident
banner, the lower trust score, and the marker in search results. The run is executed
by a real Celery worker; charts come from plotly.js in our own static files."""

import re
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portal.core.plotly_assets import PLOTLY_BUNDLE
from products.choices import CheckRunStatus, IncidentStatus
from products.models import Check, CheckRun, Incident, PortObservation, TrustScore
from products.trust.services.slos import slo_create
from tests.factories import PASSWORD, ColumnFactory, FilePortFactory, ProductFactory


@pytest.fixture
def orders(domain, owner, media_root):
    """Orders with a Parquet port: 6 rows, 2 of them without an email; 30 days of
    monitor readings and trust scores behind it."""
    product = ProductFactory(
        domain=domain,
        name="Orders",
        slug="orders",
        summary="Every order line from web and stores, refreshed nightly.",
        owners=[owner],
    )
    now = timezone.now()
    path = media_root / "files" / "trust-orders.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "order_id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
                "email": pa.array(["a@x.com", None, "c@x.com", None, "e@x.com", "f@x.com"]),
                "created_at": pa.array(
                    [now - timedelta(hours=h) for h in (2, 3, 4, 5, 6, 7)],
                    pa.timestamp("us", tz="UTC"),
                ),
            }
        ),
        path,
    )
    port = FilePortFactory(
        product=product,
        name="Orders file",
        slug="orders-file",
        file_path="files/trust-orders.parquet",
        freshness_column="created_at",
    )
    for position, (name, data_type) in enumerate(
        [("order_id", "BIGINT"), ("email", "VARCHAR"), ("created_at", "TIMESTAMP WITH TIME ZONE")]
    ):
        ColumnFactory(
            port=port,
            name=name,
            data_type=data_type,
            position=position,
            description="The order's number" if name == "order_id" else "",
        )
    for days in range(30, 0, -1):
        for hour in (1, 9, 17):
            at = now - timedelta(days=days, hours=hour)
            lag = (2 + days % 4) * 3600
            PortObservation.objects.create(
                port=port,
                observed_at=at,
                available=True,
                row_count=6 + days // 10,
                newest_at=at - timedelta(seconds=lag),
                freshness_lag_seconds=lag,
            )
        TrustScore.objects.create(
            product=product,
            computed_at=now - timedelta(days=days),
            score=78 + days % 5,
            quality=90,
            reliability=80,
            documentation=60,
            support=100,
            evidence={},
        )
    slo_create(product=product, by=owner, kind="freshness", target_percent=95, threshold_hours=6)
    return product, port


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_owner_adds_a_check_runs_it_and_sees_the_failure_and_the_incident(
    celery_worker, live_server, page, orders, screenshot_dir
):
    product, port = orders

    page.goto("/login/?next=/products/sales/orders/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Orders")
    expect(page.locator("[data-incident-banner]")).to_have_count(0)

    # The quality tab: no check yet, an invitation to add one.
    page.get_by_role("link", name="Quality and trust").click()
    expect(page).to_have_url(re.compile(r"/products/sales/orders/quality/$"))
    block = page.locator("#checks-orders-file")
    expect(block).to_contain_text("No checks on this port yet.")
    expect(page.locator(".plotly-graph-div")).to_have_count(3)  # trust, rows, freshness
    page.screenshot(path=str(screenshot_dir / "trust-quality-empty.png"), full_page=True)

    # Adding a not-null check; a first try with an impossible tolerance.
    block.get_by_role("link", name="Add a check").click()
    expect(page.get_by_role("heading", name="Add a check")).to_be_visible()
    page.get_by_label("What to check").select_option("not_null")
    expect(page.get_by_label("SQL")).to_be_hidden()  # only the chosen kind's fields
    page.get_by_label("Column").select_option("email")  # picked from the schema
    page.get_by_label("Tolerance (% of rows)").fill("150")
    page.get_by_role("button", name="Add check").click()
    tolerance = page.locator(".field.has-error")
    expect(tolerance).to_contain_text("A tolerance is a percentage from 0 to 100.")
    page.screenshot(path=str(screenshot_dir / "trust-check-form-error.png"), full_page=True)
    page.get_by_label("Tolerance (% of rows)").fill("0")
    page.get_by_role("button", name="Add check").click()

    expect(page).to_have_url(re.compile(r"/quality/#checks-orders-file$"))
    expect(page.locator(".message-success")).to_contain_text("Check “Not null email” added.")
    block = page.locator("#checks-orders-file")
    row = block.get_by_role("row", name=re.compile("Not null email"))
    expect(row).to_contain_text("Not run yet")
    expect(row).to_contain_text("0 * * * *")  # the product's default schedule
    assert Check.objects.get().column == "email"

    # Running the checks: progress first, then the failure, found by the worker.
    block.get_by_role("button", name="Run checks").click()
    expect(page.locator("#checks-orders-file .run")).to_contain_text(
        re.compile("Checks queued|Running checks|Checks finished")
    )
    expect(page.locator("#checks-orders-file .spinner")).to_be_visible()
    expect(page.locator("#checks-orders-file button", has_text="Run checks")).to_be_disabled()
    page.screenshot(path=str(screenshot_dir / "trust-run-progress.png"))

    # When the run has settled the page reloads: the banner, the result, the score.
    banner = page.locator("[data-incident-banner]")
    expect(banner).to_be_visible(timeout=60_000)
    expect(banner).to_contain_text("Incident open:")
    expect(banner).to_contain_text("Check 'Not null email' failing on Orders")
    run = CheckRun.objects.get()
    assert run.status == CheckRunStatus.DONE, run.error
    block = page.locator("#checks-orders-file")
    expect(block.locator(".run")).to_contain_text("0 passed, 1 failed")
    row = block.get_by_role("row", name=re.compile("Not null email"))
    expect(row).to_contain_text("Failed")
    expect(row).to_contain_text("2 failing (33.3%)")
    failing = block.locator(".result-card.result-fail")
    expect(failing).to_contain_text("2 null rows of 6 (33.3%).")
    failing.get_by_text("Failing rows (sample of 2)").click()  # the owner may read rows
    expect(failing.locator(".sample-table tbody tr")).to_have_count(2)
    expect(failing.locator(".sample-table")).to_contain_text("null")
    expect(page.locator("#incidents")).to_contain_text("Check 'Not null email' failing")
    incident = Incident.objects.get(cause="check")
    assert incident.status == IncidentStatus.OPEN
    latest = TrustScore.objects.filter(product=product).order_by("-computed_at").first()
    expect(page.locator("#trust .trust-badge").first).to_contain_text(f"{latest.score:.0f}")
    expect(page.locator(".plotly-graph-div")).to_have_count(4)  # now with a pass rate
    page.screenshot(path=str(screenshot_dir / "trust-quality-failing.png"), full_page=True)

    # The incident page: the owner acknowledges it.
    banner.get_by_role("link", name=re.compile("Not null email")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Not null email")
    page.get_by_label("Note (optional)").fill("Looking at the nightly load.")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".message-success")).to_contain_text("Incident acknowledged")
    expect(page.locator(".timeline")).to_contain_text("Looking at the nightly load.")
    page.screenshot(path=str(screenshot_dir / "trust-incident.png"), full_page=True)

    # The overview tells every consumer, and so do search results.
    page.get_by_role("link", name="Orders").first.click()
    expect(page.locator("[data-incident-banner]")).to_contain_text("the owners acknowledged it")
    expect(page.locator(".trust-card")).to_contain_text("Quality")
    page.screenshot(path=str(screenshot_dir / "trust-overview.png"), full_page=True)
    page.goto("/search/?q=orders")
    result = page.locator(".result").first
    expect(result.locator(".incident-marker")).to_have_text("Incident open")
    expect(result.locator(".trust-badge")).to_contain_text(f"{latest.score:.0f}")
    page.screenshot(path=str(screenshot_dir / "trust-search.png"))

    # Every script, plotly.js included, came from the portal itself.
    outside = [url for url in page.requested_urls if not url.startswith(live_server.url)]
    assert outside == []
    assert any(url.endswith("/static/" + PLOTLY_BUNDLE) for url in page.requested_urls)
    # The one error is the form's answer to the impossible tolerance: a 400 with the page.
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
