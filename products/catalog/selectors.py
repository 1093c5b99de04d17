"""Reads of the catalog that carry rules: visibility, search and ranking, facets.

`/search/`, the home page and the API's `q` filter all call product_search. Its rules
(which words match where, the order, typo corrections) are products.catalog.search, the
same on PostgreSQL and SQLite; this module reads the candidates they rank.
"""

import hashlib
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import reduce

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import (
    SearchQuery,
    SearchVectorField,
    TrigramWordSimilarity,
)
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
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
)

from products.catalog.search import (
    CLOSE_ENOUGH,
    MAX_CORRECTIONS,
    Candidate,
    FieldMatch,
    closest_word,
    contained_fragment,
    query_words,
    rank,
    suggestion,
    text_words,
    words_found,
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
# Catalog words read per source (names, tags, column names) to correct a word nothing
# contains, closest first (PostgreSQL).
CLOSE_WORDS_READ = 30

SORT_RELEVANCE = "relevance"
SORT_NAME = "name"
SORT_UPDATED = "updated"
SORTS = (
    (SORT_RELEVANCE, "Relevance"),
    (SORT_NAME, "Name, A to Z"),
    (SORT_UPDATED, "Recently updated"),
)


@dataclass(frozen=True)
class CatalogFilters:
    q: str = ""
    domain: str = ""  # domain slug
    tag: str = ""
    status: str = ""
    sort: str = ""  # one of SORTS; "" is relevance with search text, name without


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


class _PositionIn(Func):
    """The 1-based position of `<expression>` in a list of ids: the ranking's order."""

    output_field = IntegerField()

    def __init__(self, expression, ids: list[int]) -> None:
        self.ids = ids
        super().__init__(expression)

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        literal = "{" + ",".join(str(pk) for pk in self.ids) + "}"
        return f"array_position(%s::bigint[], {sql})", [literal, *params]

    def as_sql(self, compiler, connection, **extra_context):
        # SQLite (the embedded default, small catalogs): one CASE over the ranked ids.
        sql, params = compiler.compile(self.source_expressions[0])
        if not self.ids:
            return "0", []
        whens = " ".join(f"WHEN {int(pk)} THEN {i}" for i, pk in enumerate(self.ids, 1))
        return f"CASE {sql} {whens} END", params


@dataclass(frozen=True)
class SearchRanking:
    """What a search found, for one set of filters: the matching products best first,
    why each matched, and the corrections of words nothing contained."""

    ids: list[int]
    matches: dict[int, tuple[FieldMatch, ...]]
    corrections: dict[str, str]
    suggestion: str  # the search text with the corrections: "did you mean …"


_NO_RANKING = SearchRanking(ids=[], matches={}, corrections={}, suggestion="")


class SearchWindows:
    """The rankings of one catalog request, by the filters each was read for: a search
    page needs the same ranking for its page, its count and (with no facet filter) every
    facet. Shared between requests through the cache for SEARCH_CACHE_SECONDS, keyed by
    the catalog's generation (products.catalog.services.search_index.catalog_changed:
    every change of a product's text, tags, columns or lifecycle starts a new one) and by
    who sees which products."""

    def __init__(self, user) -> None:
        self.user = user
        self._rankings: dict[CatalogFilters, SearchRanking] = {}
        self._key_prefix = ""

    def known(self, filters: CatalogFilters) -> list[int] | None:
        ranking = self._rankings.get(replace(filters, sort=""))
        return ranking.ids if ranking else None

    def ranking(
        self, filters: CatalogFilters, compute: Callable[[], SearchRanking]
    ) -> SearchRanking:
        """The ranking for `filters` (their sort aside): from this request, the cache, or
        `compute()`."""
        filters = replace(filters, sort="")
        if filters not in self._rankings:
            self._rankings[filters] = self.cached("catalog-ranking", filters, compute)
        return self._rankings[filters]

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
        raw = f"{self._key_prefix}|{replace(filters, sort='')!r}"
        return f"{kind}:v2:" + hashlib.sha256(raw.encode()).hexdigest()


def _in_window(field: str, ids: list[int]) -> _EqualsAny:
    """`<field> = ANY(<the window's ids>)`."""
    return _EqualsAny(F(field), Value("{" + ",".join(str(pk) for pk in ids) + "}"))


def _in_ids(field: str, ids: list[int]) -> Q | _EqualsAny:
    """`<field>` is one of `ids`, written the way each database answers fastest."""
    if connection.vendor == "postgresql":
        return _in_window(field, ids)
    return Q(**{f"{field}__in": ids})


def _prefix_query(terms: Iterable[str]) -> SearchQuery:
    """Any of the terms, each as a whole word or the start of one. The terms are words
    of letters and digits only (products.catalog.search.text_words), so they cannot
    carry tsquery syntax."""
    raw = " | ".join(f"{term}:*" for term in terms)
    return SearchQuery(raw, search_type="raw", config="english")


def _window_ids(qs: QuerySet, terms: list[str]) -> list[int]:
    """Ids of the candidates a search ranks: products containing any of the terms, at
    most SEARCH_WINDOW of the newest, plus up to as many whose name contains one (one
    query). PostgreSQL reads them from the full-text index; SQLite scans with LIKE."""
    if connection.vendor == "postgresql":
        query = _prefix_query(terms)
        matches = qs.filter(search_vector=query)
        named = matches.alias(name_document=_NameDocument("name")).filter(name_document=query)
    else:
        contains = Q()
        for term in map(contained_fragment, terms):
            in_columns = Column.objects.filter(port__product_id=OuterRef("pk")).filter(
                Q(name__icontains=term) | Q(description__icontains=term)
            )
            in_tags = Tag.products.through.objects.filter(
                dataproduct_id=OuterRef("pk"), tag__name__icontains=term
            )
            contains |= (
                Q(name__icontains=term)
                | Q(summary__icontains=term)
                | Q(description__icontains=term)
                | Q(purpose_use_case__icontains=term)
                | Q(domain__name__icontains=term)
                | Exists(in_columns)
                | Exists(in_tags)
            )
        matches = qs.filter(contains)
        named = matches.filter(
            reduce(operator.or_, (Q(name__icontains=contained_fragment(t)) for t in terms))
        )
    newest = matches.order_by("-pk").values_list("pk", flat=True)[:SEARCH_WINDOW]
    named = named.order_by("-pk").values_list("pk", flat=True)[:SEARCH_WINDOW]
    if connection.vendor == "postgresql":
        return list(newest.union(named))
    # SQLite allows no LIMIT inside a UNION: two queries.
    return list(dict.fromkeys([*newest, *named]))


def _candidates(ids: list[int], terms: list[str]) -> list[Candidate]:
    """The searchable text of the candidate products (three queries). Only the columns
    that contain a term are read: a product's other columns cannot match."""
    if not ids:
        return []
    rows = DataProduct.objects.filter(_in_ids("pk", ids)).values_list(
        "pk", "name", "status", "summary", "description", "purpose_use_case", "domain__name"
    )
    candidates = {
        pk: Candidate(pk, name, status, summary, description, use_case, domain)
        for pk, name, status, summary, description, use_case, domain in rows.order_by()
    }
    tag_links = Tag.products.through.objects.filter(_in_ids("dataproduct_id", ids))
    for product_id, tag in tag_links.values_list("dataproduct_id", "tag__name").order_by():
        # Tags are written with hyphens ("personal-data"): their words are searched.
        candidates[product_id].tags.append(tag)
    contains = reduce(
        operator.or_,
        (
            Q(name__icontains=fragment) | Q(description__icontains=fragment)
            for fragment in map(contained_fragment, terms)
        ),
    )
    columns = Column.objects.filter(_in_ids("port__product_id", ids)).filter(contains)
    for product_id, name, description in columns.values_list(
        "port__product_id", "name", "description"
    ).order_by("port_id", "position"):
        candidates[product_id].columns.append((name, description))
    return list(candidates.values())


def _catalog_words_close_to(qs: QuerySet, word: str) -> set[str]:
    """Words of the names, tags and column names of the products in `qs` that may be
    close to `word`: every such word on SQLite (the embedded default holds small
    catalogs), on PostgreSQL only those pg_trgm's indexes find at least CLOSE_ENOUGH
    similar (a word-similarity threshold no higher than the similarity
    products.catalog.search.closest_word then asks of each word, so nothing it would pick
    is left out)."""
    product_ids = qs.order_by().values("pk")
    tags = Tag.objects.filter(products__in=product_ids)
    columns = Column.objects.filter(port__product__in=product_ids)
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)",
                [str(CLOSE_ENOUGH)],
            )
            texts = []
            for source in (qs.order_by(), tags, columns):
                texts += list(
                    source.filter(name__trigram_word_similar=word)
                    .annotate(closeness=TrigramWordSimilarity(Value(word), "name"))
                    .order_by("-closeness", "name")
                    .values_list("name", flat=True)[:CLOSE_WORDS_READ]
                )
    else:
        texts = [
            *qs.order_by().values_list("name", flat=True).distinct(),
            *tags.values_list("name", flat=True).distinct(),
            *columns.values_list("name", flat=True).distinct(),
        ]
    return {w for text in texts for w in text_words(text)}


