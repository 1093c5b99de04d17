"""A sync of a port on Spark (the session's `spark_server`) into a real PostgreSQL table,
as a grantee of the Belgian rows whose grant masks the confidential email: each row's
key and hash are computed on Spark (a first run counts them in one aggregate, a later
run's plan reads them in one statement), the planned rows are read again and written by
key, and a change of the Spark table (rewritten by another session: one row changed, one
removed, one added; a masked value and a row outside the grant changed too) is planned
as exactly one added, one changed and one removed record, which a dry run only shows and
a mirror run applies.

The table holds the awkward values: NULLs, a decimal at its precision's limit, instants
in UTC (to the microsecond), a key column whose name needs quoting on both sides.

The process's Spark session keeps a table's file list from its first read; each run's
connector refreshes it, so rows another application appends or rewrites are planned by
the next run (the last test)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from products.connectors.spark import (
    SparkConnector,
    SparkEndpoint,
    spark_session_open,
)
from sharing.access.services.grants import grant_create
from sharing.models import AccessEvent, SyncRecordState
from sharing.models.syncs import SyncRunStatus
from sharing.syncs.services.runs import sync_run_execute, sync_run_request
from sharing.syncs.services.syncs import sync_create
from tests.conftest import pg_info
from tests.factories import (
    OutputPortFactory,
    ProductFactory,
    SparkSourceFactory,
    UserFactory,
    columns_declare,
)
from tests.sharing.syncs.conftest import DEST_SCHEMA, Table, pg_destination

pytestmark = [pytest.mark.spark, pytest.mark.django_db]

SCHEMA = "portal_syncs"
TABLE = "leads"
LEAD_ID = "lead id"  # quoted in Spark (`lead id`) and in PostgreSQL ("lead id")
COLUMNS = {  # as the connector describes them
    LEAD_ID: "bigint",
    "country": "string",
    "email": "string",  # confidential: masked for the grantee
    "bid": "decimal(12,2)",
    "seen_at": "timestamp_ltz",
}
JAN_2 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
FEB_1 = datetime(2024, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
APR_1 = datetime(2024, 4, 1, tzinfo=UTC)
# Lead 2 is Dutch: outside the grant, whatever happens to it.
FIRST = (
    "(1, 'BE', 'a@x', 12.50, TIMESTAMP '2024-01-02 03:04:05 UTC'), "
    "(2, 'NL', 'b@x', 20.00, TIMESTAMP '2024-01-31 23:30:00 UTC'), "
    "(3, 'BE', NULL, NULL, TIMESTAMP '2024-02-01 00:00:00 UTC'), "
    "(4, 'BE', 'd@x', 9999999999.99, NULL), "
    "(5, 'BE', 'e@x', 0.10, TIMESTAMP '2024-03-01 12:00:00.123456 UTC')"
)
# Lead 1's bid changes, lead 4 leaves, lead 6 arrives; lead 5's email changes (masked
# before and after: the same record), and so does the Dutch lead (not the grantee's).
SECOND = (
    "(1, 'BE', 'a@x', 13.75, TIMESTAMP '2024-01-02 03:04:05 UTC'), "
    "(2, 'NL', 'b@x', 21.00, TIMESTAMP '2024-01-31 23:30:00 UTC'), "
    "(3, 'BE', NULL, NULL, TIMESTAMP '2024-02-01 00:00:00 UTC'), "
    "(5, 'BE', 'z@x', 0.10, TIMESTAMP '2024-03-01 12:00:00.123456 UTC'), "
    "(6, 'BE', NULL, -1.00, TIMESTAMP '2024-04-01 00:00:00 UTC')"
)
DEST_COLUMNS = f'"{LEAD_ID}", country, email, bid, seen_at, note'


class SparkLeads:
    """portal_syncs.leads on the session's server, written through a session of its own
    (the writer's, not the portal's)."""

    def __init__(self, endpoint: SparkEndpoint) -> None:
        self.endpoint = endpoint

    def write(self, values: str, *, create: bool = False, append: bool = False) -> None:
        q = SparkConnector.quote_ident
        spark = spark_session_open(self.endpoint)
        try:
            if create:
                spark.sql(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
                spark.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{TABLE}")
                spark.sql(
                    f"CREATE TABLE {SCHEMA}.{TABLE} ({q(LEAD_ID)} BIGINT, country STRING, "
                    "email STRING, bid DECIMAL(12,2), seen_at TIMESTAMP) USING parquet"
                )
            mode = "INTO" if append else "OVERWRITE TABLE"
            spark.sql(f"INSERT {mode} {SCHEMA}.{TABLE} VALUES {values}")
        finally:
            spark.stop()


@pytest.fixture(scope="module")
def spark_leads(spark_server) -> SparkLeads:
    leads = SparkLeads(SparkEndpoint(host="127.0.0.1", port=spark_server.port))
    leads.write(FIRST, create=True)
    return leads


@pytest.fixture
def product(spark_leads, domain, owner):
    source = SparkSourceFactory(
        host="127.0.0.1",
        port=spark_leads.endpoint.port,
        domains=[domain],
    )
    product = ProductFactory(domain=domain, name="Leads", slug="leads", owners=[owner])
    port = OutputPortFactory(
        product=product, source=source, schema_name=SCHEMA, table_name=TABLE, slug="leads"
    )
    columns_declare(port, COLUMNS)
    return product


@pytest.fixture
def belgian(product, owner):
    """A grantee of the Belgian leads; the grant names no columns, so email is masked."""
    user = UserFactory(username="belgian")
    grant_create(
        product=product,
        by=owner,
        user=user,
        reason="scores Belgian leads",
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
    )
    return user


@pytest.fixture
def crm_table(postgres) -> Table:
    """The CRM's table, keyed by "lead id", with a column of its own (note)."""
    table = Table(pg_info(postgres), DEST_SCHEMA, "spark_leads")
    table.execute(f"CREATE SCHEMA IF NOT EXISTS {DEST_SCHEMA}")
    table.execute("DROP TABLE IF EXISTS {table}")
    table.execute(
        f'CREATE TABLE {{table}} ("{LEAD_ID}" bigint PRIMARY KEY, country text, email text, '
        "bid numeric(12,2), seen_at timestamptz, note text)"
    )
    return table


