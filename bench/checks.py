"""Checks benchmark: a suite of 10 checks on a 10-million-row PostgreSQL table and on the
same data as a Parquet file, at 1 and 10 million rows.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_checksbench \\
        .venv/bin/python bench/checks.py [--rows 10000000] [--small 1000000] [--small-only]
        [--write-results]

Creates (and at the end drops, unless --keep) the database named in DATABASE_URL, which
must be PostgreSQL and have "bench" in its name, and beside it the warehouse database
`<name>_warehouse` (a port may not name a table of the portal's own metadata database).
Generates an `orders` table per size in the warehouse's `warehouse` schema with
generate_series, and the same rows as Parquet files with
DuckDB (the same integer formulas in both engines; the script checks that both give the
same metrics). Registers each as a port with 10 checks (not null, unique, accepted values,
range, pattern, row count, freshness, volume change, schema, custom SQL).

Per port it measures, --repeat times, alternating:
- a check run: check_run_execute (the real service) in a separate worker-like process
  (`bench/checks.py --worker RUN_ID`), its wall time, the SQL statements it ran
  (CheckRun.statements, and each statement's time), and the process's peak RSS
  (its VmHWM, which it reports before exiting);
- one hand-written query computing the same metrics in a single scan, through the same
  connector (same engine settings);
and prints the medians and the ratio run / hand query (goal <= 1.25 at 10 million rows
and more, <= 1.5 below), the peak memory
(goal <= 300 MB, the same at both sizes) and, at the small size, the load-into-pandas-
then-check approach for comparison (its own process, time and peak RSS).

Prints figures and ratios; never fails on a time (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path
from bench.common import RESULTS, drop_database, recreate_database  # noqa: E402

SECTION = "## Checks (issue 3)"

SCHEMA = "warehouse"
GOAL_RATIO = 1.5  # below LARGE_ROWS
GOAL_RATIO_LARGE = 1.25
LARGE_ROWS = 10_000_000
GOAL_MB = 300
ENGINES = ("postgresql", "parquet")
YEAR_SECONDS = 365 * 86_400

# The data, as integer formulas of the row number i (1..n) that PostgreSQL and DuckDB
# evaluate identically. Defects, at 10 million rows: 2,000 duplicated ids (i % 5000 = 0
# repeats the previous id), 30,000 null emails (0.3%), 832 unknown statuses, 415 amounts
# out of [0, 10000], 399 SKUs not matching ^SKU-[0-9]{5}$.
STATUS_CASE = """CASE
    WHEN i % 20011 = 0 THEN 'lost'
    WHEN i % 30011 = 0 THEN 'unknown'
    ELSE CASE (i * 7) % 20
      WHEN 0 THEN 'placed' WHEN 1 THEN 'cancelled' WHEN 2 THEN 'returned'
      WHEN 3 THEN 'paid' WHEN 4 THEN 'paid' WHEN 5 THEN 'paid' WHEN 6 THEN 'paid'
      WHEN 7 THEN 'paid' WHEN 8 THEN 'paid' WHEN 9 THEN 'shipped' WHEN 10 THEN 'shipped'
      WHEN 11 THEN 'shipped' WHEN 12 THEN 'shipped' WHEN 13 THEN 'shipped'
      ELSE 'delivered' END
  END"""
COUNTRY_CASE = """CASE (i * 13) % 10
    WHEN 0 THEN 'NL' WHEN 1 THEN 'NL' WHEN 2 THEN 'BE' WHEN 3 THEN 'DE' WHEN 4 THEN 'DE'
    WHEN 5 THEN 'FR' WHEN 6 THEN 'GB' WHEN 7 THEN 'ES' WHEN 8 THEN 'IT' ELSE 'SE' END"""
CENTS = """CASE
    WHEN i % 40009 = 0 THEN -((i * 7727) % 50000 + 100)
    WHEN i % 60013 = 0 THEN (i * 7727) % 50000 + 2000000
    ELSE (i * 7727) % 50000 + 100 END"""


def select_rows(dialect: str, n: int, anchor: int) -> str:
    """The SELECT that generates the n rows; `anchor` (epoch seconds) is the newest
    created_at."""
    pg = dialect == "postgresql"
    idiv = "/" if pg else "//"  # integer division
    text = "text" if pg else "VARCHAR"
    series = (
        f"generate_series(CAST(1 AS BIGINT), {n}) AS g(i)" if pg else f"range(1, {n + 1}) AS g(i)"
    )
    amount = f"CAST(({CENTS}) AS {'numeric' if pg else 'DECIMAL(14,2)'}) / 100"
    return f"""