def _rank(qs: QuerySet, q: str) -> SearchRanking:
    """Match and rank the products of `qs` for the search text (products.catalog.search has
    the rules). Words no candidate contains are corrected against the catalog's words and
    searched as corrected too."""
    words = query_words(q)
    if not words:
        return _NO_RANKING
    candidates = _candidates(_window_ids(qs, words), words)
    ranked = rank(candidates, words, {})
    unknown = [w for w in words if w not in words_found(ranked) and len(w) >= 3]
    corrections = {}
    for word in unknown[:MAX_CORRECTIONS]:
        corrected = closest_word(word, _catalog_words_close_to(qs, word))
        if corrected:
            corrections[word] = corrected
    if corrections:
        seen = {candidate.pk for candidate in candidates}
        more = [pk for pk in _window_ids(qs, list(corrections.values())) if pk not in seen]
        terms = [*words, *corrections.values()]
        candidates += _candidates(more, terms)
        ranked = rank(candidates, words, corrections)
    return SearchRanking(
        ids=[r.pk for r in ranked],
        matches={r.pk: r.matches for r in ranked},
        corrections=corrections,
        suggestion=suggestion(q, corrections),
    )


def _ordered(qs: QuerySet, sort: str, ranked_ids: list[int] | None) -> QuerySet:
    """`qs` in the order the person chose; relevance (the ranking) when searching."""
    if sort == SORT_UPDATED:
        return qs.order_by("-updated_at", "pk")
    if ranked_ids is None or sort == SORT_NAME:
        # Name order is what an index gives (product_name_idx, product_domain_name_idx).
        return qs.order_by("name", "pk")
    return qs.annotate(rank=_PositionIn(F("pk"), ranked_ids)).order_by("rank")