def run_now(sync, by, **kwargs):
    return sync_run_execute(run_id=sync_run_request(sync=sync, by=by, **kwargs).pk)


def state(sync) -> dict[str, str]:
    return dict(SyncRecordState.objects.filter(sync=sync).values_list("key", "row_hash"))


def make_sync(product, crm_table, by):
    return sync_create(
        by=by,
        product=product,
        destination=pg_destination(crm_table, "CRM leads"),
        name="Belgian leads to the CRM",
        columns=list(COLUMNS),
        key_columns=[LEAD_ID],
        mode="mirror",  # upsert by key, and delete what this sync sent that left
        guardrails={"max_changed_pct": 100, "max_removed_pct": 100},
    )


def test_a_grantees_sync_of_a_spark_port_sends_its_rows_masked_then_exactly_the_changes(
    product, belgian, spark_leads, crm_table
):
    crm_table.insert([(99, "BE", "own@crm", None, None, "the CRM's own row")])
    sync = make_sync(product, crm_table, belgian)

    # The first run: every granted row, as the grant serves it (email masked, NULL kept).
    first = run_now(sync, belgian)
    assert first.status == SyncRunStatus.SUCCEEDED, first.error
    assert (first.source_rows, first.planned, first.added, first.changed) == (4, 4, 4, 0)
    assert crm_table.rows(DEST_COLUMNS) == [
        (1, "BE", "****", Decimal("12.50"), JAN_2, None),
        (3, "BE", None, None, FEB_1, None),
        (4, "BE", "****", Decimal("9999999999.99"), None, None),
        (5, "BE", "****", Decimal("0.10"), MAR_1, None),
        (99, "BE", "own@crm", None, None, "the CRM's own row"),
    ]
    acknowledged = state(sync)
    assert set(acknowledged) == {'["1"]', '["3"]', '["4"]', '["5"]'}
    assert all(len(row_hash) == 32 for row_hash in acknowledged.values())  # md5, hex

    # Another session rewrites the table; the CRM writes a note of its own on lead 1.
    spark_leads.write(SECOND)
    crm_table.execute(f"UPDATE {{table}} SET note = 'called' WHERE \"{LEAD_ID}\" = 1")
    before = crm_table.rows(DEST_COLUMNS)

    # A dry run plans on Spark and shows the change, sending nothing and moving no state.
    dry = run_now(sync, belgian, dry_run=True)
    assert dry.status == SyncRunStatus.PLANNED, dry.error
    assert (dry.source_rows, dry.planned) == (4, 3)
    assert (dry.added, dry.changed, dry.removed) == (1, 1, 1)
    assert dry.held_reasons == []
    sample = dry.plan_sample
    assert sample["added"] == [
        {LEAD_ID: 6, "country": "BE", "email": None, "bid": -1.0, "seen_at": APR_1.isoformat()}
    ]
    assert [change["key"] for change in sample["changed"]] == ['["1"]']
    assert sample["changed"][0]["after"]["bid"] == 13.75
    assert sample["removed"] == [{LEAD_ID: "4"}]
    assert crm_table.rows(DEST_COLUMNS) == before
    assert state(sync) == acknowledged

    # The real run sends exactly those three records.
    second = run_now(sync, belgian)
    assert second.status == SyncRunStatus.SUCCEEDED, second.error
    assert (second.source_rows, second.planned) == (4, 3)
    assert (second.added, second.changed, second.removed, second.rejected) == (1, 1, 1, 0)
    assert crm_table.rows(DEST_COLUMNS) == [
        (1, "BE", "****", Decimal("13.75"), JAN_2, "called"),  # the CRM's note kept
        (3, "BE", None, None, FEB_1, None),
        (5, "BE", "****", Decimal("0.10"), MAR_1, None),
        (6, "BE", None, Decimal("-1.00"), APR_1, None),
        (99, "BE", "own@crm", None, None, "the CRM's own row"),  # never this sync's
    ]
    after = state(sync)
    assert set(after) == {'["1"]', '["3"]', '["5"]', '["6"]'}
    # Unchanged records keep their hash: computed alike by the plan's statement and by
    # the read of the rows sent.
    assert after['["3"]'] == acknowledged['["3"]'] and after['["5"]'] == acknowledged['["5"]']
    assert after['["1"]'] != acknowledged['["1"]']

    # Each run's read is audited once, on the sync channel, as the grantee, masked and
    # filtered by the grant.
    reads = AccessEvent.objects.filter(product=product, channel="sync")
    assert reads.count() == 3
    for event in reads:
        assert event.user_id == belgian.pk
        assert event.detail["masked"] == ["email"]
        assert event.row_filter == [{"column": "country", "op": "=", "value": "BE"}]


def test_rows_another_session_adds_are_planned_by_the_next_run(
    product, belgian, spark_leads, crm_table
):
    sync = make_sync(product, crm_table, belgian)
    first = run_now(sync, belgian)
    assert first.status == SyncRunStatus.SUCCEEDED, first.error
    spark_leads.write("(7, 'BE', 'g@x', 7.00, TIMESTAMP '2024-05-01 00:00:00 UTC')", append=True)
    second = run_now(sync, belgian)
    assert second.status == SyncRunStatus.SUCCEEDED, second.error
    assert (second.source_rows, second.added) == (first.source_rows + 1, 1)
