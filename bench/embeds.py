"""Embeds (issue 19): an embed's data calls under 100 concurrent viewers, the uncached call
against the same read through the data API, and the embed page's weight in a browser.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_embeds \\
    REDIS_URL=redis://127.0.0.1:6379/15 CELERY_BROKER_URL=redis://127.0.0.1:6379/15 \\
    SECRET_KEY=x .venv/bin/python bench/embeds.py [--write-results]

Builds its own database (dropped and recreated; dropped at the end unless --keep):
`warehouse.orders`, --rows (200,000) orders of --tenants (1,000) tenants (an index on
`tenant`, as a multi-tenant table has), registered as the published product
`bench.orders` (the email confidential); its domain's owner creates a metric (revenue,
without cancelled orders), a KPI tile over it (by month, with its sparkline) and a line
chart over the port's rows (`order_date`, `amount`), both locked on `tenant`; a domain
application with an Ed25519 key signs the viewers' tokens (sharing.embeds.host). The
static files are collected as at a release (`collectstatic`: WhiteNoise's compressed
storage writes .gz and .br beside each file) into a temporary STATIC_ROOT.

Served as in production: gunicorn with deploy/gunicorn.conf.py (gthread, its worker count
and 4 threads, each worker's database pool as large as its threads, preloaded), DEBUG=0,
Redis cache, behind a proxy: requests carry `X-Forwarded-Proto: https` and the viewer's
address in `X-Forwarded-For` (TRUSTED_PROXIES=127.0.0.1), so the per-viewer rate limit
(EMBED_RATE_LIMIT, unchanged) counts each viewer apart, as it does behind nginx.

(1) In process, before the server starts: the SQL queries of one cached and one uncached
    embed data call and of the data API read (CaptureQueriesContext); the cached call's
    time over 300 calls, and each of its statements' (timed around the driver's execute).
    `--profile` prints a cProfile of the cached call.
(2) Uncached call vs the data API: for --repeat tenants never called before, alternately
    first, `GET /embed/<id>/data/` (a cache miss: X-Embed-Cache says so) and
    `GET /api/v1/products/bench.orders/data/?columns=order_date,amount&filter=[tenant =
    the same]&limit=501&format=json` with the owner's API token (the same rows, checked);
    medians and their ratio (goal <= 1.3 x).
(3) Cached calls under load: every tenant's answer cached first, then --users (100)
    viewers, each one person of one tenant with their own token and address, driven by
    Locust (FastHttpUser: geventhttpclient, one process on the same machine) at three
    paces, each against a baseline of the same viewers asking `/healthz` at the same pace
    in the same run: people who look at the chart 5-15 s before the next page that shows
    it (the goal's figures: the paces of bench/load.py), a busy pace (0.5-1.5 s) and a
    closed loop (no pause: 100 connections each asking again as soon as it is answered,
    the worst case, which only measures the saturated machine: p95 is then about
    users / throughput). p50/p95/p99 from every response of the measured window (not
    Locust's rounded buckets), throughput, errors. Goal: p95 <= 50 ms.
(4) Page weight: chromium (Playwright, as tests/browser/ launches it) opens a host page
    on the allowed origin with the embed's iframe (`/embed/<id>/#token=...`), the portal
    served by the same gunicorn configuration over HTTPS (a throwaway self-signed
    certificate), so the browser asks for brotli as it does from the production address;
    bytes received by the iframe (response headers and encoded bodies) until the KPI's
    value is shown / the chart's line is drawn, in a fresh browser (empty cache), with
    each response's Content-Encoding; then a second view in the same browser. Twice: with
    the static files as the settings serve them, and from the collected (compressed)
    files only (WHITENOISE_USE_FINDERS off: with it on, WhiteNoise serves the finders'
    uncompressed source files over the collected ones). Goals: <= 300 KB (KPI), <= 1.5 MB
    (chart).

Prints figures and ratios; never fails on a time (bench/README.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

# --- Locust's side (this file is also the locustfile: `locust -f bench/embeds.py`) ------

LOCUST_ENV = "EMBEDS_BENCH_LOCUST"

if os.environ.get(LOCUST_ENV):
    from locust import FastHttpUser, between, constant, events, task

    _TOKENS = json.loads(Path(os.environ["EMBEDS_BENCH_TOKENS"]).read_text())
    _DATA_PATH = os.environ["EMBEDS_BENCH_DATA_PATH"]
    _HOST_ORIGIN = os.environ["EMBEDS_BENCH_ORIGIN"]
    _THINK = [float(s) for s in os.environ["EMBEDS_BENCH_THINK"].split(",")]
    _WAIT = between(*_THINK) if _THINK[1] > 0 else constant(0)
    _SAMPLES = open(os.environ["EMBEDS_BENCH_SAMPLES"], "w")  # noqa: SIM115 - closed at quit
    _numbers = itertools.count(1)

    @events.spawning_complete.add_listener
    def _spawned(user_count, **kwargs):
        _SAMPLES.write(json.dumps({"spawned": time.time(), "users": user_count}) + "\n")

    @events.request.add_listener
    def _sample(request_type, name, response_time, response_length, exception=None, **kwargs):
        _SAMPLES.write(
            json.dumps([time.time(), name, response_time, exception is None, response_length])
            + "\n"
        )

    @events.quitting.add_listener
    def _quit(environment, **kwargs):
        _SAMPLES.write(json.dumps({"quit": time.time()}) + "\n")
        _SAMPLES.close()

    def _viewer_headers(number: int) -> dict:
        # The viewer's own address, as the proxy (nginx) passes it on.
        return {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": f"10.{20 + number // 60000}.{number // 250 % 240}.{number % 250}",
        }

    class EmbedViewer(FastHttpUser):
        """One person of one tenant with the host page open: the embed's data call, then
        `EMBEDS_BENCH_THINK` seconds looking at it before the next page that shows it."""

        wait_time = _WAIT

        def on_start(self):
            number = next(_numbers)
            tenant, token = random.choice(list(_TOKENS.items()))
            self.headers = {
                **_viewer_headers(number),
                "Authorization": f"Bearer {token}",
                "X-Embed-Origin": _HOST_ORIGIN,
            }

        @task
        def data(self):
            with self.client.get(
                _DATA_PATH, headers=self.headers, name="embed data", catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}: {response.text[:200]}")
                elif response.headers.get("X-Embed-Cache") != "hit":
                    response.failure("not a cache hit")

    class BaselineViewer(FastHttpUser):
        """The same viewers at the same pace asking /healthz (no database, no Redis): what
        gunicorn, the machine and Locust cost on their own."""

        wait_time = _WAIT

        def on_start(self):
            self.headers = _viewer_headers(next(_numbers))

        @task
        def healthz(self):
            self.client.get("/healthz", headers=self.headers, name="baseline /healthz")


# --- the benchmark ---------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECTION = "## Embeds (issue 19)"
KEY = "bench.orders"
HOST_ORIGIN = "https://shop.example.com"
KID = "shop-1"
COLUMNS = ["order_date", "amount"]
PROXY = {"X-Forwarded-Proto": "https"}
GOAL_P95_MS = 50
GOAL_RATIO = 1.3
GOAL_KPI_KB = 300
GOAL_CHART_KB = 1500
# bench/load.py's paces: people reading (the goal), a busy pace, and a closed loop.
PACES = [("people", "5,15"), ("busy", "0.5,1.5"), ("closed loop", "0,0")]

SETTINGS_MODULE = """\
# Written by bench/embeds.py: production settings with the release's static files
# collected into a temporary directory (not the checkout's var/static).
import os
from pathlib import Path

