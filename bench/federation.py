"""Federated SQL benchmark (issue 18): a 10,000,000-row orders table on PostgreSQL and a
1,000,000-row Parquet product, queried through the portal against the same work by hand.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_federation \\
        .venv/bin/python bench/federation.py [--rows 10000000] [--products 1000000] [--repeat 5]

Creates (and drops at the end, unless --keep) the database named in DATABASE_URL (it must
have "bench" in its name) and `<name>_warehouse`, which holds `sales.orders` (sorted by
day, 10,000 orders a day, an index on the day) and three small tables; the Parquet file
of products goes to a temporary media folder. All are registered as products of an
admin, who reads everything (no mask, no row filter: the figures are the engine's).

Measures (each --repeat times, medians compared; every value printed):
(a) a single-source aggregate (orders per country) through `query_start` + `query_rows`
    (the API's path: plan, rewrite, cost estimate, run, audit), against the same SQL
    written by hand on the source with psycopg (goal: at most 1.2 x);
(b) a selective cross-source join (one day of orders on PostgreSQL x the Parquet
    products, per category) run in a worker-like child process (after one query of
    another day, as a worker that served queries before), its wall time and peak RSS,
    against DuckDB joining the same two inputs already exported to local Parquet (goal:
    at most 2 x, memory at most 500 MB), and the rows read from PostgreSQL
    against the rows the day selects (goal: equal);
(c) planning and rewriting a 5-product query (`query_plan` and the statement written
    for its source, nothing run): p50 over 200 plans (goal: at most 20 ms).
Prints figures and ratios; never fails on a time (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path

ORDERS_PER_DAY = 10_000
DAY = "2024-06-01"
WARM_DAY = "2024-05-01"
AGGREGATE = "SELECT country, count(*) AS orders, sum(amount) AS amount FROM {orders} GROUP BY 1"
JOIN = (
    "SELECT p.category, count(*) AS orders, sum(o.amount) AS amount "
    "FROM {orders} o JOIN {products} p ON p.product_id = o.product_id "
    f"WHERE o.order_date = DATE '{DAY}' GROUP BY 1 ORDER BY 1"
)
FIVE = (
    "WITH recent AS (SELECT o.customer_id, o.product_id, o.amount FROM bench.orders o "
    f"WHERE o.order_date >= DATE '{DAY}') "
    "SELECT r.name AS region, c.segment, p.category, k.name AS campaign, sum(x.amount) "
    "FROM recent x JOIN bench.customers c ON c.customer_id = x.customer_id "
    "JOIN bench.regions r ON r.region_id = c.region_id "
    "JOIN bench.campaigns k ON k.campaign_id = c.campaign_id "
    "JOIN bench.products p ON p.product_id = x.product_id "
    "WHERE c.segment IN ('retail', 'pro') AND p.price > 10 GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC"
)


def warehouse_config(config: dict) -> dict:
    return {**config, "NAME": f"{config['NAME']}_warehouse"}


def create_tables(warehouse: dict, rows: int, products: int) -> None:
    with common.connect(warehouse, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA sales")
        conn.execute(
            "CREATE TABLE sales.orders AS SELECT i::bigint AS order_id, "
            "(i % 100000)::int AS customer_id, "
            f"(1 + (i * 7919) % {products})::int AS product_id, "
            "(ARRAY['BE','NL','FR','DE','LU'])[1 + i % 5] AS country, "
            f"(DATE '2022-01-01' + (i / {ORDERS_PER_DAY})::int) AS order_date, "
            "((i % 100000) / 100.0)::numeric(12,2) AS amount "
            f"FROM generate_series(0::bigint, {rows - 1}) AS i"
        )
        conn.execute("CREATE INDEX ON sales.orders (order_date)")
        conn.execute(
            "CREATE TABLE sales.customers AS SELECT i AS customer_id, "
            "(ARRAY['retail','pro','public'])[1 + i % 3] AS segment, (i % 20) AS region_id, "
            "(i % 50) AS campaign_id FROM generate_series(0, 99999) AS i"
        )
        conn.execute(
            "CREATE TABLE sales.regions AS SELECT i AS region_id, 'region ' || i AS name "
            "FROM generate_series(0, 19) AS i"
        )
        conn.execute(
            "CREATE TABLE sales.campaigns AS SELECT i AS campaign_id, 'campaign ' || i AS name "
            "FROM generate_series(0, 49) AS i"
        )
        conn.execute("VACUUM (ANALYZE)")


def write_products(path: Path, products: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = pa.array(range(1, products + 1), pa.int32())
    table = pa.table(
        {
            "product_id": ids,
            "category": pa.array([f"category {i % 40}" for i in range(1, products + 1)]),
            "price": pa.array([(i % 5000) / 10.0 for i in range(1, products + 1)]),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def export_orders(warehouse: dict, path: Path) -> None:
    """The orders as a local Parquet file (the baseline's input), through ADBC."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow.parquet as pq

    uri = (
        f"postgresql://{warehouse.get('USER') or 'postgres'}@{warehouse.get('HOST') or '127.0.0.1'}"
        f":{warehouse.get('PORT') or 5432}/{warehouse['NAME']}"
    )
    with adbc.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT order_id, customer_id, product_id, country, order_date, "
            "amount::float8 AS amount FROM sales.orders ORDER BY order_id"
        )
        reader = cur.fetch_record_batch()
        with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # Every run does its work: the answer cache is measured on its own, at the end.
    os.environ.setdefault("QUERY_CACHE_SECONDS", "0")
    import django

    django.setup()


