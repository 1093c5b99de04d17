"""Scheduled-exports benchmark: a PostgreSQL table exported to CSV and to Parquet by a real
Celery worker, against the plain tools writing the same rows to a file in the same run.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_exportsbench \\
        .venv/bin/python bench/exports.py [--rows 10000000] [--repeat 3] [--write-results]

Creates (and at the end drops, unless --keep) the database named in DATABASE_URL, which
must be PostgreSQL and have "bench" in its name. Generates `warehouse.orders` (7 columns,
as bench/serving.py) and registers it as the product `bench.orders`. Starts a Celery
worker (`--pool=solo`, on CELERY_BROKER_URL or the embedded broker, its own queue) and
measures, --repeat times, alternating:

(a) CSV: an export run of every row (`sharing.exports.services.runs.export_run_execute` in the
    worker: the read with the creator's access, COPY streamed to a temporary file,
    SHA-256, fsync, rename), its time from the worker's claim to the run's end, against
    `COPY (<the same SELECT>) TO STDOUT WITH (FORMAT csv, HEADER)` with psycopg written
    to a file and fsynced (goal: at most 1.3 x the time);
(b) Parquet: the same run as Parquet (ADBC Arrow batches, pyarrow's writer, zstd, row
    groups of 500,000 rows), against DuckDB's `COPY (...) TO 'file.parquet' (FORMAT
    parquet, COMPRESSION zstd)` of the same rows (goal: at most 1.5 x). DuckDB reads
    PostgreSQL through its postgres extension when it is installed; otherwise (no network
    to install it) from the same ADBC Arrow stream the portal reads;
(c) the worker's peak RSS during each run (VmHWM, reset before each run through
    /proc/<pid>/clear_refs; goal: at most 300 MB).

Each file is checked: its rows (CSV lines, Parquet metadata) equal the table's.
Prints figures and ratios; never fails on a time (see bench/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path
from bench.common import RESULTS, connect, drop_database, recreate_database  # noqa: E402
from bench.serving import (  # noqa: E402
    COLUMNS,
    SCHEMA,
    TABLE,
    create_table,
    make_catalog,
    proc_kb,
    reset_peak,
)

SECTION = "## Scheduled exports (issue 5)"
QUEUE = "exports-bench"
GOAL_CSV_RATIO = 1.3
GOAL_PARQUET_RATIO = 1.5
GOAL_MB = 300


# --- the worker ------------------------------------------------------------------------


class Worker:
    """`celery -A portal worker --pool=solo -Q exports-bench` on the bench database."""

    def __init__(self, media_root: Path, log_path: Path) -> None:
        env = dict(os.environ)
        env.update(MEDIA_ROOT=str(media_root), PYTHONUNBUFFERED="1")
        env.setdefault("SECRET_KEY", "insecure-bench-only-key")
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "-Q",
                QUEUE,
                "-n",
                f"exports-bench-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def run_export(worker: Worker, schedule, timeout: float = 3600) -> dict:
    """Queue a run of the schedule on the bench worker's queue, wait for its end."""
    from sharing.choices import ExportStatus, ExportTrigger
    from sharing.exports.tasks import export_run
    from sharing.models import ExportRun

    run = ExportRun.objects.create(schedule=schedule, trigger=ExportTrigger.MANUAL)
    reset = reset_peak(worker.pid)
    export_run.apply_async((run.pk,), queue=QUEUE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            sys.exit(f"The worker exited:\n{worker.log_path.read_text()[-4000:]}")
        run.refresh_from_db()
        if run.status not in (ExportStatus.QUEUED, ExportStatus.RUNNING):
            break
        time.sleep(0.2)
    else:
        sys.exit(f"Run {run.pk} did not finish within {timeout} s")
    if run.status != ExportStatus.SUCCEEDED:
        sys.exit(f"Run {run.pk} {run.status}: {run.error}")
    return {
        "run": run,
        "seconds": (run.finished_at - run.started_at).total_seconds(),
        "peak_mb": proc_kb(worker.pid, "VmHWM") / 1024 if reset else float("nan"),
    }


# --- baselines -------------------------------------------------------------------------


def copy_csv_to_file(config: dict, sql: str, path: Path) -> float:
    began = time.perf_counter()
    with connect(config) as conn, conn.cursor() as cur, open(path, "wb") as handle:
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            for data in copy:
                handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return time.perf_counter() - began


def duckdb_source(config: dict) -> str:
    """How the DuckDB baseline reads PostgreSQL: its postgres extension when installed,
    else the ADBC Arrow stream."""
    import duckdb

    try:
        duckdb.connect().execute("LOAD postgres")
        return "postgres extension"
    except duckdb.Error:
        return "ADBC Arrow stream"


def duckdb_parquet(config: dict, sql: str, path: Path, source: str) -> float:
    import duckdb

    began = time.perf_counter()
    conn = duckdb.connect()
    target = str(path).replace("'", "''")
    options = "(FORMAT parquet, COMPRESSION zstd)"
    if source == "postgres extension":
        conn.execute("LOAD postgres")
        dsn = (
            f"host={config.get('HOST') or '127.0.0.1'} port={config.get('PORT') or 5432} "
            f"dbname={config['NAME']} user={config.get('USER') or 'postgres'}"
        )
        conn.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
        pg_sql = sql.replace(f'"{SCHEMA}"."{TABLE}"', f'pg."{SCHEMA}"."{TABLE}"')
        conn.execute(f"COPY ({pg_sql}) TO '{target}' {options}")
    else:
        import adbc_driver_postgresql.dbapi as adbc

        uri = (
            f"postgresql://{config.get('USER') or 'postgres'}@{config.get('HOST') or '127.0.0.1'}"
            f":{config.get('PORT') or 5432}/{config['NAME']}"
        )
        with adbc.connect(uri) as pg, pg.cursor() as cur:
            cur.execute(sql)
            reader = cur.fetch_record_batch()  # noqa: F841 - DuckDB scans it by name
            conn.execute(f"COPY (SELECT * FROM reader) TO '{target}' {options}")
    conn.close()
    return time.perf_counter() - began


# --- measuring -------------------------------------------------------------------------


def export_sql(catalog: dict) -> str:
    """The SELECT an export run executes (sharing.serving.reads.select_sql of its plan)."""
    from products.connectors import connector_for_port
    from sharing.choices import Channel
    from sharing.exports.services.runs import EXPORT_MAX_ROWS
    from sharing.serving.reads import read_plan, select_sql

    plan = read_plan(
        user=catalog["users"]["admin"],
        product=catalog["product"],
        channel=Channel.EXPORT,
        max_rows=EXPORT_MAX_ROWS,
    )
    with connector_for_port(plan.port) as connector:
        sql, params = select_sql(plan, connector, placeholder=lambda i: "%s")
    assert not params, params
    return sql


def csv_rows(path: Path) -> int:
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            lines += chunk.count(b"\n")
    return lines - 1  # the header


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def measure(fmt, worker, schedule, baseline, rows: int, repeat: int, scratch: Path) -> dict:
    import pyarrow.parquet as pq
    from django.core.files.storage import default_storage

    exports, baselines, peaks = [], [], []
    checks: dict = {}
    for index in range(repeat):
        result = run_export(worker, schedule)
        run = result["run"]
        path = Path(default_storage.path(run.file_name))
        exports.append(result["seconds"])
        peaks.append(result["peak_mb"])
        size = path.stat().st_size
        if fmt == "csv":
            written = csv_rows(path)
        else:
            metadata = pq.ParquetFile(path).metadata
            written = metadata.num_rows
            checks["row_groups"] = [
                metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)
            ]
        if index == 0:
            checks["sha256_ok"] = sha256_of(path) == run.sha256
        checks.update(rows_ok=written == rows == run.rows, bytes=size)
        target = scratch / f"baseline.{fmt}"
        baselines.append(baseline(target))
        checks["baseline_bytes"] = target.stat().st_size
        if fmt == "parquet":
            checks["baseline_rows_ok"] = pq.ParquetFile(target).metadata.num_rows == rows
        target.unlink()
        print(
            f"  {fmt}: export {exports[-1]:.2f} s (peak {peaks[-1]:.0f} MB), "
            f"baseline {baselines[-1]:.2f} s",
            flush=True,
        )
    return {
        "export": statistics.median(exports),
        "baseline": statistics.median(baselines),
        "peak_mb": max(peaks),
        **checks,
    }


