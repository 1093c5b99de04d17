"""Metrics benchmark: a metric's values through the API against the hand-written SQL query
computing the same numbers, on a 10-million-row PostgreSQL table and the same rows as a
Parquet file.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_metricsbench \\
        .venv/bin/python bench/metrics.py [--rows 10000000] [--repeat 5] [--write-results]

Creates (and at the end drops, unless --keep) the database named in DATABASE_URL, which
must be PostgreSQL and have "bench" in its name. Generates `warehouse.orders` with
generate_series and the same rows as a zstd Parquet file with DuckDB (the integer formulas
of bench/checks.py), registers both as output ports of the product `bench.orders`, and
defines five metrics on each: net revenue per month, per month and country, distinct
customers per country, a ratio (average unit price) per week, and net revenue per month
for a grantee whose grant filters rows (country in BE, NL).

For each metric it measures, --repeat times after one warm-up each, alternating:
- the metric: `GET /api/v1/metrics/<key>/values/?...` through Django's test client (the
  whole request: authentication, the access decision, compiling, the query on the source,
  the audit event, JSON), signed in as the admin (or the grantee);
- the hand-written SQL computing the same numbers, through the same connector (a new
  connection each time, as the metric opens one), written as a person would write it;
and prints the medians and the ratio metric / hand SQL (goal <= 1.2). It checks that both
return the same numbers.

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
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path
from bench.checks import SCHEMA, select_rows  # noqa: E402 - the same generated rows
from bench.common import RESULTS, drop_database, recreate_database  # noqa: E402

SECTION = "## Metrics (issue 6)"
GOAL_RATIO = 1.2
TABLE = "orders"
PARQUET = "bench/orders.parquet"
EXCLUDED = "status NOT IN ('cancelled', 'returned')"
GRANT_FILTER = [{"column": "country", "op": "in", "value": ["BE", "NL"]}]

# name -> (metric definition, API query, hand-written SQL with {t} the relation and
# {double} the engine's floating-point type, who asks)
CASES = {
    "net revenue per month": (
        dict(
            aggregation="sum",
            column="amount",
            filters=[{"column": "status", "op": "not in", "value": ["cancelled", "returned"]}],
            dimensions=["country"],
            time_column="created_at",
        ),
        {"grain": "month"},
        "SELECT CAST(date_trunc('month', created_at AT TIME ZONE 'UTC') AS DATE), sum(amount) "
        f"FROM {{t}} WHERE {EXCLUDED} GROUP BY 1 ORDER BY 1",
        "admin",
    ),
    "net revenue per month and country": (
        None,  # the same metric
        {"grain": "month", "dimensions": "country"},
        "SELECT CAST(date_trunc('month', created_at AT TIME ZONE 'UTC') AS DATE), country, "
        f"sum(amount) FROM {{t}} WHERE {EXCLUDED} GROUP BY 1, 2 ORDER BY 1, 2",
        "admin",
    ),
    "distinct customers per country": (
        dict(aggregation="count_distinct", column="customer_email", dimensions=["country"]),
        {"dimensions": "country"},
        "SELECT country, count(DISTINCT customer_email) FROM {t} GROUP BY 1 ORDER BY 1",
        "admin",
    ),
    "average unit price per week (ratio)": (
        dict(
            aggregation="sum",
            column="amount",
            denominator_aggregation="sum",
            denominator_column="quantity",
            filters=[{"column": "status", "op": "not in", "value": ["cancelled", "returned"]}],
            time_column="created_at",
        ),
        {"grain": "week"},
        "SELECT CAST(date_trunc('week', created_at AT TIME ZONE 'UTC') AS DATE), "
        "CAST(sum(amount) AS {double}) / NULLIF(CAST(sum(quantity) AS {double}), 0) "
        f"FROM {{t}} WHERE {EXCLUDED} GROUP BY 1 ORDER BY 1",
        "admin",
    ),
    "net revenue per month, grantee with a row filter": (
        None,  # the first metric
        {"grain": "month"},
        "SELECT CAST(date_trunc('month', created_at AT TIME ZONE 'UTC') AS DATE), sum(amount) "
        f"FROM {{t}} WHERE {EXCLUDED} AND country IN ('BE', 'NL') GROUP BY 1 ORDER BY 1",
        "grantee",
    ),
}
SLUGS = {
    "net revenue per month": "revenue",
    "net revenue per month and country": "revenue",
    "distinct customers per country": "customers",
    "average unit price per week (ratio)": "unit-price",
    "net revenue per month, grantee with a row filter": "revenue",
}


# --- data and catalog ------------------------------------------------------------------


def create_postgres_table(rows: int, anchor: int) -> tuple[float, str]:
    from django.db import connection

    began = time.perf_counter()
    relation = f'"{SCHEMA}"."{TABLE}"'
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
        cursor.execute(
            f"CREATE TABLE {relation} AS {select_rows('postgresql', rows, anchor)} ORDER BY i"
        )
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {relation}")
        cursor.execute("SELECT pg_size_pretty(pg_table_size(%s))", [f"{SCHEMA}.{TABLE}"])
        size = cursor.fetchone()[0]
    return time.perf_counter() - began, size


def create_parquet_file(rows: int, anchor: int, media_root: Path) -> tuple[float, float]:
    import duckdb

    began = time.perf_counter()
    path = media_root / PARQUET
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(":memory:") as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY ({select_rows('duckdb', rows, anchor)} ORDER BY i) TO '{path}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
    return time.perf_counter() - began, path.stat().st_size / 2**20


def make_catalog(config: dict) -> dict:
    """bench.orders with a PostgreSQL port and a Parquet port, the metrics on each, an
    admin and a grantee (country in BE, NL; every column)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from products.catalog.services.products import product_create
    from products.catalog.services.schema_refresh import schema_apply_columns
    from products.choices import LifecycleStatus, PortKind, SourceKind
    from products.connectors import connector_for_port
    from products.definitions.services.metrics import metric_create
    from products.models import DataProduct, DataSource, Domain, OutputPort
    from sharing.models import AccessGrant

    users = get_user_model().objects
    admin = users.create_superuser("bench-admin", "admin@example.com", None)
    grantee = users.create_user("bench-grantee", "grantee@example.com", None)
    domain = Domain.objects.create(name="Bench", slug="bench")
    source = DataSource.objects.create(
        name="bench warehouse",
        kind=SourceKind.POSTGRESQL,
        host=config.get("HOST") or "127.0.0.1",
        port=int(config.get("PORT") or 5432),
        database=config["NAME"],
        username=config.get("USER") or "",
    )
    product = product_create(domain=domain, name="Orders", slug="orders", by=admin, summary="B.")
    DataProduct.objects.filter(pk=product.pk).update(status=LifecycleStatus.PUBLISHED)
    ports = {
        "postgresql": OutputPort.objects.create(
            product=product,
            name="Orders table",
            slug="table",
            kind=PortKind.TABLE,
            source=source,
            schema_name=SCHEMA,
            table_name=TABLE,
        ),
        "parquet": OutputPort.objects.create(
            product=product,
            name="Orders file",
            slug="file",
            kind=PortKind.FILE,
            file_path=PARQUET,
            file_format="parquet",
        ),
    }
    for port in ports.values():
        with connector_for_port(port) as connector:
            schema_apply_columns(port=port, columns=connector.describe())
        for name, (definition, *_rest) in CASES.items():
            if definition is None:
                continue
            metric_create(
                by=admin,
                port=port,
                key=f"bench.{SLUGS[name]}-{port.slug}",
                name=name,
                **definition,
            )
    AccessGrant.objects.create(
        product=product,
        user=grantee,
        row_filter=GRANT_FILTER,
        expires_at=timezone.now() + timedelta(days=30),
        reason="Bench.",
        granted_by=admin,
    )
    return {"users": {"admin": admin, "grantee": grantee}, "ports": ports}


