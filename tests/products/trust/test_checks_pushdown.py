"""Checks pushed down to PostgreSQL and DuckDB (tables, Parquet): exact observed values on
tables with known defects, zero failures on clean ones, one aggregate query per port."""

from datetime import UTC, datetime, timedelta

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from products.choices import CheckKind, CheckOutcome, CheckRunStatus, Severity, SourceKind
from products.models import CheckRun, PortObservation
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from tests.factories import (
    ColumnFactory,
    DataSourceFactory,
    FilePortFactory,
    OutputPortFactory,
    ProductFactory,
    metadata_db_connect,
    metadata_db_source,
)

# Timestamps are relative to when the rows are written (see _rows), so the observed ages
# are exact however long the suite has been running.
NOW = timezone.now()
# 10 orders with known defects: 2 null emails, 1 duplicated order_id (3 rows share it: 2
# extra), 1 unknown status, 2 amounts out of [0, 1000], 1 bad SKU; newest 30 hours ago.
ROWS = [
    # order_id, email, status, amount, sku, created_at
    (1, "a@x.com", "paid", 10.0, "SKU-001", NOW - timedelta(hours=30)),
    (2, None, "paid", 20.0, "SKU-002", NOW - timedelta(hours=40)),
    (3, "c@x.com", "shipped", -5.0, "SKU-003", NOW - timedelta(hours=50)),
    (3, "d@x.com", "paid", 30.0, "SKU-004", NOW - timedelta(hours=60)),
    (3, None, "cancelled", 40.0, "bad sku", NOW - timedelta(hours=70)),
    (6, "f@x.com", "lost", 50.0, "SKU-006", NOW - timedelta(hours=80)),
    (7, "g@x.com", "paid", 5000.0, "SKU-007", NOW - timedelta(hours=90)),
    (8, "h@x.com", "paid", 60.0, "SKU-008", NOW - timedelta(hours=100)),
    (9, "i@x.com", "shipped", 70.0, "SKU-009", NOW - timedelta(hours=110)),
    (10, "j@x.com", "paid", 80.0, "SKU-010", NOW - timedelta(hours=120)),
]
CLEAN_ROWS = [
    (i, f"u{i}@x.com", "paid", float(i), f"SKU-{i:03d}", NOW - timedelta(minutes=i))
    for i in range(1, 11)
]
COLUMNS = ["order_id", "email", "status", "amount", "sku", "created_at"]


