"""A domain owner syncs a product into a CRM table: the Syncs tab's empty state, the form
(columns, key, mapping, guardrails explained), a dry run showing the plan and sending
nothing, a run sending it (progress, then the history with its counts), and, after the
source changed too much, a run held by the guardrail, approved on the sync's page and
sent; and, from a metric's page, a sync of the metric's values. A real Celery worker runs
every run; the source is PostgreSQL, the CRM a DuckDB file."""

import re

import duckdb
import psycopg
import pytest
from playwright.sync_api import expect

from products.definitions.services.metrics import metric_create
from sharing.models import Sync, SyncDestination, SyncRun
from sharing.models.syncs import DestinationKind
from tests.factories import PASSWORD
from tests.sharing.readers import SERVING_ROWS
from tests.sharing.syncs.test_api import CRM_TABLE, crm_destination, crm_rows, crm_table_create


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_owner_creates_a_sync_dry_runs_runs_and_approves_a_held_run(
    celery_worker, live_server, page, pg_product, owner, screenshot_dir, tmp_path
):
    crm_path = crm_table_create(tmp_path)
    crm_destination(crm_path)

    page.goto("/login/?next=/products/sales/pg-orders/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Syncs", exact=True).click()
    expect(page).to_have_url(re.compile(r"/products/sales/pg-orders/syncs/$"))
    expect(page.locator(".empty-state")).to_contain_text("No syncs yet")
    page.screenshot(path=str(screenshot_dir / "syncs-empty.png"), full_page=True)

    # The form: columns, key, mapping to the CRM's fields, guardrails with their defaults.
    page.locator(".empty-state").get_by_role("link", name="New sync").click()
    page.get_by_label("Name").fill("Orders to the CRM")
    columns = page.get_by_role("group", name=re.compile("^Columns"))
    columns.get_by_label("email").uncheck()
    page.get_by_role("group", name=re.compile("^Key columns")).get_by_label("order_id").check()
    expect(page.get_by_label("amount →")).to_contain_text("note")  # the CRM's own fields
    expect(page.get_by_label("Changed records at most (%)")).to_have_value("20.0")
    page.screenshot(path=str(screenshot_dir / "syncs-form.png"), full_page=True)
    page.get_by_role("button", name="Create the sync").click()
    expect(page.locator(".message-success")).to_contain_text("Sync “Orders to the CRM” created")
    sync = Sync.objects.get()
    assert (sync.columns, sync.key_columns) == (["order_id", "country", "amount"], ["order_id"])

    # A dry run: the plan, nothing sent.
    runs = page.locator("#sync-runs")
    runs.get_by_role("button", name="Dry run").click()
    plan = runs.locator(".sync-dry-run-plan")
    expect(plan).to_contain_text("would send 4 added", timeout=60_000)
    expect(plan).to_contain_text("Nothing was sent")
    assert crm_rows(crm_path) == []
    page.screenshot(path=str(screenshot_dir / "syncs-dry-run.png"), full_page=True)

    # Run now: progress, then the run in the history.
    runs.get_by_role("button", name="Run now").click()
    done = runs.locator(".sync-run-succeeded")
    expect(done).to_have_count(1, timeout=60_000)
    expect(done).to_contain_text("4")
    assert [row[:2] for row in crm_rows(crm_path)] == [(1, "BE"), (2, "NL"), (3, "BE"), (4, "FR")]

    # The source moves a lot: every amount changes, beyond the 20% guardrail.
    cfg = pg_product.ports.get().source
    with psycopg.connect(
        host=cfg.host,
        port=cfg.port,
        dbname=cfg.database,
        user=cfg.username or None,
        autocommit=True,
    ) as conn:
        conn.execute("UPDATE serving_test.orders SET amount = amount * 10")
    runs.get_by_role("button", name="Run now").click()
    held = page.locator(".sync-held")
    page.wait_for_function(
        "() => document.querySelector('#sync-runs').dataset.syncState === 'held'",
        timeout=60_000,
    )
    page.reload()
    expect(held).to_contain_text("is held for approval")
    expect(held).to_contain_text("20")
    assert [row[3] for row in crm_rows(crm_path)] == [10.0, 20.0, 30.0, 40.0]
    page.screenshot(path=str(screenshot_dir / "syncs-held.png"), full_page=True)

    held.get_by_role("button", name="Approve and send exactly this plan").click()
    expect(page.locator(".message-success")).to_contain_text("exactly its held plan")
    expect(page.locator("#sync-runs .sync-run-succeeded")).to_have_count(2, timeout=60_000)
    expect(page.locator(".sync-held")).to_have_count(0)
    assert [row[3] for row in crm_rows(crm_path)] == [100.0, 200.0, 300.0, 400.0]
    approval = SyncRun.objects.get(trigger="approval")
    assert approval.changed == 4

    page.reload()
    expect(page.locator(".sync-chart .main-svg").first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "syncs-history.png"), full_page=True)

    with duckdb.connect(str(crm_path)) as conn:
        assert conn.execute(f"SELECT count(*) FROM {CRM_TABLE}").fetchone()[0] == 4
    outside = [url for url in page.requested_urls if not url.startswith(live_server.url)]
    assert outside == []
    assert page.console_errors == []


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_owner_syncs_a_metrics_values_from_the_metric_page(
    celery_worker, live_server, page, pg_product, owner, screenshot_dir, tmp_path
):
    metric_create(
        by=owner,
        port=pg_product.ports.get(),
        key="sales.order-total",
        name="Order total",
        aggregation="sum",
        column="amount",
        dimensions=["country"],
    )
    totals = tmp_path / "finance.duckdb"
    with duckdb.connect(str(totals)) as conn:
        conn.execute("CREATE TABLE country_totals (country TEXT PRIMARY KEY, total DOUBLE)")
    SyncDestination.objects.create(
        name="Finance totals",
        kind=DestinationKind.DUCKDB,
        path=str(totals),
        table_name="country_totals",
    )

    page.goto("/login/?next=/metrics/sales.order-total/%3Fdimensions%3Dcountry")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="sync these values").click()

    # The form comes with the metric as its source, grouped as the page showed it.
    expect(page.locator("#id_port")).to_have_value("metric:sales.order-total")
    expect(
        page.get_by_role("group", name=re.compile("^Group the metric by")).get_by_label("country")
    ).to_be_checked()
    # Only the metric's fields: its grouping, its value's mapping; no port columns.
    expect(page.get_by_role("group", name=re.compile("^Columns"))).to_be_hidden()
    expect(page.get_by_label("order_id →")).to_be_hidden()
    page.locator("#id_port").select_option("orders")
    expect(page.get_by_role("group", name=re.compile("^Columns"))).to_be_visible()
    expect(page.get_by_label("value →")).to_be_hidden()
    page.locator("#id_port").select_option("metric:sales.order-total")
    page.get_by_label("Name").fill("Order totals to finance")
    page.get_by_label("value →").select_option("total")
    page.screenshot(path=str(screenshot_dir / "syncs-metric-form.png"), full_page=True)
    page.get_by_role("button", name="Create the sync").click()
    expect(page.locator(".message-success")).to_contain_text("Order totals to finance")
    expect(page.locator(".sync-facts")).to_contain_text("the values of the metric Order total")

    page.locator("#sync-runs").get_by_role("button", name="Run now").click()
    expect(page.locator("#sync-runs .sync-run-succeeded")).to_have_count(1, timeout=60_000)
    with duckdb.connect(str(totals)) as conn:
        rows = conn.execute("SELECT * FROM country_totals ORDER BY 1").fetchall()
    expected = {}
    for country, amount in zip(SERVING_ROWS["country"], SERVING_ROWS["amount"], strict=True):
        expected[country] = expected.get(country, 0) + amount
    assert rows == sorted(expected.items())
    assert page.console_errors == []
