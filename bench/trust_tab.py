"""Trust tab: the Quality and trust page of a demo product, timed on the server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_trust \\
    REDIS_URL=redis://127.0.0.1:6379/14 python bench/trust_tab.py [--write-results]

Builds its own database (dropped and recreated, so its name must contain "bench"; dropped
again at the end unless --keep) and seeds the demo into it (`seed_demo`, 30 days of check
history and trust snapshots). Then, in fresh processes, round after round, alternately:

- **after**: this tree's trust tab of sales.orders (the owner signed in), in-process with
  Django's test Client (middleware, view, template: the server's time to the last byte,
  no network), after warm-up requests; its SQL query count (CaptureQueriesContext);
- **before**: the same page, same database, in the tree of `--before` (default: where this
  branch left main, `git merge-base HEAD main`), exported with `git archive`;
- **baseline**: the product's overview page, in the "after" process.

Alternating rounds share the machine's load fairly between the two trees. Prints median
and p95 of each, the ratios, and the plotly.js bundle each tree serves (bytes and gzip).
Never fails on a time."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Trust tab (issue 15)"
PRODUCT = "sales.orders"
USER = "owner"


# --- in a measuring process (either tree) ------------------------------------------------


def only_this_tree() -> None:
    """Import the portal from the working directory's tree only: an editable install of
    the project in the virtualenv would otherwise supply, from its own checkout, the
    modules this tree does not have (Django finds template tag libraries by importing
    `<app>.templatetags`)."""
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if "__editable__" not in (getattr(finder, "__module__", "") or "")
    ]


def measure(requests: int, warmup: int) -> dict:
    """Time the trust tab and the overview page of PRODUCT in this process's tree."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from products.models import DataProduct

    product = DataProduct.objects.get_by_key(PRODUCT)
    base = f"/products/{product.domain.slug}/{product.slug}/"
    # A host the settings allow (the test Client's "testserver" is not one).
    host = next((h for h in settings.ALLOWED_HOSTS if h != "*" and h[0] != "."), "localhost")
    client = Client(HTTP_HOST=host)
    client.force_login(get_user_model().objects.get(username=USER))

    def timed(url: str) -> tuple[list[float], int, int]:
        for _ in range(warmup):
            response = client.get(url, secure=True)
            assert response.status_code == 200, (url, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            size = len(client.get(url, secure=True).content)
        count = len(queries.captured_queries)  # now: the next request clears the log
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get(url, secure=True)
            times.append((time.perf_counter() - started) * 1000)
        return times, count, size

    trust, trust_queries, trust_bytes = timed(base + "quality/")
    overview, overview_queries, _ = timed(base)
    return {
        "trust": trust,
        "trust_queries": trust_queries,
        "trust_bytes": trust_bytes,
        "overview": overview,
        "overview_queries": overview_queries,
    }


# --- the driver ------------------------------------------------------------------------------


def export_tree(ref: str, into: Path) -> Path:
    """`ref`'s files (git archive) in `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def python_in(tree: Path, code: str, env: dict, **kwargs) -> subprocess.CompletedProcess:
    """Python `code` run in `tree`, with that tree's portal code only (and this module)."""
    prelude = (
        f"import sys; sys.path[:0] = [{str(tree)!r}, {str(ROOT / 'bench')!r}];"
        "import trust_tab; trust_tab.only_this_tree();"
    )
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=tree, env=env, **kwargs)


