"""Reads of the catalog that carry rules: visibility, search and ranking, facets.

`/search/`, the home page and the API's `q` filter all call product_search.
"""

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from products.choices import MANAGING_ROLES, LifecycleStatus
from products.models import (
    Column,
    DataProduct,
    Domain,
    DomainMembership,
    OutputPort,
    SchemaRefreshRun,
    Tag,
)

MAX_QUERY_LENGTH = 200
# A search ranks, counts and facets at most this many of its newest matches, plus the
# products whose name matches (see _text_match). Counts at or above it mean "at least".
SEARCH_WINDOW = 1000


@dataclass(frozen=True)
class CatalogFilters:
    q: str = ""
    domain: str = ""  # domain slug
    tag: str = ""
    status: str = ""


def products_visible(*, user) -> QuerySet[DataProduct]:
    return DataProduct.objects.visible_to(user)


def _apply_facet_filters(qs: QuerySet, filters: CatalogFilters) -> QuerySet:
    if filters.domain:
        qs = qs.filter(domain__slug=filters.domain)
    if filters.tag:
        qs = qs.filter(
            Exists(
                Tag.products.through.objects.filter(
                    dataproduct_id=OuterRef("pk"), tag__name=filters.tag
                )
            )
        )
    if filters.status:
        qs = qs.filter(status=filters.status)
    return qs


class _NameDocument(Func):
    """The English text-search document of a product's name alone; matches the
    expression of the index product_name_search_gin (migration 0003)."""

    template = "to_tsvector('english'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


class _EqualsAny(Func):
    """`<expression> = ANY(<array literal>::bigint[])`: the ids travel as one text
    parameter (psycopg would quote a list of thousands element by element, per query)."""

    arg_joiner = " = ANY("
    template = "%(expressions)s::bigint[])"
    output_field = BooleanField()


class SearchWindows:
    """The windows of matches of one catalog request, by the filters each was read for: a
    search page needs the same window for its page, its count and (with no facet filter)
    every facet. Shared between requests through the cache for SEARCH_CACHE_SECONDS,
    keyed by the catalog's generation (products.catalog.services.search_index.catalog_changed:
    every change of a product's text, tags, columns or lifecycle starts a new one) and by
    who sees which products."""

    def __init__(self, user) -> None:
        self.user = user
        self._ids: dict[CatalogFilters, list[int]] = {}
        self._key_prefix = ""

    def known(self, filters: CatalogFilters) -> list[int] | None:
        return self._ids.get(filters)

    def ids(self, filters: CatalogFilters, read: Callable[[], list[int]]) -> list[int]:
        """The window for `filters`: from this request, the cache, or `read()`."""
        if filters not in self._ids:
            self._ids[filters] = self.cached("catalog-window", filters, read)
        return self._ids[filters]

    def cached(self, kind: str, filters: CatalogFilters, compute: Callable):
        """`compute()`, kept in the cache under this user's key for it when searches are
        cached."""
        key = self.cache_key(kind, filters)
        value = cache.get(key) if key else None
        if value is None:
            value = compute()
            if key:
                cache.set(key, value, settings.SEARCH_CACHE_SECONDS)
        return value

    def cache_key(self, kind: str, filters: CatalogFilters) -> str:
        """A cache key for something computed from this user's windows, or "" when
        searches are not cached (SEARCH_CACHE_SECONDS = 0: no cache shared by processes)."""
        if not settings.SEARCH_CACHE_SECONDS:
            return ""
        if not self._key_prefix:
            generation = cache.get(CATALOG_GENERATION_KEY) or 0
            self._key_prefix = f"{generation}|{_visibility_class(self.user)}"
        raw = f"{self._key_prefix}|{filters!r}"
        return f"{kind}:v1:" + hashlib.sha256(raw.encode()).hexdigest()


def _in_window(field: str, ids: list[int]) -> _EqualsAny:
    """`<field> = ANY(<the window's ids>)`."""
    return _EqualsAny(F(field), Value("{" + ",".join(str(pk) for pk in ids) + "}"))


