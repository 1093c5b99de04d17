"""Catalog benchmark: search, product list and product page at 1,000 and N products.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
        .venv/bin/python bench/catalog.py [--products 100000] [--write-results]

Creates (and at the end drops) the database named in DATABASE_URL, which must be
PostgreSQL and have "bench" in its name, so a dev or CI database is never touched.
Seeds products with 10 columns each, tags, owners and domains with COPY, builds the search
documents with one product_search_index_update() call, then times in-process requests
(Django's test Client, signed in as a regular non-staff user in no domain): p50 and p95
over --requests requests each, and the SQL queries each request ran. It first measures
at --small products, then grows the same catalog to --products and measures again.

Prints figures and ratios; never fails on a time (see bench/README.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path
from bench.common import RESULTS, drop_database, recreate_database  # noqa: E402

SECTION = "## Catalog (issue 2)"

SELECTIVE = "chargeback"  # in about 1 product in 2,000
NON_SELECTIVE = "customer"  # in about half of the products
TYPO = "chargebak"  # in no product: corrected to "chargeback" (pg_trgm), then searched
COLUMNS_PER_PRODUCT = 10
GOAL_MS = 50
DOMAINS = (
    "Sales Marketing Finance Logistics Supply-Chain Customer-Service HR Product Risk Legal "
    "Procurement Manufacturing Engineering Data-Platform Security Retail Pricing Partners "
    "Research Operations"
).split()
ADJECTIVES = (
    "daily weekly monthly hourly regional global core curated raw enriched consolidated "
    "historical realtime harmonised certified audited forecast quarterly aggregated detailed"
).split()
NOUNS = (
    "orders invoices shipments payments stock revenue margins leads campaigns tickets "
    "contracts suppliers returns prices sessions subscriptions claims budgets forecasts "
    "deliveries headcount warehouses products routes incidents"
).split()
KINDS = "snapshot feed extract mart dataset summary ledger facts register view".split()
FILLER = (
    "reliable source for reporting and analysis refreshed from the operational systems "
    "with one row per event including identifiers amounts dates statuses and the "
    "attributes analysts ask for most often across teams and dashboards"
).split()
COLUMN_NAMES = (
    "id created_at updated_at amount currency status country region channel quantity "
    "unit_price discount net_amount order_id invoice_id shipment_id supplier_id sku "
    "category warehouse_code route_id ticket_id priority owner_team valid_from valid_to "
    "score segment source_system batch_id is_deleted loaded_at cost_center account_id "
    "contract_id price_list margin_pct forecast_qty budget_eur headcount_fte"
).split()
CUSTOMER_COLUMNS = ("customer_id", "customer_segment")


# --- database lifecycle ----------------------------------------------------------------


# --- seeding ---------------------------------------------------------------------------


def _model_defaults(table: str, columns: list[str]) -> tuple[list[str], list]:
    """The table's other NOT NULL columns and their model defaults: Django keeps defaults
    in Python, so a COPY must give them (fields added later then need no bench change)."""
    from django.apps import apps

    models = apps.get_models(include_auto_created=True)
    model = next(m for m in models if m._meta.db_table == table)
    names, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in columns or field.null or field.primary_key:
            continue
        default = field.get_default()  # "" for blank text fields without a default
        if default is not None:
            names.append(field.column)
            values.append(default)
    return names, values


def copy_rows(table: str, columns: list[str], rows) -> int:
    """COPY rows (an iterable of tuples) into a table; returns how many."""
    from django.db import connection

    extra_columns, extra_values = _model_defaults(table, columns)
    columns = [*columns, *extra_columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    count = 0
    for row in rows:
        writer.writerow(["\\N" if value is None else value for value in (*row, *extra_values)])
        count += 1
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv, NULL '\\N')"
    with connection.cursor() as cursor:
        with cursor.copy(sql) as copy:
            copy.write(buffer.getvalue())
    return count


def seed_base(rng: random.Random) -> dict:
    """Domains, tags, owners, one data source, and the user who searches."""
    from django.contrib.auth import get_user_model

    from products.choices import SourceKind
    from products.models import DataSource, Domain, Tag

    User = get_user_model()
    domains = Domain.objects.bulk_create(
        [Domain(name=name.replace("-", " "), slug=name.lower()) for name in DOMAINS]
    )
    tag_names = sorted({f"{a}-{n}" for a in ADJECTIVES for n in NOUNS})[:300] + ["finance", "pii"]
    tags = Tag.objects.bulk_create([Tag(name=name) for name in tag_names])
    owners = User.objects.bulk_create(
        [
            User(username=f"owner{i}", password="!", email=f"owner{i}@bench.example")
            for i in range(100)
        ]
    )
    reader = User.objects.create_user("reader", password=None)
    source = DataSource.objects.create(
        name="bench warehouse", kind=SourceKind.POSTGRESQL, database="warehouse"
    )
    # Tags follow a long tail: a few are on many products.
    weights = [1 / (rank + 1) for rank in range(len(tags))]
    rng.shuffle(weights)
    return {
        "domains": [d.pk for d in domains],
        "domain_slugs": {d.pk: d.slug for d in domains},
        "tags": [t.pk for t in tags],
        "tag_weights": weights,
        "owners": [u.pk for u in owners],
        "reader": reader,
        "source": source.pk,
    }


def product_text(i: int, rng: random.Random) -> dict:
    adjective, noun, kind = rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(KINDS)
    name = f"{adjective.capitalize()} {noun} {kind} {i}"
    mentions_customer = rng.random()
    summary = f"{adjective.capitalize()} {noun} {kind}: " + " ".join(rng.sample(FILLER, 10))
    if mentions_customer < 0.3:
        summary += f", per {NON_SELECTIVE}"
    if i % 2000 == 7:
        summary += f", including {SELECTIVE} disputes"
    description = (
        f"# {name}\n\n"
        + " ".join(rng.sample(FILLER, 20))
        + f". Built from the {rng.choice(NOUNS)} and {rng.choice(NOUNS)} systems; "
        + " ".join(rng.sample(FILLER, 15))
        + "."
    )
    if 0.3 <= mentions_customer < 0.45:
        description += f" Joins to the {NON_SELECTIVE} master data."
    columns = rng.sample(COLUMN_NAMES, COLUMNS_PER_PRODUCT)
    if 0.45 <= mentions_customer < 0.55:
        columns[-1] = CUSTOMER_COLUMNS[i % 2]
    return {"name": name, "summary": summary[:300], "description": description, "columns": columns}


def seed_products(base: dict, start: int, stop: int, rng: random.Random) -> float:
    """Products start..stop-1 (ids start+1..stop), one port and 10 columns each, 3 tags,
    1-2 owners; then their search documents. Returns the seconds it took."""
    from django.db import connection

    from products.catalog.services.search_index import product_search_index_update

    began = time.perf_counter()
    now = datetime.now(UTC).isoformat()
    statuses = ["published"] * 88 + ["deprecated"] * 4 + ["draft"] * 6 + ["retired"] * 2
    products, ports, columns, tag_links, owner_links = [], [], [], [], []
    for i in range(start, stop):
        pk = i + 1
        text = product_text(i, rng)
        status = statuses[i % len(statuses)]
        products.append(
            (
                pk,
                base["domains"][i % len(base["domains"])],
                text["name"],
                f"{text['name'].lower().replace(' ', '-')}"[:80],
                text["summary"],
                text["description"],
                "Reporting and analysis.",
                "Analysts.",
                "Trusted figures.",
                "internal",
                status,
                "1.0.0",
                now,
                now,
                now if status != "draft" else None,
            )
        )
        ports.append(
            (
                pk,
                pk,
                "Main table",
                "main-table",
                "",
                "table",
                base["source"],
                "public",
                f"t{pk}",
                "",
                "",
                now,
            )
        )
        for position, column in enumerate(text["columns"]):
            columns.append(
                (pk, column, "text", f"The {column.replace('_', ' ')}.", True, "internal", position)
            )
        for tag in set(rng.choices(base["tags"], weights=base["tag_weights"], k=3)):
            tag_links.append((pk, tag))
        for owner in rng.sample(base["owners"], 1 + (i % 2)):
            owner_links.append((pk, owner))

    copy_rows(
        "products_dataproduct",
        "id domain_id name slug summary description purpose_use_case purpose_intended_users "
        "purpose_expected_outcome audience status version created_at updated_at "
        "published_at".split(),
        products,
    )
    copy_rows(
        "products_outputport",
        "id product_id name slug description kind source_id schema_name table_name "
        "file_path file_format created_at".split(),
        ports,
    )
    copy_rows(
        "products_column",
        "port_id name data_type description nullable classification position".split(),
        columns,
    )
    copy_rows("products_dataproduct_tags", ["dataproduct_id", "tag_id"], tag_links)
    copy_rows("products_dataproduct_owners", ["dataproduct_id", "user_id"], owner_links)
    with connection.cursor() as cursor:
        for table in ("products_dataproduct", "products_outputport"):
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            cursor.execute(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))")
    with connection.cursor() as cursor:
        # Statistics first: on tables last analyzed empty, the index update's joins to
        # tags and columns run as nested loops over every product (minutes at 100,000).
        cursor.execute("ANALYZE")
    product_search_index_update(product_ids=None)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - began


# --- measuring -------------------------------------------------------------------------


def endpoints(base: dict) -> list[tuple[str, str]]:
    from products.models import DataProduct

    product = (
        DataProduct.objects.filter(status="published")
        .select_related("domain")
        .order_by("pk")
        .first()
    )
    detail = f"/products/{product.domain.slug}/{product.slug}/"
    return [
        ("search page, selective q", "/search/?" + urlencode({"q": SELECTIVE})),
        ("search page, non-selective q", "/search/?" + urlencode({"q": NON_SELECTIVE})),
        ("search page, misspelt q", "/search/?" + urlencode({"q": TYPO})),
        ("API list, selective q", "/api/v1/products/?" + urlencode({"q": SELECTIVE})),
        ("API list, non-selective q", "/api/v1/products/?" + urlencode({"q": NON_SELECTIVE})),
        ("API list, no filter", "/api/v1/products/"),
        ("home page (catalog, no q)", "/"),
        ("product page", detail),
    ]


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[94]


def time_call(fn, requests: int, warmups: int = 5) -> tuple[float, float, int]:
    """p50 and p95 in ms of fn() over `requests` calls after `warmups` calls, and the
    queries one call ran."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmups):
        fn()
    # A request's start clears the query log (django.db.reset_queries); start empty so
    # that the captured slice is this call's queries.
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        fn()
    queries = len(captured)  # read now: the next request clears the log it slices
    samples = []
    for _ in range(requests):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    p50, p95 = percentiles(samples)
    return p50, p95, queries