SELECT
  CAST(CASE WHEN i % 5000 = 0 THEN i - 1 ELSE i END AS BIGINT) AS id,
  CASE WHEN (i * 7919) % 1000 < 3 THEN NULL
       ELSE 'customer' || CAST((i * 104729) % 250000 + 1 AS {text}) || '@example.com'
  END AS customer_email,
  {STATUS_CASE} AS status,
  CAST({amount} AS {"numeric(12,2)" if pg else "DECIMAL(12,2)"}) AS amount,
  CASE WHEN i % 25013 = 0 THEN 'sku-' ELSE 'SKU-' END
    || CAST((i * 2971) % 90000 + 10000 AS {text}) AS sku,
  CAST(1 + (i * 17) % 5 AS INTEGER) AS quantity,
  {COUNTRY_CASE} AS country,
  to_timestamp({anchor} - (CAST({n} AS BIGINT) - i) * {YEAR_SECONDS} {idiv} {n}) AS created_at
FROM {series}"""


ACCEPTED_STATUSES = ["placed", "paid", "shipped", "delivered", "cancelled", "returned"]
CUSTOM_SQL = "SELECT count(*) FROM {table} WHERE status = 'returned' AND amount > 450"


def check_suite(rows: int) -> list[dict]:
    """The 10 checks, as check_create arguments."""
    return [
        dict(
            name="email present",
            kind="not_null",
            column="customer_email",
            tolerance_percent=0.5,
        ),
        dict(name="id unique", kind="unique", column="id"),
        dict(
            name="status known",
            kind="accepted_values",
            column="status",
            params={"values": ACCEPTED_STATUSES},
            severity="warn",
        ),
        dict(
            name="amount in range", kind="range", column="amount", params={"min": 0, "max": 10000}
        ),
        dict(
            name="sku format",
            kind="pattern",
            column="sku",
            params={"regex": "^SKU-[0-9]{5}$"},
            severity="warn",
        ),
        dict(name="row count", kind="row_count", params={"min": rows // 2}),
        dict(
            name="fresh",
            kind="freshness",
            column="created_at",
            params={"max_age_hours": 24},
        ),
        dict(
            name="volume",
            kind="volume_change",
            params={"max_change_percent": 20, "window": 7},
        ),
        dict(name="schema", kind="schema", severity="warn"),
        dict(
            name="big returns approved",
            kind="custom_sql",
            params={"sql": CUSTOM_SQL},
            tolerance_percent=1.0,
            severity="warn",
        ),
    ]


def hand_query(relation: str, dialect: str) -> str:
    """One query, one scan: every metric the suite needs (samples aside)."""
    statuses = ", ".join(f"'{s}'" for s in ACCEPTED_STATUSES)
    match = (
        "sku ~ '^SKU-[0-9]{5}$'"
        if dialect == "postgresql"
        else "regexp_matches(sku, '^SKU-[0-9]{5}$')"
    )
    return f"""
SELECT
  count(*),
  count(*) - count(customer_email),
  count(id) - count(DISTINCT id),
  count(*) FILTER (WHERE status NOT IN ({statuses})),
  count(*) FILTER (WHERE amount < 0 OR amount > 10000),
  count(*) FILTER (WHERE NOT ({match})),
  max(created_at),
  count(*) FILTER (WHERE status = 'returned' AND amount > 450),
  sum(amount)
