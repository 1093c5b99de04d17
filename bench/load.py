"""Load: many signed-in people at once against gunicorn on PostgreSQL and Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_load \\
    REDIS_URL=redis://127.0.0.1:6379/14 python bench/load.py [--write-results]

Builds its own database (dropped afterwards unless --keep): the demo data plus generated
products (100,000 by default, as in bench/catalog.py), and bench readers who are members
of the demo's Sales domain. Starts gunicorn with deploy/gunicorn.conf.py (production
settings over plain HTTP), then drives it with Locust (bench/locustfile.py), headless, for
each number of users:

- `PortalUser`: the mixed workload (search page, product pages across the catalog, API
  product list, data preview, feedback posts), each person signed in with a session;
- `BaselineUser`: the same number of people asking `/healthz` (no database, no template),
  measured in the same run: what the machine, gunicorn and Locust cost on their own.

Two kinds of people: those who read what a page shows before their next click (`--think`,
5-15 s by default: the goal's figures), and a stress run whose people click again 0.5-1.5 s
after each answer (`--stress-think`): a closed loop that saturates the server and shows
how many requests per second it can answer.

Prints requests per second (in all and per web worker process), p50/p95/p99 and errors per
request kind, and the p95 ratio of the mix to the baseline. Locust runs on the same
machine as the server: its CPU is part of the figures."""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.serving import free_port  # noqa: E402

ROOT = common.ROOT
SECTION = "## Load (issue 8)"
PASSWORD = "bench-load-password"  # noqa: S105 - a throwaway bench account
READERS = 50


def reader_session(user) -> str:
    """A signed-in session for `user`, as the login form would make (password hashing is
    deliberately slow, and signing in is not what this benchmark measures)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def seed(products: int, media_root: Path) -> tuple[list[str], list[str]]:
    """Generated products, the demo, bench readers; returns product page paths to visit
    and the readers' session keys."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from bench import catalog
    from products.choices import MembershipRole
    from products.models import DataProduct, Domain, DomainMembership

    call_command("migrate", verbosity=0)
    rng = random.Random(20261121)
    print(f"Seeding {products:,} generated products...", flush=True)
    base = catalog.seed_base(rng)
    catalog.seed_products(base, 0, products, rng)
    print("Seeding the demo...", flush=True)
    call_command("seed_demo", verbosity=0)
    sales = Domain.objects.get(slug="sales")
    User = get_user_model()
    sessions = []
    for number in range(READERS):
        user = User.objects.create_user(f"load{number}", password=PASSWORD)
        DomainMembership.objects.create(domain=sales, user=user, role=MembershipRole.MEMBER)
        sessions.append(reader_session(user))
    # A catalog in use has been vacuumed and analysed since it was filled: do it now, so
    # that autovacuum catching up with 100,000 fresh rows does not run during the runs.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    published = list(
        DataProduct.objects.filter(status="published")
        .order_by("?")
        .values_list("domain__slug", "slug")[:2000]
    )
    return [f"/products/{domain}/{slug}/" for domain, slug in published], sessions


def wait_until_serving(url: str, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"gunicorn did not answer {url} within {timeout:.0f} s")