def measure(base: dict, requests: int) -> dict[str, dict]:
    from django.test import Client
    from django.urls import Resolver404, resolve

    from products.catalog.selectors import CatalogFilters, product_facets, product_search

    client = Client()
    client.force_login(base["reader"])
    results: dict[str, dict] = {}
    for label, url in endpoints(base):
        try:
            resolve(url.split("?")[0])
        except Resolver404:
            results[label] = {"note": "n/a (URL not built yet)"}
            continue
        response = client.get(url)
        if response.status_code != 200:
            results[label] = {"note": f"n/a (HTTP {response.status_code})"}
            continue

        def request(url=url):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        p50, p95, queries = time_call(request, requests)
        results[label] = {"p50": p50, "p95": p95, "queries": queries}

    reader = base["reader"]
    for term, label in ((SELECTIVE, "selective"), (NON_SELECTIVE, "non-selective")):
        filters = CatalogFilters(q=term)

        def first_page(filters=filters):
            return list(product_search(user=reader, filters=filters)[:20])

        def facets(filters=filters):
            return product_facets(user=reader, filters=filters)

        p50, p95, queries = time_call(first_page, requests)
        results[f"selector: search, first page, {label}"] = {
            "p50": p50,
            "p95": p95,
            "queries": queries,
        }
        p50, p95, queries = time_call(facets, requests)
        results[f"selector: facets, {label}"] = {"p50": p50, "p95": p95, "queries": queries}

        def plain_first_page(term=term):
            return list(_plain_search(reader, term)[:20])

        p50, p95, queries = time_call(plain_first_page, requests)
        results[f"plain full-text first page (before issue 15), {label}"] = {
            "p50": p50,
            "p95": p95,
            "queries": queries,
        }
    return results


