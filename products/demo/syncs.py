"""The demo's syncs (reverse ETL), so that a newcomer sees both sides of a sync: a CRM's
tables in a DuckDB file under var/ (created here, whatever the warehouse), registered as
Sales' destination "Demo CRM", and two syncs of Sales' Customers product by Olivia (owner):

- "Customer segments to the CRM" (segment and country per account), run once: succeeded;
- "Lifetime value to the CRM", whose per-column limit caps the sum of lifetime_value sent
  per run: its first run is held for approval, waiting in Olivia's work inbox;

and one of the Orders product's metric sales.revenue, per country and month, into the
finance team's table ("Monthly revenue to finance", run once: succeeded): the numbers the
metric's page shows.

Through the sync services, as a person would make them; the runs execute here, in this
process (sync_run_execute, the worker's task body), not through the queue. Idempotent:
the destination, each sync and its first run are made once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
from django.conf import settings

from products.models import DataProduct, Metric
from sharing.models import Sync, SyncDestination, SyncRun
from sharing.models.syncs import DestinationKind, SyncMode, SyncRunTrigger, SyncTrigger
from sharing.syncs.services.destinations import destination_create
from sharing.syncs.services.runs import sync_run_execute
from sharing.syncs.services.syncs import sync_create

DESTINATION_NAME = "Demo CRM"
CRM_FILE = "demo-crm.duckdb"
ACCOUNTS = "crm_accounts"
VALUES = "crm_customer_value"
REVENUE = "finance_monthly_revenue"
TABLES = {
    ACCOUNTS: "account_id BIGINT PRIMARY KEY, segment VARCHAR, country VARCHAR, owner_note VARCHAR",
    VALUES: "account_id BIGINT PRIMARY KEY, lifetime_value DOUBLE",
    REVENUE: "month DATE, country VARCHAR, revenue DOUBLE, PRIMARY KEY (month, country)",
}
REVENUE_METRIC = "sales.revenue"
LIFETIME_VALUE_CAP = 10_000.0  # EUR sent per run at most: the demo's customers sum more


def crm_path() -> Path:
    """The demo CRM's DuckDB file, next to the demo warehouse (var/ by default)."""
    return Path(settings.DEMO_DUCKDB_PATH).parent / CRM_FILE


def _crm_tables_ensure(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        for table, columns in TABLES.items():
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")


def _destination(admin, sales) -> tuple[SyncDestination, bool]:
    existing = SyncDestination.objects.filter(name=DESTINATION_NAME).first()
    if existing is not None:
        return existing, False
    destination = destination_create(
        by=admin,
        name=DESTINATION_NAME,
        kind=DestinationKind.DUCKDB,
        domain=sales,
        description="The CRM's account tables (a DuckDB file of the demo), where sales "
        "people see segments and lifetime values.",
        path=str(crm_path()),
        table_name=ACCOUNTS,
    )
    return destination, True


def _table_destination(
    admin, sales, *, name: str, table: str, description: str
) -> tuple[SyncDestination, bool]:
    """Another table of the demo's DuckDB file as a destination of Sales' syncs."""
    existing = SyncDestination.objects.filter(name=name).first()
    if existing is not None:
        return existing, False
    destination = destination_create(
        by=admin,
        name=name,
        kind=DestinationKind.DUCKDB,
        domain=sales,
        description=description,
        path=str(crm_path()),
        table_name=table,
    )
    return destination, True


def _first_run(sync: Sync, by) -> SyncRun | None:
    """The sync's first run, executed here; None when it has run already."""
    if sync.runs.exists():
        return None
    run = SyncRun.objects.create(sync=sync, trigger=SyncRunTrigger.MANUAL, requested_by=by)
    sync_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def syncs_seed(*, users: dict, log: Callable[[str], None]) -> dict[str, int]:
    created = {"sync destinations": 0, "syncs": 0, "sync runs": 0}
    customers = DataProduct.objects.filter(domain__slug="sales", slug="customers").first()
    owner, admin = users.get("owner"), users.get("admin")
    if customers is None or owner is None or admin is None:
        return created
    _crm_tables_ensure(crm_path())
    accounts, made = _destination(admin, customers.domain)
    created["sync destinations"] += made
    values, made = _table_destination(
        admin,
        customers.domain,
        name=f"{DESTINATION_NAME} (customer value)",
        table=VALUES,
        description="The CRM's customer value table (a DuckDB file of the demo).",
    )
    created["sync destinations"] += made

    specs = (
        (
            "Customer segments to the CRM",
            accounts,
            ["customer_id", "segment", "country"],
            {"trigger": SyncTrigger.SCHEDULE, "cron": "0 6 * * *", "timezone": "Europe/Brussels"},
        ),
        (
            "Lifetime value to the CRM",
            values,
            ["customer_id", "lifetime_value"],
            {
                "guardrails": {
                    "column_limits": [{"column": "lifetime_value", "max_sum": LIFETIME_VALUE_CAP}]
                }
            },
        ),
    )
    for name, destination, columns, options in specs:
        sync = Sync.objects.filter(product=customers, name=name).first()
        if sync is None:
            sync = sync_create(
                by=owner,
                product=customers,
                destination=destination,
                name=name,
                columns=columns,
                key_columns=["customer_id"],
                mapping={"customer_id": "account_id"},
                mode=SyncMode.UPSERT,
                **options,
            )
            created["syncs"] += 1
        _log_first_run(sync, owner, created, log)
    _revenue_sync_seed(admin, owner, created, log)
    return created


def _log_first_run(sync: Sync, by, created: dict[str, int], log: Callable[[str], None]) -> None:
    run = _first_run(sync, by)
    if run is not None:
        created["sync runs"] += 1
        log(f"Sync “{sync.name}”: run #{run.pk} {run.status} ({run.planned} planned).")


def _revenue_sync_seed(admin, owner, created: dict[str, int], log: Callable[[str], None]) -> None:
    """The metric sales.revenue per country and month into the finance table."""
    metric = Metric.objects.filter(key=REVENUE_METRIC).select_related("port__product").first()
    if metric is None:
        return
    orders = metric.port.product
    destination, made = _table_destination(
        admin,
        orders.domain,
        name="Demo finance (monthly revenue)",
        table=REVENUE,
        description="The finance team's monthly revenue table (a DuckDB file of the demo).",
    )
    created["sync destinations"] += made
    name = "Monthly revenue to finance"
    sync = Sync.objects.filter(product=orders, name=name).first()
    if sync is None:
        sync = sync_create(
            by=owner,
            product=orders,
            destination=destination,
            name=name,
            metric=REVENUE_METRIC,
            metric_query={"dimensions": ["country"], "grain": "month"},
            mapping={"period": "month", "value": "revenue"},
            trigger=SyncTrigger.SCHEDULE,
            cron="0 7 1 * *",
            timezone="Europe/Brussels",
        )
        created["syncs"] += 1
    _log_first_run(sync, owner, created, log)
