"""Serving benchmark: rows out of the portal, through the API and the notebook client,
against reading PostgreSQL directly; and what the access decision costs per request.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_servingbench \\
        .venv/bin/python bench/serving.py [--rows 10000000] [--small 1000000] [--write-results]

Creates (and at the end drops, unless --keep) the database named in DATABASE_URL, which
must be PostgreSQL and have "bench" in its name. Generates `warehouse.orders` (7 columns,
generate_series) in it and registers it as the product `bench.orders` with one port,
its columns (customer_email confidential), an admin, a domain member and a grantee (row
filter on country; the email masked). Starts the portal with gunicorn as deployed
(deploy/gunicorn.conf.py: preloaded and warmed up in the master; here 1 sync worker),
DEBUG=0, as in production; requests carry `X-Forwarded-Proto: https` as from a proxy)
and measures, --repeat times, alternating:

(a) --rows rows as CSV: `GET /api/v1/products/bench.orders/data/?format=csv&limit=N`
    streamed to nowhere, its wall time and the gunicorn worker's peak RSS (VmHWM, reset
    before each read through /proc/<pid>/clear_refs), against
    `COPY (SELECT ...) TO STDOUT WITH (FORMAT csv, HEADER)` with psycopg, same SELECT
    (goal: at most 1.5 x the time, at most 200 MB);
(b) --small rows into pandas through the notebook client (Arrow stream), against a
    direct psycopg read into pandas, `pd.DataFrame(cur.fetchall(), columns=...)`
    (goal: at most 2 x); and, for reference, ADBC straight into pandas;
(c) the access decision per request: SQL queries and p50/p95 milliseconds over 200 calls
    of access_decide (and of read_plan, the decision plus the port and its columns) for
    an admin, a domain member and a grantee; and a whole small request through gunicorn.

Prints figures and ratios; never fails on a time (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path
from bench.common import (  # noqa: E402
    RESULTS,
    children_of,
    connect,
    drop_database,
    free_port,
    recreate_database,
)

SECTION = "## Serving (issue 4)"

SCHEMA = "warehouse"
TABLE = "orders"
KEY = "bench.orders"
GOAL_CSV_RATIO = 1.5
GOAL_MB = 200
GOAL_PANDAS_RATIO = 2.0
DECISION_CALLS = 200
PROXY = {"X-Forwarded-Proto": "https"}  # as a TLS-terminating proxy sends it

COLUMNS = ["id", "customer_email", "status", "amount", "quantity", "country", "created_at"]


def select_rows(n: int) -> str:
    return f"""
SELECT
  i AS id,
  CASE WHEN i % 331 = 0 THEN NULL
       ELSE 'customer' || ((i * 104729) % 250000 + 1) || '@example.com' END AS customer_email,
  (ARRAY['placed','paid','paid','paid','shipped','shipped','delivered','cancelled'])
    [1 + (i * 7) % 8] AS status,
  CAST(((i * 7727) % 50000 + 100) AS double precision) / 100 AS amount,
  CAST(1 + (i * 17) % 5 AS integer) AS quantity,
  (ARRAY['NL','NL','BE','DE','DE','FR','GB','ES','IT','SE'])[1 + (i * 13) % 10] AS country,
  timestamptz '2026-01-01 00:00:00+00' + (i * interval '3 seconds') AS created_at