def _plain_search(user, term: str):
    """The search as it was before issue 15 (every word must match, no typo, no reasons):
    one websearch query over the newest SEARCH_WINDOW matches and the name matches, ranked
    by ts_rank. Kept here to print the ratio of the forgiving search against it."""
    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
    from django.db.models import F, Func

    from products.catalog.selectors import SEARCH_WINDOW, products_visible

    class NameDocument(Func):
        template = "to_tsvector('english'::regconfig, %(expressions)s)"
        output_field = SearchVectorField()

    query = SearchQuery(term, search_type="websearch", config="english")
    matches = products_visible(user=user).filter(search_vector=query)
    newest = matches.order_by("-pk").values("pk")[:SEARCH_WINDOW]
    named = (
        matches.annotate(name_document=NameDocument("name"))
        .filter(name_document=query)
        .order_by("-pk")
        .values("pk")[:SEARCH_WINDOW]
    )
    ids = [row["pk"] for row in newest.union(named)]
    return (
        products_visible(user=user)
        .filter(pk__in=ids)
        .annotate(rank=SearchRank(F("search_vector"), query))
        .order_by("-rank", "name", "pk")
        .select_related("domain")
        .prefetch_related("tags")
    )


def search_ratios(figures: dict[str, dict]) -> list[str]:
    """p95 of the forgiving search's first page over the plain one's, per term."""
    lines = []
    for label in ("selective", "non-selective"):
        new = figures.get(f"selector: search, first page, {label}", {})
        old = figures.get(f"plain full-text first page (before issue 15), {label}", {})
        if "p95" in new and "p95" in old:
            lines.append(
                f"Forgiving search against the plain one ({label} q, first page, p95): "
                f"{new['p95']:.1f} / {old['p95']:.1f} ms = {new['p95'] / old['p95']:.2f}x."
            )
    return lines