# --- measuring -------------------------------------------------------------------------


def _number(value):
    return float(value) if isinstance(value, Decimal) else value


def _rows_of(data: dict) -> list[tuple]:
    return [
        tuple(
            date.fromisoformat(row[c]) if c == "period" else _number(row[c])
            for c in data["columns"]
        )
        for row in data["rows"]
    ]


def _close(a: list[tuple], b: list[tuple]) -> bool:
    """The same rows; numbers equal up to float rounding (JSON carries doubles)."""
    if len(a) != len(b):
        return False
    for row_a, row_b in zip(a, b, strict=True):
        for x, y in zip(row_a, row_b, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if x is None or y is None or abs(x - y) > 1e-9 * max(1.0, abs(x)):
                    return False
            elif x != y:
                return False
    return True


def time_metric(client, key: str, query: dict) -> tuple[float, dict, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        began = time.perf_counter()
        response = client.get(f"/api/v1/metrics/{key}/values/", query)
        seconds = time.perf_counter() - began
    if response.status_code != 200:
        sys.exit(f"{key} answered {response.status_code}: {response.content[:300]!r}")
    return seconds, response.json(), len(captured)


def time_hand(port, sql: str) -> tuple[float, list[tuple]]:
    from products.connectors import connector_for_port

    began = time.perf_counter()
    with connector_for_port(port) as connector:
        double = "DOUBLE PRECISION" if connector.dialect == "postgresql" else "DOUBLE"
        rows = connector.fetch(sql.format(t=connector.relation_sql(), double=double))
    seconds = time.perf_counter() - began
    return seconds, [tuple(_number(v) for v in row) for row in rows]


def measure(catalog: dict, repeat: int) -> list[dict]:
    from django.test import Client

    clients = {}
    for who, user in catalog["users"].items():
        clients[who] = Client()
        clients[who].force_login(user)
    figures = []
    for engine, port in catalog["ports"].items():
        for name, (_definition, query, sql, who) in CASES.items():
            key = f"bench.{SLUGS[name]}-{port.slug}"
            client = clients[who]
            _, data, queries = time_metric(client, key, query)  # warm-up
            _, hand_rows = time_hand(port, sql)
            if not _close(_rows_of(data), hand_rows):
                sys.exit(f"{engine}, {name}: the metric and the hand-written SQL disagree")
            metric_times, hand_times = [], []
            for _ in range(repeat):
                metric_times.append(time_metric(client, key, query)[0])
                hand_times.append(time_hand(port, sql)[0])
            figure = {
                "engine": engine,
                "name": name,
                "metric": statistics.median(metric_times),
                "hand": statistics.median(hand_times),
                "groups": len(hand_rows),
                "queries": queries,
            }
            figure["ratio"] = figure["metric"] / figure["hand"]
            figures.append(figure)
            print(
                f"  {engine:10} {name:50} metric {figure['metric']:.3f} s, hand SQL "
                f"{figure['hand']:.3f} s, ratio {figure['ratio']:.2f}",
                flush=True,
            )
    return figures


def report(figures: list[dict], setup: list[str], rows: int, repeat: int) -> str:
    lines = [f"- {line}" for line in setup]
    lines += [
        f"- load average at the end: {os.getloadavg()[0]:.2f} (1 min), "
        f"{os.getloadavg()[1]:.2f} (5 min)",
        "",
        "| engine | metric | groups | API request s | hand-written SQL s | ratio | "
        "metadata queries per request |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f['engine']} | {f['name']} | {f['groups']} | {f['metric']:.3f} | "
            f"{f['hand']:.3f} | {f['ratio']:.2f} | {f['queries']} |"
        )
    worst = max(figures, key=lambda f: f["ratio"])
    met = all(f["ratio"] <= GOAL_RATIO for f in figures)
    lines += [
        "",
        f"Goal, a metric at most {GOAL_RATIO} x the hand-written SQL at {rows:,} rows: "
        + ("met by every row" if met else "NOT met")
        + f" (worst {worst['ratio']:.2f}, {worst['engine']}, {worst['name']}). "
        f"Medians of {repeat} runs after one warm-up each, alternating metric and hand SQL.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per metric (median)")
    parser.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()

    config = common.database_config("bench/metrics.py")
    recreate_database(config)
    media_root = Path(tempfile.mkdtemp(prefix="metricsbench-media-"))
    os.environ["MEDIA_ROOT"] = str(media_root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/metrics.py runs on PostgreSQL only.")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.SECURE_SSL_REDIRECT = False
    anchor = int((datetime.now(UTC) - timedelta(minutes=10)).timestamp())
    try:
        call_command("migrate", verbosity=0)
        print(f"Generating {args.rows:,} rows in PostgreSQL...", flush=True)
        pg_seconds, pg_size = create_postgres_table(args.rows, anchor)
        print(f"Writing the same {args.rows:,} rows as Parquet...", flush=True)
        pq_seconds, pq_mb = create_parquet_file(args.rows, anchor, media_root)
        setup = [
            f"{args.rows:,} rows: PostgreSQL table {pg_size} (generated and vacuumed in "
            f"{pg_seconds:.0f} s), Parquet file {pq_mb:.0f} MB (zstd, {pq_seconds:.0f} s)"
        ]
        catalog = make_catalog(config)
        print("Measuring...", flush=True)
        figures = measure(catalog, args.repeat)
        text = report(figures, setup, args.rows, args.repeat)
        print()
        print(text)
        if args.write_results:
            import duckdb

            common.write_results(
                SECTION,
                f"{date.today().isoformat()}, `bench/metrics.py --rows {args.rows} --repeat "
                f"{args.repeat}` (the API request through Django's test client, in-process, "
                f"against the hand-written query through the same connector; PostgreSQL "
                f"{common.pg_version(config)}, DuckDB {duckdb.__version__}, "
                f"{os.cpu_count()} CPUs).\n\n{text}",
            )
    finally:
        if not args.keep:
            drop_database(config)
            shutil.rmtree(media_root, ignore_errors=True)
        else:
            print(f"Kept the database {config['NAME']} and the files in {media_root}")


if __name__ == "__main__":
    main()