FROM generate_series(CAST(1 AS bigint), {n}) AS g(i)"""


# --- database lifecycle ----------------------------------------------------------------


def create_table(config: dict, rows: int) -> tuple[float, str]:
    began = time.perf_counter()
    relation = f'"{SCHEMA}"."{TABLE}"'
    with connect(config, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
        conn.execute(f"CREATE TABLE {relation} AS {select_rows(rows)}")
        conn.execute(f"VACUUM (ANALYZE) {relation}")
        size = conn.execute(
            "SELECT pg_size_pretty(pg_table_size(%s))", [f"{SCHEMA}.{TABLE}"]
        ).fetchone()[0]
    return time.perf_counter() - began, size


# --- catalog ---------------------------------------------------------------------------


def make_catalog(config: dict) -> dict:
    """bench.orders (published) with its columns; an admin, a member of its domain and a
    grantee (country in BE, NL; customer_email masked); a token for each."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from knox.models import AuthToken

    from products.catalog.services.products import product_create
    from products.catalog.services.schema_refresh import schema_apply_columns
    from products.choices import (
        Classification,
        LifecycleStatus,
        MembershipRole,
        PortKind,
        SourceKind,
    )
    from products.connectors import connector_for_port
    from products.models import DataProduct, DataSource, Domain, DomainMembership, OutputPort
    from sharing.models import AccessGrant

    users = get_user_model().objects
    admin = users.create_superuser("bench-admin", "admin@example.com", None)
    member = users.create_user("bench-member", "member@example.com", None)
    grantee = users.create_user("bench-grantee", "grantee@example.com", None)
    domain = Domain.objects.create(name="Bench", slug="bench")
    DomainMembership.objects.create(domain=domain, user=member, role=MembershipRole.MEMBER)
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
    port = OutputPort.objects.create(
        product=product,
        name="Orders",
        slug="orders",
        kind=PortKind.TABLE,
        source=source,
        schema_name=SCHEMA,
        table_name=TABLE,
    )
    with connector_for_port(port) as connector:
        schema_apply_columns(port=port, columns=connector.describe())
    port.columns.filter(name="customer_email").update(classification=Classification.CONFIDENTIAL)
    AccessGrant.objects.create(
        product=product,
        user=grantee,
        row_filter=[{"column": "country", "op": "in", "value": ["BE", "NL"]}],
        expires_at=timezone.now() + timedelta(days=30),
        reason="Bench.",
        granted_by=admin,
    )
    tokens = {
        name: AuthToken.objects.create(user)[1]
        for name, user in (("admin", admin), ("member", member), ("grantee", grantee))
    }
    return {
        "users": {"admin": admin, "member": member, "grantee": grantee},
        "product": product,
        "tokens": tokens,
    }


# --- the web process -------------------------------------------------------------------


def proc_kb(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0])


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux: 5 > clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def uss_kb(pid: int) -> int:
    """The pages only this process holds (Private_Clean + Private_Dirty): what one more
    worker costs when the rest is shared copy-on-write with a preloaded master."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return sum(
        int(line.split()[1])
        for line in rollup.splitlines()
        if line.startswith(("Private_Clean:", "Private_Dirty:"))
    )


class Gunicorn:
    """gunicorn as deployed (deploy/gunicorn.conf.py: the portal preloaded and warmed up in
    the master) with one sync worker, on the bench database, DEBUG=0. `preload=False`
    gives the worker its own copy of everything (GUNICORN_PRELOAD=0)."""

    def __init__(self, media_root: Path, log_path: Path, *, preload: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1",
            SECURE_PROXY_SSL_HEADER="1",  # believe X-Forwarded-Proto, as behind the proxy
            MEDIA_ROOT=str(media_root),
            PYTHONUNBUFFERED="1",
            WEB_CONCURRENCY="1",
            GUNICORN_WORKER_CLASS="sync",
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_PRELOAD="1" if preload else "0",
            GUNICORN_MAX_REQUESTS="0",  # no recycling in the middle of a measurement
            # A sync worker is silent towards the arbiter during one request; a
            # 10-million-row stream takes longer than the default 30 s.
            GUNICORN_TIMEOUT="900",
        )
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.setdefault("SECRET_KEY", "insecure-bench-only-key")
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "portal.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited early:\n{log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            sys.exit(f"gunicorn did not listen within 60 s:\n{log_path.read_text()}")
        workers = children_of(self.process.pid)
        while not workers and time.monotonic() < deadline:  # the master forks after it listens
            time.sleep(0.2)
            workers = children_of(self.process.pid)
        if len(workers) != 1:
            self.stop()
            sys.exit(f"expected one gunicorn worker, found {workers}")
        self.worker = workers[0]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


# --- measuring -------------------------------------------------------------------------


def api_csv(server: Gunicorn, token: str, rows: int, fmt: str = "csv") -> tuple[float, int]:
    """GET the rows (CSV), read in 1 MB pieces and thrown away: seconds, bytes."""
    url = f"{server.url}/api/v1/products/{KEY}/data/?format={fmt}&limit={rows}"
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}", **PROXY})
    began = time.perf_counter()
    size = 0
    with urllib.request.urlopen(request, timeout=900) as response:
        while chunk := response.read(1 << 20):
            size += len(chunk)
    return time.perf_counter() - began, size


def served_sql(catalog: dict, user: str, limit: int, placeholder) -> str:
    """The SELECT the portal runs for this user's read (sharing.serving.reads.select_sql)."""
    from products.connectors import connector_for_port
    from sharing.choices import Channel
    from sharing.serving.reads import read_plan, select_sql

    plan = read_plan(
        user=catalog["users"][user], product=catalog["product"], channel=Channel.API, limit=limit
    )
    with connector_for_port(plan.port) as connector:
        sql, params = select_sql(plan, connector, placeholder=placeholder)
    assert not params, params
    return sql


