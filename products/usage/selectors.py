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

from django.conf import settings
from django.db.models import Count, Exists, Max, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from products.catalog.permissions import managed_domains, user_is_admin
from products.choices import OPEN_RETIREMENT_STATUSES, PUBLIC_STATUSES
from products.models import (
    DataProduct,
    ProductPageView,
    ProductUsageSummary,
    RetirementProposal,
    UsageSummaryRun,
)
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent, EmbedViewDay

USAGE_DAYS = 90  # the product page's window, and "unused" means no read in this many days
MIN_DAYS, MAX_DAYS = 7, 365
DASHBOARD_WINDOW_DAYS = 30  # most used: the last 30 days; growing: against the 30 before
DASHBOARD_LIST_SIZE = 20
UNUSED_LIST_SIZE = 50
TOP_READERS = 20
TOP_TENANTS = 10  # per embed, on the Usage tab


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


@dataclass
class EmbedUsage:
    """Views (data calls of its page) and CSV downloads of one embed of the product, in
    the window; per tenant (its locked parameters' values) for the product's editors."""

    embed_id: str
    title: str
    chart: str
    active: bool
    views: int = 0
    downloads: int = 0
    tenants: list[dict] | None = None


def embed_usage(
    *,
    product: DataProduct,
    days: int = USAGE_DAYS,
    now: datetime | None = None,
    with_tenants: bool = False,
) -> list[EmbedUsage]:
    """The product's embeds with their views and downloads over the last `days` days,
    most viewed first; with `with_tenants`, each one's TOP_TENANTS tenants (tenant values
    name customers: the caller shows them to the product's editors only). Two queries
    (three with tenants)."""
    end = _today(now)
    start = end - timedelta(days=days - 1)
    usage = {
        str(embed.pk): EmbedUsage(
            embed_id=str(embed.pk),
            title=embed.title,
            chart=embed.get_chart_display(),
            active=embed.disabled_at is None,
            tenants=[] if with_tenants else None,
        )
        for embed in product.embeds.order_by("title", "pk")
    }
    window = EmbedViewDay.objects.filter(embed__product=product, day__gte=start, day__lte=end)
    for row in window.values("embed_id").annotate(views=Sum("views"), downloads=Sum("downloads")):
        found = usage.get(str(row["embed_id"]))
        if found is not None:
            found.views, found.downloads = row["views"], row["downloads"]
    if with_tenants:
        rows = (
            window.values("embed_id", "tenant")
            .annotate(views=Sum("views"), downloads=Sum("downloads"))
            .order_by("embed_id", "-views", "tenant")
        )
        for row in rows:
            found = usage.get(str(row["embed_id"]))
            if found is not None and len(found.tenants) < TOP_TENANTS:
                found.tenants.append(
                    {
                        "tenant": row["tenant"] or "(no locked parameter)",
                        "views": row["views"],
                        "downloads": row["downloads"],
                    }
                )
    return sorted(usage.values(), key=lambda item: (-item.views, item.title))


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


def unused_among(products: QuerySet, *, cutoff: datetime, read_since: QuerySet) -> QuerySet:
    """The unused rule, once: published and deprecated products out (published, or
    failing that created) before `cutoff` with no row in `read_since` (a queryset of
    reads since the cutoff with a `product_id`), as an anti-join."""
    return (
        products.filter(status__in=PUBLIC_STATUSES, created_at__lt=cutoff)
        .alias(out_since=Coalesce("published_at", "created_at"))
        .filter(out_since__lt=cutoff)
        .exclude(Exists(read_since.filter(product_id=OuterRef("pk"))))
    )