def matches(base: dict) -> dict[str, tuple[int, int]]:
    """Per search term: (products matching, products the search ranks: its window)."""
    from django.contrib.postgres.search import SearchQuery

    from products.catalog.selectors import CatalogFilters, product_search, products_visible

    found = {}
    for term in (SELECTIVE, NON_SELECTIVE):
        query = SearchQuery(term, search_type="websearch", config="english")
        every = products_visible(user=base["reader"]).filter(search_vector=query).count()
        ranked = product_search(user=base["reader"], filters=CatalogFilters(q=term)).count()
        found[term] = (every, ranked)
    return found


# --- report ----------------------------------------------------------------------------


def report(
    small: int,
    large: int,
    figures: dict[int, dict],
    found: dict[int, dict],
    seconds: dict[int, float],
) -> str:
    lines = []
    for size, what in ((small, "seeded"), (large, f"grown from {small:,} and re-indexed")):
        terms = "; ".join(
            f"q={term!r} matches {every:,} visible products, ranks {ranked:,}"
            for term, (every, ranked) in found[size].items()
        )
        lines.append(f"- {size:,} products ({what} in {seconds[size]:.1f} s): {terms}")
    load = os.getloadavg()
    lines.append(f"- load average at the end: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    lines.append("")
    head = (
        f"| request | p50 ms @{small:,} | p95 ms @{small:,} | queries @{small:,} "
        f"| p50 ms @{large:,} | p95 ms @{large:,} | queries @{large:,} | p95 ratio |"
    )
    lines.append(head)
    lines.append("|" + "---|" * 8)
    for label in figures[large]:
        a, b = figures[small].get(label, {}), figures[large][label]
        if "note" in a or "note" in b:
            note = b.get("note") or a.get("note")
            lines.append(f"| {label} | {note} |" + " |" * 6)
            continue
        same = "" if a["queries"] == b["queries"] else " (!)"
        lines.append(
            f"| {label} | {a['p50']:.1f} | {a['p95']:.1f} | {a['queries']} "
            f"| {b['p50']:.1f} | {b['p95']:.1f} | {b['queries']}{same} "
            f"| {b['p95'] / a['p95']:.2f} |"
        )
    goal_rows = [label for label in figures[large] if label.startswith(("search page", "API list"))]
    missed = [
        label for label in goal_rows if figures[large][label].get("p95", float("inf")) > GOAL_MS
    ]
    lines.append("")
    lines.append(
        f"Goal, p95 <= {GOAL_MS} ms for search and list at {large:,} products: "
        + (f"missed by {', '.join(missed)}." if missed else "met by every search and list row.")
    )
    lines += search_ratios(figures[large])
    same = all(
        figures[small].get(label, {}).get("queries") == figures[large][label].get("queries")
        for label in figures[large]
    )
    lines.append(
        f"Queries per request at {small:,} and {large:,} products: "
        + ("the same for every row." if same else "DIFFERENT where marked (!).")
    )
    return "\n".join(lines)


def write_results(text: str, args, config: dict) -> None:
    common.write_results(
        SECTION,
        f"{date.today().isoformat()}, `bench/catalog.py --products {args.products}` "
        f"({args.requests} timed requests per row after 5 warm-ups; in-process Django test "
        f"client, a signed-in non-staff user in no domain; PostgreSQL "
        f"{common.pg_version(config)}, {os.cpu_count()} CPUs).\n\n{text}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=60, help="timed requests per row (>= 50)")
    parser.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    if args.products <= args.small:
        sys.exit("--products must be larger than --small")

    config = common.database_config("bench/catalog.py")
    recreate_database(config)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/catalog.py runs on PostgreSQL only.")
    # In-process requests over plain HTTP to the test client's host.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.SECURE_SSL_REDIRECT = False

    try:
        call_command("migrate", verbosity=0)
        rng = random.Random(20240611)
        base = seed_base(rng)
        figures, found, seconds = {}, {}, {}
        for start, stop in ((0, args.small), (args.small, args.products)):
            print(f"Seeding products {start + 1:,} to {stop:,}...", flush=True)
            seconds[stop] = seed_products(base, start, stop, rng)
            found[stop] = matches(base)
            print(f"Measuring at {stop:,} products...", flush=True)
            figures[stop] = measure(base, args.requests)
        text = report(args.small, args.products, figures, found, seconds)
        print()
        print(text)
        if args.write_results:
            write_results(text, args, config)
    finally:
        if not args.keep:
            drop_database(config)


if __name__ == "__main__":
    main()