def copy_csv(config: dict, sql: str) -> tuple[float, int]:
    began = time.perf_counter()
    size = 0
    with connect(config) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            for data in copy:
                size += len(data)
    return time.perf_counter() - began, size


def measure_csv(server, config, catalog, rows: int, repeat: int) -> dict:
    sql = served_sql(catalog, "admin", rows, placeholder=lambda i: "%s")
    token = catalog["tokens"]["admin"]
    api_csv(server, token, 10)  # warm-up: the worker has imported and connected
    idle_kb = proc_kb(server.worker, "VmRSS")
    idle_own_kb = uss_kb(server.worker)
    api, direct, peaks = [], [], []
    sizes = set()
    for _ in range(repeat):
        if not reset_peak(server.worker):
            print("  (cannot reset VmHWM: the peak is since the worker started)")
        seconds, size = api_csv(server, token, rows)
        api.append(seconds)
        peaks.append(proc_kb(server.worker, "VmHWM") / 1024)
        sizes.add(("api", size))
        seconds, size = copy_csv(config, sql)
        direct.append(seconds)
        sizes.add(("copy", size))
        print(
            f"  API {api[-1]:.2f} s (worker peak {peaks[-1]:.0f} MB), COPY {direct[-1]:.2f} s",
            flush=True,
        )
    # The other streamed format, once: Arrow IPC (ADBC batches), the notebook's path.
    reset_peak(server.worker)
    arrow_seconds, arrow_bytes = api_csv(server, token, rows, fmt="arrow")
    arrow_peak = proc_kb(server.worker, "VmHWM") / 1024
    print(f"  API as Arrow {arrow_seconds:.2f} s (worker peak {arrow_peak:.0f} MB)", flush=True)
    by_kind = dict(sizes)
    if len(sizes) != 2 or by_kind["api"] != by_kind["copy"]:
        print(f"  WARNING: the API and COPY served different bytes: {sorted(sizes)}")
    return {
        "api": statistics.median(api),
        "copy": statistics.median(direct),
        "peak_mb": max(peaks),
        "idle_mb": idle_kb / 1024,
        "idle_uss_mb": idle_own_kb / 1024,
        "bytes": by_kind.get("api", 0),
        "arrow": arrow_seconds,
        "arrow_peak_mb": arrow_peak,
        "arrow_bytes": arrow_bytes,
    }


def client_read(server, token: str, rows: int):
    from portal_client import Portal

    portal = Portal(url=server.url, token=token, headers=PROXY)
    began = time.perf_counter()
    frame = portal.read(KEY, limit=rows)
    return time.perf_counter() - began, frame


def psycopg_read(config: dict, sql: str):
    import pandas as pd

    began = time.perf_counter()
    with connect(config) as conn, conn.cursor() as cur:
        cur.execute(sql)
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    return time.perf_counter() - began, frame


def adbc_read(config: dict, sql: str):
    from urllib.parse import quote, urlencode

    import adbc_driver_postgresql.dbapi as adbc

    info = {
        k: v
        for k, v in {
            "host": config.get("HOST") or "127.0.0.1",
            "port": config.get("PORT") or 5432,
            "user": config.get("USER") or None,
            "password": config.get("PASSWORD") or None,
            "dbname": config["NAME"],
        }.items()
        if v
    }
    began = time.perf_counter()
    with adbc.connect("postgresql://?" + urlencode(info, quote_via=quote)) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            frame = cur.fetch_arrow_table().to_pandas()
    return time.perf_counter() - began, frame


