"""Delta Sharing benchmark: a share of a 1-million-row Parquet port read into pandas by
the public `delta-sharing` client through the portal, against reading the same Parquet
file locally with pandas.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_deltasharingbench \\
        .venv/bin/python bench/delta_sharing.py [--rows 1000000] [--repeat 5] [--write-results]

Creates (and at the end drops, unless --keep) the database named in DATABASE_URL, which
must be PostgreSQL and have "bench" in its name. Writes `bench/orders.parquet` (7
columns, --rows rows, pyarrow's defaults) into a temporary MEDIA_ROOT, registers it as
the file port of the product `bench.orders`, and shares it as `bench.default.orders`
(created by an admin: every column, unmasked) with one recipient. Starts the portal with
gunicorn (1 sync worker, DEBUG=0, as in production) and runs the client in its own
virtualenv (`make delta-sharing-client`; it pins pandas < 3), where it measures, in one
process, alternating --repeat times:

(a) `delta_sharing.load_as_pandas("<profile>#bench.default.orders")`: the metadata
    request, the query and the Parquet file fetched over HTTP by signed URL (range
    requests), into pandas; the files were materialised by a first, untimed-in-the-ratio
    read ("cold": the source read into Parquet, reported on its own);
(b) `pandas.read_parquet(<the port's file>)`: the same rows from the local file.

Goal: (a) at most 2 x (b). Also printed: the gunicorn worker's peak RSS while it
materialises the share (bounded: batches of 100,000 rows), the served file's size, and
the audit (one event per query). Prints figures and ratios; never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
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
from bench.common import RESULTS, drop_database, recreate_database  # noqa: E402
from bench.serving import children_of, free_port, proc_kb, reset_peak  # noqa: E402
from tests.sharing.delta_sharing.recipient import delta_sharing_python, run_client  # noqa: E402

SECTION = "## Delta Sharing (issue 5)"
GOAL_RATIO = 2.0
FILE = "bench/orders.parquet"
TABLE = "bench.default.orders"
PROXY_NOTE = "plain HTTP, no proxy: bench/plain_http_settings.py"


def write_parquet(path: Path, rows: int) -> float:
    """The port's file: generated with pyarrow, written with its defaults (snappy, one
    row group per 1,048,576 rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    began = time.perf_counter()
    i = np.arange(1, rows + 1, dtype=np.int64)
    statuses = np.array(["placed", "paid", "paid", "paid", "shipped", "shipped", "delivered"])
    countries = np.array(["NL", "NL", "BE", "DE", "DE", "FR", "GB", "ES", "IT", "SE"])
    emails = pa.array(
        [None if n % 331 == 0 else f"customer{(n * 104729) % 250000 + 1}@example.com" for n in i]
    )
    table = pa.table(
        {
            "id": i,
            "customer_email": emails,
            "status": statuses[(i * 7) % len(statuses)],
            "amount": ((i * 7727) % 50000 + 100) / 100.0,
            "quantity": (1 + (i * 17) % 5).astype(np.int32),
            "country": countries[(i * 13) % len(countries)],
            "created_at": pa.array(
                (1_767_225_600 + i * 3) * 1_000_000, pa.timestamp("us", tz="UTC")
            ),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return time.perf_counter() - began


class Gunicorn:
    """`gunicorn portal.wsgi -w 1` on the bench database, DEBUG=0, plain HTTP."""

    def __init__(self, media_root: Path, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "MEDIA_ROOT": str(media_root),
            "PYTHONUNBUFFERED": "1",
        }
        env.setdefault("SECRET_KEY", "insecure-bench-only-key")
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "portal.wsgi", "-w", "1"]
            + ["-b", f"127.0.0.1:{self.port}", "--timeout", "900"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and not workers:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited early:\n{log_path.read_text()}")
            time.sleep(0.3)
            workers = children_of(self.process.pid)
        if len(workers) != 1:
            self.stop()
            sys.exit(f"expected one gunicorn worker, found {workers}:\n{log_path.read_text()}")
        self.worker = workers[0]
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        sys.exit(f"gunicorn did not listen within 60 s:\n{log_path.read_text()}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def make_share(media_root: Path, endpoint: str) -> dict:
    """bench.orders on the file, shared as bench.default.orders by an admin; a recipient
    and its profile file."""
    from django.contrib.auth import get_user_model

    from products.catalog.services.products import product_create
    from products.catalog.services.schema_refresh import schema_apply_columns
    from products.choices import LifecycleStatus, PortKind
    from products.connectors import connector_for_port
    from products.models import DataProduct, Domain, OutputPort
    from sharing.delta_sharing.services import (
        delta_profile,
        delta_recipient_create,
        delta_share_create,
        delta_share_table_add,
    )

    admin = get_user_model().objects.create_superuser("bench-admin", "admin@example.com", None)
    domain = Domain.objects.create(name="Bench", slug="bench")
    product = product_create(domain=domain, name="Orders", slug="orders", by=admin, summary="B.")
    DataProduct.objects.filter(pk=product.pk).update(status=LifecycleStatus.PUBLISHED)
    port = OutputPort.objects.create(
        product=product,
        name="Orders",
        slug="orders",
        kind=PortKind.FILE,
        file_path=FILE,
        file_format="parquet",
    )
    with connector_for_port(port) as connector:
        schema_apply_columns(port=port, columns=connector.describe())
    share = delta_share_create(by=admin, name="bench")
    delta_share_table_add(share=share, by=admin, product=product)
    recipient, token = delta_recipient_create(share=share, by=admin, name="Bench recipient")
    profile = media_root / "bench.share"
    profile.write_text(
        json.dumps(delta_profile(recipient=recipient, token=token, endpoint=endpoint))
    )
    return {"profile": profile, "table": share.tables.get()}


def measure(python: str, profile: Path, source: Path, server: Gunicorn, repeat: int) -> dict:
    reset_peak(server.worker)
    idle_mb = proc_kb(server.worker, "VmRSS") / 1024
    (cold,) = run_client(python, profile, [{"op": "time_load", "table": TABLE}], timeout=1800)
    if "error" in cold:
        sys.exit(f"The client could not read the share: {cold}")
    materialise_peak = proc_kb(server.worker, "VmHWM") / 1024
    ops = []
    for _ in range(repeat):
        ops.append({"op": "time_load", "table": TABLE})
        ops.append({"op": "time_local", "path": str(source)})
    answers = run_client(python, profile, ops, timeout=3600)
    errors = [answer for answer in answers if "error" in answer]
    if errors:
        sys.exit(f"The client failed: {errors[0]}")
    client = [a["result"]["seconds"][0] for a in answers[0::2]]
    local = [a["result"]["seconds"][0] for a in answers[1::2]]
    for c, lo in zip(client, local, strict=True):
        print(f"  client {c:.3f} s, local {lo:.3f} s", flush=True)
    shapes = {tuple(a["result"]["shape"]) for a in answers} | {tuple(cold["result"]["shape"])}
    return {
        "cold": cold["result"]["seconds"][0],
        "client": statistics.median(client),
        "local": statistics.median(local),
        "shapes": shapes,
        "idle_mb": idle_mb,
        "materialise_peak_mb": materialise_peak,
    }


def report(setup: list[str], figures: dict, served: dict, events: int, args) -> str:
    lines = [f"- {line}" for line in setup]
    load = os.getloadavg()
    lines.append(f"- load average at the end: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    lines.append("")
    lines.append("| read into pandas | rows | seconds | ratio to local | goal |")
    lines.append("|---|---|---|---|---|")
    ratio = figures["client"] / figures["local"]
    lines.append(
        f"| `delta_sharing.load_as_pandas` through the portal (files cached) | {args.rows:,} "
        f"| {figures['client']:.3f} | {ratio:.2f} | <= {GOAL_RATIO} |"
    )
    lines.append(
        f"| the same, first read (the source materialised into Parquet) | {args.rows:,} "
        f"| {figures['cold']:.3f} | {figures['cold'] / figures['local']:.2f} | |"
    )
    lines.append(
        f"| `pandas.read_parquet` of the port's file, locally | {args.rows:,} "
        f"| {figures['local']:.3f} | 1.00 | |"
    )
    lines.append("")
    lines.append(
        f"Served: {served['files']} file(s), {served['bytes'] / 2**20:.1f} MB (zstd, row groups "
        f"of {served['row_group']:,} rows) against the port's {served['source'] / 2**20:.1f} MB "
        f"(snappy). The gunicorn worker peaked at {figures['materialise_peak_mb']:.0f} MB RSS "
        f"while materialising ({figures['idle_mb']:.0f} MB before). Frames read: "
        f"{', '.join(str(list(s)) for s in sorted(figures['shapes']))}. Audit: {events} read "
        f"event(s) on the delta_sharing channel for {args.repeat + 1} queries."
    )
    lines.append("")
    lines.append(
        f"Goal, the client through the portal <= {GOAL_RATIO} x the local read: "
        + ("met" if ratio <= GOAL_RATIO else "missed")
        + f" ({ratio:.2f})."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each (median)")
    parser.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()

    python = delta_sharing_python()
    if python is None:
        sys.exit(
            "No delta-sharing client: run `make delta-sharing-client` (or set "
            "DELTA_SHARING_PYTHON to a Python with `pip install delta-sharing`)."
        )
    config = common.database_config("bench/delta_sharing.py")
    recreate_database(config)
    media_root = Path(tempfile.mkdtemp(prefix="deltasharingbench-media-"))
    os.environ["MEDIA_ROOT"] = str(media_root)
    # Plain HTTP (gunicorn inherits it): the client fetches the URLs the server gives.
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.plain_http_settings"
    import django

    django.setup()
    from django.core.management import call_command

    server = None
    try:
        call_command("migrate", verbosity=0)
        source = media_root / FILE
        print(f"Writing {args.rows:,} rows to {source.name}...", flush=True)
        seconds = write_parquet(source, args.rows)
        setup = [
            f"`{FILE}`: {args.rows:,} rows, 7 columns, {source.stat().st_size / 2**20:.1f} MB "
            f"(written in {seconds:.1f} s); shared as `{TABLE}` by an admin (no masking)",
        ]
        server = Gunicorn(media_root, media_root / "gunicorn.log")
        print(f"gunicorn on {server.url}, worker pid {server.worker}", flush=True)
        shared = make_share(media_root, server.url + "/delta-sharing/")
        print(f"Reading {TABLE} with {python} ...", flush=True)
        figures = measure(python, shared["profile"], source, server, args.repeat)

        from sharing.delta_sharing import protocol as serving
        from sharing.models import AccessEvent

        snapshots = sorted(serving.table_cache_dir(shared["table"].pk).glob("v*/manifest.json"))
        manifest = json.loads(snapshots[-1].read_text())
        served = {
            "files": len(manifest["files"]),
            "bytes": manifest["bytes"],
            "source": source.stat().st_size,
            "row_group": serving.ROW_GROUP_ROWS,
        }
        events = AccessEvent.objects.filter(channel="delta_sharing", action="read").count()
        text = report(setup, figures, served, events, args)
        print()
        print(text)
        if args.write_results:
            common.write_results(
                SECTION,
                f"{date.today().isoformat()}, `bench/delta_sharing.py --rows {args.rows}` "
                f"(medians of {args.repeat} runs, alternating, in one client process; gunicorn "
                f"1 sync worker, DEBUG=0; {os.cpu_count()} CPUs; {PROXY_NOTE}).\n\n{text}",
            )
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            drop_database(config)
            shutil.rmtree(media_root, ignore_errors=True)
        else:
            print(f"Kept the database {config['NAME']} and {media_root}")


if __name__ == "__main__":
    main()