from portal.settings import *  # noqa: F403

STATIC_ROOT = Path(os.environ["EMBEDS_BENCH_STATIC_ROOT"])
if os.environ.get("EMBEDS_BENCH_COLLECTED_ONLY") == "1":
    # WhiteNoise serves the collected files (with their .br/.gz) and not the finders'.
    WHITENOISE_USE_FINDERS = False
"""


def tenant_name(number: int) -> str:
    return f"t{number:04d}"


def create_orders(config: dict, rows: int, tenants: int) -> str:
    """warehouse.orders in date order (append-only), tenants interleaved; its size."""
    from bench import common

    with common.connect(config, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA warehouse")
        conn.execute(
            "CREATE TABLE warehouse.orders AS SELECT i AS order_id, "
            f"'t' || lpad((1 + i % {tenants})::text, 4, '0') AS tenant, "
            f"DATE '2025-01-01' + (i * 365 / {rows})::int AS order_date, "
            "(ARRAY['placed','paid','shipped','delivered','cancelled'])[1 + (i * 7) % 5] "
            "AS status, "
            "CAST(((i * 7727) % 50000 + 100) AS double precision) / 100 AS amount, "
            "(ARRAY['BE','NL','FR','DE','LU'])[1 + (i * 13) % 5] AS country, "
            "'customer' || (i * 104729) % 250000 || '@example.com' AS email "
            f"FROM generate_series(1::bigint, {rows}) AS i"
        )
        conn.execute("CREATE INDEX ON warehouse.orders (tenant)")
        conn.execute("VACUUM (ANALYZE) warehouse.orders")
        return conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('warehouse.orders'))"
        ).fetchone()[0]


def make_catalog(config: dict) -> dict:
    """bench.orders, its owner, a metric, the KPI and chart embeds, a domain application
    with an Ed25519 key, the owner's API token."""
    from django.contrib.auth import get_user_model
    from knox.models import AuthToken

    from products.catalog.services.ports import source_allow
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
    from products.definitions.services.metrics import metric_create
    from products.models import DataProduct, DataSource, Domain, DomainMembership, OutputPort
    from sharing.embeds.host import key_pair
    from sharing.embeds.services.apps import embed_app_create
    from sharing.embeds.services.embeds import embed_create

    users = get_user_model().objects
    admin = users.create_superuser("bench-admin", "admin@example.com", None)
    owner = users.create_user("bench-owner", "owner@example.com", None)
    domain = Domain.objects.create(name="Bench", slug="bench")
    DomainMembership.objects.create(domain=domain, user=owner, role=MembershipRole.OWNER)
    source = DataSource.objects.create(
        name="bench warehouse",
        kind=SourceKind.POSTGRESQL,
        host=config.get("HOST") or "127.0.0.1",
        port=int(config.get("PORT") or 5432),
        database=config["NAME"],
        username=config.get("USER") or "",
    )
    source_allow(source=source, domain=domain, by=admin, schema_name="warehouse")
    product = product_create(domain=domain, name="Orders", slug="orders", by=admin, summary="B.")
    DataProduct.objects.filter(pk=product.pk).update(status=LifecycleStatus.PUBLISHED)
    product.refresh_from_db()
    port = OutputPort.objects.create(
        product=product,
        name="Orders",
        slug="orders",
        kind=PortKind.TABLE,
        source=source,
        schema_name="warehouse",
        table_name="orders",
    )
    with connector_for_port(port) as connector:
        schema_apply_columns(port=port, columns=connector.describe())
    port.columns.filter(name="email").update(classification=Classification.CONFIDENTIAL)
    metric = metric_create(
        by=owner,
        port=port,
        key="bench.revenue",
        name="Revenue",
        aggregation="sum",
        column="amount",
        filters=[{"column": "status", "op": "!=", "value": "cancelled"}],
        dimensions=["tenant", "country"],
        time_column="order_date",
    )
    shared = {"locked_params": {"tenant": "tenant"}, "allowed_origins": [HOST_ORIGIN]}
    kpi = embed_create(
        by=owner,
        product=product,
        title="Your revenue",
        chart="kpi",
        metric=metric,
        grain="month",
        cache_seconds=3600,
        **shared,
    )
    chart = embed_create(
        by=owner,
        product=product,
        title="Your orders",
        chart="line",
        port_slug="orders",
        columns=COLUMNS,
        cache_seconds=3600,
        **shared,
    )
    private, public = key_pair("EdDSA")
    embed_app_create(
        by=owner, name="Shop", domain=domain, kid=KID, algorithm="EdDSA", public_key=public
    )
    return {
        "owner": owner,
        "product": product,
        "kpi": kpi,
        "chart": chart,
        "private_key": private,
        "api_token": AuthToken.objects.create(owner)[1],
    }


