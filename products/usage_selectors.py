"""Reads of product usage: page views (products.models.ProductPageView) and data reads
(the audit's `read` events, sharing.models.AccessEvent), per product and portal-wide.

Days are UTC days. A window of N days ends today and includes it. Distinct readers count
signed-in people; reads through a share link by someone not signed in count as reads
without a reader. The product page, its API, the usage dashboard and the retirement
workflow all read usage through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, Exists, Max, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from products.choices import OPEN_RETIREMENT_STATUSES, PUBLIC_STATUSES
from products.models import DataProduct, ProductPageView, RetirementProposal
from products.permissions import managed_domains, user_is_admin
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent

USAGE_DAYS = 90  # the product page's window, and "unused" means no read in this many days
MIN_DAYS, MAX_DAYS = 7, 365
DASHBOARD_WINDOW_DAYS = 30  # most used: the last 30 days; growing: against the 30 before
DASHBOARD_LIST_SIZE = 20
UNUSED_LIST_SIZE = 50
TOP_READERS = 20


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _today(now: datetime | None) -> date:
    return (now or timezone.now()).astimezone(UTC).date()


# --- one product -----------------------------------------------------------------------


@dataclass
class UsageDay:
    day: date
    views: int = 0
    viewers: int = 0
    reads: int = 0
    readers: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


@dataclass
class ProductUsage:
    product: DataProduct
    days: int
    start: date
    end: date
    series: list[UsageDay]
    views: int
    viewers: int
    reads: int
    readers: int
    by_channel: dict[str, int]  # every channel, zeros included, in Channel order
    last_read_at: datetime | None
    # Who read most, for the product's editors only (None for everyone else).
    top_readers: list[dict] | None = None

    @property
    def channels_used(self) -> list[str]:
        return [channel for channel, count in self.by_channel.items() if count]


def product_reads(*, product: DataProduct) -> QuerySet[AccessEvent]:
    return AccessEvent.objects.filter(product=product, action=AuditAction.READ)


def product_usage(
    *,
    product: DataProduct,
    days: int = USAGE_DAYS,
    now: datetime | None = None,
    with_readers: bool = False,
) -> ProductUsage:
    """The product's daily page views and distinct viewers, reads by channel and distinct
    readers over the last `days` days, their totals, and when it was last read.

    Six queries whatever the traffic (seven `with_readers`, the top readers by name,
    which only the product's editors may see: the caller decides)."""
    end = _today(now)
    start = end - timedelta(days=days - 1)
    since = _midnight(start)
    series = {
        start + timedelta(days=offset): UsageDay(day=start + timedelta(days=offset))
        for offset in range(days)
    }

    views = ProductPageView.objects.filter(product=product, day__gte=start, day__lte=end)
    for row in views.values("day").annotate(views=Sum("views"), viewers=Count("user_id")):
        day = series[row["day"]]
        day.views, day.viewers = row["views"], row["viewers"]
    viewers = views.aggregate(n=Count("user_id", distinct=True))["n"]

    reads = product_reads(product=product).filter(at__gte=since)
    by_day = reads.annotate(day=TruncDate("at")).values("day")
    for row in by_day.values("day", "channel").annotate(n=Count("pk")):
        day = series.get(row["day"])
        if day is not None:  # `now` in the past: later reads are outside the window
            channel = row["channel"] or Channel.WEB
            day.by_channel[channel] = day.by_channel.get(channel, 0) + row["n"]
            day.reads += row["n"]
    for row in by_day.annotate(n=Count("user_id", distinct=True)):
        if row["day"] in series:
            series[row["day"]].readers = row["n"]
    readers = reads.aggregate(n=Count("user_id", distinct=True))["n"]
    last_read_at = (
        product_reads(product=product).order_by("-at").values_list("at", flat=True).first()
    )

    by_channel = {channel: 0 for channel in Channel.values}
    for day in series.values():
        for channel, count in day.by_channel.items():
            by_channel[channel] = by_channel.get(channel, 0) + count
    top_readers = None
    if with_readers:
        top_readers = list(
            reads.filter(user__isnull=False)
            .values("user__username")
            .annotate(reads=Count("pk"), last_read_at=Max("at"))
            .order_by("-reads", "user__username")[:TOP_READERS]
        )
        for row in top_readers:
            row["username"] = row.pop("user__username")
    ordered = list(series.values())
    return ProductUsage(
        product=product,
        days=days,
        start=start,
        end=end,
        series=ordered,
        views=sum(day.views for day in ordered),
        viewers=viewers,
        reads=sum(day.reads for day in ordered),
        readers=readers,
        by_channel=by_channel,
        last_read_at=last_read_at,
        top_readers=top_readers,
    )


def usage_chart_data(usage: ProductUsage) -> dict:
    """The daily series as the product page's chart draws it (static/js/usage.js): page
    views as a line, reads stacked by channel as bars, one trace per channel used."""
    labels = dict(Channel.choices)
    return {
        "days": [day.day.isoformat() for day in usage.series],
        "views": [day.views for day in usage.series],
        "reads": [
            {
                "channel": channel,
                "label": labels.get(channel, channel),
                "values": [day.by_channel.get(channel, 0) for day in usage.series],
            }
            for channel in usage.channels_used
        ],
    }


# --- unused products -------------------------------------------------------------------


def products_unused(*, days: int = USAGE_DAYS, now: datetime | None = None) -> QuerySet:
    """Published and deprecated products with no data read in the last `days` days that
    have been out for longer than that (published, or failing that created, before the
    window): a product published last week is new, not unused."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    recent_read = AccessEvent.objects.filter(
        product_id=OuterRef("pk"), action=AuditAction.READ, at__gte=cutoff, at__lte=now
    )
    return (
        DataProduct.objects.filter(status__in=PUBLIC_STATUSES, created_at__lt=cutoff)
        .alias(out_since=Coalesce("published_at", "created_at"))
        .filter(out_since__lt=cutoff)
        .exclude(Exists(recent_read))
    )


def product_is_unused(
    *, product: DataProduct, days: int = USAGE_DAYS, now: datetime | None = None
) -> bool:
    """The same rule for one product (its page's banner): at most one query."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    if product.status not in PUBLIC_STATUSES:
        return False
    if (product.published_at or product.created_at) >= cutoff or product.created_at >= cutoff:
        return False
    return not product_reads(product=product).filter(at__gte=cutoff, at__lte=now).exists()


# --- the portal-wide dashboard ---------------------------------------------------------


@dataclass
class UsageRow:
    product: DataProduct
    views: int = 0
    reads: int = 0
    readers: int = 0
    views_previous: int = 0
    reads_previous: int = 0
    can_edit: bool = False

    @property
    def use(self) -> int:
        return self.views + self.reads

    @property
    def use_previous(self) -> int:
        return self.views_previous + self.reads_previous

    @property
    def growth(self) -> int:
        return self.use - self.use_previous

    @property
    def growth_percent(self) -> float | None:
        """None when there was no use before (new use, not a percentage)."""
        if not self.use_previous:
            return None
        return 100.0 * self.growth / self.use_previous


@dataclass
class UnusedRow:
    product: DataProduct
    last_read_at: datetime | None
    proposal: RetirementProposal | None
    can_edit: bool


@dataclass
class UsageDashboard:
    window_days: int
    unused_days: int
    recent_start: date
    previous_start: date
    end: date
    scope: str
    most_used: list[UsageRow]
    fastest_growing: list[UsageRow]
    unused: list[UnusedRow]
    unused_count: int


SCOPES = ("all", "mine")


def _scoped_products(*, user, scope: str) -> QuerySet[DataProduct]:
    products = DataProduct.objects.visible_to(user)
    if scope == "mine" and not user_is_admin(user):
        products = products.filter(domain__in=managed_domains(user=user))
    return products


def _activity_rows(*, products: QuerySet, windows: dict, tail: str, limit: int) -> list[dict]:
    """Reads and page views per product over two windows (the last 30 days and the 30
    before), aggregated in the database, then `tail` (HAVING ... ORDER BY ...) and LIMIT.

    Each branch scans only its window's rows (indexes on the audit's (action, at) and on
    the page views' day) of the visible products (the visible_to queryset every page
    uses, as a subquery). Table and column names come from the models; every value is a
    bound parameter."""
    ops, quote = connection.ops, connection.ops.quote_name
    event, view = AccessEvent._meta, ProductPageView._meta

    def col(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    e_product, e_at, e_action, e_user = (col(event, n) for n in ("product", "at", "action", "user"))
    v_product, v_day, v_views = (col(view, n) for n in ("product", "day", "views"))
    visible_sql, visible_params = products.order_by().values("pk").query.sql_with_params()
    recent = ops.adapt_datetimefield_value(windows["recent"])
    previous = ops.adapt_datetimefield_value(windows["previous"])
    end = ops.adapt_datetimefield_value(windows["end"])
    recent_day = ops.adapt_datefield_value(windows["recent_day"])
    previous_day = ops.adapt_datefield_value(windows["previous_day"])
    end_day = ops.adapt_datefield_value(windows["end_day"])
    sql = f"""
        SELECT product_id, SUM(reads) AS reads, SUM(reads_previous) AS reads_previous,
               SUM(readers) AS readers, SUM(views) AS views,
               SUM(views_previous) AS views_previous
        FROM (
            SELECT {e_product} AS product_id,
                   COUNT(CASE WHEN {e_at} >= %s THEN 1 END) AS reads,
                   COUNT(CASE WHEN {e_at} < %s THEN 1 END) AS reads_previous,
                   COUNT(DISTINCT CASE WHEN {e_at} >= %s THEN {e_user} END) AS readers,
                   0 AS views, 0 AS views_previous
            FROM {quote(event.db_table)}
            WHERE {e_action} = %s AND {e_at} >= %s AND {e_at} < %s
              AND {e_product} IN ({visible_sql})
            GROUP BY {e_product}
            UNION ALL
            SELECT {v_product}, 0, 0, 0,
                   SUM(CASE WHEN {v_day} >= %s THEN {v_views} ELSE 0 END),
                   SUM(CASE WHEN {v_day} < %s THEN {v_views} ELSE 0 END)
            FROM {quote(view.db_table)}
            WHERE {v_day} >= %s AND {v_day} <= %s AND {v_product} IN ({visible_sql})
            GROUP BY {v_product}
        ) AS activity
        GROUP BY product_id
        {tail}
        LIMIT %s
    """
    params = [
        *(recent, recent, recent, AuditAction.READ.value, previous, end),
        *visible_params,
        *(recent_day, recent_day, previous_day, end_day),
        *visible_params,
        limit,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def usage_dashboard(
    *,
    user,
    scope: str = "all",
    now: datetime | None = None,
    limit: int = DASHBOARD_LIST_SIZE,
    unused_limit: int = UNUSED_LIST_SIZE,
    unused_days: int = USAGE_DAYS,
) -> UsageDashboard:
    """Among the products `user` may see (scope "mine": of the domains they manage):
    the most used over the last 30 days (reads + page views), the fastest growing (use in
    the last 30 days minus the 30 before, largest increase first) and the unused (no read
    in `unused_days` days, see products_unused), each a bounded list.

    A constant number of queries (eight), aggregated in the database: nothing grows with
    the number of products but the rows each aggregate scans (one window of events)."""
    scope = scope if scope in SCOPES else "all"
    end = _today(now)
    recent_start = end - timedelta(days=DASHBOARD_WINDOW_DAYS - 1)
    previous_start = recent_start - timedelta(days=DASHBOARD_WINDOW_DAYS)
    products = _scoped_products(user=user, scope=scope)
    windows = {
        "recent": _midnight(recent_start),
        "previous": _midnight(previous_start),
        "end": _midnight(end + timedelta(days=1)),
        "recent_day": recent_start,
        "previous_day": previous_start,
        "end_day": end,
    }
    most_used = _activity_rows(
        products=products,
        windows=windows,
        tail="HAVING SUM(reads) + SUM(views) > 0 ORDER BY SUM(reads) + SUM(views) DESC, product_id",
        limit=limit,
    )
    growing = _activity_rows(
        products=products,
        windows=windows,
        tail="HAVING SUM(reads) + SUM(views) > SUM(reads_previous) + SUM(views_previous) "
        "ORDER BY SUM(reads) + SUM(views) - SUM(reads_previous) - SUM(views_previous) DESC, "
        "SUM(reads) + SUM(views) DESC, product_id",
        limit=limit,
    )
    editable = (
        None
        if user_is_admin(user)
        else set(managed_domains(user=user).values_list("pk", flat=True))
    )

    def can_edit(product: DataProduct) -> bool:
        return editable is None or product.domain_id in editable

    ids = {row["product_id"] for row in (*most_used, *growing)}
    by_id = DataProduct.objects.select_related("domain").in_bulk(ids)

    def usage_row(row: dict) -> UsageRow:
        product = by_id[row["product_id"]]
        return UsageRow(
            product=product,
            views=int(row["views"] or 0),
            reads=int(row["reads"] or 0),
            readers=int(row["readers"] or 0),
            views_previous=int(row["views_previous"] or 0),
            reads_previous=int(row["reads_previous"] or 0),
            can_edit=can_edit(product),
        )

    now = now or timezone.now()
    unused_qs = products_unused(days=unused_days, now=now).filter(
        pk__in=products.order_by().values("pk")
    )
    unused_count = unused_qs.count()
    unused = list(
        unused_qs.select_related("domain").order_by("domain__name", "name", "pk")[:unused_limit]
    )
    unused_ids = [product.pk for product in unused]
    # The latest read of each listed product: one index probe each (product, -at).
    latest_read = (
        AccessEvent.objects.filter(product_id=OuterRef("pk"), action=AuditAction.READ)
        .order_by("-at")
        .values("at")[:1]
    )
    last_reads = dict(
        DataProduct.objects.filter(pk__in=unused_ids)
        .annotate(last=Subquery(latest_read))
        .values_list("pk", "last")
    )
    proposals = {
        proposal.product_id: proposal
        for proposal in RetirementProposal.objects.filter(
            product_id__in=unused_ids, status__in=OPEN_RETIREMENT_STATUSES
        )
    }
    return UsageDashboard(
        window_days=DASHBOARD_WINDOW_DAYS,
        unused_days=unused_days,
        recent_start=recent_start,
        previous_start=previous_start,
        end=end,
        scope=scope,
        most_used=[usage_row(row) for row in most_used],
        fastest_growing=[usage_row(row) for row in growing],
        unused=[
            UnusedRow(
                product=product,
                last_read_at=last_reads.get(product.pk),
                proposal=proposals.get(product.pk),
                can_edit=can_edit(product),
            )
            for product in unused
        ],
        unused_count=unused_count,
    )