def run_locust(
    host: str, user_class: str, users: int, seconds: int, env: dict, out: Path, think: str,
    ramp: int, run: int,
):  # fmt: skip
    prefix = out / f"{user_class}-{users}-{think}-{run}"
    # People arrive over `ramp` seconds (a browser's first page and its badge at once:
    # arriving all within 5 s offered ~80 requests/s, this machine's saturation, to cold
    # caches), then the measured `seconds`: stats are reset once everyone has arrived.
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"),
        "--headless", "--users", str(users), "--spawn-rate", f"{users / max(1, ramp):.2f}",
        "--run-time", f"{ramp + seconds}s", "--host", host, "--csv", str(prefix),
        "--reset-stats", "--only-summary", "--loglevel", "WARNING", user_class,
    ]  # fmt: skip
    env = dict(env, LOAD_THINK_SECONDS=think)
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=ramp + seconds + 120
    )
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        sys.exit(f"locust failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with open(stats) as handle:
        rows = list(csv.DictReader(handle))
    failures = Path(f"{prefix}_failures.csv")
    failure_rows = list(csv.DictReader(open(failures))) if failures.exists() else []
    return rows, failure_rows


def _f(row: dict, key: str) -> float:
    value = row.get(key) or "0"
    return float(value) if value != "N/A" else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--users", default="50,200", help="comma-separated user counts")
    parser.add_argument(
        "--think", default="5,15", help="seconds a person reads before the next click: low,high"
    )
    parser.add_argument("--stress-users", default="50,200", help="user counts of the stress run")
    parser.add_argument(
        "--stress-think", default="0.5,1.5", help="think time of the stress run: low,high"
    )
    parser.add_argument("--seconds", type=int, default=60, help="measured seconds per run")
    parser.add_argument(
        "--ramp", type=int, default=30, help="seconds over which the people arrive (not measured)"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per number of users (median and spread)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (gthread)")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    config = common.database_config("bench/load.py")
    if not os.environ.get("REDIS_URL", "").startswith("redis://"):
        sys.exit("bench/load.py measures the production shape: set REDIS_URL=redis://...")
    common.recreate_database(config)
    postgres_version = common.pg_version(config)
    media_root = Path(tempfile.mkdtemp(prefix="portal-load-media-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.plain_http_settings",
        MEDIA_ROOT=str(media_root),
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "insecure-bench-only-key-" + "x" * 40,
    )
    os.environ.setdefault("CELERY_BROKER_URL", os.environ["REDIS_URL"])
    import django

    django.setup()
    began = time.perf_counter()
    pages, sessions = seed(args.products, media_root)
    seeded = time.perf_counter() - began
    pages_file = media_root / "product-pages.txt"
    pages_file.write_text("\n".join(pages))
    sessions_file = media_root / "sessions.txt"
    sessions_file.write_text("\n".join(sessions))

    env = dict(os.environ, LOAD_PRODUCT_PAGES_FILE=str(pages_file),
               LOAD_SESSIONS_FILE=str(sessions_file), PYTHONPATH=str(ROOT))  # fmt: skip
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    log = open(media_root / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    # The production web settings (deploy/gunicorn.conf.py: gthread, keep-alive...), sized
    # by the command line.
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY=str(args.workers),
        GUNICORN_THREADS=str(args.threads),
    )
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
         "portal.wsgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    runs = [("people", args.think, [int(u) for u in args.users.split(",")])]
    if args.stress_users:
        runs.append(("stress", args.stress_think, [int(u) for u in args.stress_users.split(",")]))
    results: dict[tuple[str, int, str], list[tuple[list, list]]] = {}
    try:
        wait_until_serving(f"{host}{os.environ.get('LOAD_BASELINE_PATH', '/healthz')}")
        out = Path(tempfile.mkdtemp(prefix="portal-load-"))
        for profile, think, user_counts in runs:
            for users in user_counts:
                for run in range(args.runs):
                    for user_class in ("BaselineUser", "PortalUser"):
                        print(f"{profile}: {user_class}, {users} users for {args.seconds} s "
                              f"(run {run + 1} of {args.runs})...", flush=True)  # fmt: skip
                        results.setdefault((profile, users, user_class), []).append(
                            run_locust(
                                host,
                                user_class,
                                users,
                                args.seconds,
                                env,
                                out,
                                think,
                                args.ramp,
                                run,
                            )  # fmt: skip
                        )
    finally:
        web.terminate()
        web.wait(timeout=30)
        log.close()
        if not args.keep:
            common.drop_database(config)

    sections = []
    for profile, think, user_counts in runs:
        low, high = think.split(",")
        lines = [
            f"**{'People reading' if profile == 'people' else 'Stress'}**: each person waits "
            f"{low}-{high} s between actions.",
            "",
            "| users | request | requests | errors | req/s | req/s per worker process "
            "| p50 ms | p95 ms | p99 ms | p95 / baseline p95 |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        verdicts = []
        for users in user_counts:
            runs_p95 = [
                _f(next(r for r in rows if r["Name"] == "Aggregated"), "95%")
                for rows, _ in results[profile, users, "PortalUser"]
            ]
            # The table shows the median run (by the mix's p95).
            median_run = sorted(range(len(runs_p95)), key=runs_p95.__getitem__)[len(runs_p95) // 2]
            base_rows, _ = results[profile, users, "BaselineUser"][median_run]
            base = next(r for r in base_rows if r["Name"] == "Aggregated")
            base_p95 = _f(base, "95%") or 1.0
            mix_rows, failures = results[profile, users, "PortalUser"][median_run]
            for row in [base, *mix_rows]:
                name = "baseline /healthz" if row is base else row["Name"]
                if row is base or name == "Aggregated":
                    name = f"**{name if row is base else 'all of the mix'}**"
                ratio = "" if row is base else f"{_f(row, '95%') / base_p95:.1f}"
                lines.append(
                    f"| {users} | {name} | {int(_f(row, 'Request Count')):,} "
                    f"| {int(_f(row, 'Failure Count')):,} | {_f(row, 'Requests/s'):.1f} "
                    f"| {_f(row, 'Requests/s') / args.workers:.1f} | {_f(row, '50%'):.0f} "
                    f"| {_f(row, '95%'):.0f} | {_f(row, '99%'):.0f} | {ratio} |"
                )
            total = next(r for r in mix_rows if r["Name"] == "Aggregated")
            errors = int(_f(total, "Failure Count"))
            verdicts.append(
                f"- {profile}, {users} users: {errors:,} errors, p95 {_f(total, '95%'):.0f} ms, "
                f"{_f(total, 'Requests/s'):.1f} requests/s "
                f"({_f(total, 'Requests/s') / args.workers:.1f} per worker process)"
            )
            verdicts.append(
                f"  - p95 of each run: {', '.join(f'{p:.0f}' for p in runs_p95)} ms; median "
                f"{sorted(runs_p95)[len(runs_p95) // 2]:.0f} ms, spread "
                f"{min(runs_p95):.0f}-{max(runs_p95):.0f} ms"
            )
            for failure in failures[:5]:
                verdicts.append(f"  - {failure.get('Name')}: {failure.get('Error', '')[:200]}")
        sections.append("\n".join(lines) + "\n\n" + "\n".join(verdicts))
    load = os.getloadavg()
    text = (
        f"Seeded {args.products:,} generated products plus the demo in {seeded:.0f} s; "
        f"gunicorn (deploy/gunicorn.conf.py) {args.workers} worker processes x {args.threads} "
        f"threads (gthread), "
        f"production settings over plain HTTP, Redis cache; Locust on the same machine "
        f"({os.cpu_count()} CPUs); people arrive over {args.ramp} s, then {args.seconds} s "
        f"measured; {args.runs} runs per number of users, the table shows the median run; "
        f"load average at the end {load[0]:.2f}.\n\n"
        + "\n\n".join(sections)
        + "\n\nGoal: no errors, p95 <= 300 ms at 200 people."
    )
    print()
    print(text)
    if args.write_results:
        common.write_results(
            SECTION,
            f"{date.today().isoformat()}, `bench/load.py --products {args.products} "
            f"--users {args.users} --think {args.think} --stress-users {args.stress_users} "
            f"--ramp {args.ramp} --runs {args.runs} "
            f"--workers {args.workers}` (PostgreSQL "
            f"{postgres_version}).\n\n{text}",
        )


if __name__ == "__main__":
    main()