def make_catalog(config: dict, media: Path) -> None:
    from django.contrib.auth import get_user_model

    from products.catalog.services.ports import source_allow
    from products.catalog.services.products import product_create
    from products.catalog.services.schema_refresh import schema_apply_columns
    from products.choices import LifecycleStatus, PortKind, SourceKind
    from products.connectors import connector_for_port
    from products.models import DataSource, Domain, OutputPort

    warehouse = warehouse_config(config)
    admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", None)
    domain = Domain.objects.create(name="Bench", slug="bench")
    source = DataSource.objects.create(
        name="bench warehouse",
        kind=SourceKind.POSTGRESQL,
        host=config.get("HOST") or "127.0.0.1",
        port=int(config.get("PORT") or 5432),
        database=warehouse["NAME"],
        username=config.get("USER") or "",
    )
    source_allow(source=source, domain=domain, by=admin, schema_name="sales")
    for slug in ("orders", "customers", "regions", "campaigns", "products"):
        product = product_create(domain=domain, name=slug.title(), by=admin, summary="Bench.")
        product.status = LifecycleStatus.PUBLISHED
        product.save(update_fields=["status"])
        if slug == "products":
            port = OutputPort.objects.create(
                product=product,
                name="Products",
                slug="products",
                kind=PortKind.FILE,
                file_path="uploads/bench/products.parquet",
                file_format="parquet",
            )
        else:
            port = OutputPort.objects.create(
                product=product,
                name=slug.title(),
                slug=slug,
                kind=PortKind.TABLE,
                source=source,
                schema_name="sales",
                table_name=slug,
            )
        with connector_for_port(port) as connector:
            schema_apply_columns(port=port, columns=connector.describe())


def admin_user():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="bench-admin")


def _report(result: dict) -> None:
    status = Path("/proc/self/status").read_text()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
    print(json.dumps({**result, "peak_kb": peak_kb}), flush=True)


def child_join() -> None:
    """(b) in this process, as a worker would run it; report time, rows and peak RSS."""
    _django()
    import adbc_driver_postgresql.dbapi  # noqa: F401 - loaded before the clock, as in a worker
    import duckdb  # noqa: F401
    import pyarrow  # noqa: F401

    from sharing.federation.services.running import query_rows, query_start

    # A worker serves many queries: its first one opens the connections it keeps (the
    # ADBC template, DuckDB's extension state). Warm up on another day, then measure.
    warm = JOIN.format(orders="bench.orders", products="bench.products").replace(DAY, WARM_DAY)
    query_rows(query_start(user=admin_user(), sql=warm))
    began = time.perf_counter()
    running = query_start(
        user=admin_user(), sql=JOIN.format(orders="bench.orders", products="bench.products")
    )
    answer = query_rows(running)
    seconds = time.perf_counter() - began
    _report(
        {
            "seconds": seconds,
            "rows": answer["rows"],
            "engine": answer["engine"],
            "source_rows": sum(running.source_rows.values()),
        }
    )