def sign(catalog: dict, embed, tenant: str, seconds: int = 600) -> str:
    from sharing.embeds.host import embed_token_sign

    return embed_token_sign(
        private_key=catalog["private_key"],
        kid=KID,
        embed_id=embed.pk,
        params={"tenant": tenant},
        seconds=seconds,
    )


def api_path(tenant: str, limit: int) -> str:
    from urllib.parse import urlencode

    query = urlencode(
        {
            "columns": ",".join(COLUMNS),
            "filter": json.dumps([{"column": "tenant", "op": "=", "value": tenant}]),
            "limit": limit,
            "format": "json",
        }
    )
    return f"/api/v1/products/{KEY}/data/?{query}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


# --- (1) queries in process ------------------------------------------------------------


def queries_in_process(catalog: dict, repeat: int, *, profile: bool = False) -> dict:
    """The SQL of one cached and one uncached embed call and of the API read, and the
    in-process time of the cached call (Django's test client: no HTTP, no gunicorn)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    embed = catalog["chart"]
    path = f"/embed/{embed.pk}/data/"
    addresses = (f"10.99.{n // 250}.{n % 250}" for n in itertools.count())

    def embed_call(tenant: str):
        return client.get(
            path,
            secure=True,
            REMOTE_ADDR=next(addresses),
            HTTP_AUTHORIZATION=f"Bearer {sign(catalog, embed, tenant)}",
            HTTP_X_EMBED_ORIGIN=HOST_ORIGIN,
        )

    found = {}
    for name, call in (
        ("uncached embed call", lambda: embed_call(tenant_name(999))),
        ("cached embed call", lambda: embed_call(tenant_name(999))),
        (
            "data API read",
            lambda: client.get(
                api_path(tenant_name(998), 501),
                secure=True,
                HTTP_AUTHORIZATION=f"Token {catalog['api_token']}",
            ),
        ),
    ):
        with CaptureQueriesContext(connection) as captured:
            response = call()
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
        if response.status_code != 200:
            sys.exit(f"{name}: {response.status_code} {response.content[:300]!r}")
        found[name] = [(q["sql"], float(q["time"]) * 1000) for q in captured.captured_queries]
    # The cached call in process: its time, and each statement's (timed around the
    # driver's execute: Django's captured times are rounded to the millisecond).
    tokens = [sign(catalog, embed, tenant_name(999)) for _ in range(repeat)]
    times, statements = [], []

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements[-1].append((time.perf_counter() - began) * 1000)

    for number, token in enumerate(tokens):
        statements.append([])
        with CaptureQueriesContext(connection), connection.execute_wrapper(timed):
            began = time.perf_counter()
            response = client.get(
                path,
                secure=True,
                REMOTE_ADDR=f"10.98.{number // 250}.{number % 250}",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                HTTP_X_EMBED_ORIGIN=HOST_ORIGIN,
            )
            times.append((time.perf_counter() - began) * 1000)
        assert response["X-Embed-Cache"] == "hit", response.content[:200]
    found["cached embed call"] = [
        (sql, statistics.median(call[index] for call in statements if len(call) > index))
        for index, (sql, _) in enumerate(found["cached embed call"])
    ]
    if profile:  # where a cached call's time goes, by function (--profile)
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        for number, token in enumerate(tokens):
            profiler.enable()
            client.get(
                path,
                secure=True,
                REMOTE_ADDR=f"10.97.{number // 250}.{number % 250}",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                HTTP_X_EMBED_ORIGIN=HOST_ORIGIN,
            )
            profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
    found["cached in process"] = {
        "p50": statistics.median(times),
        "p95": percentile(times, 0.95),
        "sql_p50": statistics.median(sum(call) for call in statements),
    }
    return found


# --- the web process -------------------------------------------------------------------


class Web:
    """gunicorn with deploy/gunicorn.conf.py (its workers, 4 gthread threads, pool per
    worker as large as its threads, preloaded) on a free port; `tls` adds a certificate
    (the browser then asks for brotli, as from the production address)."""

    def __init__(self, env: dict, log_path: Path, *, workers: int | None, tls=None) -> None:
        from bench.common import free_port

        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        env = dict(env, GUNICORN_BIND=f"127.0.0.1:{self.port}", GUNICORN_THREADS="4")
        if workers:
            env["WEB_CONCURRENCY"] = str(workers)
        self.workers = int(env.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) * 2 + 1)
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "portal.wsgi:application",
        ]
        if tls:
            command += ["--certfile", str(tls[0]), "--keyfile", str(tls[1])]
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.close()
                sys.exit(f"gunicorn exited early:\n{log_path.read_text()[-3000:]}")
            try:
                status, _, _ = http_get(self, "/healthz", {})
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        sys.exit(f"gunicorn did not answer within 120 s:\n{log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def http_get(web: Web, path: str, headers: dict) -> tuple[int, dict, bytes]:
    """One GET on a new connection: status, headers, body."""
    import http.client
    import ssl

    if web.url.startswith("https"):
        conn = http.client.HTTPSConnection(
            "127.0.0.1", web.port, timeout=60, context=ssl._create_unverified_context()
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# --- (2) uncached embed call vs the data API ---------------------------------------------


def uncached_vs_api(web: Web, catalog: dict, tenants: list[str]) -> dict:
    embed = catalog["chart"]
    path = f"/embed/{embed.pk}/data/"
    limit = embed.row_cap + 1  # what the embed reads (one more: "truncated")
    api_headers = {**PROXY, "Authorization": f"Token {catalog['api_token']}"}
    embeds, apis = [], []
    for number, tenant in enumerate(tenants):
        headers = {
            **PROXY,
            "X-Forwarded-For": f"10.50.{number // 250}.{number % 250}",
            "Authorization": f"Bearer {sign(catalog, embed, tenant)}",
            "X-Embed-Origin": HOST_ORIGIN,
        }

        def call_embed(headers=headers):
            began = time.perf_counter()
            status, answer_headers, body = http_get(web, path, headers)
            embeds.append(time.perf_counter() - began)
            if status != 200 or answer_headers.get("X-Embed-Cache") != "miss":
                sys.exit(f"embed call: {status} {answer_headers} {body[:300]!r}")
            return json.loads(body)["rows"]

        def call_api(tenant=tenant):
            began = time.perf_counter()
            status, _, body = http_get(web, api_path(tenant, limit), api_headers)
            apis.append(time.perf_counter() - began)
            if status != 200:
                sys.exit(f"API read: {status} {body[:300]!r}")
            return [[row[name] for name in COLUMNS] for row in json.loads(body)]

        if number % 2:
            api_rows, embed_rows = call_api(), call_embed()
        else:
            embed_rows, api_rows = call_embed(), call_api()
        if number == 0 or number == len(tenants) - 1:
            same = sorted(map(str, embed_rows)) == sorted(map(str, api_rows))
            if not same or not embed_rows:
                sys.exit(f"different rows: embed {embed_rows[:3]} API {api_rows[:3]}")
    rows = len(embed_rows)
    return {
        "embed": statistics.median(embeds) * 1000,
        "api": statistics.median(apis) * 1000,
        "embed_p95": percentile(embeds, 0.95) * 1000,
        "api_p95": percentile(apis, 0.95) * 1000,
        "rows": rows,
        "n": len(tenants),
    }


def warm_cache(web: Web, catalog: dict, tenants: list[str]) -> int:
    """Every tenant's answer in the cache (one call each); the calls that missed."""
    embed = catalog["chart"]
    missed = 0
    for number, tenant in enumerate(tenants):
        headers = {
            **PROXY,
            "X-Forwarded-For": f"10.60.{number // 250}.{number % 250}",
            "Authorization": f"Bearer {sign(catalog, embed, tenant)}",
            "X-Embed-Origin": HOST_ORIGIN,
        }
        status, answer_headers, body = http_get(web, f"/embed/{embed.pk}/data/", headers)
        if status != 200:
            sys.exit(f"warming the cache: {status} {body[:300]!r}")
        missed += answer_headers.get("X-Embed-Cache") == "miss"
    return missed


