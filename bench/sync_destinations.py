"""Sync destination writers (issue 17): the HTTP destination's throughput and exactly-once
delivery under 429s, and the PostgreSQL table writer against COPY + INSERT ... ON CONFLICT by hand.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_syncs_dest SECRET_KEY=x \\
        .venv/bin/python bench/sync_destinations.py [--records 100000] [--rows 1000000]

HTTP: the local receiver (tests/sharing/syncs/receiver.py) runs in another process; the
writer sends `--records` records in 500-record batches (JSON encoding included).
Baseline in the same run: the same bodies, built beforehand, POSTed in a bare urllib3 loop
on one kept connection (the floor: the receiver and one HTTP request on this machine).
Then a receiver answering 429 (Retry-After: 0) to every 10th request: the records applied
and the duplicates, as the receiver counts them by idempotency key.

PostgreSQL: `--rows` rows (6 columns) upserted by key into an empty table by the writer, in
its batches (one transaction each); baseline: COPY of the same rows into a temporary staging
table plus one INSERT ... ON CONFLICT (key) DO UPDATE, by hand, into another empty table.
Tables are created in DATABASE_URL's database and dropped at the end.
Prints figures; never fails on a time."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "1"  # the receiver is on 127.0.0.1

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
import urllib3  # noqa: E402

from sharing.models import SyncDestination  # noqa: E402
from sharing.syncs.destinations import OutgoingBatch, destination_writer  # noqa: E402

HTTP_BATCH = 500
RUN_ID = 1


def records(count: int) -> list[dict]:
    return [
        {
            "lead_id": f"lead-{n:08d}",
            "owner": f"owner-{n % 97}",
            "score": n % 1000,
            "probability": (n % 100) / 100,
            "segment": ("smb", "mid", "enterprise")[n % 3],
            "updated_at": "2026-12-01T10:00:00Z",
        }
        for n in range(count)
    ]


def batches(rows: list[dict], size: int) -> list[OutgoingBatch]:
    out = []
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        keys = [json.dumps([row["lead_id"]]) for row in part]
        out.append(
            OutgoingBatch(
                operation="upsert",
                keys=keys,
                records=part,
                idempotency_keys=[f"{RUN_ID}:{key}" for key in keys],
            )
        )
    return out


def receiver_start(*args: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.sharing.syncs.receiver", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    return process, process.stdout.readline().strip()


def receiver_stats(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our own receiver
        return json.loads(answer.read())


def receiver_stop(process: subprocess.Popen) -> None:
    process.stdin.close()
    process.wait(timeout=10)


def http_writer_run(url: str, work: list[OutgoingBatch]) -> tuple[float, int, int]:
    """(seconds, acked, rejected)"""
    destination = SyncDestination(name="bench", kind="http", url=url, batch_size=HTTP_BATCH)
    acked = rejected = 0
    started = time.perf_counter()
    with destination_writer(destination, key_fields=["lead_id"], run_id=RUN_ID) as writer:
        for batch in work:
            outcome = writer.send(batch)
            acked += len(outcome.acked)
            rejected += len(outcome.rejected)
    return time.perf_counter() - started, acked, rejected


def http_baseline(url: str, work: list[OutgoingBatch]) -> float:
    destination = SyncDestination(name="bench", kind="http", url=url, batch_size=HTTP_BATCH)
    with destination_writer(destination, key_fields=["lead_id"], run_id=RUN_ID) as writer:
        bodies = [writer.body(batch) for batch in work]  # built before the clock starts
    parts = urlsplit(url)
    pool = urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=1, retries=False)
    started = time.perf_counter()
    for body in bodies:
        response = pool.urlopen(
            "POST", parts.path, body=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 200, response.status
    elapsed = time.perf_counter() - started
    pool.close()
    return elapsed


def bench_http(count: int) -> None:
    rows = records(count)
    work = batches(rows, HTTP_BATCH)
    print(f"HTTP destination: {count:,} records in {len(work):,} batches of {HTTP_BATCH}")

    process, url = receiver_start()
    try:
        seconds, acked, rejected = http_writer_run(url, work)
        stats = receiver_stats(url)
    finally:
        receiver_stop(process)
    process, url = receiver_start()
    try:
        base = http_baseline(url, work)
    finally:
        receiver_stop(process)
    print(
        f"  writer:   {seconds:6.2f} s  {count / seconds:>9,.0f} records/s  "
        f"(acked {acked:,}, rejected {rejected:,}; receiver applied {stats['applied']:,}, "
        f"duplicates {stats['duplicates']:,})"
    )
    print(
        f"  baseline: {base:6.2f} s  {count / base:>9,.0f} records/s  "
        "(bare urllib3 loop, bodies pre-built)"
    )
    print(f"  ratio writer / baseline: {seconds / base:.2f}x   goal: >= 10,000 records/s")

    process, url = receiver_start("--retry-after-every", "10", "--retry-after", "0")
    try:
        seconds, acked, rejected = http_writer_run(url, work)
        stats = receiver_stats(url)
    finally:
        receiver_stop(process)
    print(
        f"  429 every 10th request: {seconds:6.2f} s  {count / seconds:>9,.0f} records/s; "
        f"requests {stats['requests']:,} (answered {stats['answered']}); acked {acked:,}; "
        f"applied {stats['applied']:,}, duplicates {stats['duplicates']:,} -> "
        + (
            "every record exactly once"
            if stats["applied"] == count and not stats["duplicates"]
            else "NOT exactly once"
        )
    )


def bench_postgres(count: int) -> None:
    database = urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")
    conn = psycopg.connect(host="127.0.0.1", dbname=database, user="postgres", autocommit=True)
    suffix = os.getpid()
    writer_table, hand_table = f"bench_sync_writer_{suffix}", f"bench_sync_hand_{suffix}"
    ddl = (
        "CREATE TABLE {t} (lead_id text PRIMARY KEY, owner text, score integer, "
        "probability double precision, segment text, updated_at timestamptz)"
    )
    rows = records(count)
    columns = list(rows[0])
    print(f"PostgreSQL table: {count:,} rows, upsert by key into an empty table")
    try:
        for table in (writer_table, hand_table):
            conn.execute(ddl.format(t=table))

        destination = SyncDestination(
            name="bench",
            kind="postgresql",
            host="127.0.0.1",
            database=database,
            username="postgres",
            table_name=writer_table,
        )
        started = time.perf_counter()
        with destination_writer(destination, key_fields=["lead_id"], run_id=RUN_ID) as writer:
            size = writer.batch_size
            acked = 0
            for start in range(0, count, size):
                part = rows[start : start + size]
                keys = [row["lead_id"] for row in part]
                outcome = writer.send(
                    OutgoingBatch(
                        operation="upsert",
                        keys=keys,
                        records=part,
                        idempotency_keys=[f"{RUN_ID}:{key}" for key in keys],
                    )
                )
                acked += len(outcome.acked)
        writer_seconds = time.perf_counter() - started

        names = ", ".join(columns)
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns[1:])
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE stage ON COMMIT DROP AS "
                f"SELECT {names} FROM {hand_table} WITH NO DATA"
            )
            with cur.copy(f"COPY stage ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[name] for name in columns])
            cur.execute(
                f"INSERT INTO {hand_table} ({names}) SELECT {names} FROM stage "
                f"ON CONFLICT (lead_id) DO UPDATE SET {updates}"
            )
        hand_seconds = time.perf_counter() - started
        stored = conn.execute(f"SELECT count(*) FROM {writer_table}").fetchone()[0]
        print(
            f"  writer ({size:,}-row batches, a transaction each): {writer_seconds:6.2f} s  "
            f"{count / writer_seconds:>9,.0f} rows/s  (acked {acked:,}, table holds {stored:,})"
        )
        print(
            f"  by hand (COPY into staging + one INSERT ... ON CONFLICT): {hand_seconds:6.2f} s  "
            f"{count / hand_seconds:>9,.0f} rows/s"
        )
        print(f"  ratio writer / by hand: {writer_seconds / hand_seconds:.2f}x   goal: <= 2x")
    finally:
        for table in (writer_table, hand_table):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="HTTP records")
    parser.add_argument("--rows", type=int, default=1_000_000, help="PostgreSQL rows")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    bench_http(args.records)
    if not args.skip_postgres:
        bench_postgres(args.rows)


if __name__ == "__main__":
    main()