def _arrow(rows):
    return pa.table(
        {
            "order_id": pa.array([r[0] for r in rows], pa.int64()),
            "email": pa.array([r[1] for r in rows], pa.string()),
            "status": pa.array([r[2] for r in rows], pa.string()),
            "amount": pa.array([r[3] for r in rows], pa.float64()),
            "sku": pa.array([r[4] for r in rows], pa.string()),
            "created_at": pa.array([r[5] for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )


def _pg_port(postgres, domain, rows):
    # The warehouse is another connection (committed data), as in real life.
    with metadata_db_connect() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS checks_test")
        conn.execute("DROP TABLE IF EXISTS checks_test.orders")
        conn.execute(
            "CREATE TABLE checks_test.orders (order_id bigint, email text, status text,"
            " amount double precision, sku text, created_at timestamptz)"
        )
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO checks_test.orders VALUES (%s, %s, %s, %s, %s, %s)", rows)
    source = metadata_db_source()
    return OutputPortFactory(
        product=ProductFactory(domain=domain),
        source=source,
        schema_name="checks_test",
        table_name="orders",
        freshness_column="created_at",
    )


def _pg_count(postgres) -> int:
    cfg = postgres.settings_dict
    with psycopg.connect(
        host=cfg["HOST"] or "localhost",
        port=int(cfg["PORT"] or 5432),
        dbname=cfg["NAME"],
        user=cfg["USER"] or None,
    ) as conn:
        return conn.execute("SELECT count(*) FROM checks_test.orders").fetchone()[0]


def _parquet_port(media_root, domain, rows, name="orders.parquet"):
    path = media_root / "checks" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(_arrow(rows), path)
    return FilePortFactory(
        product=ProductFactory(domain=domain),
        file_path=f"checks/{name}",
        freshness_column="created_at",
    )


def _duckdb_port(tmp_path, domain, rows):
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("incoming", _arrow(rows))
        con.execute("CREATE TABLE orders AS SELECT * FROM incoming")
    return OutputPortFactory(
        product=ProductFactory(domain=domain),
        source=DataSourceFactory(kind=SourceKind.DUCKDB, path=str(path)),
        schema_name="main",
        table_name="orders",
        freshness_column="created_at",
    )


@pytest.fixture(params=["postgresql", "duckdb-table", "parquet"])
def make_port(request, domain, media_root, tmp_path):
    def make(rows):
        shift = timezone.now() - NOW  # ages relative to now, not to the module's import
        rows = [(*row[:5], row[5] + shift) for row in rows]
        if request.param == "postgresql":
            return _pg_port(request.getfixturevalue("postgres"), domain, rows)
        if request.param == "duckdb-table":
            return _duckdb_port(tmp_path, domain, rows)
        return _parquet_port(media_root, domain, rows)

    return make


def _suite(port, owner):
    for name, column in [(c, c) for c in COLUMNS]:
        ColumnFactory(port=port, name=name, data_type="", position=COLUMNS.index(column))
    checks = {
        "not_null": dict(kind=CheckKind.NOT_NULL, column="email"),
        "unique": dict(kind=CheckKind.UNIQUE, column="order_id"),
        "accepted": dict(
            kind=CheckKind.ACCEPTED_VALUES,
            column="status",
            params={"values": ["paid", "shipped", "cancelled"]},
        ),
        "range": dict(kind=CheckKind.RANGE, column="amount", params={"min": 0, "max": 1000}),
        "pattern": dict(kind=CheckKind.PATTERN, column="sku", params={"regex": "^SKU-[0-9]{3}$"}),
        "rows": dict(kind=CheckKind.ROW_COUNT, params={"min": 5, "max": 100}),
        "fresh": dict(kind=CheckKind.FRESHNESS, column="created_at", params={"max_age_hours": 24}),
        "custom": dict(
            kind=CheckKind.CUSTOM_SQL,
            params={"sql": "SELECT count(*) FROM {table} WHERE amount > 1000"},
        ),
        "tolerant": dict(
            kind=CheckKind.NOT_NULL, column="email", tolerance_percent=25.0, severity=Severity.WARN
        ),
    }
    return {
        key: check_create(port=port, by=owner, name=key, **spec) for key, spec in checks.items()
    }


def _unique_statements(port) -> int:
    on_postgres = port.source is not None and port.source.kind == SourceKind.POSTGRESQL
    return 0 if on_postgres else 1


def _custom_statements(port) -> int:
    """The suite's custom SQL (a filtered count) is its own statement on PostgreSQL; on
    DuckDB a `count(*) FILTER` of the one aggregate."""
    on_postgres = port.source is not None and port.source.kind == SourceKind.POSTGRESQL
    return 1 if on_postgres else 0


def _sample_statements(port) -> int:
    """The statements reading the samples of the suite's five failing row-level checks:
    one for all of them on PostgreSQL and on Parquet (whose aggregate found the failing
    rows' positions); on a DuckDB table one for the unique check's rows (by key) and one
    per other check."""
    on_duckdb_table = port.source is not None and port.source.kind == SourceKind.DUCKDB
    return 1 + 4 if on_duckdb_table else 1


def _results(run):
    return {r.quality_check.name: r for r in run.results.select_related("quality_check")}


def test_known_defects_give_exact_observed_values(make_port, owner):
    port = make_port(ROWS)
    _suite(port, owner)
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)

    assert run.status == CheckRunStatus.DONE, run.error
    results = _results(run)
    observed = {name: (r.outcome, r.observed_value) for name, r in results.items()}
    assert observed["not_null"] == (CheckOutcome.FAIL, 2)
    assert observed["unique"] == (CheckOutcome.FAIL, 2)
    assert observed["accepted"] == (CheckOutcome.FAIL, 1)
    assert observed["range"] == (CheckOutcome.FAIL, 2)
    assert observed["pattern"] == (CheckOutcome.FAIL, 1)
    assert observed["rows"] == (CheckOutcome.PASS, 10)
    assert observed["custom"] == (CheckOutcome.FAIL, 1)
    assert observed["tolerant"] == (CheckOutcome.PASS, 2)  # 20% nulls <= 25% tolerated
    assert results["fresh"].outcome == CheckOutcome.FAIL
    assert results["fresh"].observed_value == pytest.approx(30, abs=0.1)
    assert results["not_null"].failing_percent == pytest.approx(20.0)
    # Samples: the failing rows themselves, at most 20.
    assert sorted(row["order_id"] for row in results["not_null"].sample) == [2, 3]
    assert [row["order_id"] for row in results["unique"].sample] == [3, 3, 3]
    assert results["rows"].sample == []
    # One describe, one aggregate, the custom SQL (PostgreSQL), the samples of the five
    # row-level failures; on DuckDB the unique check groups its column in a statement of
    # its own.
    assert run.statements == (
        2 + _custom_statements(port) + _sample_statements(port) + _unique_statements(port)
    )
    assert (run.passed, run.failed, run.errored) == (2, 7, 0)
    observation = PortObservation.objects.get(port=port)
    assert observation.row_count == 10 and observation.available
    assert observation.freshness_lag_seconds == pytest.approx(30 * 3600, abs=60)


def test_clean_table_gives_zero_failures(make_port, owner):
    port = make_port(CLEAN_ROWS)
    _suite(port, owner)
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    results = _results(run)
    assert {r.outcome for r in results.values()} == {CheckOutcome.PASS}
    assert {name: r.failing_rows for name, r in results.items() if r.failing_rows is not None} == {
        "not_null": 0,
        "unique": 0,
        "accepted": 0,
        "range": 0,
        "pattern": 0,
        "custom": 0,
        "tolerant": 0,
    }
    # describe, aggregate, custom SQL (PostgreSQL), DuckDB's unique statement: no samples
    assert run.statements == 2 + _custom_statements(port) + _unique_statements(port)


def test_missing_column_errors_that_check_only(make_port, owner):
    port = make_port(CLEAN_ROWS)
    check_create(port=port, by=owner, name="ghost", kind=CheckKind.NOT_NULL, column="ghost")
    check_create(port=port, by=owner, name="email", kind=CheckKind.NOT_NULL, column="email")
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    results = _results(run)
    assert results["ghost"].outcome == CheckOutcome.ERROR
    assert "ghost" in results["ghost"].message
    assert results["email"].outcome == CheckOutcome.PASS


def test_a_value_the_column_rejects_errors_that_check_only(postgres, domain, owner):
    port = _pg_port(postgres, domain, CLEAN_ROWS)
    check_create(
        port=port,
        by=owner,
        name="bad",
        kind=CheckKind.RANGE,
        column="amount",
        params={"min": "not a number"},
    )
    check_create(port=port, by=owner, name="email", kind=CheckKind.NOT_NULL, column="email")
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    results = _results(run)
    assert results["bad"].outcome == CheckOutcome.ERROR
    assert results["email"].outcome == CheckOutcome.PASS


def test_schema_check_reports_missing_extra_and_changed(make_port, owner):
    port = make_port(CLEAN_ROWS)
    ColumnFactory(port=port, name="order_id", data_type="VARCHAR")  # changed
    ColumnFactory(port=port, name="gone", data_type="INTEGER")  # missing
    for name in ("email", "status", "amount", "sku", "created_at"):
        ColumnFactory(port=port, name=name, data_type="")
    check_create(port=port, by=owner, name="schema", kind=CheckKind.SCHEMA)
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    result = _results(run)["schema"]
    assert result.outcome == CheckOutcome.FAIL
    assert result.details["missing"] == ["gone"]
    assert result.details["extra"] == []
    assert list(result.details["changed"]) == ["order_id"]


def test_volume_change_against_trailing_median(make_port, owner):
    port = make_port(CLEAN_ROWS)
    for days_ago, count in enumerate((20, 21, 19, 22, 20), start=1):
        day = timezone.now() - timedelta(days=days_ago)
        # Earlier in each day a different count: only the day's last one counts.
        PortObservation.objects.create(
            port=port, observed_at=day.replace(hour=1), available=True, row_count=1
        )
        PortObservation.objects.create(
            port=port, observed_at=day.replace(hour=23), available=True, row_count=count
        )
    # Today's observations (what monitors saw this morning) are not history.
    PortObservation.objects.create(
        port=port, observed_at=timezone.now(), available=True, row_count=10
    )
    check_create(
        port=port,
        by=owner,
        name="volume",
        kind=CheckKind.VOLUME_CHANGE,
        params={"max_change_percent": 30, "window": 5},
    )
    result = _results(check_run_execute(run_id=check_run_request(port=port, by=owner).pk))["volume"]
    assert result.outcome == CheckOutcome.FAIL
    assert result.observed_value == pytest.approx(-50.0)  # 10 rows against a median of 20


def test_unreachable_source_ends_the_run_in_error(domain, owner):
    source = DataSourceFactory(
        kind=SourceKind.POSTGRESQL, path="", host="127.0.0.1", port=1, database="nowhere"
    )
    port = OutputPortFactory(product=ProductFactory(domain=domain), source=source)
    check_create(port=port, by=owner, name="rows", kind=CheckKind.ROW_COUNT, params={"min": 1})
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    assert run.status == CheckRunStatus.ERROR
    assert "Cannot connect" in run.error
    assert PortObservation.objects.get(port=port).available is False


def test_a_run_is_claimed_once(make_port, owner):
    port = make_port(CLEAN_ROWS)
    check_create(port=port, by=owner, name="rows", kind=CheckKind.ROW_COUNT, params={"min": 1})
    run = check_run_request(port=port, by=owner)
    assert check_run_execute(run_id=run.pk) is not None
    assert check_run_execute(run_id=run.pk) is None
    assert CheckRun.objects.get(pk=run.pk).results.count() == 1


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM {table}",
        "SELECT count(*) FROM {table}; DROP TABLE x",
        "WITH gone AS (DELETE FROM {table} RETURNING *) SELECT count(*) FROM gone",
        "SELECT 1 INTO copy_of_table",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT count(*) FROM read_csv('/etc/passwd')",
        "not sql at all (",
    ],
)
def test_custom_sql_that_writes_or_escapes_is_refused_when_saved(domain, owner, sql):
    port = OutputPortFactory(product=ProductFactory(domain=domain))
    with pytest.raises(ValidationError) as error:
        check_create(
            port=port, by=owner, name="bad", kind=CheckKind.CUSTOM_SQL, params={"sql": sql}
        )
    assert "params" in error.value.message_dict