# --- (3) load ----------------------------------------------------------------------------


def _jiffies(pid: int, *, children: bool = False) -> int:
    """CPU clock ticks of a process (and of its children it has waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    used = int(fields[11]) + int(fields[12])  # utime, stime
    return used + (int(fields[13]) + int(fields[14]) if children else 0)


def _machine_busy() -> int:
    """Ticks every CPU spent on anything but idle and I/O wait, since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return user + nice + system + irq + softirq + steal


def _ours(web: Web, config: dict) -> int:
    """Ticks of this run's processes: gunicorn (master, its workers, those it recycled),
    the PostgreSQL backends of the bench database, and this process's waited children
    (Locust)."""
    from bench import common
    from bench.common import children_of

    with common.admin_connection(config) as conn:
        backends = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [config["NAME"]]
            )
        ]
    clock = os.sysconf("SC_CLK_TCK")
    waited = os.times()
    return (
        _jiffies(web.process.pid, children=True)
        + sum(_jiffies(pid) for pid in children_of(web.process.pid))
        + sum(_jiffies(pid) for pid in backends)
        + round((waited.children_user + waited.children_system) * clock)
    )


def run_locust(
    web: Web,
    env: dict,
    out: Path,
    *,
    user_class: str,
    users: int,
    think: str,
    ramp: int,
    seconds: int,
    tokens_file: Path,
    data_path: str,
    config: dict,
    run: int = 0,
) -> dict:
    samples = out / f"{user_class}-{think}-{run}.jsonl"
    env = dict(
        env,
        **{LOCUST_ENV: "1"},
        EMBEDS_BENCH_TOKENS=str(tokens_file),
        EMBEDS_BENCH_DATA_PATH=data_path,
        EMBEDS_BENCH_ORIGIN=HOST_ORIGIN,
        EMBEDS_BENCH_THINK=think,
        EMBEDS_BENCH_SAMPLES=str(samples),
    )
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(Path(__file__).resolve()),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        f"{users / max(1, ramp):.2f}",
        "--run-time",
        f"{ramp + seconds}s",
        "--host",
        web.url,
        "--only-summary",
        "--loglevel",
        "WARNING",
        user_class,
    ]
    busy, ours, began = _machine_busy(), _ours(web, config), time.monotonic()
    done = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=ramp + seconds + 120
    )
    wall = (time.monotonic() - began) * os.sysconf("SC_CLK_TCK")
    others = max(0, (_machine_busy() - busy) - (_ours(web, config) - ours)) / wall
    if not samples.exists():
        sys.exit(f"locust failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    spawned = quit_at = None
    kept, errors = [], {}
    rows = [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]
    for row in rows:
        if isinstance(row, dict):
            spawned = row.get("spawned", spawned)
            quit_at = row.get("quit", quit_at)
    if spawned is None:
        sys.exit(f"locust never spawned every user:\n{done.stderr[-3000:]}")
    for row in rows:
        if isinstance(row, list) and row[0] - row[2] / 1000 >= spawned:
            kept.append(row)
    times = [row[2] for row in kept]
    failures = [row for row in kept if not row[3]]
    if failures:
        for line in done.stdout.splitlines() + done.stderr.splitlines():
            if "Error" in line or "fail" in line.lower():
                errors[line.strip()[:200]] = True
    window = (quit_at or max(row[0] for row in kept)) - spawned
    return {
        "requests": len(kept),
        "failures": len(failures),
        "rps": len(kept) / window if window > 0 else 0.0,
        "p50": percentile(times, 0.50) if times else 0.0,
        "p95": percentile(times, 0.95) if times else 0.0,
        "p99": percentile(times, 0.99) if times else 0.0,
        "bytes": statistics.median(row[4] for row in kept) if kept else 0,
        "errors": list(errors)[:5],
        "others": others,  # CPUs other sessions used meanwhile
    }


# --- (4) page weight ----------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (the browser is told to accept it)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def spki_hash(cert_path: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate: what chromium's
    --ignore-certificate-errors-spki-list names."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class HostPage:
    """The host application's page (`HOST_ORIGIN`), served over TLS from 127.0.0.1 on a free
    port; the browser resolves the host's name to it (--host-resolver-rules), so its
    origin is the allowed one and its HTTP cache works (Playwright's routing turns it off).
    `/<name>` is a page with the iframe `pages[name]`."""

    def __init__(self, tls: tuple[Path, Path], pages: dict[str, str]) -> None:
        import ssl
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from bench.common import free_port

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                src = pages.get(self.path.strip("/"))
                if src is None:
                    self.send_error(404)
                    return
                body = (
                    "<!doctype html><html><head><meta charset=utf-8><title>Shop</title></head>"
                    "<body><h1>Your shop</h1>"
                    f'<iframe id="embed" src="{src}" width="640" height="360" '
                    'referrerpolicy="origin" title="Embedded chart"></iframe></body></html>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.spki = spki_hash(tls[0])
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def page_weights(web: Web, host: HostPage, frames: dict[str, str]) -> dict:
    """For each embed (name -> the selector that says it is drawn), the host page
    `HOST_ORIGIN/<name>`: the responses its iframe received until drawn, in a fresh
    browser; then a second view in the same browser (its HTTP cache)."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    hostname = HOST_ORIGIN.split("://", 1)[1]
    args = [
        *CHROMIUM_ARGS,
        # Trust the throwaway certificate by its key (ignore_https_errors would do, but a
        # browser keeps nothing in its HTTP cache from a host whose certificate it refused).
        f"--ignore-certificate-errors-spki-list={host.spki}",
        f"--host-resolver-rules=MAP {hostname} 127.0.0.1:{host.port}",
        # The host's name is public and the portal listens on 127.0.0.1: the local-network
        # protection would block the frame (in production both are public addresses).
        "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessForNavigations,"
        "PrivateNetworkAccessForIframes,BlockInsecurePrivateNetworkRequests",
    ]
    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            for name, drawn in frames.items():
                context = browser.new_context()
                try:
                    results[name] = [
                        _one_view(context.new_page(), web, f"{HOST_ORIGIN}/{name}", drawn)
                        for _ in range(2)  # a first view (empty cache), then a second
                    ]
                finally:
                    context.close()
        finally:
            browser.close()
    return results


def _one_view(page, web: Web, url: str, drawn: str) -> dict:
    finished, started, console = [], [], []
    page.on("requestfinished", lambda request: finished.append(request))
    page.on("request", lambda request: started.append(request))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"[:300]))
    began = time.perf_counter()
    page.goto(url)
    frame = page.frame_locator("#embed")
    try:
        frame.locator(drawn).first.wait_for(state="attached", timeout=30_000)
    except Exception as exc:  # say what the frame shows instead
        shown = frame.locator("body").inner_text(timeout=5_000)[:500]
        raise RuntimeError(
            f"{url}: not drawn; the frame shows {shown!r}, console: {console}"
        ) from exc
    seconds = time.perf_counter() - began
    seen = [r for r in list(finished) if r.url.startswith(web.url)]
    pending = [r.url for r in list(started) if r.url.startswith(web.url) and r not in seen]
    responses = []
    for request in seen:
        sizes = request.sizes()
        response = request.response()
        headers = response.all_headers() if response else {}
        responses.append(
            {
                "path": request.url[len(web.url) :].split("#")[0][:70],
                "status": response.status if response else 0,
                "accepts": request.all_headers().get("accept-encoding", ""),
                "encoding": headers.get("content-encoding", "none"),
                "received": sizes["responseBodySize"] + sizes["responseHeadersSize"],
                "decoded": len(response.body()) if response else 0,
            }
        )
    page.close()
    return {
        "responses": responses,
        "received": sum(r["received"] for r in responses),
        "decoded": sum(r["decoded"] for r in responses),
        "seconds": seconds,
        "pending": pending,
    }


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--users", type=int, default=100, help="concurrent viewers")
    parser.add_argument("--seconds", type=int, default=60, help="measured seconds per run")
    parser.add_argument("--ramp", type=int, default=10, help="seconds over which viewers arrive")
    parser.add_argument(
        "--repeat", type=int, default=200, help="uncached calls and API reads (alternating)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (deploy default: 2 x CPUs + 1)"
    )
    parser.add_argument("--paces", default=",".join(p for p, _ in PACES), help="paces to run")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of each pace (the table shows the median)"
    )
    parser.add_argument("--no-browser", action="store_true", help="skip the page weights")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the cached call in process"
    )
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    from bench import common

    config = common.database_config("bench/embeds.py")
    if not os.environ.get("REDIS_URL", "").startswith("redis://"):
        sys.exit("bench/embeds.py measures the production shape: set REDIS_URL=redis://...")
    if args.tenants < args.repeat + 2:
        sys.exit("--tenants must exceed --repeat: each uncached call is a tenant's first")
    work = Path(tempfile.mkdtemp(prefix="portal-bench-embeds-"))
    static_root = work / "static"
    (work / "embeds_bench_settings.py").write_text(SETTINGS_MODULE)
    sys.path.insert(0, str(work))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="embeds_bench_settings",
        EMBEDS_BENCH_STATIC_ROOT=str(static_root),
        MEDIA_ROOT=str(work / "media"),
        DEBUG="0",
        SECURE_PROXY_SSL_HEADER="1",
        TRUSTED_PROXIES="127.0.0.1",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "insecure-bench-only-key",
        PYTHONPATH=os.pathsep.join([str(work), str(ROOT)]),
    )
    os.environ.setdefault("CELERY_BROKER_URL", os.environ["REDIS_URL"])
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    common.recreate_database(config)
    postgres_version = common.pg_version(config)
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connections

    webs: list[Web] = []
    try:
        call_command("migrate", verbosity=0)
        began = time.perf_counter()
        size = create_orders(config, args.rows, args.tenants)
        catalog = make_catalog(config)
        call_command("collectstatic", interactive=False, verbosity=0)
        cache.clear()  # this Redis database: no answer of an earlier run
        seeded = time.perf_counter() - began
        print(
            f"{args.rows:,} orders of {args.tenants:,} tenants ({size}), catalog, "
            f"static files: {seeded:.0f} s",
            flush=True,
        )
        storage = settings.STORAGES["staticfiles"]["BACKEND"].rsplit(".", 1)[1]
        compressed = sorted(
            p.suffix for p in static_root.glob("js/embed.js.*") if p.suffix in (".gz", ".br")
        )

        print("(1) queries per call, in process...", flush=True)
        found = queries_in_process(catalog, 300, profile=args.profile)
        connections.close_all()
        cached = found["cached in process"]
        print(
            f"    cached call: {len(found['cached embed call'])} queries, p50 "
            f"{cached['p50']:.2f} ms (SQL {cached['sql_p50']:.2f} ms); uncached: "
            f"{len(found['uncached embed call'])} queries; API read: "
            f"{len(found['data API read'])} queries",
            flush=True,
        )

        env = dict(os.environ)
        tenants = [tenant_name(n) for n in range(1, args.tenants + 1)]
        web = Web(env, work / "gunicorn.log", workers=args.workers)
        webs.append(web)
        workers = web.workers
        print(f"(2) uncached call vs the data API, {args.repeat} tenants...", flush=True)
        http_get(web, "/healthz", {})
        # Warm-up: each gunicorn worker's first requests (imports, pool) are not measured.
        warm_cache(web, catalog, tenants[-1:] * (web.workers * 4))
        compare = uncached_vs_api(web, catalog, tenants[: args.repeat])
        print(f"    embed {compare['embed']:.1f} ms, API {compare['api']:.1f} ms", flush=True)
        missed = warm_cache(web, catalog, tenants)
        tokens_file = work / "tokens.json"
        paces = [p for p in PACES if p[0] in args.paces.split(",")]
        loads: dict[tuple[str, str], list[dict]] = {}
        missed_later = 0
        for run, (pace, think) in itertools.product(range(args.runs), paces):
            if run and pace == paces[0][0]:  # every answer still cached (each run's misses: 0)
                missed_later += warm_cache(web, catalog, tenants)
            for user_class in ("BaselineViewer", "EmbedViewer"):
                # Fresh tokens (at most 10 minutes long) for each run.
                tokens_file.write_text(
                    json.dumps({t: sign(catalog, catalog["chart"], t) for t in tenants})
                )
                print(
                    f"(3) run {run + 1} of {args.runs}, {pace} ({think} s): {user_class}, "
                    f"{args.users} viewers, {args.ramp} + {args.seconds} s...",
                    flush=True,
                )
                result = run_locust(
                    web,
                    env,
                    work,
                    user_class=user_class,
                    users=args.users,
                    think=think,
                    ramp=args.ramp,
                    seconds=args.seconds,
                    tokens_file=tokens_file,
                    data_path=f"/embed/{catalog['chart'].pk}/data/",
                    config=config,
                    run=run,
                )
                loads.setdefault((pace, user_class), []).append(result)
                print(
                    f"    p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, "
                    f"{result['rps']:.0f}/s, {result['failures']} failures; other sessions "
                    f"used {result['others']:.1f} of {os.cpu_count()} CPUs meanwhile",
                    flush=True,
                )
        web.stop()
        webs.remove(web)

        weights = {}
        if not args.no_browser:
            print("(4) page weights in chromium...", flush=True)
            tls = self_signed(work)
            pages: dict[str, str] = {}
            host = HostPage(tls, pages)
            try:
                # As the settings serve static files, then from the collected files only.
                for served, collected_only in (("as configured", "0"), ("collected", "1")):
                    web = Web(
                        dict(env, EMBEDS_BENCH_COLLECTED_ONLY=collected_only),
                        work / f"gunicorn-tls-{collected_only}.log",
                        workers=1,
                        tls=tls,
                    )
                    webs.append(web)
                    for name, embed in (("kpi", catalog["kpi"]), ("chart", catalog["chart"])):
                        pages[name] = f"{web.url}/embed/{embed.pk}/#token=" + sign(
                            catalog, embed, tenant_name(7)
                        )
                    weights[served] = page_weights(
                        web,
                        host,
                        {
                            "kpi": ".embed-kpi-value",
                            "chart": ".embed-chart .scatterlayer path.js-line",
                        },
                    )
                    web.stop()
                    webs.remove(web)
            finally:
                host.stop()
    finally:
        for web in webs:
            web.stop()
        connections.close_all()
        if not args.keep:
            cache.clear()  # the answers, last good values and rate-limit counts of this run
            common.drop_database(config)
            shutil.rmtree(work, ignore_errors=True)

    text = report(
        args,
        found,
        compare,
        loads,
        paces,
        weights,
        (missed, missed_later),
        storage,
        compressed,
        workers,
    )
    print()
    print(text)
    if args.write_results:
        common.write_results(
            SECTION,
            f"{date.today().isoformat()}, `DATABASE_URL=postgres://.../portal_bench_embeds "
            f"REDIS_URL=redis://127.0.0.1:6379/15 CELERY_BROKER_URL=redis://127.0.0.1:6379/15 "
            f"SECRET_KEY=x .venv/bin/python bench/embeds.py --rows {args.rows} --tenants "
            f"{args.tenants} --users {args.users} --seconds {args.seconds} --ramp {args.ramp} "
            f"--runs {args.runs} --repeat {args.repeat} --write-results` (PostgreSQL "
            f"{postgres_version}).\n\n{text}",
        )


def _short(sql: str) -> str:
    text = " ".join(sql.split())
    return (text[:110] + "...") if len(text) > 110 else text


def report(
    args, found, compare, loads, paces, weights, missed, storage, compressed, workers
) -> str:
    load = os.getloadavg()
    ratio = compare["embed"] / compare["api"]
    lines = [
        f"{args.rows:,} orders of {args.tenants:,} tenants (about "
        f"{args.rows // args.tenants} rows each, an index on tenant); gunicorn with "
        f"deploy/gunicorn.conf.py: {workers} gthread workers x 4 threads (at most "
        f"{workers * 4} pooled database connections), preloaded, DEBUG=0, Redis cache, "
        f"behind a proxy (X-Forwarded-Proto/For); {os.cpu_count()} CPUs shared with Locust "
        f"and other sessions; load average at the end {load[0]:.2f} / {load[1]:.2f}.",
        "",
        "| measure | figure | baseline (same run) | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    spreads = []
    for pace, think in paces:
        runs = loads[pace, "EmbedViewer"]
        # The median run by the embed's p95, with the baseline of the same run.
        median = sorted(range(len(runs)), key=lambda i: runs[i]["p95"])[len(runs) // 2]
        embed, base = runs[median], loads[pace, "BaselineViewer"][median]
        spreads.append(
            f"- {pace}: p95 of each run "
            + ", ".join(
                f"{r['p95']:.1f} ms ({r['rps']:.0f} calls/s; others used {r['others']:.1f} CPUs)"
                for r in runs
            )
        )
        low, high = think.split(",")
        label = "no pause (closed loop)" if float(high) == 0 else f"{low}-{high} s between calls"
        is_goal = pace == "people"
        lines.append(
            f"| cached data call, {args.users} viewers, {pace}: {label} | p50 "
            f"{embed['p50']:.1f} / **p95 {embed['p95']:.1f}** / p99 {embed['p99']:.1f} ms, "
            f"{embed['rps']:.0f} calls/s, {embed['requests']:,} calls, "
            f"{embed['failures']} errors | /healthz p50 {base['p50']:.1f} / p95 "
            f"{base['p95']:.1f} / p99 {base['p99']:.1f} ms, {base['rps']:.0f}/s | p95 "
            f"{embed['p95'] / max(base['p95'], 0.1):.1f} x | "
            + (
                f"p95 <= {GOAL_P95_MS} ms | {'yes' if embed['p95'] <= GOAL_P95_MS else 'no'} |"
                if is_goal
                else "(worst case, reported) | |"
            )
        )
    lines.append(
        f"| uncached data call vs data API read ({compare['rows']} rows, same columns and "
        f"filter; medians of {compare['n']}, alternating) | {compare['embed']:.1f} ms (p95 "
        f"{compare['embed_p95']:.1f}) | {compare['api']:.1f} ms (p95 {compare['api_p95']:.1f})"
        f" | {ratio:.2f} x | <= {GOAL_RATIO} x | {'yes' if ratio <= GOAL_RATIO else 'no'} |"
    )
    for served, label in (
        ("as configured", "static files as the settings serve them"),
        ("collected", "from the collected files (WHITENOISE_USE_FINDERS off)"),
    ):
        for name, title, goal in (
            ("kpi", "KPI tile", GOAL_KPI_KB),
            ("chart", "line chart", GOAL_CHART_KB),
        ):
            if name not in weights.get(served, {}):
                continue
            first, second = weights[served][name]
            kb = first["received"] / 1000
            lines.append(
                f"| page weight until drawn, {title}, {label} (fresh browser, HTTPS) | "
                f"{kb:,.1f} KB received ({first['decoded'] / 1000:,.1f} KB decoded), "
                f"{len(first['responses'])} responses, drawn after "
                f"{first['seconds'] * 1000:.0f} ms | second view (browser cache): "
                f"{second['received'] / 1000:,.1f} KB | | <= {goal} KB | "
                f"{'yes' if kb <= goal else 'no'} |"
            )
    if spreads:
        lines += [
            "",
            f"Cached calls: the table shows the median of {args.runs} runs of each pace (by "
            "p95); every run, with the CPUs other sessions on this machine used during it "
            "(the machine's busy time less gunicorn's, Locust's and the bench database's "
            "backends'):",
            "",
            *spreads,
        ]
    lines += ["", "Queries per call (in process, Django's test client, CaptureQueriesContext):", ""]
    for name in ("cached embed call", "uncached embed call", "data API read"):
        queries = found[name]
        lines.append(
            f"- {name}: **{len(queries)} queries**"
            + (
                " (median time of each over the calls below):"
                if name == "cached embed call"
                else ""
            )
        )
        if name == "cached embed call":
            lines += [f"  - {ms:.2f} ms `{_short(sql)}`" for sql, ms in queries]
    cached = found["cached in process"]
    lines += [
        f"- the cached call in process, 300 calls: p50 {cached['p50']:.2f} ms, p95 "
        f"{cached['p95']:.2f} ms, of which SQL (the driver's execute) p50 "
        f"{cached['sql_p50']:.2f} ms",
        "",
        f"Cache: {missed[0]} of {args.tenants:,} warming calls missed (each tenant's first: "
        f"the others were read uncached above), {missed[1]} when warmed again before each "
        "later run (the embed keeps answers 3,600 s); "
        "every measured cached call was a hit (a miss counts as an error).",
    ]
    if weights:
        lines += [
            "",
            f"Static files: collected with {storage} (collectstatic, as at a release): "
            f"embed.js has {', '.join(compressed) or 'no'} variants beside it. Responses of "
            "the iframe until drawn (fresh browser; Accept-Encoding is what chromium asked "
            "for):",
            "",
            "| served | embed | response | status | Accept-Encoding | Content-Encoding "
            "| received bytes | decoded bytes |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for served, by_embed in weights.items():
            for name, views in by_embed.items():
                for r in views[0]["responses"]:
                    lines.append(
                        f"| {served} | {name} | `{r['path']}` | {r['status']} | {r['accepts']} "
                        f"| {r['encoding']} | {r['received']:,} | {r['decoded']:,} |"
                    )
                if views[0]["pending"]:
                    lines.append(
                        f"| {served} | {name} | still loading when drawn: "
                        f"{views[0]['pending']} | | | | | |"
                    )
    lines += [
        "",
        "Viewers: each Locust user is one person of one tenant (a random one of the "
        f"{args.tenants:,}) with their own token and address, calling `/embed/<id>/data/` "
        "of the line chart as its framed page does (Authorization: Bearer, X-Embed-Origin); "
        "all arrive over the ramp, then the window is measured. An embed page makes one data "
        "call when it opens (embed.js does not poll), and its viewer then looks at it: the "
        "goal is read on people who look 5-15 s before the next page that shows it "
        f"(bench/load.py's pace: {args.users} viewers offer about {args.users // 10} calls/s). "
        "The busy pace (0.5-1.5 s, about ten times as many calls) and the closed loop (each "
        "connection asks again as soon as it is answered: as many calls as the machine "
        "answers) are worst cases; in a closed loop the latency is the queue, about viewers "
        "/ throughput, so it measures the saturated machine's throughput, not a call's cost.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