def measure_pandas(server, config, catalog, rows: int, repeat: int) -> dict:
    sql = served_sql(catalog, "admin", rows, placeholder=lambda i: "%s")
    token = catalog["tokens"]["admin"]
    client_read(server, token, 10)
    client, direct, adbc = [], [], []
    if not reset_peak(server.worker):
        print("  (cannot reset VmHWM: the peak is since the worker started)")
    for _ in range(repeat):
        seconds, frame = client_read(server, token, rows)
        client.append(seconds)
        shape, dtypes = frame.shape, dict(frame.dtypes.astype(str))
        del frame
        seconds, frame = psycopg_read(config, sql)
        direct.append(seconds)
        if frame.shape != shape:
            print(f"  WARNING: the client read {shape}, psycopg {frame.shape}")
        psycopg_dtypes = dict(frame.dtypes.astype(str))
        del frame
        seconds, frame = adbc_read(config, sql)
        adbc.append(seconds)
        del frame
        print(
            f"  client {client[-1]:.2f} s, psycopg {direct[-1]:.2f} s, ADBC {adbc[-1]:.2f} s",
            flush=True,
        )
    return {
        "client": statistics.median(client),
        "psycopg": statistics.median(direct),
        "adbc": statistics.median(adbc),
        "peak_mb": proc_kb(server.worker, "VmHWM") / 1024,
        "dtypes": dtypes,
        "psycopg_dtypes": psycopg_dtypes,
    }


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(round(0.95 * (len(ordered) - 1)))]