def test_custom_sql_that_writes_fails_if_it_reaches_the_source(postgres, domain, owner):
    from products.models import Check

    port = _pg_port(postgres, domain, CLEAN_ROWS)
    # Bypass validation, as if the row had been written by hand.
    Check.objects.create(
        port=port,
        name="sneaky",
        kind=CheckKind.CUSTOM_SQL,
        params={"sql": "DELETE FROM {table} RETURNING 1"},
    )
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    assert _results(run)["sneaky"].outcome == CheckOutcome.ERROR
    assert _pg_count(postgres) == 10


def test_duckdb_custom_sql_cannot_read_other_files(media_root, domain, owner, tmp_path):
    from products.models import Check

    secret = tmp_path / "secret.csv"
    secret.write_text("s\nTOPSECRET\n")
    port = _parquet_port(media_root, domain, CLEAN_ROWS, name="clean.parquet")
    Check.objects.create(
        port=port,
        name="sneaky",
        kind=CheckKind.CUSTOM_SQL,
        params={"sql": f"SELECT count(*) FROM read_csv('{secret}')"},
    )
    result = _results(check_run_execute(run_id=check_run_request(port=port, by=owner).pk))["sneaky"]
    assert result.outcome == CheckOutcome.ERROR


@pytest.mark.parametrize("tolerance", [-1, 100.5, "lots"])
def test_impossible_tolerance_is_refused(domain, owner, tolerance):
    port = OutputPortFactory(product=ProductFactory(domain=domain))
    with pytest.raises(ValidationError) as error:
        check_create(
            port=port,
            by=owner,
            name="t",
            kind=CheckKind.NOT_NULL,
            column="a",
            tolerance_percent=tolerance,
        )
    assert "tolerance_percent" in error.value.message_dict


