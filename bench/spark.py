"""Spark benchmark (issue 20): a 10-million-row Parquet table on a local Spark Connect
server, checked, read into pandas and served as CSV by the portal.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_sparkbench \\
        .venv/bin/python bench/spark.py [--rows 10000000] [--read-rows 1000000]
        [--repeat 3] [--driver-memory 4g] [--write-results]

Needs Java 17 and Spark (`make java spark-server`). Creates (and at the end drops, unless
--keep) the database named in DATABASE_URL, which must be PostgreSQL and have "bench" in
its name. Writes bench/checks.py's rows (the same integer formulas and defects) as
Parquet files with DuckDB, starts a local Spark Connect server
(products/connectors/spark_server.py: local[2], a driver of --driver-memory), defines the
table `bench.orders` on those files (`USING parquet LOCATION`) and registers it as the
product `bench.orders`, a port on a data source of kind spark, with bench/checks.py's 10
checks, an admin and a grantee (all columns, customer_email masked). Then measures:

(a) the port's check suite: check_run_execute (the real service, as a worker runs it,
    after one warm-up run in the same process) against one hand-written Spark SQL query
    computing the same counts in a single scan, through the same connector, alternating,
    --repeat times; the counts of both must agree (goal: check run <= 1.5 x). For
    reference, the same counts written as a Spark expert might, grouped by id first
    (Spark copies every row per distinct group for a count(DISTINCT) beside other
    aggregates);
(b) --read-rows rows into pandas through the notebook client (the grantee: the access
    decision, the mask, the Arrow stream of the data API from gunicorn as deployed) against
    PySpark's own `spark.table(...).limit(n).toPandas()` over Spark Connect, in this
    process (goal: <= 2 x);
(c) the gunicorn worker's peak RSS (VmHWM, reset before each read) while it serves the
    grantee --read-rows and then --rows rows as CSV (goal: flat: the same peak at both
    sizes).

Prints figures and ratios; never fails on a time (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import checks, common, serving  # noqa: E402 - needs the repository on sys.path
from bench.common import RESULTS, drop_database, recreate_database  # noqa: E402

SECTION = "## Spark (issue 20)"

SCHEMA = "bench"
TABLE = "orders"
KEY = serving.KEY  # "bench.orders": what serving.api_csv and client_read ask for
GOAL_CHECK_RATIO = 1.5
GOAL_PANDAS_RATIO = 2.0
GOAL_FLAT = 1.25  # peak at --rows over peak at --read-rows: "flat"
PARQUET_FILE_BYTES = "64MB"  # several files: Spark reads them in parallel


# --- data ------------------------------------------------------------------------------


def write_parquet(rows: int, anchor: int, folder: Path) -> float:
    """bench/checks.py's rows as Parquet files in `folder`, written by DuckDB."""
    import duckdb

    began = time.perf_counter()
    with duckdb.connect(":memory:") as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY ({checks.select_rows('duckdb', rows, anchor)} ORDER BY i) TO '{folder}' "
            f"(FORMAT parquet, COMPRESSION zstd, FILE_SIZE_BYTES '{PARQUET_FILE_BYTES}')"
        )
    return time.perf_counter() - began


def define_table(endpoint, folder: Path) -> None:
    """`bench.orders` on the Parquet files, through a session of the bench's own (the
    portal's connector only reads)."""
    from products.connectors.spark import spark_session_open

    spark = spark_session_open(endpoint)
    try:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
        spark.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{TABLE}")
        spark.sql(f"CREATE TABLE {SCHEMA}.{TABLE} USING parquet LOCATION '{folder}'")
    finally:
        spark.stop()


# --- catalog ---------------------------------------------------------------------------