FROM {relation}"""


METRICS = (
    "rows",
    "null emails",
    "duplicate ids",
    "unknown statuses",
    "amounts out of range",
    "bad SKUs",
    "newest created_at",
    "big returns",
    "sum(amount)",
)


# --- database lifecycle ----------------------------------------------------------------


# --- data ------------------------------------------------------------------------------


def table_name(rows: int) -> str:
    return f"orders_{rows}"


def warehouse_config(config: dict) -> dict:
    """The warehouse database beside the bench's metadata database: the portal refuses a
    source on its own metadata database."""
    return {**config, "NAME": f"{config['NAME']}_warehouse"}


def create_postgres_table(rows: int, anchor: int, warehouse: dict) -> tuple[float, str]:
    """The table in the warehouse database; returns the seconds taken and its size."""
    began = time.perf_counter()
    relation = f'"{SCHEMA}"."{table_name(rows)}"'
    # Autocommit: VACUUM runs outside a transaction (hint bits, visibility map, statistics).
    with common.connect(warehouse, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
        conn.execute(
            f"CREATE TABLE {relation} AS {select_rows('postgresql', rows, anchor)} ORDER BY i"
        )
        conn.execute(f"VACUUM (ANALYZE) {relation}")
        seconds = time.perf_counter() - began
        size = conn.execute("SELECT pg_size_pretty(pg_table_size(%s))", [relation]).fetchone()[0]
    return seconds, size


def create_parquet_file(rows: int, anchor: int, media_root: Path) -> tuple[str, float]:
    import duckdb

    began = time.perf_counter()
    relative = f"bench/{table_name(rows)}.parquet"
    path = media_root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(":memory:") as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY ({select_rows('duckdb', rows, anchor)} ORDER BY i) TO '{path}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
    return relative, time.perf_counter() - began


# --- catalog ---------------------------------------------------------------------------


def make_catalog(
    config: dict, sizes: list[int], files: dict[int, str], engines: tuple[str, ...] = ENGINES
) -> dict:
    """A domain, an admin, a product with one port per (engine, size), each with the
    10 checks, declared columns and 7 past row counts for the volume check."""
    from django.contrib.auth import get_user_model

    from products.catalog.services.ports import source_allow, storage_allow
    from products.catalog.services.products import product_create
    from products.choices import FileFormat, PortKind, SourceKind
    from products.models import DataSource, Domain, OutputPort

    admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", None)
    domain = Domain.objects.create(name="Bench", slug="bench")
    source = DataSource.objects.create(
        name="bench warehouse",
        kind=SourceKind.POSTGRESQL,
        host=config.get("HOST") or "127.0.0.1",
        port=int(config.get("PORT") or 5432),
        database=warehouse_config(config)["NAME"],
        username=config.get("USER") or "",
    )
    source_allow(source=source, domain=domain, by=admin, schema_name=SCHEMA)
    storage_allow(domain=domain, by=admin, path="bench")
    ports = {}
    for size in sizes:
        for engine in engines:
            product = product_create(
                domain=domain, name=f"Orders {engine} {size}", by=admin, summary="Bench."
            )
            if engine == "postgresql":
                fields = dict(
                    kind=PortKind.TABLE,
                    source=source,
                    schema_name=SCHEMA,
                    table_name=table_name(size),
                )
            else:
                fields = dict(
                    kind=PortKind.FILE, file_path=files[size], file_format=FileFormat.PARQUET
                )
            port = OutputPort.objects.create(
                product=product,
                name="Orders",
                slug="orders",
                freshness_column="created_at",
                **fields,
            )
            suite_define(port, admin, size)
            ports[(engine, size)] = port
    return {"admin": admin, "ports": ports}


def suite_define(port, admin, rows: int) -> None:
    """The port's columns as its source describes them, the 10 checks, and 7 past daily
    row counts near `rows` (the volume check's history)."""
    from django.utils import timezone

    from products.catalog.services.schema_refresh import schema_apply_columns
    from products.connectors import connector_for_port
    from products.models import PortObservation
    from products.trust.services.checks import check_create

    with connector_for_port(port) as connector:
        schema_apply_columns(port=port, columns=connector.describe())
    for spec in check_suite(rows):
        check_create(port=port, by=admin, **spec)
    now = timezone.now()
    PortObservation.objects.bulk_create(
        PortObservation(
            port=port,
            observed_at=now - timedelta(days=day),
            available=True,
            row_count=int(rows * (1 - 0.004 * day)),
        )
        for day in range(1, 8)
    )


# --- measuring -------------------------------------------------------------------------


def run_child(args: list[str]) -> tuple[dict, float]:
    """Run `bench/checks.py <args>` as its own process; returns what it printed (JSON)
    and its peak RSS in MB.

    The child reports its own VmHWM (/proc/self/status) just before it exits: the peak
    of its address space since exec. Not the parent's wait4/RUSAGE_CHILDREN ru_maxrss:
    on Linux, exec carries the parent's high-water mark into the child's maxrss, so it
    would report this (big) parent process instead."""
    process = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {process.returncode}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    return result, result.pop("peak_kb") / 1024


def _report(result: dict) -> None:
    """Print a child's result, with its peak RSS (VmHWM), as the last line."""
    status = Path("/proc/self/status").read_text()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
    print(json.dumps({**result, "peak_kb": peak_kb}), flush=True)


def time_hand_query(port) -> tuple[float, tuple]:
    from products.connectors import connector_for_port

    with connector_for_port(port) as connector:
        sql = hand_query(connector.relation_sql(), connector.dialect)
        began = time.perf_counter()
        row = connector.fetch(sql)[0]
        return time.perf_counter() - began, tuple(row)


def time_check_run(port, admin) -> tuple[dict, float]:
    from products.models import CheckRun

    # What check_run_request creates, without queueing a task on the broker.
    run = CheckRun.objects.create(port=port, requested_by=admin)
    return run_child(["--worker", str(run.pk)])


def measure_port(port, admin, repeat: int) -> dict:
    hand, runs, memory = [], [], []
    time_hand_query(port)  # warm-up: the data is read once before anything is timed
    metrics = None
    for _ in range(repeat):
        seconds, metrics = time_hand_query(port)
        hand.append(seconds)
        result, peak_mb = time_check_run(port, admin)
        if result["status"] != "done":
            raise RuntimeError(f"check run ended {result['status']}: {result['error']}")
        runs.append(result)
        memory.append(peak_mb)
    counted = list(CHECK_OF_METRIC.values())
    if any(
        [r["outcomes"][c] for c in counted] != [runs[0]["outcomes"][c] for c in counted]
        for r in runs
    ):
        raise RuntimeError("check runs of the same port counted different values")
    run_seconds = [r["seconds"] for r in runs]
    median_run = statistics.median(run_seconds)
    typical = min(runs, key=lambda r: abs(r["seconds"] - median_run))
    return {
        "hand": statistics.median(hand),
        "run": median_run,
        "run_min": min(run_seconds),
        "statements": typical["statements"],
        "breakdown": typical["breakdown"],
        "imports": statistics.median(r["imports"] for r in runs),
        "first_run": statistics.median(r["first_run"] for r in runs),
        "outcomes": typical["outcomes"],
        "peak_mb": max(memory),
        "metrics": metrics,
    }


# The check whose observed value is each hand-query metric.
CHECK_OF_METRIC = {
    "rows": "row count",
    "null emails": "email present",
    "duplicate ids": "id unique",
    "unknown statuses": "status known",
    "amounts out of range": "amount in range",
    "bad SKUs": "sku format",
    "big returns": "big returns approved",
}


def run_differs(figures: dict) -> list[str]:
    """The metrics a check run counted otherwise than the hand query (every run of the
    port counted the same: measure_port checks it)."""
    metrics = dict(zip(METRICS, figures["metrics"], strict=True))
    return [
        f"{metric}: check {figures['outcomes'][check][1]}, hand {metrics[metric]}"
        for metric, check in CHECK_OF_METRIC.items()
        if figures["outcomes"][check][1] != metrics[metric]
    ]


def measure_pandas(port) -> dict:
    from products.choices import PortKind
    from products.connectors import port_file_path

    if port.kind == PortKind.FILE:
        target = ["parquet", str(port_file_path(port.file_path))]
    else:
        target = ["postgresql", f'"{port.schema_name}"."{port.table_name}"']
    result, peak_mb = run_child(["--pandas", *target])
    return {**result, "peak_mb": peak_mb}


# --- the worker-like child processes ---------------------------------------------------


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


def _statement_label(sql: str) -> str:
    text = " ".join(sql.split())
    if "pg_catalog.pg_attribute" in text or "information_schema" in text:
        return "describe"
    if text.startswith("SELECT count(*) AS v0"):
        return "aggregate"
    if text.startswith("SELECT set_config"):
        return "timeout"
    if text.startswith("SELECT coalesce(sum(n) - count(*), 0)"):
        return "unique grouping"
    if " AS sample_branch" in text.split(",", 1)[0]:  # every failing check's sample at once
        return f"samples ({text.count(' AS sample_branch')} branches)"
    if "port_data_numbered" in text:  # Parquet: positions first, then those rows
        text = text.split(" WHERE ", 2)[2].rsplit(") ORDER BY", 1)[0]
    if text.endswith("LIMIT 20"):
        condition = text.split(" WHERE ", 1)[-1].rsplit(" LIMIT", 1)[0]
        return "sample: " + (condition if len(condition) < 48 else condition[:45] + "...")
    return "custom SQL"


def worker(run_id: int) -> None:
    """Execute one check run like a Celery worker does, timing each SQL statement."""
    _django()
    from products.connectors.duckdb import DuckDBConnector
    from products.connectors.postgres import PostgresConnector
    from products.trust.services.checks import check_run_execute

    statements: list[tuple[str, float]] = []

    def timed(cls):
        original = cls._run

        def _run(self, sql, params, **kwargs):
            began = time.perf_counter()
            try:
                return original(self, sql, params, **kwargs)
            finally:
                statements.append((_statement_label(sql), time.perf_counter() - began))

        cls._run = _run

    timed(PostgresConnector)
    timed(DuckDBConnector)
    # A worker imports DuckDB and sqlglot with its first DuckDB port or custom SQL check,
    # once for its lifetime: time the run as every later one, and report that once apart.
    # sqlglot loads a dialect's module when it first parses that dialect (~0.2 s for
    # DuckDB's): the same once-per-worker cost.
    began = time.perf_counter()
    import duckdb  # noqa: F401
    import sqlglot

    for dialect in ("duckdb", "postgres"):
        sqlglot.Dialect.get_or_raise(dialect)
    imports = time.perf_counter() - began
    # The same holds for a worker's first run of all: its first metadata-database queries
    # and its first DuckDB instance (~10-20 ms to create) are paid once per process. A
    # worker runs many check runs, and the hand query is timed warm too: time the run as
    # every later one (after one run of the same port) and report the first run apart.
    from products.models import CheckRun

    target = CheckRun.objects.get(pk=run_id)
    first = CheckRun.objects.create(port_id=target.port_id, requested_by_id=target.requested_by_id)
    began = time.perf_counter()
    check_run_execute(run_id=first.pk)
    first_seconds = time.perf_counter() - began
    statements.clear()
    began = time.perf_counter()
    run = check_run_execute(run_id=run_id)
    seconds = time.perf_counter() - began
    outcomes = {
        r.quality_check.name: [r.outcome, r.observed_value]
        for r in run.results.select_related("quality_check")
    }
    _report(
        {
            "seconds": seconds,
            "imports": imports,
            "first_run": first_seconds,
            "status": run.status,
            "error": run.error,
            "statements": run.statements,
            "breakdown": [s for s in statements if s[0] != "timeout"],
            "outcomes": outcomes,
        }
    )


def pandas_check(engine: str, target: str) -> None:
    """The approach pushdown replaces: load the whole table into pandas, then check."""
    import warnings

    import pandas as pd

    began = time.perf_counter()
    if engine == "parquet":
        frame = pd.read_parquet(target)
    else:
        warehouse = warehouse_config(common.database_config("bench/checks.py"))
        with (
            common.connect(warehouse) as conn,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", UserWarning)  # "only SQLAlchemy/sqlite3 supported"
            frame = pd.read_sql(f"SELECT * FROM {target}", conn)
    loaded = time.perf_counter()
    amount = pd.to_numeric(frame["amount"])
    metrics = [
        len(frame),
        int(frame["customer_email"].isna().sum()),
        int(frame["id"].count() - frame["id"].nunique()),
        int((frame["status"].notna() & ~frame["status"].isin(ACCEPTED_STATUSES)).sum()),
        int(((amount < 0) | (amount > 10000)).sum()),
        int((frame["sku"].notna() & ~frame["sku"].str.match(r"^SKU-[0-9]{5}$")).sum()),
        str(frame["created_at"].max()),
        int(((frame["status"] == "returned") & (amount > 450)).sum()),
    ]
    checked = time.perf_counter()
    _report(
        {
            "load": loaded - began,
            "check": checked - loaded,
            "seconds": checked - began,
            "metrics": metrics,
        }
    )


def baseline() -> None:
    """A worker that imports everything a check run needs and runs nothing: the floor."""
    _django()
    import duckdb  # noqa: F401
    import psycopg  # noqa: F401

    import products.trust.services.checks  # noqa: F401

    _report({})


# --- report ----------------------------------------------------------------------------


def _mb(value: float) -> str:
    return f"{value:.0f}"


def report(figures: dict, sizes: list[int], extra: dict) -> str:
    engines = [engine for engine in ENGINES if (engine, sizes[0]) in figures]
    lines = []
    for line in extra["setup"]:
        lines.append(f"- {line}")
    lines.append(
        f"- a worker process that only imports Django, the services, psycopg and DuckDB "
        f"peaks at {_mb(extra['baseline_mb'])} MB RSS"
    )
    load = os.getloadavg()
    lines.append(f"- load average at the end: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    lines.append("")
    lines.append(
        "| port | rows | check run s | hand query s | ratio | goal | statements "
        "| worker peak MB | outcomes (pass/fail) |"
    )
    lines.append("|" + "---|" * 9)
    for engine in engines:
        for size in sizes:
            f = figures[(engine, size)]
            passed = sum(1 for o, _ in f["outcomes"].values() if o == "pass")
            failed = sum(1 for o, _ in f["outcomes"].values() if o == "fail")
            lines.append(
                f"| {engine} | {size:,} | {f['run']:.2f} | {f['hand']:.2f} "
                f"| {f['run'] / f['hand']:.2f} | <= {goal_ratio(size)} | {f['statements']} "
                f"| {_mb(f['peak_mb'])} | {passed}/{failed} |"
            )
    for label, p in extra["pandas"].items():
        lines.append(
            f"| {label} | {p['rows']:,} | {p['seconds']:.2f} (load {p['load']:.2f}) "
            f"| | | | | {_mb(p['peak_mb'])} | |"
        )
    lines.append("")
    large = max(sizes)
    lines.append(f"Where a check run's time goes at {large:,} rows (the median run):")
    lines.append("")
    for engine in engines:
        parts = ", ".join(
            f"{label} {seconds:.2f}" for label, seconds in figures[(engine, large)]["breakdown"]
        )
        lines.append(f"- {engine}: {parts} (s)")
    lines.append("")
    ratios = {key: f["run"] / f["hand"] for key, f in figures.items()}
    missed = [f"{e} {s:,}" for (e, s), r in ratios.items() if r > goal_ratio(s)]
    lines.append(
        f"Goal, check run <= {GOAL_RATIO_LARGE} x the single-scan query from "
        f"{LARGE_ROWS:,} rows, <= {GOAL_RATIO} x below: "
        + (f"missed by {', '.join(missed)}." if missed else "met on every port.")
    )
    peaks = {key: f["peak_mb"] for key, f in figures.items()}
    over = [f"{e} {s:,} ({_mb(p)} MB)" for (e, s), p in peaks.items() if p > GOAL_MB]
    small = min(sizes)
    growth = ", ".join(
        f"{engine} {_mb(peaks[(engine, small)])} -> {_mb(peaks[(engine, large)])} MB"
        for engine in engines
    )
    lines.append(
        f"Goal, worker peak <= {GOAL_MB} MB and the same at {small:,} and {large:,} rows: "
        + (f"over at {', '.join(over)}" if over else "under on every port")
        + (f"; {small:,} -> {large:,} rows: {growth}." if small != large else ".")
    )
    for label, p in extra["pandas"].items():
        f = figures[(label.split()[1], small)]
        lines.append(
            f"Pandas ({label}) at {small:,} rows: {p['seconds'] / f['run']:.1f} x the time and "
            f"{p['peak_mb'] / f['peak_mb']:.1f} x the peak memory of the pushed-down run."
        )
    return "\n".join(lines)


def goal_ratio(rows: int) -> float:
    return GOAL_RATIO_LARGE if rows >= LARGE_ROWS else GOAL_RATIO


def write_results(text: str, args, config: dict) -> None:
    common.write_results(
        SECTION,
        f"{date.today().isoformat()}, `bench/checks.py --rows {args.rows} --small {args.small}"
        f"{' --small-only' if args.small_only else ''}` "
        f"(medians of {args.repeat} runs after one warm-up read; check runs through "
        f"check_run_execute in a worker-like process; PostgreSQL "
        f"{common.pg_version(config)}, DuckDB {duckdb_version()}, {os.cpu_count()} CPUs)."
        f"\n\n{text}",
    )


def duckdb_version() -> str:
    import duckdb

    return duckdb.__version__


def _same(a, b) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.astimezone(UTC) == b.astimezone(UTC)
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument(
        "--small-only",
        action="store_true",
        help="measure the --small size only (e.g. the 1,000,000-row goal on a shared machine)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per port (median)")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        help="measure this engine only (e.g. parquet at 10,000,000 rows on a shared machine)",
    )
    parser.add_argument(
        "--no-pandas", action="store_true", help="leave out the load-into-pandas comparison"
    )
    parser.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pandas", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker)
    if args.pandas:
        return pandas_check(*args.pandas)
    if args.baseline:
        return baseline()
    if args.rows <= args.small and not args.small_only:
        sys.exit("--rows must be larger than --small")

    config = common.database_config("bench/checks.py")
    warehouse = warehouse_config(config)
    recreate_database(config)
    recreate_database(warehouse)
    media_root = Path(tempfile.mkdtemp(prefix="checksbench-media-"))
    # The worker processes inherit these: same database, same storage for the files.
    os.environ["MEDIA_ROOT"] = str(media_root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/checks.py runs on PostgreSQL only.")
    sizes = [args.small] if args.small_only else [args.small, args.rows]
    engines = (args.engine,) if args.engine else ENGINES
    anchor = int((datetime.now(UTC) - timedelta(minutes=10)).timestamp())
    try:
        call_command("migrate", verbosity=0)
        setup, files = [], {}
        for size in sizes:
            made = []
            if "postgresql" in engines:
                print(f"Generating {size:,} rows in PostgreSQL...", flush=True)
                pg_seconds, pg_size = create_postgres_table(size, anchor, warehouse)
                made.append(
                    f"PostgreSQL table {pg_size} (generated and vacuumed in {pg_seconds:.0f} s)"
                )
            print(f"Writing the same {size:,} rows as Parquet...", flush=True)
            files[size], pq_seconds = create_parquet_file(size, anchor, media_root)
            mb = (media_root / files[size]).stat().st_size / 2**20
            if "parquet" in engines:
                made.append(f"Parquet file {mb:.0f} MB (zstd, {pq_seconds:.0f} s)")
            setup.append(f"{size:,} rows: {', '.join(made)}")
        catalog = make_catalog(config, sizes, files, engines)
        print("Measuring a worker that runs nothing...", flush=True)
        _, baseline_mb = run_child(["--baseline"])

        figures = {}
        for size in sizes:
            for engine in engines:
                print(f"Measuring {engine} at {size:,} rows...", flush=True)
                port = catalog["ports"][(engine, size)]
                figures[(engine, size)] = measure_port(port, catalog["admin"], args.repeat)
                differ = run_differs(figures[(engine, size)])
                if differ:
                    sys.exit(
                        f"{engine} at {size:,} rows, the check run and the hand query: {differ}"
                    )
                f = figures[(engine, size)]
                print(
                    f"  check run {f['run']:.2f} s ({f['statements']} statements), "
                    f"hand query {f['hand']:.2f} s, ratio {f['run'] / f['hand']:.2f}, "
                    f"peak {f['peak_mb']:.0f} MB; not timed: importing DuckDB and sqlglot "
                    f"{f['imports']:.2f} s and its first run {f['first_run']:.2f} s (once per "
                    "worker)",
                    flush=True,
                )
                print(
                    "  " + ", ".join(f"{label} {sec:.2f}" for label, sec in f["breakdown"]),
                    flush=True,
                )
            first = figures[(engines[0], size)]["metrics"]
            for engine in engines[1:]:
                other = figures[(engine, size)]["metrics"]
                differ = [
                    m for m, a, b in zip(METRICS, first, other, strict=True) if not _same(a, b)
                ]
                if differ:
                    sys.exit(f"{engines[0]} and {engine} disagree at {size:,} rows on: {differ}")
            setup.append(
                f"{size:,} rows, the same in {' and '.join(engines)} and in the check runs: "
                + ", ".join(
                    f"{m} {v:,}" for m, v in zip(METRICS, first, strict=True) if m in METRICS[:6]
                )
            )

        pandas = {}
        for engine in engines if not args.no_pandas else ():
            print(f"Measuring load-into-pandas-then-check from {engine} at {args.small:,}...")
            result = measure_pandas(catalog["ports"][(engine, args.small)])
            expected = list(figures[(engine, args.small)]["metrics"][:6])
            if result["metrics"][:6] != expected:
                sys.exit(f"pandas computed {result['metrics'][:6]}, SQL {expected}")
            pandas[f"pandas, {engine} (read_{'sql' if engine == 'postgresql' else 'parquet'})"] = {
                **result,
                "rows": args.small,
            }
        text = report(
            figures, sizes, {"setup": setup, "baseline_mb": baseline_mb, "pandas": pandas}
        )
        print()
        print(text)
        if args.write_results:
            write_results(text, args, config)
    finally:
        if not args.keep:
            drop_database(config)
            drop_database(warehouse)
            shutil.rmtree(media_root, ignore_errors=True)
        else:
            print(
                f"Kept the databases {config['NAME']} and {warehouse['NAME']} and the files "
                f"in {media_root}"
            )


if __name__ == "__main__":
    main()