def measure_decision(catalog: dict, calls: int) -> dict:
    """Queries and milliseconds of access_decide and read_plan per call, each with the
    user and product loaded afresh (as a request does) outside the timing."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from products.models import DataProduct
    from sharing.access.decision import access_decide
    from sharing.choices import Channel
    from sharing.serving.reads import read_plan

    figures = {}
    product_pk = catalog["product"].pk
    for name, user in catalog["users"].items():
        for label, call in (
            ("access_decide", lambda u, p: access_decide(user=u, product=p)),
            ("read_plan", lambda u, p: read_plan(user=u, product=p, channel=Channel.API)),
        ):
            times, queries = [], []
            for index in range(calls + 5):
                fresh_user = get_user_model().objects.get(pk=user.pk)
                product = DataProduct.objects.select_related("domain").get(pk=product_pk)
                with CaptureQueriesContext(connection) as captured:
                    began = time.perf_counter()
                    result = call(fresh_user, product)
                    seconds = time.perf_counter() - began
                if index >= 5:  # warm-up calls
                    times.append(seconds * 1000)
                    queries.append(len(captured))
            allowed = getattr(result, "allowed", True)
            basis = result.basis if hasattr(result, "basis") else result.decision.basis
            p50, p95 = _percentiles(times)
            figures[(name, label)] = {
                "p50": p50,
                "p95": p95,
                "queries": max(queries),
                "basis": basis if allowed else "denied",
            }
    return figures


def measure_request(server, catalog: dict, calls: int) -> dict:
    """A whole small read through gunicorn (10 rows), per user and format: CSV is served
    by psycopg's COPY, Arrow (the notebook's format) by ADBC."""
    figures = {}
    for name, token in catalog["tokens"].items():
        for fmt in ("csv", "arrow"):
            url = f"{server.url}/api/v1/products/{KEY}/data/?format={fmt}&limit=10"
            headers = {"Authorization": f"Token {token}", **PROXY}
            request = urllib.request.Request(url, headers=headers)
            times = []
            for index in range(calls + 5):
                began = time.perf_counter()
                with urllib.request.urlopen(request, timeout=60) as response:
                    response.read()
                if index >= 5:
                    times.append((time.perf_counter() - began) * 1000)
            figures[(name, fmt)] = _percentiles(times)
    return figures


def measure_connects(config: dict, calls: int) -> dict:
    """What opening a source connection costs, per driver (each read opens one)."""
    from urllib.parse import quote, urlencode

    import adbc_driver_postgresql.dbapi as adbc

    info = {
        k: v
        for k, v in {
            "host": config.get("HOST") or "127.0.0.1",
            "port": config.get("PORT") or 5432,
            "user": config.get("USER") or None,
            "password": config.get("PASSWORD") or None,
            "dbname": config["NAME"],
        }.items()
        if v
    }
    uri = "postgresql://?" + urlencode(info, quote_via=quote)
    figures = {}
    for label, opener in (
        ("ADBC", lambda: adbc.connect(uri)),
        ("psycopg", lambda: connect(config)),
    ):
        times = []
        for index in range(calls + 3):
            began = time.perf_counter()
            conn = opener()
            conn.close()
            if index >= 3:
                times.append((time.perf_counter() - began) * 1000)
        figures[label] = _percentiles(times)
    return figures


# --- report ----------------------------------------------------------------------------


def report(
    setup: list[str], csv: dict, pandas: dict, decision: dict, request: dict, connects, args
) -> str:
    lines = [f"- {line}" for line in setup]
    load = os.getloadavg()
    lines.append(f"- load average at the end: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    lines.append("")
    lines.append("| read | rows | portal s | direct s | ratio | goal | web worker peak MB |")
    lines.append("|---|---|---|---|---|---|---|")
    csv_ratio = csv["api"] / csv["copy"]
    lines.append(
        f"| CSV: API vs `COPY ... TO STDOUT` (psycopg) | {args.rows:,} | {csv['api']:.2f} "
        f"| {csv['copy']:.2f} | {csv_ratio:.2f} | <= {GOAL_CSV_RATIO} | {csv['peak_mb']:.0f} |"
    )
    lines.append(
        f"| Arrow IPC stream: API (once) vs the CSV COPY above | {args.rows:,} "
        f"| {csv['arrow']:.2f} | {csv['copy']:.2f} | {csv['arrow'] / csv['copy']:.2f} | "
        f"| {csv['arrow_peak_mb']:.0f} |"
    )
    pandas_ratio = pandas["client"] / pandas["psycopg"]
    lines.append(
        f"| pandas: notebook client (Arrow) vs psycopg fetchall | {args.small:,} "
        f"| {pandas['client']:.2f} | {pandas['psycopg']:.2f} | {pandas_ratio:.2f} "
        f"| <= {GOAL_PANDAS_RATIO} | {pandas['peak_mb']:.0f} |"
    )
    lines.append(
        f"| pandas: notebook client vs ADBC straight into pandas (reference) | {args.small:,} "
        f"| {pandas['client']:.2f} | {pandas['adbc']:.2f} "
        f"| {pandas['client'] / pandas['adbc']:.2f} | | |"
    )
    lines.append("")
    lines.append(
        f"CSV body {csv['bytes'] / 2**20:.0f} MB ({csv['bytes'] / 2**20 / csv['api']:.0f} MB/s "
        f"through the API), Arrow body {csv['arrow_bytes'] / 2**20:.0f} MB; the worker "
        f"holds {csv['idle_mb']:.0f} MB RSS idle after a first "
        f"small read, {csv['idle_uss_mb']:.0f} MB of it its own (USS; the rest is shared "
        "with the preloaded master)."
    )
    lines.append(
        "Client dtypes: "
        + ", ".join(f"{k} {v}" for k, v in pandas["dtypes"].items())
        + "; psycopg fetchall dtypes: "
        + ", ".join(f"{k} {v}" for k, v in pandas["psycopg_dtypes"].items())
        + "."
    )
    lines.append("")
    lines.append(
        f"Access decision per request ({DECISION_CALLS} calls each, user and product loaded "
        "afresh outside the timing):"
    )
    lines.append("")
    lines.append(
        "| user | basis | access_decide queries | p50 ms | p95 ms "
        "| read_plan queries | p50 ms | p95 ms | 10-row read, CSV, p50 / p95 ms "
        "| 10-row read, Arrow, p50 / p95 ms |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for name in ("admin", "member", "grantee"):
        d, p = decision[(name, "access_decide")], decision[(name, "read_plan")]
        c50, c95 = request[(name, "csv")]
        a50, a95 = request[(name, "arrow")]
        lines.append(
            f"| {name} | {d['basis']} | {d['queries']} | {d['p50']:.2f} | {d['p95']:.2f} "
            f"| {p['queries']} | {p['p50']:.2f} | {p['p95']:.2f} | {c50:.1f} / {c95:.1f} "
            f"| {a50:.1f} / {a95:.1f} |"
        )
    lines.append("")
    lines.append(
        "(10-row read: a whole request through gunicorn: token authentication, the decision, "
        "a connection to the source, the query, the audit event.) Opening a connection to "
        "the source, p50 / p95 ms: "
        + ", ".join(f"{label} {c50:.1f} / {c95:.1f}" for label, (c50, c95) in connects.items())
        + "."
    )
    lines.append("")
    verdicts = [
        (
            f"Goal, CSV through the API <= {GOAL_CSV_RATIO} x COPY: "
            + ("met" if csv_ratio <= GOAL_CSV_RATIO else "missed")
            + f" ({csv_ratio:.2f})."
        ),
        (
            f"Goal, web worker peak <= {GOAL_MB} MB while serving {args.rows:,} rows: "
            + ("met" if csv["peak_mb"] <= GOAL_MB else "missed")
            + f" ({csv['peak_mb']:.0f} MB)."
        ),
        (
            f"Goal, notebook client into pandas <= {GOAL_PANDAS_RATIO} x psycopg: "
            + ("met" if pandas_ratio <= GOAL_PANDAS_RATIO else "missed")
            + f" ({pandas_ratio:.2f})."
        ),
    ]
    lines.extend(verdicts)
    return "\n".join(lines)


def write_results(text: str, args, config: dict) -> None:
    common.write_results(
        SECTION,
        f"{date.today().isoformat()}, `bench/serving.py --rows {args.rows} --small {args.small}` "
        f"(medians of {args.repeat} runs, alternating; gunicorn 1 sync worker, DEBUG=0; "
        f"PostgreSQL {common.pg_version(config)}, {os.cpu_count()} CPUs).\n\n{text}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows served as CSV")
    parser.add_argument("--small", type=int, default=1_000_000, help="rows read into pandas")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument(
        "--no-preload",
        action="store_true",
        help="GUNICORN_PRELOAD=0: the worker loads and warms the portal itself",
    )
    args = parser.parse_args()
    if args.small > args.rows:
        sys.exit("--small must be at most --rows")

    config = common.database_config("bench/serving.py")
    recreate_database(config)
    media_root = Path(tempfile.mkdtemp(prefix="servingbench-media-"))
    os.environ["MEDIA_ROOT"] = str(media_root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    server = None
    try:
        call_command("migrate", verbosity=0)
        print(f"Generating {args.rows:,} rows in PostgreSQL...", flush=True)
        seconds, size = create_table(config, args.rows)
        setup = [
            f"`{SCHEMA}.{TABLE}`: {args.rows:,} rows, {len(COLUMNS)} columns "
            f"({', '.join(COLUMNS)}), {size} (generated and vacuumed in {seconds:.0f} s)"
        ]
        catalog = make_catalog(config)
        server = Gunicorn(media_root, media_root / "gunicorn.log", preload=not args.no_preload)
        print(f"gunicorn on {server.url}, worker pid {server.worker}", flush=True)

        print(f"(a) {args.rows:,} rows as CSV: API against COPY...", flush=True)
        csv = measure_csv(server, config, catalog, args.rows, args.repeat)
        print(f"(b) {args.small:,} rows into pandas: notebook client against psycopg...")
        pandas = measure_pandas(server, config, catalog, args.small, args.repeat)
        print(f"(c) the access decision, {DECISION_CALLS} calls per user...", flush=True)
        decision = measure_decision(catalog, DECISION_CALLS)
        request = measure_request(server, catalog, 50)
        connects = measure_connects(config, 30)

        from sharing.models import AccessEvent

        big = AccessEvent.objects.filter(rows=args.rows, channel="api").count()
        notebook = AccessEvent.objects.filter(rows=args.small, channel="notebook").count()
        setup.append(
            f"audit: {big} API read event(s) of {args.rows:,} rows and {notebook} notebook "
            f"read event(s) of {args.small:,} rows recorded (expected {args.repeat + 1} "
            f"(CSV and one Arrow) and {args.repeat})"
        )
        text = report(setup, csv, pandas, decision, request, connects, args)
        print()
        print(text)
        if args.write_results:
            write_results(text, args, config)
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
