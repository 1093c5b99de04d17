"""Syncs (reverse ETL) benchmark: a 1,000,000-row PostgreSQL table synced into a
PostgreSQL table on the same server, against the same rows moved by hand.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_syncs \\
        .venv/bin/python bench/syncs.py [--rows 1000000] [--repeat 3] [--keep] \\
        [--no-source-key]

Creates (and at the end drops, unless --keep) the database named in DATABASE_URL, which
must be PostgreSQL and have "bench" in its name, and beside it `<name>_warehouse`, which
holds the source table (`warehouse.leads`, its primary key id, as a warehouse table
keyed by id has; `--no-source-key` leaves it without one) and the destination table
(`crm.leads`, keyed by id). Registers the source as the product's port and the table as
a destination, and creates a sync of every column (upsert by id) as an admin.

Measures:
(a) the first sync of every row: `sync_run_execute` (the real service) in a separate
    worker-like process (`bench/syncs.py --worker RUN_ID`), its wall time and peak RSS
    (VmHWM, reported by the child), against COPY of the same rows out of the source and
    into a staging table plus one INSERT ... ON CONFLICT, by hand with psycopg
    (goal: at most 2 x; memory at most 300 MB);
(b) a second run after 1% of the rows changed: it must send exactly those; its planning
    time (the governed key + hash read, diffed against the acknowledged
    state) against one scan of key + md5 of the row on the source, by hand (goal: at most
    1.5 x).

Each measure runs --repeat times (the sync forgets its state between rounds, so each
round's first run is a first run); the medians are compared, every value is printed.
Prints figures and ratios; never fails on a time (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path

COLUMNS = {
    "id": "bigint",
    "email": "text",
    "country": "text",
    "score": "double precision",
    "amount": "numeric(12,2)",
    "created_at": "timestamptz",
}
SOURCE = '"warehouse"."leads"'
DEST = '"crm"."leads"'
HAND = '"crm"."leads_by_hand"'


def warehouse_config(config: dict) -> dict:
    return {**config, "NAME": f"{config['NAME']}_warehouse"}


def create_tables(warehouse: dict, rows: int, *, source_key: bool) -> float:
    began = time.perf_counter()
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
    with common.connect(warehouse, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA warehouse")
        conn.execute("CREATE SCHEMA crm")
        conn.execute(
            f"CREATE TABLE {SOURCE} AS SELECT i::bigint AS id, 'lead' || i || '@example.com' "
            "AS email, (ARRAY['BE','NL','FR','DE'])[1 + i % 4] AS country, "
            "(i % 997) / 997.0 AS score, ((i % 100000) / 100.0)::numeric(12,2) AS amount, "
            "timestamptz '2024-01-01' + i * interval '1 second' AS created_at "
            f"FROM generate_series(1, {rows}) AS i"
        )
        if source_key:
            conn.execute(f"ALTER TABLE {SOURCE} ADD PRIMARY KEY (id)")
        conn.execute(f"VACUUM (ANALYZE) {SOURCE}")
        for table in (DEST, HAND):
            conn.execute(f"CREATE TABLE {table} ({columns}, PRIMARY KEY (id))")
    return time.perf_counter() - began


def make_catalog(config: dict) -> dict:
    from django.contrib.auth import get_user_model

    from products.catalog.services.ports import source_allow
    from products.catalog.services.products import product_create
    from products.catalog.services.schema_refresh import schema_apply_columns
    from products.choices import PortKind, SourceKind
    from products.connectors import connector_for_port
    from products.models import DataSource, Domain, OutputPort
    from sharing.models import SyncDestination
    from sharing.models.syncs import DestinationKind
    from sharing.syncs.services.syncs import sync_create

    warehouse = warehouse_config(config)
    admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", None)
    domain = Domain.objects.create(name="Bench", slug="bench")
    host, port_number = config.get("HOST") or "127.0.0.1", int(config.get("PORT") or 5432)
    source = DataSource.objects.create(
        name="bench warehouse",
        kind=SourceKind.POSTGRESQL,
        host=host,
        port=port_number,
        database=warehouse["NAME"],
        username=config.get("USER") or "",
    )
    source_allow(source=source, domain=domain, by=admin, schema_name="warehouse")
    product = product_create(domain=domain, name="Leads", by=admin, summary="Bench.")
    port = OutputPort.objects.create(
        product=product,
        name="Leads",
        slug="leads",
        kind=PortKind.TABLE,
        source=source,
        schema_name="warehouse",
        table_name="leads",
    )
    with connector_for_port(port) as connector:
        schema_apply_columns(port=port, columns=connector.describe())
    destination = SyncDestination.objects.create(
        name="CRM",
        kind=DestinationKind.POSTGRESQL,
        host=host,
        port=port_number,
        database=warehouse["NAME"],
        username=config.get("USER") or "",
        schema_name="crm",
        table_name="leads",
    )
    sync = sync_create(
        by=admin,
        product=product,
        destination=destination,
        name="Leads to CRM",
        columns=list(COLUMNS),
        key_columns=["id"],
    )
    return {"admin": admin, "sync": sync}


def run_child(args: list[str]) -> tuple[dict, float]:
    """`bench/syncs.py <args>` in its own process; what it printed (JSON) and its peak RSS
    in MB (the child's own VmHWM, see bench/checks.py run_child)."""
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
    status = Path("/proc/self/status").read_text()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
    print(json.dumps({**result, "peak_kb": peak_kb}), flush=True)


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


def worker(run_id: int) -> None:
    """Execute one sync run here, as a worker would, and report its figures."""
    _django()
    # Loaded before the clock starts, as a worker has them after its first task: the
    # drivers, and the URL configuration (events carry the product's address).
    import adbc_driver_postgresql.dbapi  # noqa: F401
    import pyarrow  # noqa: F401
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every URL module once

    from sharing.syncs.services.runs import sync_run_execute

    began = time.perf_counter()
    run = sync_run_execute(run_id=run_id)
    seconds = time.perf_counter() - began
    _report(
        {
            "seconds": seconds,
            "status": run.status,
            "error": run.error,
            "added": run.added,
            "changed": run.changed,
            "removed": run.removed,
            "rejected": run.rejected,
            "source_rows": run.source_rows,
            "timings": run.detail.get("timings", {}),
        }
    )


def run_sync(sync) -> tuple[dict, float]:
    from sharing.models import SyncRun

    run = SyncRun.objects.create(sync=sync)
    return run_child(["--worker", str(run.pk)])


def by_hand(warehouse: dict) -> float:
    """COPY the rows out of the source into a staging table, then one INSERT ... ON
    CONFLICT into the destination: what the sync's first run is compared with."""
    columns = ", ".join(COLUMNS)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in COLUMNS if name != "id")
    began = time.perf_counter()
    with common.connect(warehouse) as source, common.connect(warehouse) as dest:
        with source.cursor() as out, dest.cursor() as into:
            into.execute(f"CREATE TEMPORARY TABLE staging (LIKE {HAND})")
            with (
                out.copy(f"COPY (SELECT {columns} FROM {SOURCE}) TO STDOUT") as reader,
                into.copy(f"COPY staging ({columns}) FROM STDIN") as writer,
            ):
                for data in reader:
                    writer.write(data)
            into.execute(
                f"INSERT INTO {HAND} ({columns}) SELECT {columns} FROM staging "
                f"ON CONFLICT (id) DO UPDATE SET {updates}"
            )
        dest.commit()
    return time.perf_counter() - began


