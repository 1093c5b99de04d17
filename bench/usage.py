"""Usage benchmark: page views, a product's usage, the usage dashboard and the unused
products at 1,000 and N products.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_usage_bench \\
        .venv/bin/python bench/usage.py [--products 100000] [--write-results]

Creates (and at the end drops) the database named in DATABASE_URL, which must be
PostgreSQL and have "bench" in its name. Seeds the catalog like bench/catalog.py, then
activity in proportion: --reads-per-product audit read events (default 10, so 1,000,000
at 100,000 products) over the last 120 days, skewed so that a few products get most reads
and most get none, and --views-per-product page-view rows (default 3). Times in-process
calls and requests (p50 and p95 over --requests) as a non-staff user in no domain and as
an admin, with the SQL queries each ran; they must be the same at both sizes.

Prints figures and ratios; never fails on a time (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path
from bench.catalog import seed_base, seed_products, time_call  # noqa: E402
from bench.common import RESULTS, drop_database, recreate_database  # noqa: E402

SECTION = "## Usage and retirement (issue 7)"
GOAL_MS = 200  # the dashboard's p95 at 100,000 products
BENCH_USERS = 1_000


def seed_activity(*, first_product: int, last_product: int, reads: int, views: int) -> float:
    """Read events and page-view rows for products first..last (ids), in SQL. Reads go
    to product ids with a long tail: power(random(), 4) sends most to the first ids of
    the range and none to most of it (which stay unused)."""
    from django.db import connection

    began = time.perf_counter()
    span = last_product - first_product + 1
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO sharing_accessevent
                (at, action, user_id, product_id, product_key, channel, columns, row_filter,
                 rows, detail)
            SELECT now() - random() * interval '120 days', 'read',
                   (SELECT min(id) FROM auth_user WHERE username LIKE 'bench%%')
                       + floor(random() * %s)::int,
                   %s + floor(power(random(), 4) * %s)::int, '',
                   (ARRAY['api','preview','download','notebook','share_link','export'])
                       [1 + floor(random() * 6)::int],
                   '[]', '[]', 100, '{}'
            FROM generate_series(1, %s)
            """,
            [BENCH_USERS, first_product, span, reads],
        )
        cursor.execute(
            """
            INSERT INTO products_productpageview (product_id, user_id, day, views)
            SELECT %s + floor(power(random(), 3) * %s)::int,
                   (SELECT min(id) FROM auth_user WHERE username LIKE 'bench%%')
                       + floor(random() * %s)::int,
                   current_date - floor(random() * 120)::int,
                   1 + floor(random() * 4)::int
            FROM generate_series(1, %s)
            ON CONFLICT DO NOTHING
            """,
            [first_product, span, BENCH_USERS, views],
        )
        # Products published long ago, so that unread ones count as unused.
        cursor.execute(
            "UPDATE products_dataproduct SET created_at = now() - interval '200 days', "
            "published_at = CASE WHEN published_at IS NULL THEN NULL "
            "ELSE now() - interval '200 days' END WHERE id BETWEEN %s AND %s",
            [first_product, last_product],
        )
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - began


def measure(base: dict, requests: int) -> tuple[dict[str, dict], dict[str, int]]:
    from django.contrib.auth import get_user_model

    # The hourly refresh of the dashboard's summaries: timed alone (it is the heavy part).
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from products.catalog.services.page_views import product_view_record
    from products.models import DataProduct, ProductPageView, ProductUsageSummary
    from products.usage.selectors import product_usage, products_unused, usage_dashboard
    from products.usage.services import usage_summaries_refresh
    from sharing.models import AccessEvent

    refresh_ms = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            usage_summaries_refresh()
            refresh_ms.append((time.perf_counter() - began) * 1000)
        refresh_queries = len(captured)

    reader = base["reader"]
    admin = get_user_model().objects.get(username="bench-admin")
    busiest_id = (
        AccessEvent.objects.values("product_id")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("product_id", flat=True)
        .first()
    )
    busiest = DataProduct.objects.select_related("domain").get(pk=busiest_id)
    quiet = (
        DataProduct.objects.filter(status="published")
        .select_related("domain")
        .order_by("-pk")
        .first()
    )
    view_row = ProductPageView.objects.order_by("pk").first()

    def upsert():
        product_view_record(product=busiest, user=reader, by_editor=False)

    def pk_lookup():
        ProductPageView.objects.filter(pk=view_row.pk).exists()

    client = Client()
    client.force_login(reader)
    admin_client = Client()
    admin_client.force_login(admin)

    def get(c, url):
        def request():
            response = c.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return request

    rows = {
        "baseline: one page-view row by primary key": pk_lookup,
        "page view UPSERT (product_view_record)": upsert,
        "product_usage, busiest product (90 days)": lambda: product_usage(product=busiest),
        "product_usage, an unread product": lambda: product_usage(product=quiet),
        "usage_dashboard, user in no domain": lambda: usage_dashboard(user=reader),
        "usage_dashboard, admin": lambda: usage_dashboard(user=admin),
        "products_unused().count() (live, the daily flag's rule)": lambda: (
            products_unused().count()
        ),
        "page /usage/ (user in no domain)": get(client, "/usage/"),
        "API /api/v1/usage/ (admin)": get(admin_client, "/api/v1/usage/"),
        "product page (a page view included)": get(client, busiest.get_absolute_url()),
        "Usage tab, busiest product": get(client, busiest.get_absolute_url() + "usage/"),
    }
    results = {
        "usage_summaries_refresh (hourly task; 3 runs)": {
            "p50": sorted(refresh_ms)[1],
            "p95": max(refresh_ms),
            "queries": refresh_queries,
        }
    }
    for label, fn in rows.items():
        p50, p95, queries = time_call(fn, requests, warmups=3)
        results[label] = {"p50": p50, "p95": p95, "queries": queries}
    counts = {
        "products": DataProduct.objects.count(),
        "read events": AccessEvent.objects.count(),
        "page-view rows": ProductPageView.objects.count(),
        "busiest reads": product_usage(product=busiest).reads,
        "unused products": products_unused().count(),
        "summary rows": ProductUsageSummary.objects.count(),
    }
    return results, counts