def run_in(tree: Path, requests: int, warmup: int, env: dict) -> dict:
    """One measuring process in `tree` (its code and settings, this script's timing)."""
    code = f"import json; print('RESULT' + json.dumps(trust_tab.measure({requests}, {warmup})))"
    done = python_in(tree, code, env, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT") :])
    sys.exit(f"measuring in {tree} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def plotly_bundle(tree: Path, env: dict) -> tuple[str, int, int]:
    """The plotly.js file the tree's pages load: its static path, size and gzip size."""
    code = (
        "import django; django.setup();"
        "from django.contrib.staticfiles import finders;"
        "from django.template import engines;"
        "html = engines['django'].from_string("
        "'{% load portal_assets %}{% plotly_assets %}').render({});"
        "import re; path = re.search(r'/static/(vendor/plotly/[^\"]+)', html).group(1);"
        "print('RESULT' + path + ' ' + finders.find(path))"
    )
    done = python_in(tree, code, env, capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        sys.exit(f"finding plotly.js in {tree} failed:\n{done.stderr[-3000:]}")
    path, file = line[len("RESULT") :].split(" ", 1)
    data = Path(file).read_bytes()
    return path, len(data), len(gzip.compress(data, compresslevel=9))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    # Here, not at the top: the measuring processes import this module inside another
    # tree, whose code must be the only portal code on their path.
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")  # drop_database
    from bench import common

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="", help="git ref of the old page (merge-base)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20, help="timed requests a round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--reuse", action="store_true", help="measure a database kept by --keep (no seeding)"
    )
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()

    config = common.database_config("bench/trust_tab.py")
    before_ref = (
        args.before
        or subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings", PYTHONPATH="")
    env.setdefault("SECRET_KEY", "bench-only-secret-key-bench-only-secret-key")

    if not args.reuse:
        common.recreate_database(config)
        print(f"Seeding the demo into {config['NAME']}...", flush=True)
        started = time.monotonic()
        for command in ("migrate", "seed_demo"):
            manage = "from django.core.management import execute_from_command_line;"
            manage += f"execute_from_command_line(['manage.py', {command!r}, '-v0'])"
            python_in(ROOT, manage, env, check=True)
        with common.connect(config, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        print(f"  seeded in {time.monotonic() - started:.0f} s", flush=True)

    figures: dict[str, list[float]] = {"after": [], "before": [], "baseline": []}
    rounds: list[str] = []
    with tempfile.TemporaryDirectory(prefix="trust-tab-before-") as tmp:
        before_tree = export_tree(before_ref, Path(tmp))
        for number in range(args.rounds):
            after = run_in(ROOT, args.requests, args.warmup, env)
            before = run_in(before_tree, args.requests, args.warmup, env)
            figures["after"] += after["trust"]
            figures["before"] += before["trust"]
            figures["baseline"] += after["overview"]
            rounds.append(
                f"round {number + 1}: trust tab {statistics.median(after['trust']):.0f} ms "
                f"(before {statistics.median(before['trust']):.0f} ms), overview "
                f"{statistics.median(after['overview']):.0f} ms, load average "
                f"{os.getloadavg()[0]:.1f}"
            )
            print("  " + rounds[-1], flush=True)
        bundle_before = plotly_bundle(before_tree, env)
        bundle_after = plotly_bundle(ROOT, env)
    load = os.getloadavg()
    version = common.pg_version(config)
    if not args.keep:
        common.drop_database(config)

    def row(name: str, values: list[float], queries: int | str) -> str:
        return (
            f"| {name} | {statistics.median(values):.0f} | {percentile(values, 0.95):.0f} "
            f"| {queries} |"
        )

    after_median = statistics.median(figures["after"])
    before_median = statistics.median(figures["before"])
    baseline_median = statistics.median(figures["baseline"])
    lines = [
        f"{date.today().isoformat()}, PostgreSQL {version}, the demo "
        f"(`seed_demo`), page of {PRODUCT} as `{USER}`; {args.rounds} rounds x "
        f"{args.requests} requests per page after {args.warmup} warm-ups, the two trees "
        f"alternating; before = `{before_ref[:10]}`. Load average at the end: "
        f"{load[0]:.2f} (2 CPUs shared).",
        "",
        "| page (server time, ms) | median | p95 | SQL queries |",
        "|---|---|---|---|",
        row("trust tab, before", figures["before"], before["trust_queries"]),
        row("trust tab, after", figures["after"], after["trust_queries"]),
        row("product overview (baseline)", figures["baseline"], after["overview_queries"]),
        "",
        f"- trust tab after / before (median): **{after_median / before_median:.2f}x**; "
        f"after / overview: {after_median / baseline_median:.2f}x. Goal: <= 150 ms.",
        f"- page size: {before['trust_bytes']:,} bytes before, {after['trust_bytes']:,} after.",
        f"- medians by round (the machine's load varies): {'; '.join(rounds)}.",
        f"- plotly.js: before `{bundle_before[0]}` {bundle_before[1]:,} bytes "
        f"({bundle_before[2]:,} gzip); after `{bundle_after[0]}` {bundle_after[1]:,} bytes "
        f"({bundle_after[2]:,} gzip), cached for good (versioned name). Goal: <= ~1.5 MB.",
    ]
    lines += [
        "- Where the time went (cProfile, the page before): building the four figures with "
        "plotly.graph_objects, which validates and deep-copies every point (~60% of the "
        "view); now plain dicts in plotly.js's JSON shape. SLO attainment (an aggregate per "
        "SLO), the 30-day series and the charts drawn from them are kept in the cache while "
        "their evidence is unchanged (the SLOs, each port's latest run and observation; 5 "
        "minutes at most). What is left: ~20 small queries and the template (the checks "
        "table).",
    ]
    body = "\n".join(lines)
    print()
    print(body)
    if args.write_results:
        common.write_results(SECTION, body)


if __name__ == "__main__":
    main()