def key_hash_scan(warehouse: dict) -> float:
    """One scan of key + md5 of the row on the source, streamed to the client."""
    columns = ", ".join(COLUMNS)
    began = time.perf_counter()
    with common.connect(warehouse) as conn, conn.cursor() as cur:
        with cur.copy(
            f"COPY (SELECT id::text, md5(ROW({columns})::text) FROM {SOURCE}) TO STDOUT"
        ) as reader:
            for _ in reader:
                pass
    return time.perf_counter() - began


def forget(sync) -> None:
    from sharing.models import SyncRecordState

    SyncRecordState.objects.filter(sync=sync).delete()


def median_by(items: list, key):
    return sorted(items, key=key)[len(items) // 2]


def fmt_all(values) -> str:
    return " / ".join(f"{value:.2f}" for value in values)


def count(warehouse: dict, table: str) -> int:
    with common.connect(warehouse) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measure (median)")
    parser.add_argument(
        "--no-source-key",
        action="store_true",
        help="the source table without its primary key (id): the sync then counts distinct "
        "keys on a first run and looks for repeated keys in every plan",
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker)

    config = common.database_config("bench/syncs.py")
    warehouse = warehouse_config(config)
    common.recreate_database(config)
    common.recreate_database(warehouse)
    _django()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        print(f"Generating {args.rows:,} rows...", flush=True)
        generated = create_tables(warehouse, args.rows, source_key=not args.no_source_key)
        catalog = make_catalog(config)
        sync = catalog["sync"]
        connection.close()

        firsts, hands, seconds_, scans = [], [], [], []
        changed = args.rows // 100
        for attempt in range(args.repeat):
            if attempt:  # the sync forgets what it sent: the next run is a first one again
                with common.connect(warehouse, autocommit=True) as conn:
                    conn.execute(f"TRUNCATE {DEST}")
                    conn.execute(f"TRUNCATE {HAND}")
                forget(sync)
            print(f"[{attempt + 1}/{args.repeat}] First sync of every row...", flush=True)
            first, first_mb = run_sync(sync)
            if first["status"] != "succeeded" or first["added"] != args.rows:
                sys.exit(f"The first run did not send every row: {first}")
            sent = count(warehouse, DEST)
            print("The same rows by hand (COPY to a staging table + INSERT ... ON CONFLICT)...")
            hands.append(by_hand(warehouse))
            if count(warehouse, HAND) != sent:
                sys.exit("The hand-made copy does not hold the same rows.")
            firsts.append((first, first_mb))

            with common.connect(warehouse, autocommit=True) as conn:
                conn.execute(f"UPDATE {SOURCE} SET score = score + 1 WHERE id % 100 = 0")
                conn.execute(f"VACUUM (ANALYZE) {SOURCE}")
            print(f"Second run after {changed:,} rows changed...", flush=True)
            second, second_mb = run_sync(sync)
            if second["status"] != "succeeded" or second["changed"] != changed:
                sys.exit(f"The second run did not send exactly the {changed:,} changes: {second}")
            seconds_.append((second, second_mb))
            scans.append(key_hash_scan(warehouse))

        # The middle run of each measure (by the measure itself), and its figures.
        first, first_mb = median_by(firsts, lambda r: r[0]["seconds"])
        second, second_mb = median_by(seconds_, lambda r: r[0]["timings"].get("plan_s", 0))
        hand = median_by(hands, lambda h: h)
        scan = median_by(scans, lambda h: h)
        spread = (
            f"(of {args.repeat}: first sync {fmt_all(r[0]['seconds'] for r in firsts)}, "
            f"by hand {fmt_all(hands)}, planning "
            f"{fmt_all(r[0]['timings'].get('plan_s', 0) for r in seconds_)}, "
            f"scan {fmt_all(scans)})"
        )
        t1, t2 = first["timings"], second["timings"]
        lines = [
            f"Rows: {args.rows:,} (generated in {generated:.0f} s), 6 columns, "
            f"{'no key' if args.no_source_key else 'primary key (id)'} on the source, "
            "same server. "
            f"Medians {spread}.",
            "",
            "| measure | sync | by hand | ratio | goal |",
            "|---|---|---|---|---|",
            f"| first sync, {args.rows:,} rows | {first['seconds']:.2f} s | {hand:.2f} s "
            f"(COPY + INSERT ON CONFLICT) | {first['seconds'] / hand:.2f} | <= 2 |",
            f"| second run, planning ({changed:,} changed) | {t2.get('plan_s', 0):.2f} s | "
            f"{scan:.2f} s (key + md5 scan) | {t2.get('plan_s', 0) / scan:.2f} | <= 1.5 |",
            f"| second run, whole ({second['changed']:,} sent) | {second['seconds']:.2f} s | | | |",
            "",
            f"Worker peak RSS: first run {first_mb:.0f} MB, second run {second_mb:.0f} MB "
            "(goal <= 300 MB).",
            f"First run: plan {t1.get('plan_s', 0):.2f} s, fetch + send + state "
            f"{t1.get('send_s', 0):.2f} s (of which the destination writer "
            f"{t1.get('destination_s', 0):.2f} s; the state and counts "
            f"{t1.get('state_s', 0):.2f} s, in a thread of their own beside the sends). "
            f"Second run: plan {t2.get('plan_s', 0):.2f} s ("
            + ", ".join(
                f"{name[5:-2]} {seconds:.2f} s"
                for name, seconds in t2.items()
                if name.startswith("plan_") and name != "plan_s"
            )
            + f"), send {t2.get('send_s', 0):.2f} s.",
        ]
        print("\n".join(lines), flush=True)
    finally:
        if not args.keep:
            connection.close()
            common.drop_database(config)
            common.drop_database(warehouse)


if __name__ == "__main__":
    main()