def _ranking(qs: QuerySet, filters: CatalogFilters, windows: SearchWindows) -> SearchRanking:
    """The ranking of the search text among the products of `qs` (which carries every
    filter in `filters`), computed once per request and filters."""
    q = filters.q.strip()[:MAX_QUERY_LENGTH]
    return windows.ranking(filters, lambda: _rank(qs, q))


def _text_match(qs: QuerySet, filters: CatalogFilters, windows: SearchWindows) -> QuerySet:
    """Filter by the search text, in the order of filters.sort (relevance by default).

    The work is bounded however broad the text: at most SEARCH_WINDOW of the newest
    products containing a word, plus up to as many whose name contains one, are ranked,
    counted and faceted (bench/catalog.py). The ranking is computed once (`windows` keeps
    it for the request, and the cache for a while) and the queries that count, list and
    facet it look its ids up by primary key."""
    if not filters.q.strip():
        return _ordered(qs, filters.sort, None)
    ranking = _ranking(qs, filters, windows)
    # The ranking was read with every filter of qs (visibility, facets); they apply
    # again to its rows, so a ranking cached a moment ago never shows more.
    return _ordered(qs.filter(_in_ids("pk", ranking.ids)), filters.sort, ranking.ids)


def product_search(
    *, user, filters: CatalogFilters, windows: SearchWindows | None = None
) -> QuerySet[DataProduct]:
    """Products the user may see that match the text and facets, most relevant first
    (or in the order filters.sort asks for)."""
    qs = _apply_facet_filters(products_visible(user=user), filters)
    qs = _text_match(qs, filters, windows or SearchWindows(user))
    return qs.select_related("domain").prefetch_related("tags")


@dataclass(frozen=True)
class CatalogSearch:
    """The search page's answer: the products, why each matched, "did you mean", facets."""

    products: QuerySet[DataProduct]
    facets: dict[str, list[dict]]
    matches: dict[int, tuple[FieldMatch, ...]]
    corrections: dict[str, str]
    suggestion: str


def product_search_explained(
    *, user, filters: CatalogFilters, windows: SearchWindows | None = None
) -> tuple[QuerySet[DataProduct], SearchRanking]:
    """product_search with its ranking: why each product matched, and the corrections."""
    windows = windows or SearchWindows(user)
    products = product_search(user=user, filters=filters, windows=windows)
    if not filters.q.strip():
        return products, _NO_RANKING
    qs = _apply_facet_filters(products_visible(user=user), filters)
    return products, _ranking(qs, filters, windows)


def catalog_search(*, user, filters: CatalogFilters) -> CatalogSearch:
    """The search page's results, their reasons and facet counts; they share the ranking,
    read once."""
    windows = SearchWindows(user)
    products, ranking = product_search_explained(user=user, filters=filters, windows=windows)
    return CatalogSearch(
        products=products,
        facets=product_facets(user=user, filters=filters, windows=windows),
        matches=ranking.matches,
        corrections=ranking.corrections,
        suggestion=ranking.suggestion,
    )


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
            # Counted, not listed: no order needed (name order adds no annotation).
            qs = _text_match(qs, replace(others, sort=SORT_NAME), windows)
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
            _in_ids("dataproduct_id", window),
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