def report(setup: list[str], figures: dict, idle_mb: float, source: str, args) -> str:
    lines = [f"- {line}" for line in setup]
    lines.append(
        f"- the worker holds {idle_mb:.0f} MB RSS idle, after one small export (imports, "
        "connections)"
    )
    lines.append("")
    lines.append(
        "| format | rows | export run s | baseline | baseline s | ratio | goal "
        "| worker peak MB | file MB | rows check |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    names = {
        "csv": "`COPY (SELECT ...) TO STDOUT` (psycopg) into a file, fsynced",
        "parquet": f"DuckDB `COPY ... TO 'file.parquet'` (zstd), from the {source}",
    }
    goals = {"csv": GOAL_CSV_RATIO, "parquet": GOAL_PARQUET_RATIO}
    for fmt, item in figures.items():
        ratio = item["export"] / item["baseline"]
        item["ratio"] = ratio
        lines.append(
            f"| {fmt} | {args.rows:,} | {item['export']:.2f} | {names[fmt]} "
            f"| {item['baseline']:.2f} | {ratio:.2f} | <= {goals[fmt]} | {item['peak_mb']:.0f} "
            f"| {item['bytes'] / 2**20:.0f} (baseline {item['baseline_bytes'] / 2**20:.0f}) "
            f"| {'equal' if item['rows_ok'] else 'DIFFERENT'} |"
        )
    lines.append("")
    if "parquet" in figures:
        groups = figures["parquet"]["row_groups"]
        body = groups[:-1] or groups
        lines.append(
            f"Parquet: {len(groups)} row groups of {min(body):,} to {max(body):,} rows "
            f"(the last {groups[-1]:,}). "
            "SHA-256 recorded by the runs match the files: "
            + ", ".join(
                f"{fmt} {'yes' if item['sha256_ok'] else 'NO'}" for fmt, item in figures.items()
            )
            + "."
        )
        lines.append("")
    for fmt, item in figures.items():
        goal = goals[fmt]
        lines.append(
            f"Goal, {fmt.upper()} export <= {goal} x the baseline: "
            + ("met" if item["ratio"] <= goal else "missed")
            + f" ({item['ratio']:.2f})."
        )
    peak = max(item["peak_mb"] for item in figures.values())
    lines.append(
        f"Goal, worker peak <= {GOAL_MB} MB while exporting {args.rows:,} rows: "
        + ("met" if peak <= GOAL_MB else "missed")
        + f" ({peak:.0f} MB)."
    )
    return "\n".join(lines)


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows exported")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument(
        "--formats", default="csv,parquet", help="comma-separated: csv, parquet (default both)"
    )
    parser.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    formats = [fmt.strip() for fmt in args.formats.split(",") if fmt.strip()]
    if not set(formats) <= {"csv", "parquet"}:
        sys.exit("--formats takes csv and/or parquet")

    config = common.database_config("bench/exports.py")
    recreate_database(config)
    media_root = Path(tempfile.mkdtemp(prefix="exportsbench-media-"))
    os.environ["MEDIA_ROOT"] = str(media_root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from portal.celery import app
    from sharing.exports.services.runs import export_schedule_create

    worker = None
    try:
        call_command("migrate", verbosity=0)
        print(f"Generating {args.rows:,} rows in PostgreSQL...", flush=True)
        seconds, size = create_table(config, args.rows)
        setup = [
            f"`{SCHEMA}.{TABLE}`: {args.rows:,} rows, {len(COLUMNS)} columns "
            f"({', '.join(COLUMNS)}), {size} (generated and vacuumed in {seconds:.0f} s)"
        ]
        catalog = make_catalog(config)
        admin = catalog["users"]["admin"]
        schedules = {
            fmt: export_schedule_create(
                product=catalog["product"],
                by=admin,
                name=f"bench {fmt}",
                cron="0 3 1 1 *",
                format=fmt,
                retention_runs=1,  # keep one file: the disk holds a few copies at most
                enabled=False,  # runs only when the bench asks
            )
            for fmt in formats
        }
        app.control.purge()
        worker = Worker(media_root, media_root / "worker.log")
        scratch = media_root / "baselines"
        scratch.mkdir()
        sql = export_sql(catalog)

        # Warm-up: imports and connections, then the idle RSS.
        from sharing.exports.services.runs import export_schedule_update

        small = export_schedule_create(
            product=catalog["product"],
            by=admin,
            name="warm-up",
            cron="0 3 1 1 *",
            format="parquet",
            row_filter=[{"column": "id", "op": "<", "value": 1000}],
            enabled=False,
        )
        run_export(worker, small)
        export_schedule_update(schedule=small, by=admin, format="csv")
        run_export(worker, small)
        idle_mb = proc_kb(worker.pid, "VmRSS") / 1024
        print(f"worker pid {worker.pid}, {idle_mb:.0f} MB RSS after warm-up", flush=True)

        source = duckdb_source(config)
        baselines = {
            "csv": lambda target: copy_csv_to_file(config, sql, target),
            "parquet": lambda target: duckdb_parquet(config, sql, target, source),
        }
        figures = {}
        for fmt in formats:
            print(f"{fmt}: {args.rows:,} rows, {args.repeat} runs...", flush=True)
            figures[fmt] = measure(
                fmt, worker, schedules[fmt], baselines[fmt], args.rows, args.repeat, scratch
            )
        setup.append(f"load average at the end: {load_average()}")
        text = report(setup, figures, idle_mb, source, args)
        print()
        print(text)
        if args.write_results:
            common.write_results(
                SECTION,
                f"{date.today().isoformat()}, `bench/exports.py --rows {args.rows}` (medians of "
                f"{args.repeat} runs, export and baseline alternating; one Celery worker, "
                f"--pool=solo; PostgreSQL {common.pg_version(config)}, {os.cpu_count()} CPUs)."
                f"\n\n{text}",
            )
    finally:
        if worker is not None:
            worker.stop()
        if not args.keep:
            drop_database(config)
            shutil.rmtree(media_root, ignore_errors=True)
        else:
            print(f"Kept the database {config['NAME']} and {media_root}")


if __name__ == "__main__":
    main()
