"""Reads of glossary terms and metrics that carry rules: who sees which term (drafts: the
owning domain and admins), search, where a term is used, which metrics a user sees (those
of the products they see)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, CharField, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.urls import reverse

from products.choices import TermStatus
from products.models import Column, DataProduct, GlossaryTerm, Metric

MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class TermFilters:
    q: str = ""
    domain: str = ""  # domain slug
    status: str = ""


def terms_visible(*, user) -> QuerySet[GlossaryTerm]:
    return GlossaryTerm.objects.visible_to(user)


def term_search(*, user, filters: TermFilters = TermFilters()) -> QuerySet[GlossaryTerm]:
    """Terms the user may see matching the filters. With `q`, every word must appear in
    the name, a synonym or the definition; names first, then synonyms, then
    definitions; then by name."""
    qs = terms_visible(user=user).select_related("domain")
    if filters.domain:
        qs = qs.filter(domain__slug=filters.domain)
    if filters.status in TermStatus.values:
        qs = qs.filter(status=filters.status)
    words = filters.q.split()[:10] if filters.q else []
    if not words:
        return qs.order_by("name", "pk")
    qs = qs.annotate(synonyms_text=Cast("synonyms", CharField()))
    for word in words:
        word = word[:MAX_QUERY_LENGTH]
        qs = qs.filter(
            Q(name__icontains=word)
            | Q(synonyms_text__icontains=word)
            | Q(definition__icontains=word)
        )
    phrase = " ".join(words)
    return qs.annotate(
        rank=Case(
            When(name__iexact=phrase, then=Value(0)),
            When(name__icontains=phrase, then=Value(1)),
            When(synonyms_text__icontains=phrase, then=Value(2)),
            When(name__icontains=words[0], then=Value(3)),
            default=Value(4),
            output_field=IntegerField(),
        )
    ).order_by("rank", "name", "pk")


def term_get_visible(*, user, domain_slug: str, term_slug: str) -> GlossaryTerm:
    """Raises GlossaryTerm.DoesNotExist for a missing term and one the user may not see."""
    return (
        terms_visible(user=user)
        .select_related("domain", "approved_by")
        .get(domain__slug=domain_slug, slug=term_slug)
    )


def term_get_visible_by_key(*, user, key: str) -> GlossaryTerm:
    domain_slug, _, slug = key.partition(".")
    if not domain_slug or not slug:
        raise GlossaryTerm.DoesNotExist(f"No term with key {key!r}")
    return term_get_visible(user=user, domain_slug=domain_slug, term_slug=slug)


@dataclass
class TermUsage:
    products: list[DataProduct]
    columns: list[Column]  # with .port and .port.product (and its domain) loaded


def term_usage(*, term: GlossaryTerm, user) -> TermUsage:
    """Where the term is used, among the products the user may see: two queries."""
    visible = DataProduct.objects.visible_to(user)
    products = list(
        term.products.filter(pk__in=visible.values("pk"))
        .select_related("domain")
        .order_by("domain__name", "name")
    )
    columns = list(
        term.columns.filter(port__product__in=visible.values("pk"))
        .select_related("port__product__domain")
        .order_by("port__product__name", "port__name", "position", "name")
    )
    return TermUsage(products=products, columns=columns)


def terms_of_product(*, product: DataProduct, user) -> list[GlossaryTerm]:
    """The visible terms linked to the product or to one of its columns, in one query;
    each with `on_product` (linked to the product itself)."""
    terms = (
        terms_visible(user=user)
        .filter(Q(products=product) | Q(columns__port__product=product))
        .select_related("domain")
        .annotate(
            on_product=Case(
                When(products=product, then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            )
        )
        .order_by("name", "pk")
    )
    merged: dict[int, GlossaryTerm] = {}
    for term in terms:  # one row per link: keep each term once
        if term.pk in merged:
            merged[term.pk].on_product = merged[term.pk].on_product or term.on_product
        else:
            merged[term.pk] = term
    return list(merged.values())


def terms_of_column(*, column: Column, user) -> list[GlossaryTerm]:
    return list(
        terms_visible(user=user).filter(columns=column).select_related("domain").order_by("name")
    )


def terms_linkable(*, user) -> QuerySet[GlossaryTerm]:
    """Terms the user may link to a product or column: visible, not deprecated."""
    return (
        terms_visible(user=user)
        .exclude(status=TermStatus.DEPRECATED)
        .select_related("domain")
        .order_by("name", "pk")
    )


# --- metrics ---------------------------------------------------------------------------


def metrics_visible(*, user) -> QuerySet[Metric]:
    """Metrics of the products the user may see (their values need read access)."""
    return Metric.objects.filter(
        port__product__in=DataProduct.objects.visible_to(user).values("pk")
    ).select_related("port__product__domain")


def metric_search(*, user, q: str = "", product_key: str = "") -> QuerySet[Metric]:
    qs = metrics_visible(user=user)
    if product_key:
        domain_slug, _, slug = product_key.partition(".")
        qs = qs.filter(port__product__domain__slug=domain_slug, port__product__slug=slug)
    for word in (q or "").split()[:10]:
        qs = qs.filter(
            Q(key__icontains=word) | Q(name__icontains=word) | Q(description__icontains=word)
        )
    return qs.order_by("key")


def metric_get_visible(*, user, key: str) -> Metric:
    """Raises Metric.DoesNotExist for a missing metric and one the user may not see."""
    return metrics_visible(user=user).get(key=key)


@dataclass
class DefinitionLink:
    """A term or a metric as the product page lists it."""

    name: str
    url: str
    key: str = ""
    status: str = ""
    domain_name: str = ""


@dataclass
class ProductDefinitions:
    terms: list[DefinitionLink]
    metrics: list[DefinitionLink]


def product_definitions(*, product: DataProduct, user) -> ProductDefinitions:
    """The product page's definitions block in one query (a UNION): the visible terms
    linked to the product or one of its columns, and the metrics of its ports."""
    columns = ("kind", "name", "ref", "domain_slug", "domain_label", "term_status")
    terms = (
        terms_visible(user=user)
        .filter(Q(products=product) | Q(columns__port__product=product))
        .annotate(
            kind=Value("term", output_field=CharField()),
            ref=F("slug"),
            domain_slug=F("domain__slug"),
            domain_label=F("domain__name"),
            term_status=F("status"),
        )
        .values_list(*columns)
    )
    metrics = (
        Metric.objects.filter(port__product=product)
        .annotate(
            kind=Value("metric", output_field=CharField()),
            ref=F("key"),
            domain_slug=Value("", output_field=CharField()),
            domain_label=Value("", output_field=CharField()),
            term_status=Value("", output_field=CharField()),
        )
        .values_list(*columns)
    )
    found = ProductDefinitions(terms=[], metrics=[])
    # UNION, not UNION ALL: a term linked to the product and to columns comes once. No
    # ORDER BY inside (SQLite refuses one in a compound statement's parts): sorted here.
    rows = sorted(
        terms.order_by().union(metrics.order_by()),
        key=lambda row: (row[1].casefold(), row[2]),
    )
    for kind, name, ref, domain_slug, domain_name, status in rows:
        if kind == "term":
            url = reverse(
                "definitions:term-detail", kwargs={"domain_slug": domain_slug, "term_slug": ref}
            )
            found.terms.append(
                DefinitionLink(
                    name=name,
                    url=url,
                    key=f"{domain_slug}.{ref}",
                    status=status,
                    domain_name=domain_name,
                )
            )
        else:
            url = reverse("definitions:metric-detail", kwargs={"key": ref})
            found.metrics.append(DefinitionLink(name=name, url=url, key=ref))
    return found
