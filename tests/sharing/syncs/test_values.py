"""What a sync writes into a table is the source's value, exactly, on awkward data: NULL
next to the empty string, NaN and infinities, numerics wider than a double (and an
unconstrained numeric with more digits than any Arrow decimal, and its NaN), timestamps
with microseconds in another time zone, leap days, text with quotes, commas and newlines,
identifiers that need quoting. Table writers take the source's Arrow batches as they are
(COPY of their CSV into PostgreSQL, DuckDB reading them); a first run and a run of changes
both, since a first run writes its state another way."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import psycopg
import pymysql
import pytest

from sharing.models import SyncDestination, SyncRecordState, SyncRun
from sharing.models.syncs import DestinationKind, SyncRunStatus
from sharing.syncs.services.runs import sync_run_execute, sync_run_request
from sharing.syncs.services.syncs import sync_create
from tests.conftest import require_service, wait_for
from tests.factories import ColumnFactory, OutputPortFactory, ProductFactory
from tests.sharing.syncs.conftest import (
    DEST_SCHEMA,
    SOURCE_SCHEMA,
    Table,
    pg_destination,
    pg_info,
    pg_source,
)

TYPES = {
    "Lead Id": "bigint",
    "e-mail": "text",
    "score": "double precision",
    "bid": "numeric(30,10)",
    "big": "numeric",
    "seen_at": "timestamptz",
    "day": "date",
    "active": "boolean",
}
ROWS = [
    (
        1,
        'a,"b"\nc',
        float("nan"),
        Decimal("12345678901234567890.0123456789"),
        Decimal("NaN"),
        "2024-03-31 01:59:59.999999+02",
        "2024-02-29",
        True,
    ),
    (2, "", float("inf"), Decimal("-0.0000000001"), Decimal("1E-30"), None, "0001-01-01", False),
    (3, None, float("-inf"), None, None, None, None, None),
    (
        4,
        " ",
        -0.0,
        Decimal("0"),
        Decimal("123456789012345678901234567890123456789012.5"),
        "1970-01-01 00:00:00+00",
        "1970-01-01",
        False,
    ),
    (5, "ünïcødé ✓", 1e-300, Decimal("99999999999999999999.9999999999"), None, None, None, True),
]
COLUMNS = list(TYPES)
# Committed, so that a run records its batches' outcomes in a thread of its own, as in a
# worker (inside a test's transaction another connection would not see the run).
pytestmark = pytest.mark.django_db(transaction=True)
QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)


@pytest.fixture
def awkward_source(postgres, domain, owner):
    table = Table(pg_info(postgres), SOURCE_SCHEMA, "awkward")
    table.execute(f"CREATE SCHEMA IF NOT EXISTS {SOURCE_SCHEMA}")
    table.execute("DROP TABLE IF EXISTS {table}")
    table.execute(
        "CREATE TABLE {table} (" + ", ".join(f'"{c}" {t}' for c, t in TYPES.items()) + ")"
    )
    table.insert(ROWS)
    source = pg_source(table.info)
    product = ProductFactory(domain=domain, name="Awkward", slug="awkward", owners=[owner])
    port = OutputPortFactory(
        product=product, source=source, schema_name=SOURCE_SCHEMA, table_name="awkward"
    )
    for position, (name, data_type) in enumerate(TYPES.items()):
        ColumnFactory(port=port, name=name, position=position, data_type=data_type)
    return table, product


def _sync_and_run(product, destination, owner, columns=COLUMNS):
    sync = sync_create(
        by=owner,
        product=product,
        destination=destination,
        name="Awkward out",
        columns=columns,
        key_columns=["Lead Id"],
        guardrails={"max_changed_pct": 100, "max_removed_pct": 100},
    )
    run = _executed(sync_run_request(sync=sync, by=owner).pk)
    assert run.status == SyncRunStatus.SUCCEEDED, run.error
    return sync, run


def _change_two_rows(table) -> None:
    table.execute(
        "UPDATE {table} SET score = 'NaN', bid = 0.5, \"e-mail\" = NULL, "
        "seen_at = '2000-01-01 12:00:00.000001-05' WHERE \"Lead Id\" IN (2, 5)"
    )


def _executed(run_id: int) -> SyncRun:
    """The run executed here, or by the session's Celery worker when one runs and claimed
    it first (the request enqueues it on commit)."""
    run = sync_run_execute(run_id=run_id)
    if run is None:
        wait_for(
            lambda: (
                SyncRun.objects.get(pk=run_id).status
                not in (SyncRunStatus.QUEUED, SyncRunStatus.PLANNED, SyncRunStatus.RUNNING)
            ),
            timeout=120,
        )
        run = SyncRun.objects.get(pk=run_id)
    return run


def _rerun(sync, owner):
    run = _executed(sync_run_request(sync=sync, by=owner).pk)
    assert run.status == SyncRunStatus.SUCCEEDED, run.error
    return run


def test_a_postgresql_table_receives_every_value_exactly(awkward_source, postgres, owner):
    source, product = awkward_source
    target = Table(pg_info(postgres), DEST_SCHEMA, "awkward copy")
    target.execute(f"CREATE SCHEMA IF NOT EXISTS {DEST_SCHEMA}")
    target.execute("DROP TABLE IF EXISTS {table}")
    target.execute(
        "CREATE TABLE {table} ("
        + ", ".join(f'"{c}" {t}' for c, t in TYPES.items())
        + ', PRIMARY KEY ("Lead Id"))'
    )
    destination = pg_destination(target, "Awkward table")

    def differences() -> list:
        # EXCEPT compares as PostgreSQL does: NaN equals NaN, NULL is not distinct from NULL.
        assert len(target.rows(QUOTED)) == len(source.rows(QUOTED)) == len(ROWS)
        return _except(source, target) + _except(target, source)

    sync, run = _sync_and_run(product, destination, owner)
    assert run.added == len(ROWS)
    assert differences() == []
    assert SyncRecordState.objects.filter(sync=sync).count() == len(ROWS)

    _change_two_rows(source)
    second = _rerun(sync, owner)
    assert (second.changed, second.added) == (2, 0)
    assert differences() == []


def _except(left: Table, right: Table) -> list:
    with psycopg.connect(**left.info, autocommit=True) as conn:
        return conn.execute(
            f"SELECT {QUOTED} FROM {left.qualified} EXCEPT SELECT {QUOTED} FROM {right.qualified}"
        ).fetchall()


def _same(left, right) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    if hasattr(left, "timestamp") and hasattr(right, "timestamp"):
        return left.timestamp() == right.timestamp()
    return left == right


def test_a_duckdb_table_receives_every_value_exactly(awkward_source, owner, tmp_path):
    source, product = awkward_source
    path = str(tmp_path / "awkward.duckdb")
    duck_types = {**TYPES, "bid": "DECIMAL(30,10)", "big": "VARCHAR", "score": "DOUBLE"}
    with duckdb.connect(path) as conn:
        conn.execute(
            'CREATE TABLE "awkward copy" ('
            + ", ".join(f'"{c}" {t}' for c, t in duck_types.items())
            + ', PRIMARY KEY ("Lead Id"))'
        )
    destination = SyncDestination.objects.create(
        name="Awkward file", kind=DestinationKind.DUCKDB, path=path, table_name="awkward copy"
    )

    def check() -> None:
        expected = source.rows(QUOTED)
        with duckdb.connect(path, read_only=True) as conn:
            got = conn.execute(f'SELECT {QUOTED} FROM "awkward copy" ORDER BY 1').fetchall()
        assert len(got) == len(expected)
        for want, have in zip(expected, got, strict=True):
            for name, a, b in zip(COLUMNS, want, have, strict=True):
                if name == "big" and b is not None:  # lands as PostgreSQL's exact text
                    assert b == ("NaN" if a.is_nan() else format(a, "f")), (a, b)
                    continue
                assert _same(a, b), (name, a, b)

    sync, run = _sync_and_run(product, destination, owner)
    assert run.added == len(ROWS)
    check()
    _change_two_rows(source)
    assert _rerun(sync, owner).changed == 2
    check()


def test_a_mariadb_table_receives_timestamps_dates_and_text_exactly(awkward_source, owner):
    """MySQL refuses ISO 8601 text with an offset, which is how a timestamptz travels: the
    instants land as UTC (the writer's session zone), on a server whose own zone is not."""
    source, product = awkward_source
    try:
        conn = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
    except pymysql.MySQLError as exc:
        require_service("MariaDB", str(exc))
    name = f"awkward_{uuid.uuid4().hex[:8]}"
    columns = ["Lead Id", "e-mail", "seen_at", "day", "active"]
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE `{name}` (`Lead Id` BIGINT PRIMARY KEY, `e-mail` TEXT, "
            "seen_at DATETIME(6), day DATE, active BOOLEAN)"
        )
        cur.execute("SELECT @@global.time_zone")
        (server_zone,) = cur.fetchone()
        cur.execute("SET GLOBAL time_zone = '-05:00'")
    try:
        destination = SyncDestination.objects.create(
            name="Awkward MariaDB",
            kind=DestinationKind.MYSQL,
            host="127.0.0.1",
            database="test",
            username="root",
            table_name=name,
        )
        _, run = _sync_and_run(product, destination, owner, columns)
        assert (run.added, run.rejected) == (len(ROWS), 0)
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{name}` ORDER BY 1")
            got = [tuple(row) for row in cur.fetchall()]
        quoted = ", ".join(f'"{c}"' for c in columns)
        expected = [
            (
                lead_id,
                email,
                seen_at.astimezone(UTC).replace(tzinfo=None) if seen_at else None,
                day,
                None if active is None else int(active),
            )
            for lead_id, email, seen_at, day, active in source.rows(quoted)
        ]
        assert got == expected
        assert got[0][2] == datetime(2024, 3, 30, 23, 59, 59, 999999)  # +02 at 01:59:59
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL time_zone = %s", [server_zone])
            cur.execute(f"DROP TABLE IF EXISTS `{name}`")
        conn.close()