def test_bad_cron_is_refused_naming_the_field(domain, owner):
    port = OutputPortFactory(product=ProductFactory(domain=domain))
    with pytest.raises(ValidationError) as error:
        check_create(
            port=port,
            by=owner,
            name="t",
            kind=CheckKind.ROW_COUNT,
            params={"min": 1},
            schedule="every day",
        )
    assert "schedule" in error.value.message_dict


def test_schedules_become_one_beat_task_per_port_and_cron(domain, owner):
    from django_celery_beat.models import PeriodicTask

    port = OutputPortFactory(product=ProductFactory(domain=domain, check_schedule="0 * * * *"))
    check_create(port=port, by=owner, name="a", kind=CheckKind.ROW_COUNT, params={"min": 1})
    check_create(port=port, by=owner, name="b", kind=CheckKind.ROW_COUNT, params={"min": 2})
    c = check_create(
        port=port,
        by=owner,
        name="c",
        kind=CheckKind.ROW_COUNT,
        params={"min": 3},
        schedule="30 6 * * *",
    )
    names = set(
        PeriodicTask.objects.filter(name__startswith=f"checks:port:{port.pk}:").values_list(
            "name", flat=True
        )
    )
    assert names == {f"checks:port:{port.pk}:0 * * * *", f"checks:port:{port.pk}:30 6 * * *"}
    from products.trust.services.checks import check_delete

    check_delete(check=c, by=owner)
    assert PeriodicTask.objects.filter(name__startswith=f"checks:port:{port.pk}:").count() == 1