def make_catalog(server_port: int, rows: int) -> dict:
    """bench.orders (published) on the Spark source, its columns (customer_email
    confidential), bench/checks.py's 10 checks and 7 past row counts; an admin and a
    grantee (every row, the email masked), a token for each."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from knox.models import AuthToken

    from products.catalog.services.ports import source_allow
    from products.catalog.services.products import product_create
    from products.choices import Classification, LifecycleStatus, PortKind, SourceKind
    from products.models import DataProduct, DataSource, Domain, OutputPort
    from sharing.models import AccessGrant

    users = get_user_model().objects
    admin = users.create_superuser("bench-admin", "admin@example.com", None)
    grantee = users.create_user("bench-grantee", "grantee@example.com", None)
    domain = Domain.objects.create(name="Bench", slug="bench")
    source = DataSource.objects.create(
        name="bench Spark", kind=SourceKind.SPARK, host="127.0.0.1", port=server_port
    )
    source_allow(source=source, domain=domain, by=admin, schema_name=SCHEMA)
    product = product_create(domain=domain, name="Orders", slug="orders", by=admin, summary="B.")
    DataProduct.objects.filter(pk=product.pk).update(status=LifecycleStatus.PUBLISHED)
    port = OutputPort.objects.create(
        product=product,
        name="Orders",
        slug="orders",
        kind=PortKind.TABLE,
        source=source,
        schema_name=SCHEMA,
        table_name=TABLE,
        freshness_column="created_at",
    )
    checks.suite_define(port, admin, rows)
    port.columns.filter(name="customer_email").update(classification=Classification.CONFIDENTIAL)
    now = timezone.now()
    AccessGrant.objects.create(
        product=product,
        user=grantee,
        expires_at=now + timedelta(days=30),
        reason="Bench.",
        granted_by=admin,
    )
    tokens = {
        name: AuthToken.objects.create(user)[1]
        for name, user in (("admin", admin), ("grantee", grantee))
    }
    return {"admin": admin, "port": port, "tokens": tokens}


# --- (a) checks ------------------------------------------------------------------------


def hand_query(relation: str) -> str:
    """bench/checks.py's single-scan query in Spark SQL (RLIKE for the pattern)."""
    statuses = ", ".join(f"'{s}'" for s in checks.ACCEPTED_STATUSES)
    return f"""
SELECT
  count(*),
  count(*) - count(customer_email),
  count(id) - count(DISTINCT id),
  count(*) FILTER (WHERE status NOT IN ({statuses})),
  count(*) FILTER (WHERE amount < 0 OR amount > 10000),
  count(*) FILTER (WHERE NOT (sku RLIKE '^SKU-[0-9]{{5}}$')),
  max(created_at),
  count(*) FILTER (WHERE status = 'returned' AND amount > 450),
  sum(amount)
FROM {relation}"""


def hand_query_grouped(relation: str) -> str:
    """The same counts, written as a Spark expert might to avoid count(DISTINCT) beside
    other aggregates: grouped by id first (one shuffle of partial counts), then summed."""
    statuses = ", ".join(f"'{s}'" for s in checks.ACCEPTED_STATUSES)
    return f"""
SELECT
  sum(n),
  sum(n) - sum(emails),
  coalesce(sum(n) FILTER (WHERE k IS NOT NULL), 0) - count(k),
  sum(unknown),
  sum(out_of_range),
  sum(bad_skus),
  max(newest),
  sum(big_returns),
  sum(total)
FROM (
  SELECT
    id AS k,
    count(*) AS n,
    count(customer_email) AS emails,
    count(*) FILTER (WHERE status NOT IN ({statuses})) AS unknown,
    count(*) FILTER (WHERE amount < 0 OR amount > 10000) AS out_of_range,
    count(*) FILTER (WHERE NOT (sku RLIKE '^SKU-[0-9]{{5}}$')) AS bad_skus,
    max(created_at) AS newest,
    count(*) FILTER (WHERE status = 'returned' AND amount > 450) AS big_returns,
    sum(amount) AS total
  FROM {relation}
  GROUP BY id
) AS by_id"""


def time_hand_query(port, write=hand_query) -> tuple[float, tuple]:
    from products.connectors import connector_for_port

    with connector_for_port(port) as connector:
        sql = write(connector.relation_sql())
        began = time.perf_counter()
        row = connector.fetch(sql)[0]
        return time.perf_counter() - began, tuple(row)


STATEMENTS: list[tuple[str, float]] = []


def time_statements() -> None:
    """Label and time every statement the Spark connector runs (the check run's
    breakdown), as bench/checks.py does for PostgreSQL and DuckDB."""
    from products.connectors.spark import SparkConnector

    original = SparkConnector._results

    def _results(self, sql, params, **kwargs):
        began = time.perf_counter()
        try:
            yield from original(self, sql, params, **kwargs)
        finally:
            STATEMENTS.append((checks._statement_label(sql), time.perf_counter() - began))

    SparkConnector._results = _results