def products_unused(*, days: int = USAGE_DAYS, now: datetime | None = None) -> QuerySet:
    """Published and deprecated products with no data read in the last `days` days that
    have been out for longer than that (a product published last week is new, not
    unused). Exact, from the audit: the retirement flag and the product page use it."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    read_since = AccessEvent.objects.filter(action=AuditAction.READ, at__gte=cutoff, at__lte=now)
    return unused_among(DataProduct.objects.all(), cutoff=cutoff, read_since=read_since)


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


@dataclass(frozen=True)
class DashboardWindows:
    """The last DASHBOARD_WINDOW_DAYS UTC days (ending today) and as many before."""

    recent_day: date
    previous_day: date
    end_day: date

    @property
    def recent(self) -> datetime:
        return _midnight(self.recent_day)

    @property
    def previous(self) -> datetime:
        return _midnight(self.previous_day)

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return _midnight(self.end_day + timedelta(days=1))


def dashboard_windows(*, now: datetime | None = None) -> DashboardWindows:
    end = _today(now)
    recent = end - timedelta(days=DASHBOARD_WINDOW_DAYS - 1)
    return DashboardWindows(
        recent_day=recent, previous_day=recent - timedelta(days=DASHBOARD_WINDOW_DAYS), end_day=end
    )


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
    scope: str
    # When the figures were computed (the latest usage summaries); None: not yet.
    as_of: datetime | None = None
    recent_start: date | None = None
    previous_start: date | None = None
    end: date | None = None
    most_used: list[UsageRow] = field(default_factory=list)
    fastest_growing: list[UsageRow] = field(default_factory=list)
    unused: list[UnusedRow] = field(default_factory=list)
    unused_count: int = 0


SCOPES = ("all", "mine")


def _scoped_products(*, user, scope: str) -> QuerySet[DataProduct]:
    products = DataProduct.objects.visible_to(user)
    if scope == "mine" and not user_is_admin(user):
        products = products.filter(domain__in=managed_domains(user=user))
    return products


def usage_dashboard(
    *,
    user,
    scope: str = "all",
    limit: int = DASHBOARD_LIST_SIZE,
    unused_limit: int = UNUSED_LIST_SIZE,
) -> UsageDashboard:
    """Among the products `user` may see (scope "mine": of the domains they manage): the
    most used over the last 30 days (reads + page views), the fastest growing (use in
    the last 30 days minus the 30 before, largest increase first) and the unused (no read
    in RETIREMENT_UNUSED_DAYS), each a bounded list, as of the latest usage summaries
    (products.usage.services.usage_summaries_refresh, hourly).

    Eight queries whatever the size of the catalog and its audit: the rankings walk the
    summaries' indexes, the unused list their partial index of unused products."""
    scope = scope if scope in SCOPES else "all"
    run = UsageSummaryRun.objects.order_by("-computed_at").first()
    dashboard = UsageDashboard(
        window_days=DASHBOARD_WINDOW_DAYS,
        unused_days=run.unused_days if run else settings.RETIREMENT_UNUSED_DAYS,
        scope=scope,
    )
    if run is None:
        return dashboard
    windows = dashboard_windows(now=run.computed_at)
    dashboard.as_of = run.computed_at
    dashboard.recent_start = windows.recent_day
    dashboard.previous_start = windows.previous_day
    dashboard.end = windows.end_day

    scoped = _scoped_products(user=user, scope=scope)
    summaries = ProductUsageSummary.objects.select_related("product__domain")
    if scoped.query.has_filters():  # admins see every product: no subquery to join
        summaries = summaries.filter(product__in=scoped.order_by().values("pk"))
    most_used = list(summaries.filter(use__gt=0).order_by("-use", "product_id")[:limit])
    growing = list(summaries.filter(growth__gt=0).order_by("-growth", "-use", "product_id")[:limit])
    editable = (
        None
        if user_is_admin(user)
        else set(managed_domains(user=user).values_list("pk", flat=True))
    )

    def can_edit(product: DataProduct) -> bool:
        return editable is None or product.domain_id in editable

    def usage_row(summary: ProductUsageSummary) -> UsageRow:
        return UsageRow(
            product=summary.product,
            views=summary.views,
            reads=summary.reads,
            readers=summary.readers,
            views_previous=summary.views_previous,
            reads_previous=summary.reads_previous,
            can_edit=can_edit(summary.product),
        )

    # Unused as of the run (the rule applied by the refresh), among the products the
    # user may see now and still published or deprecated: from the summaries' partial
    # index of unused products.
    unused_rows = summaries.filter(unused=True, product__status__in=PUBLIC_STATUSES)
    dashboard.unused_count = unused_rows.count()
    # Only what the list shows: sorting thousands of whole product rows (descriptions,
    # search documents) to keep 50 costs more than the rest of the dashboard.
    listed = unused_rows.only(
        "product__name",
        "product__slug",
        "product__status",
        "product__domain__name",
        "product__domain__slug",
    ).order_by("product__domain__name", "product__name", "product_id")
    unused = [row.product for row in listed[:unused_limit]]
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
    dashboard.most_used = [usage_row(summary) for summary in most_used]
    dashboard.fastest_growing = [usage_row(summary) for summary in growing]
    dashboard.unused = [
        UnusedRow(
            product=product,
            last_read_at=last_reads.get(product.pk),
            proposal=proposals.get(product.pk),
            can_edit=can_edit(product),
        )
        for product in unused
    ]
    return dashboard