def test_a_schedule_slot_runs_once(domain, owner):
    from products.trust.services.checks import check_run_for_slot

    port = OutputPortFactory(product=ProductFactory(domain=domain, check_schedule="0 * * * *"))
    check_create(port=port, by=owner, name="a", kind=CheckKind.ROW_COUNT, params={"min": 1})
    at = datetime(2026, 11, 21, 10, 0, 5, tzinfo=UTC)
    assert check_run_for_slot(port=port, cron="0 * * * *", at=at) is not None
    redelivered = at + timedelta(minutes=7)
    assert check_run_for_slot(port=port, cron="0 * * * *", at=redelivered) is None
    assert check_run_for_slot(port=port, cron="0 * * * *", at=at + timedelta(hours=1)) is not None


def test_cron_next_and_previous_fire_times():
    from portal.core.cron import cron_next_runs
    from products.trust.services.checks import cron_previous_fire

    saturday = datetime(2026, 11, 21, 3, 7, tzinfo=UTC)
    assert cron_next_runs("*/15 * * * 1-5", after=saturday) == [
        datetime(2026, 11, 23, 0, minute, tzinfo=UTC) for minute in (0, 15, 30)
    ]
    assert cron_previous_fire("30 6 * * *", at=saturday) == datetime(
        2026, 11, 20, 6, 30, tzinfo=UTC
    )