def _window_ids(qs: QuerySet, query: SearchQuery) -> list[int]:
    """Ids of the window a search ranks: at most SEARCH_WINDOW of the newest matches,
    plus up to as many products whose name matches (one query)."""
    matches = qs.filter(search_vector=query)
    newest = matches.order_by("-pk").values("pk")[:SEARCH_WINDOW]
    named = (
        matches.alias(name_document=_NameDocument("name"))
        .filter(name_document=query)
        .order_by("-pk")
        .values("pk")[:SEARCH_WINDOW]
    )
    return [row["pk"] for row in newest.union(named)]


def _text_match(qs: QuerySet, filters: CatalogFilters, windows: SearchWindows) -> QuerySet:
    """Filter by the search text and annotate `rank`; ordered best first.

    On PostgreSQL the work is bounded however broad the text: at most SEARCH_WINDOW of
    the newest matches, plus up to as many products whose name matches, are ranked,
    counted and faceted. A text matching fewer products than that (nearly every real
    search) is ranked over all its matches; a text matching half the catalog is ranked
    over a window instead of tens of thousands of rows (bench/catalog.py). The window is
    read once (`windows` keeps it for the request, and the cache for a while) and the
    queries that count, rank and facet it look its ids up by primary key."""
    q = filters.q.strip()[:MAX_QUERY_LENGTH]
    if not q:
        # Name order is what an index gives (product_name_idx, product_domain_name_idx).
        return qs.annotate(rank=Value(0.0)).order_by("name", "pk")
    if connection.vendor == "postgresql":
        query = SearchQuery(q, search_type="websearch", config="english")
        # The window is read with every filter of qs (visibility, facets); they apply
        # again to its rows, so a window cached a moment ago never shows more.
        ids = windows.ids(filters, lambda: _window_ids(qs, query))
        return (
            qs.filter(_in_window("pk", ids))
            .annotate(rank=SearchRank(F("search_vector"), query))
            .order_by("-rank", "name", "pk")
        )
    # SQLite fallback: every word must appear somewhere; name hits rank first.
    for word in q.split():
        in_columns = Exists(
            Column.objects.filter(port__product_id=OuterRef("pk")).filter(
                Q(name__icontains=word) | Q(description__icontains=word)
            )
        )
        in_tags = Exists(
            Tag.products.through.objects.filter(
                dataproduct_id=OuterRef("pk"), tag__name__icontains=word
            )
        )
        qs = qs.filter(
            Q(name__icontains=word)
            | Q(summary__icontains=word)
            | Q(description__icontains=word)
            | in_columns
            | in_tags
        )
    first = q.split()[0]
    return qs.annotate(
        rank=Case(
            When(name__icontains=first, then=Value(3)),
            When(summary__icontains=first, then=Value(2)),
            When(description__icontains=first, then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
    ).order_by("-rank", "name", "pk")


def product_search(
    *, user, filters: CatalogFilters, windows: SearchWindows | None = None
) -> QuerySet[DataProduct]:
    """Products the user may see that match the text and facets, most relevant first."""
    qs = _apply_facet_filters(products_visible(user=user), filters)
    qs = _text_match(qs, filters, windows or SearchWindows(user))
    return qs.select_related("domain").prefetch_related("tags")


def catalog_search(
    *, user, filters: CatalogFilters
) -> tuple[QuerySet[DataProduct], dict[str, list[dict]]]:
    """The search page's results and facet counts; they share the window of matches they
    rank and count, read once."""
    windows = SearchWindows(user)
    results = product_search(user=user, filters=filters, windows=windows)
    return results, product_facets(user=user, filters=filters, windows=windows)


# Facet counts of a catalog browsed without search text aggregate every visible product
# (~150 ms at 100,000 products): they are cached this long per visibility class.
FACET_CACHE_SECONDS = 60
# The cache key whose value changes with every change of the catalog's searchable text,
# tags or lifecycle (products.catalog.services.search_index.catalog_changed).
CATALOG_GENERATION_KEY = "catalog:generation"


def _visibility_class(user) -> str:
    """Users who see the same products share this key: admins, or the public products
    plus the same member domains."""
    if user.is_staff:
        return "all"
    domain_ids = sorted(
        DomainMembership.objects.filter(user_id=user.pk).values_list("domain_id", flat=True)
    )
    return "public+" + ",".join(str(pk) for pk in domain_ids)


def product_facets(
    *, user, filters: CatalogFilters, windows: SearchWindows | None = None
) -> dict[str, list[dict]]:
    """Counts for each facet value, each facet counted under the other facets' filters
    (and over the same bounded window of matches product_search would rank for them).
    Without search text the counts are cached for FACET_CACHE_SECONDS; a search's, like
    its windows, for SEARCH_CACHE_SECONDS within the catalog's generation."""
    if filters.q.strip():
        windows = windows or SearchWindows(user)
        return windows.cached(
            "catalog-search-facets",
            filters,
            lambda: _product_facets(user=user, filters=filters, windows=windows),
        )
    if not user.is_authenticated:
        return _product_facets(user=user, filters=filters, windows=SearchWindows(user))
    raw_key = f"{_visibility_class(user)}|{filters.domain}|{filters.tag}|{filters.status}"
    key = "catalog-facets:v1:" + hashlib.sha256(raw_key.encode()).hexdigest()
    facets = cache.get(key)
    if facets is None:
        facets = _product_facets(user=user, filters=filters, windows=SearchWindows(user))
        cache.set(key, facets, FACET_CACHE_SECONDS)
    return facets


def _product_facets(
    *, user, filters: CatalogFilters, windows: SearchWindows
) -> dict[str, list[dict]]:
    def facet(skip: str) -> QuerySet:
        # Counted under every filter but its own: with none set, the facets and the page
        # share one window.
        others = replace(filters, **{skip: ""})
        qs = _apply_facet_filters(products_visible(user=user), others)
        if filters.q.strip():
            qs = _text_match(qs, others, windows)
        return qs.order_by()

    # `slug` would clash with DataProduct.slug as an annotation name: rename afterwards.
    domains = [
        {"slug": row["domain_slug"], "label": row["label"], "count": row["count"]}
        for row in facet("domain")
        .values(domain_slug=F("domain__slug"), label=F("domain__name"))
        .annotate(count=Count("pk"))
        .order_by("label")
    ]
    statuses = [
        {
            "slug": row["status"],
            "label": LifecycleStatus(row["status"]).label,
            "count": row["count"],
        }
        for row in facet("status").values("status").annotate(count=Count("pk")).order_by("status")
    ]
    tagged = facet("tag")
    window = windows.known(replace(filters, tag=""))
    if window is not None:
        # The window's ids go straight to the links' index: joined to the products, the
        # links would be scanned whole (300,000 rows at 100,000 products).
        links = Tag.products.through.objects.filter(
            _in_window("dataproduct_id", window),
            dataproduct__in=tagged.values("pk"),
        )
    else:
        links = Tag.products.through.objects.filter(dataproduct__in=tagged.values("pk"))
    tag_rows = (
        links.values(slug=F("tag__name"))
        .annotate(count=Count("dataproduct_id"))
        .order_by("-count", "slug")[:20]
    )
    tags = [{"slug": row["slug"], "label": row["slug"], "count": row["count"]} for row in tag_rows]
    return {"domain": domains, "status": statuses, "tag": tags}


def product_get_visible(*, user, domain_slug: str, product_slug: str) -> DataProduct:
    """The product if the user may see it; DataProduct.DoesNotExist otherwise (so that a
    hidden product and a missing one look the same)."""
    return (
        products_visible(user=user)
        .select_related("domain", "created_by")
        .prefetch_related("tags", "owners")
        .get(domain__slug=domain_slug, slug=product_slug)
    )


def product_get_visible_by_key(*, user, key: str) -> DataProduct:
    """The same, by key `<domain-slug>.<product-slug>`."""
    return (
        products_visible(user=user)
        .select_related("domain", "created_by")
        .prefetch_related("tags", "owners")
        .get_by_key(key)
    )


def products_managed_by(*, user) -> QuerySet[DataProduct]:
    """ "My products": every product of the domains where the user is a member."""
    if user.is_staff:
        qs = DataProduct.objects.all()
    else:
        qs = DataProduct.objects.filter(
            domain_id__in=DomainMembership.objects.filter(user_id=user.pk).values("domain_id")
        )
    return qs.select_related("domain").order_by("domain__name", "status", "name")


def domain_list() -> QuerySet[Domain]:
    return Domain.objects.annotate(
        product_count=Count(
            "products",
            filter=Q(products__status__in=[LifecycleStatus.PUBLISHED, LifecycleStatus.DEPRECATED]),
        )
    ).order_by("name")


def domain_team(*, domain: Domain) -> QuerySet[DomainMembership]:
    return domain.memberships.select_related("user").order_by("role", "user__username")


def product_ports(*, product: DataProduct) -> QuerySet:
    """A product's output ports with their source and columns, for pages and the API."""
    return (
        OutputPort.objects.filter(product=product)
        .select_related("source")
        .prefetch_related("columns")
        .order_by("name")
    )


def port_for(
    *,
    product: DataProduct,
    slug: str | None = None,
    ports: Iterable[OutputPort] | None = None,
    with_columns: bool = False,
) -> OutputPort | None:
    """The product's port named `slug`, or, without a slug, its first port by name; None
    when it has no such port (each caller says so in its own words: a 404 page, an API
    error, a form error). The port comes with its source (and its columns with
    `with_columns`), its product set to `product`. `ports`: the product's ports already
    loaded in name order, to choose among without a query."""
    if ports is not None:
        port = next((p for p in ports if p.slug == slug), None) if slug else next(iter(ports), None)
    else:
        qs = OutputPort.objects.filter(product=product).select_related("source").order_by("name")
        if with_columns:
            qs = qs.prefetch_related("columns")
        port = qs.filter(slug=slug).first() if slug else qs.first()
    if port is not None:
        port.product = product  # already loaded, with its domain
    return port


def port_latest_refresh_runs(*, product: DataProduct) -> dict[int, SchemaRefreshRun]:
    """The latest schema refresh run of each of the product's ports, keyed by port id.
    One query, bounded by the number of ports however long the run history grows."""
    latest_run = SchemaRefreshRun.objects.filter(port_id=OuterRef("pk")).order_by(
        "-created_at", "-pk"
    )
    latest_ids = (
        OutputPort.objects.filter(product=product)
        .annotate(latest_run_id=Subquery(latest_run.values("pk")[:1]))
        .values("latest_run_id")
    )
    return {run.port_id: run for run in SchemaRefreshRun.objects.filter(pk__in=latest_ids)}


def schema_refresh_run_get_visible(*, user, run_id: int) -> SchemaRefreshRun:
    """A refresh run if the user may see its product; DoesNotExist otherwise."""

    return SchemaRefreshRun.objects.select_related("port__product__domain").get(
        pk=run_id, port__product__in=products_visible(user=user)
    )


def domain_managers(*, domain_id: int, roles: Iterable[str] = MANAGING_ROLES) -> QuerySet:
    """The active users who manage a domain's products: its owners and stewards (or
    only those of `roles`). Who approves access, is told of incidents, feedback and
    retirements, and answers for a product that names no owner."""
    memberships = DomainMembership.objects.filter(domain_id=domain_id, role__in=list(roles))
    return get_user_model().objects.filter(is_active=True, pk__in=memberships.values("user_id"))