def time_check_run(port, admin) -> dict:
    from products.models import CheckRun
    from products.trust.services.checks import check_run_execute

    run = CheckRun.objects.create(port=port, requested_by=admin)
    STATEMENTS.clear()
    began = time.perf_counter()
    run = check_run_execute(run_id=run.pk)
    seconds = time.perf_counter() - began
    if run.status != "done":
        raise RuntimeError(f"check run ended {run.status}: {run.error}")
    return {
        "seconds": seconds,
        "statements": run.statements,
        "breakdown": list(STATEMENTS),
        "outcomes": {
            r.quality_check.name: [r.outcome, r.observed_value]
            for r in run.results.select_related("quality_check")
        },
    }


def measure_checks(port, admin, repeat: int) -> dict:
    time_statements()
    began = time.perf_counter()
    time_check_run(port, admin)  # warm-up: the session, sqlglot's Spark dialect, the files
    first = time.perf_counter() - began
    time_hand_query(port)
    hand, grouped, runs = [], [], []
    metrics = None
    for _ in range(repeat):
        seconds, metrics = time_hand_query(port)
        hand.append(seconds)
        runs.append(time_check_run(port, admin))
        seconds, grouped_metrics = time_hand_query(port, hand_query_grouped)
        grouped.append(seconds)
        if tuple(grouped_metrics) != tuple(metrics):
            sys.exit(f"The two hand queries differ: {metrics} and {grouped_metrics}")
        print(
            f"  check run {runs[-1]['seconds']:.2f} s ({runs[-1]['statements']} statements), "
            f"hand query {hand[-1]:.2f} s, grouped by id first {grouped[-1]:.2f} s",
            flush=True,
        )
    median_run = statistics.median(r["seconds"] for r in runs)
    typical = min(runs, key=lambda r: abs(r["seconds"] - median_run))
    figures = {
        "hand": statistics.median(hand),
        "grouped": statistics.median(grouped),
        "run": median_run,
        "first_run": first,
        "statements": typical["statements"],
        "breakdown": typical["breakdown"],
        "outcomes": typical["outcomes"],
        "metrics": metrics,
    }
    differ = checks.run_differs(figures)
    if differ:
        sys.exit(f"The check run and the hand query counted differently: {differ}")
    return figures


# --- (b) into pandas -------------------------------------------------------------------


def pyspark_read(endpoint, rows: int):
    """PySpark's own read over Spark Connect: the session the bench keeps open."""
    spark = pyspark_session(endpoint)
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas 3, said by PySpark
        frame = spark.table(f"{SCHEMA}.{TABLE}").limit(rows).toPandas()
    return time.perf_counter() - began, frame


_pyspark_sessions: dict = {}


def pyspark_session(endpoint):
    from products.connectors.spark import spark_session_open

    if endpoint not in _pyspark_sessions:
        _pyspark_sessions[endpoint] = spark_session_open(endpoint)
    return _pyspark_sessions[endpoint]


def measure_pandas(server, endpoint, token: str, rows: int, repeat: int) -> dict:
    serving.client_read(server, token, 10)  # warm-up: the worker's imports and session
    pyspark_read(endpoint, 10)
    client, direct = [], []
    for _ in range(repeat):
        seconds, frame = serving.client_read(server, token, rows)
        client.append(seconds)
        shape, dtypes = frame.shape, dict(frame.dtypes.astype(str))
        masked = frame["customer_email"].dropna().iloc[0]
        del frame
        seconds, frame = pyspark_read(endpoint, rows)
        direct.append(seconds)
        if frame.shape != shape:
            sys.exit(f"The client read {shape}, PySpark {frame.shape}")
        pyspark_dtypes = dict(frame.dtypes.astype(str))
        del frame
        print(f"  client {client[-1]:.2f} s, PySpark toPandas {direct[-1]:.2f} s", flush=True)
    return {
        "client": statistics.median(client),
        "pyspark": statistics.median(direct),
        "shape": shape,
        "dtypes": dtypes,
        "pyspark_dtypes": pyspark_dtypes,
        "masked": masked,
    }