def report(small: int, large: int, figures: dict, counts: dict, seconds: dict) -> str:
    lines = []
    for size in (small, large):
        c = counts[size]
        lines.append(
            f"- {size:,} products (seeded in {seconds[size]:.1f} s): {c['read events']:,} read "
            f"events, {c['page-view rows']:,} page-view rows; the busiest product has "
            f"{c['busiest reads']:,} reads in 90 days; "
            f"{c['unused products']:,} products are unused; {c['summary rows']:,} usage summaries"
        )
    load = os.getloadavg()
    lines.append(f"- load average at the end: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    lines.append("")
    lines.append(
        f"| call | p50 ms @{small:,} | p95 ms @{small:,} | queries @{small:,} "
        f"| p50 ms @{large:,} | p95 ms @{large:,} | queries @{large:,} | p95 ratio |"
    )
    lines.append("|" + "---|" * 8)
    for label in figures[large]:
        a, b = figures[small][label], figures[large][label]
        same = "" if a["queries"] == b["queries"] else " (!)"
        lines.append(
            f"| {label} | {a['p50']:.1f} | {a['p95']:.1f} | {a['queries']} "
            f"| {b['p50']:.1f} | {b['p95']:.1f} | {b['queries']}{same} "
            f"| {b['p95'] / a['p95']:.2f} |"
        )
    base = figures[large]["baseline: one page-view row by primary key"]["p50"]
    upsert = figures[large]["page view UPSERT (product_view_record)"]["p50"]
    lines.append("")
    lines.append(
        f"A page view costs {upsert / base:.1f} x a primary-key lookup of the same table "
        f"(p50, {large:,} products)."
    )
    dash = figures[large]["usage_dashboard, user in no domain"]["p95"]
    lines.append(
        f"Goal, usage_dashboard p95 <= {GOAL_MS} ms at {large:,} products: "
        + ("met" if dash <= GOAL_MS else "missed")
        + f" ({dash:.0f} ms)."
    )
    same = all(
        figures[small][label]["queries"] == figures[large][label]["queries"]
        for label in figures[large]
    )
    lines.append(
        "Queries per call at both sizes: "
        + ("the same for every row." if same else "DIFFERENT (!).")
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--reads-per-product", type=int, default=10)
    parser.add_argument("--views-per-product", type=int, default=3)
    parser.add_argument("--requests", type=int, default=30, help="timed calls per row")
    parser.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    if args.products <= args.small:
        sys.exit("--products must be larger than --small")

    config = common.database_config("bench/usage.py")
    recreate_database(config)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.SECURE_SSL_REDIRECT = False
    try:
        call_command("migrate", verbosity=0)
        rng = random.Random(20240611)
        base = seed_base(rng)
        User = get_user_model()
        User.objects.bulk_create(
            [User(username=f"bench{i:04d}", password="!") for i in range(BENCH_USERS)]
        )
        User.objects.create_user("bench-admin", password=None, is_staff=True)
        figures, counts, seconds = {}, {}, {}
        for start, stop in ((0, args.small), (args.small, args.products)):
            print(f"Seeding products {start + 1:,} to {stop:,} and their activity...", flush=True)
            took = seed_products(base, start, stop, rng)
            size = stop - start
            took += seed_activity(
                first_product=start + 1,
                last_product=stop,
                reads=size * args.reads_per_product,
                views=size * args.views_per_product,
            )
            seconds[stop] = took
            print(f"Measuring at {stop:,} products...", flush=True)
            figures[stop], counts[stop] = measure(base, args.requests)
        text = report(args.small, args.products, figures, counts, seconds)
        print()
        print(text)
        if args.write_results:
            common.write_results(
                SECTION,
                f"{date.today().isoformat()}, `bench/usage.py --products {args.products}` "
                f"({args.requests} timed calls per row after 3 warm-ups, in process; "
                f"PostgreSQL {common.pg_version(config)}, {os.cpu_count()} CPUs).\n\n{text}",
            )
    finally:
        if not args.keep:
            drop_database(config)


if __name__ == "__main__":
    main()