def run_child(media: Path) -> tuple[dict, float]:
    env = {**os.environ, "MEDIA_ROOT": str(media)}
    process = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child-join"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        env=env,
    )
    if process.returncode != 0:
        raise RuntimeError(f"the child exited with {process.returncode}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    return result, result.pop("peak_kb") / 1024


def by_hand_aggregate(warehouse: dict) -> tuple[float, list]:
    began = time.perf_counter()
    with common.connect(warehouse) as conn:
        rows = conn.execute(AGGREGATE.format(orders="sales.orders")).fetchall()
    return time.perf_counter() - began, rows


def portal_aggregate() -> tuple[float, dict]:
    from sharing.federation.services.running import query_rows, query_start

    began = time.perf_counter()
    answer = query_rows(query_start(user=admin_user(), sql=AGGREGATE.format(orders="bench.orders")))
    return time.perf_counter() - began, answer


def duckdb_join(orders: Path, products: Path) -> tuple[float, list]:
    import duckdb

    began = time.perf_counter()
    conn = duckdb.connect()
    rows = conn.execute(
        JOIN.format(orders=f"read_parquet('{orders}')", products=f"read_parquet('{products}')")
    ).fetchall()
    conn.close()
    return time.perf_counter() - began, rows


def plan_times(iterations: int) -> list[float]:
    from sharing.federation.services.planning import query_plan

    user = admin_user()
    times = []
    for _ in range(iterations):
        began = time.perf_counter()
        plan = query_plan(user=user, sql=FIVE)
        _written(plan)
        times.append(time.perf_counter() - began)
    return times


def _written(plan) -> None:
    """The statements the (federated) plan would send, written, nothing run: each table
    reference's pushed-down read on its source, and the query DuckDB runs over them."""
    from products.connectors import connector_for_port
    from sharing.federation.services.running import pushed_statement, write_statement

    relations = {}
    for item in plan.governed:
        with connector_for_port(item.plan.port) as connector:  # opens nothing: names only
            if item.location[0] != "file":
                pushed_statement(item, connector)
        name = f'"input_{item.reference.index}"'
        relations[item.reference.marker] = lambda placeholder, name=name: (name, [])
    write_statement(
        plan.parsed.tree, dialect="duckdb", relations=relations, placeholder=lambda i: "?"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--child-join", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_join:
        return child_join()

    config = common.database_config("bench/federation.py")
    warehouse = warehouse_config(config)
    media = Path(tempfile.mkdtemp(prefix="portal-bench-federation-"))
    os.environ["MEDIA_ROOT"] = str(media)
    common.recreate_database(config)
    common.recreate_database(warehouse)
    _django()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        print(f"Generating {args.rows:,} orders and {args.products:,} products...", flush=True)
        began = time.perf_counter()
        create_tables(warehouse, args.rows, args.products)
        products_file = media / "uploads" / "bench" / "products.parquet"
        write_products(products_file, args.products)
        orders_file = media / "orders.parquet"
        export_orders(warehouse, orders_file)
        print(f"  ({time.perf_counter() - began:.0f} s)")
        make_catalog(config, media)
        selected = args.rows and min(ORDERS_PER_DAY, args.rows)

        hands, portals, joins, ducks, peaks = [], [], [], [], []
        for attempt in range(args.repeat):
            print(f"[{attempt + 1}/{args.repeat}]", flush=True)
            hand, hand_rows = by_hand_aggregate(warehouse)
            portal, answer = portal_aggregate()
            if sorted((r[0], r[1]) for r in answer["rows"]) != sorted(
                (r[0], r[1]) for r in hand_rows
            ):
                sys.exit(f"The portal's aggregate differs: {answer['rows']} vs {hand_rows}")
            hands.append(hand)
            portals.append(portal)
            connection.close()
            joined, peak = run_child(media)
            duck, duck_rows = duckdb_join(orders_file, products_file)
            if [r[1] for r in joined["rows"]] != [r[1] for r in duck_rows]:
                sys.exit(f"The federated join differs: {joined['rows'][:3]} vs {duck_rows[:3]}")
            joins.append(joined)
            ducks.append(duck)
            peaks.append(peak)
            print(
                f"  aggregate: portal {portal:.3f} s, by hand {hand:.3f} s; join: portal "
                f"{joined['seconds']:.3f} s ({peak:.0f} MB, {joined['source_rows']:,} rows "
                f"read from PostgreSQL), DuckDB on local Parquet {duck:.3f} s",
                flush=True,
            )
        plans = plan_times(200)
        p50 = statistics.median(plans) * 1000
        p90 = sorted(plans)[int(len(plans) * 0.9)] * 1000
        hand, portal = statistics.median(hands), statistics.median(portals)
        join = statistics.median(j["seconds"] for j in joins)
        duck = statistics.median(ducks)
        source_rows = joins[-1]["source_rows"]
        lines = [
            f"PostgreSQL {common.pg_version(config)}, {args.rows:,} orders, "
            f"{args.products:,} Parquet products, medians of {args.repeat}.",
            "",
            "| measure | portal | baseline | ratio | goal |",
            "|---|---|---|---|---|",
            f"| (a) single-source aggregate | {portal:.3f} s | {hand:.3f} s (by hand) | "
            f"{portal / hand:.2f} x | <= 1.2 x |",
            f"| (b) selective cross-source join | {join:.3f} s | {duck:.3f} s (DuckDB on "
            f"local Parquet) | {join / duck:.2f} x | <= 2 x |",
            f"| (b) peak memory of the worker | {statistics.median(peaks):.0f} MB | | | "
            "<= 500 MB |",
            f"| (b) rows read from PostgreSQL | {source_rows:,} | {selected:,} (the day's) | "
            f"{source_rows / max(selected, 1):.2f} | equal |",
            f"| (c) planning + rewriting, 5 products | p50 {p50:.1f} ms (p90 {p90:.1f}) | | |"
            " <= 20 ms |",
            "",
            "Every value: aggregate portal "
            + " / ".join(f"{v:.3f}" for v in portals)
            + ", by hand "
            + " / ".join(f"{v:.3f}" for v in hands)
            + "; join portal "
            + " / ".join(f"{j['seconds']:.3f}" for j in joins)
            + ", DuckDB "
            + " / ".join(f"{v:.3f}" for v in ducks)
            + ".",
        ]
        print("\n".join(lines))
        common.write_results("## Federated SQL (bench/federation.py)", "\n".join(lines))
    finally:
        connection.close()
        if not args.keep:
            common.drop_database(config)
            common.drop_database(warehouse)


if __name__ == "__main__":
    main()