# --- (c) memory serving CSV ------------------------------------------------------------


def measure_csv_memory(server, token: str, sizes: list[int]) -> dict:
    serving.api_csv(server, token, 10)  # warm-up
    idle = serving.proc_kb(server.worker, "VmRSS") / 1024
    figures = {}
    for rows in sizes:
        if not serving.reset_peak(server.worker):
            print("  (cannot reset VmHWM: the peak is since the worker started)")
        seconds, size = serving.api_csv(server, token, rows)
        peak = serving.proc_kb(server.worker, "VmHWM") / 1024
        figures[rows] = {"seconds": seconds, "bytes": size, "peak_mb": peak}
        print(
            f"  {rows:,} rows as CSV: {seconds:.1f} s, {size / 2**20:.0f} MB, "
            f"worker peak {peak:.0f} MB (idle {idle:.0f} MB)",
            flush=True,
        )
    return {"idle_mb": idle, "sizes": figures}


# --- report ----------------------------------------------------------------------------


def report(setup: list[str], c: dict, p: dict, m: dict, rows: int, read_rows: int) -> str:
    lines = [f"- {line}" for line in setup]
    load = os.getloadavg()
    lines.append(f"- load average at the end: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    lines.append("")
    lines.append("| measure | portal s | baseline s | ratio | goal |")
    lines.append("|---|---|---|---|---|")
    lines.append(
        f"| check suite (10 checks, {c['statements']} statements) vs one hand-written "
        f"single-scan Spark SQL query, {rows:,} rows | {c['run']:.2f} | {c['hand']:.2f} "
        f"| {c['run'] / c['hand']:.2f} | <= {GOAL_CHECK_RATIO} |"
    )
    lines.append(
        f"| the same check suite vs the same counts grouped by id first (no count(DISTINCT) "
        f"beside other aggregates), {rows:,} rows | {c['run']:.2f} | {c['grouped']:.2f} "
        f"| {c['run'] / c['grouped']:.2f} | |"
    )
    lines.append(
        f"| {read_rows:,} rows into pandas: notebook client (grantee, email masked) vs "
        f"PySpark `toPandas()` over Spark Connect | {p['client']:.2f} | {p['pyspark']:.2f} "
        f"| {p['client'] / p['pyspark']:.2f} | <= {GOAL_PANDAS_RATIO} |"
    )
    lines.append("")
    parts = ", ".join(f"{label} {seconds:.2f}" for label, seconds in c["breakdown"])
    lines.append(f"Where a check run's time goes (the median run): {parts} (s).")
    lines.append(
        f"Not timed: the first check run of the process (its Spark session, sqlglot's Spark "
        f"dialect) {c['first_run']:.2f} s."
    )
    passed = sum(1 for o, _ in c["outcomes"].values() if o == "pass")
    lines.append(
        f"Outcomes: {passed} passed, {len(c['outcomes']) - passed} failed; every count "
        "equal to the hand query's."
    )
    lines.append(
        f"Types in pandas: the client {_types(p['dtypes'])}; PySpark {_types(p['pyspark_dtypes'])}"
        f" (the grantee's customer_email reads {p['masked']!r})."
    )
    lines.append("")
    sizes = sorted(m["sizes"])
    lines.append("| rows served as CSV (grantee) | seconds | MB sent | gunicorn worker peak MB |")
    lines.append("|---|---|---|---|")
    for size in sizes:
        f = m["sizes"][size]
        lines.append(
            f"| {size:,} | {f['seconds']:.1f} | {f['bytes'] / 2**20:.0f} | {f['peak_mb']:.0f} |"
        )
    small, large = m["sizes"][sizes[0]]["peak_mb"], m["sizes"][sizes[-1]]["peak_mb"]
    lines.append("")
    lines.append(
        f"Worker idle {m['idle_mb']:.0f} MB; peak at {sizes[-1]:,} rows over the peak at "
        f"{sizes[0]:,}: {large / small:.2f} (goal: flat, <= {GOAL_FLAT})."
    )
    return "\n".join(lines)


def _types(dtypes: dict) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in dtypes.items())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--read-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measure (median)")
    parser.add_argument(
        "--driver-memory",
        default="4g",
        help="the local Spark driver's heap (2g cannot pass 10,000,000 rows of 2 files through)",
    )
    parser.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    if args.read_rows >= args.rows:
        sys.exit("--read-rows must be smaller than --rows")

    from products.connectors.spark_server import LocalSparkServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        sys.exit(f"bench/spark.py needs a local Spark: {reason}.")
    config = common.database_config("bench/spark.py")
    recreate_database(config)
    work = Path(tempfile.mkdtemp(prefix="sparkbench-"))
    media_root = work / "media"
    media_root.mkdir()
    os.environ["MEDIA_ROOT"] = str(media_root)  # gunicorn inherits it
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from products.connectors.spark import SparkEndpoint, spark_sessions_close

    if connection.vendor != "postgresql":
        sys.exit("bench/spark.py runs on PostgreSQL only.")
    anchor = int((datetime.now(UTC) - timedelta(minutes=10)).timestamp())
    server = LocalSparkServer(work_dir=work / "spark", driver_memory=args.driver_memory)
    web = None
    try:
        call_command("migrate", verbosity=0)
        folder = work / "orders"
        print(f"Writing {args.rows:,} rows as Parquet...", flush=True)
        parquet_seconds = write_parquet(args.rows, anchor, folder)
        files = sorted(folder.glob("*.parquet"))
        mb = sum(f.stat().st_size for f in files) / 2**20
        print("Starting a local Spark Connect server...", flush=True)
        began = time.perf_counter()
        server.start()
        started = time.perf_counter() - began
        endpoint = SparkEndpoint(host="127.0.0.1", port=server.port)
        define_table(endpoint, folder)
        catalog = make_catalog(server.port, args.rows)
        setup = [
            f"{args.rows:,} rows in {len(files)} Parquet files, {mb:.0f} MB (zstd, written "
            f"by DuckDB in {parquet_seconds:.0f} s), table `{SCHEMA}.{TABLE}` on a local Spark "
            f"Connect server (local[2], driver {args.driver_memory}, started in "
            f"{started:.0f} s)",
        ]

        print(f"(a) The check suite on {args.rows:,} rows...", flush=True)
        check_figures = measure_checks(catalog["port"], catalog["admin"], args.repeat)
        metrics = dict(zip(checks.METRICS, check_figures["metrics"], strict=True))
        setup.append(
            "the data: "
            + ", ".join(f"{m} {v:,}" for m, v in metrics.items() if m in checks.METRICS[:6])
        )

        web = serving.Gunicorn(media_root, work / "gunicorn.log")
        token = catalog["tokens"]["grantee"]
        print(f"(b) {args.read_rows:,} rows into pandas...", flush=True)
        pandas_figures = measure_pandas(web, endpoint, token, args.read_rows, args.repeat)
        print(f"(c) Serving CSV: {args.read_rows:,} then {args.rows:,} rows...", flush=True)
        memory_figures = measure_csv_memory(web, token, [args.read_rows, args.rows])

        text = report(
            setup, check_figures, pandas_figures, memory_figures, args.rows, args.read_rows
        )
        print()
        print(text)
        if args.write_results:
            common.write_results(
                SECTION,
                f"{date.today().isoformat()}, `bench/spark.py --rows {args.rows} --read-rows "
                f"{args.read_rows} --repeat {args.repeat} --driver-memory {args.driver_memory}`"
                f" (medians; Spark {spark_version()}, pyspark-client and the data API's "
                f"gunicorn worker as deployed; {os.cpu_count()} CPUs).\n\n{text}",
            )
    finally:
        if web is not None:
            web.stop()
        for spark in _pyspark_sessions.values():
            spark.stop()
        spark_sessions_close()
        server.stop()
        connection.close()
        if not args.keep:
            drop_database(config)
        shutil.rmtree(work, ignore_errors=True)


def spark_version() -> str:
    from products.connectors.spark_server import spark_home

    home = spark_home()
    jars = sorted(home.glob("jars/spark-core_*.jar")) if home else []
    return jars[0].stem.split("-")[-1] if jars else "?"


if __name__ == "__main__":
    main()
