"""Reads of a product's trust evidence for its pages and API: checks with their latest
result, check runs, the latest run per port, and the series its charts draw.

Every function takes a product already fetched through the visibility rule
(`product_get_visible`), and costs a fixed number of queries however many checks, runs,
results or observations there are: the series are aggregated by the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncDay, TruncHour
from django.urls import reverse
from django.utils import timezone

from products.choices import MEASURED_SLO_KINDS, CheckOutcome, IncidentCause, PortKind
from products.models import (
    Check,
    CheckResult,
    CheckRun,
    DataProduct,
    OutputPort,
    PortObservation,
)
from products.trust.services.incidents import incidents_for_product
from products.trust.services.slo_measures import SLOReport, slo_attainments
from products.trust.services.trust_score import trust_score_history, trust_score_latest

CHART_DAYS = 30
# The stream monitors' figures drawn over time (PortObservation fields).
STREAM_SERIES = ("messages_per_minute", "consumer_lag", "invalid_per_minute")


def checks_for_product(
    *, product: DataProduct, port: OutputPort | None = None, check_ids: list[int] | None = None
) -> list[Check]:
    """The product's checks (or one port's, or the given ones), each with `latest_result`
    (a CheckResult without its sample, or None). Two queries."""
    latest = CheckResult.objects.filter(quality_check_id=OuterRef("pk")).order_by(
        "-evaluated_at", "-pk"
    )
    qs = Check.objects.filter(port__product=product)
    if port is not None:
        qs = qs.filter(port=port)
    if check_ids is not None:
        qs = qs.filter(pk__in=check_ids)
    checks = list(
        qs.select_related("port")
        .annotate(latest_result_id=Subquery(latest.values("pk")[:1]))
        .order_by("port__name", "name", "pk")
    )
    ids = [check.latest_result_id for check in checks if check.latest_result_id]
    results = CheckResult.objects.defer("sample").in_bulk(ids) if ids else {}
    for check in checks:
        check.port.product = product
        check.latest_result = results.get(check.latest_result_id)
        if check.latest_result is not None:
            check.latest_result.quality_check = check
    return checks


def check_get(*, product: DataProduct, check_id: int) -> Check:
    """One check of the product; Check.DoesNotExist otherwise."""
    check = Check.objects.select_related("port").get(pk=check_id, port__product=product)
    check.port.product = product
    return check


def check_runs_for_product(*, product: DataProduct) -> QuerySet[CheckRun]:
    return (
        CheckRun.objects.filter(port__product=product)
        .select_related("port", "requested_by")
        .order_by("-created_at", "-pk")
    )


def check_run_get(*, product: DataProduct, run_id: int) -> CheckRun:
    """One run of the product's ports with its results (`run.result_list`, ordered by
    check name); CheckRun.DoesNotExist otherwise. Two queries."""
    run = check_runs_for_product(product=product).get(pk=run_id)
    run.port.product = product
    run.result_list = list(
        run.results.select_related("quality_check").order_by("quality_check__name", "pk")
    )
    return run


def port_latest_check_runs(*, product: DataProduct) -> dict[int, CheckRun]:
    """The latest check run of each of the product's ports, keyed by port id (one
    query, bounded by the number of ports)."""
    latest_run = CheckRun.objects.filter(port_id=OuterRef("pk")).order_by("-created_at", "-pk")
    latest_ids = (
        OutputPort.objects.filter(product=product)
        .annotate(latest_run_id=Subquery(latest_run.values("pk")[:1]))
        .values("latest_run_id")
    )
    return {run.port_id: run for run in CheckRun.objects.filter(pk__in=latest_ids)}


def results_of_runs(*, runs) -> dict[int, list[CheckResult]]:
    """The results of the given finished runs, keyed by run id and ordered by check name
    (one query, for the latest run of every port at once)."""
    finished = [run.pk for run in runs if run.is_finished]
    by_run: dict[int, list[CheckResult]] = {pk: [] for pk in finished}
    if finished:
        for result in (
            CheckResult.objects.filter(run_id__in=finished)
            .select_related("quality_check")
            .order_by("quality_check__name", "pk")
        ):
            by_run[result.run_id].append(result)
    return by_run


# --- chart series ----------------------------------------------------------------------


@dataclass
class Series:
    """One line of a chart: x (times) and y (values), with a name for the legend."""

    name: str
    x: list[datetime] = field(default_factory=list)
    y: list[float | None] = field(default_factory=list)


def observation_series(
    *, product: DataProduct, days: int = CHART_DAYS, now: datetime | None = None
) -> dict[str, list[Series]]:
    """Row count and freshness lag (hours) of each port over the last `days` days, one
    point per port and hour (its highest reading: the worst lag), and for stream ports
    messages per minute, consumer lag (messages) and invalid messages per minute, each
    the hour's highest too. One aggregate query."""
    since = (now or timezone.now()) - timedelta(days=days)
    rows = (
        PortObservation.objects.filter(
            port__product=product, observed_at__gte=since, available=True
        )
        .annotate(hour=TruncHour("observed_at"))
        .values("port__name", "hour")
        .annotate(
            rows=Max("row_count"),
            lag=Max("freshness_lag_seconds"),
            **{name: Max(name) for name in STREAM_SERIES},
        )
        .order_by("port__name", "hour")
        .values_list("port__name", "hour", "rows", "lag", *STREAM_SERIES)
    )
    rows_by_port: dict[str, Series] = {}
    lag_by_port: dict[str, Series] = {}
    stream_by_port: dict[str, dict[str, Series]] = {name: {} for name in STREAM_SERIES}
    for port_name, hour, row_count, lag, *stream_values in rows:
        for name, value in zip(STREAM_SERIES, stream_values, strict=True):
            if value is not None:
                series = stream_by_port[name].setdefault(port_name, Series(name=port_name))
                series.x.append(hour)
                series.y.append(value)
        if row_count is not None:
            series = rows_by_port.setdefault(port_name, Series(name=port_name))
            series.x.append(hour)
            series.y.append(row_count)
        if lag is not None:
            series = lag_by_port.setdefault(port_name, Series(name=port_name))
            series.x.append(hour)
            series.y.append(round(lag / 3600, 2))
    return {
        "row_count": list(rows_by_port.values()),
        "freshness": list(lag_by_port.values()),
        **{name: list(by_port.values()) for name, by_port in stream_by_port.items()},
    }


@dataclass(frozen=True)
class StreamMonitorReading:
    """A stream port and its monitor's latest reading (None: not observed yet)."""

    port: OutputPort
    observation: PortObservation | None


def stream_monitor_readings(*, ports: Iterable[OutputPort]) -> list[StreamMonitorReading]:
    """Each stream port among the product's `ports` with its latest observation. One
    query (none without a stream port)."""
    ports = sorted(
        (port for port in ports if port.kind == PortKind.STREAM),
        key=lambda port: (port.name, port.pk),
    )
    if not ports:
        return []
    latest_ids = (
        PortObservation.objects.filter(port_id=OuterRef("port_id"))
        .order_by("-observed_at", "-pk")
        .values("pk")[:1]
    )
    latest = {
        observation.port_id: observation
        for observation in PortObservation.objects.filter(port__in=ports, pk=Subquery(latest_ids))
    }
    return [StreamMonitorReading(port=port, observation=latest.get(port.pk)) for port in ports]


def check_pass_rate_by_day(
    *, product: DataProduct, days: int = CHART_DAYS, now: datetime | None = None
) -> Series:
    """Share of check evaluations that passed, per day (results that could not be
    evaluated count as not passed). One aggregate query."""
    since = (now or timezone.now()) - timedelta(days=days)
    rows = (
        CheckResult.objects.filter(port__product=product, evaluated_at__gte=since)
        .annotate(day=TruncDay("evaluated_at"))
        .values("day")
        .annotate(total=Count("pk"), passed=Count("pk", filter=Q(outcome=CheckOutcome.PASS)))
        .order_by("day")
    )
    series = Series(name="Checks passing")
    for row in rows:
        series.x.append(row["day"])
        series.y.append(round(row["passed"] / row["total"] * 100.0, 2) if row["total"] else None)
    return series


# --- the quality tab's figures, kept while their evidence is unchanged ---------------------

# The windows slide with time even when nothing new is recorded: figures are recomputed
# at least this often.
TRUST_FIGURES_CACHE_SECONDS = 300
TRUST_FIGURES_FORMAT = 2  # in the cache keys: change it when TrustFigures or Series change


@dataclass
class TrustFigures:
    """What the quality tab measures over 30 days: each measured SLO's attainment, the
    row count and freshness series, the daily check pass rate. `version` names the
    evidence they come from (charts drawn from them are kept under it too)."""

    slo_reports: list[SLOReport]
    series: dict[str, list[Series]]
    pass_rate: Series
    version: str


def trust_figures(
    *, product: DataProduct, latest_runs: dict[int, CheckRun], now: datetime | None = None
) -> TrustFigures:
    """The product's TrustFigures, from the cache while their evidence has not changed:
    the same SLOs (and targets), the same latest check run of each port in the same state
    (`latest_runs`, from port_latest_check_runs), the same latest observation of each
    port; recomputed after TRUST_FIGURES_CACHE_SECONDS at the latest. Two queries when
    cached; one per SLO and two more when not."""
    slos = list(product.slos.filter(kind__in=MEASURED_SLO_KINDS).order_by("kind", "pk"))
    last_observed = (
        PortObservation.objects.filter(port_id=OuterRef("pk"))
        .order_by("-observed_at")
        .values("observed_at")[:1]
    )
    ports = (
        OutputPort.objects.filter(product=product)
        .annotate(last_observed=Subquery(last_observed))
        .order_by("pk")
        .values_list("pk", "last_observed")
    )
    evidence = [
        product.pk,
        product.created_at,
        [(slo.pk, slo.kind, slo.target_percent, slo.threshold_hours, slo.value) for slo in slos],
        [
            (pk, observed, _run_state(latest_runs.get(pk)))
            for pk, observed in ports  # one query
        ],
    ]
    version = hashlib.sha256(repr(evidence).encode()).hexdigest()[:32]
    key = f"trust-figures:{TRUST_FIGURES_FORMAT}:{version}"
    figures = cache.get(key)
    if figures is None:
        now = now or timezone.now()
        figures = TrustFigures(
            slo_reports=[
                SLOReport(slo=slo, windows=slo_attainments(slo=slo, now=now)) for slo in slos
            ],
            series=observation_series(product=product, now=now),
            pass_rate=check_pass_rate_by_day(product=product, now=now),
            version=version,
        )
        cache.set(key, figures, TRUST_FIGURES_CACHE_SECONDS)
    return figures


def _run_state(run: CheckRun | None) -> tuple | None:
    if run is None:
        return None
    return (run.pk, run.status, run.finished_at)


# --- the trust score, explained ---------------------------------------------------------

# The four components (docs/trust-score.md), what each measures, and where on the quality
# page its evidence is.
TRUST_COMPONENTS = (
    ("quality", "Quality", "Check results passing, weighted by severity", "checks"),
    ("reliability", "Reliability", "SLO attainment over 30 days", "slos"),
    ("documentation", "Documentation", "Description, owners, columns described, contract", ""),
    (
        "support",
        "Support",
        "Open incidents and how long they have been open; feedback answered in time",
        "incidents",
    ),
)
TRUST_HISTORY_DAYS = 30


@dataclass
class TrustComponent:
    name: str
    label: str
    help: str
    score: float | None
    evidence: dict
    page_url: str  # where its evidence is shown (a page and anchor)


@dataclass
class TrustSummary:
    latest: object  # TrustScore | None
    components: list[TrustComponent]
    history: list[dict]  # oldest first
    how_computed_url: str

    @property
    def score(self) -> float | None:
        return self.latest.score if self.latest is not None else None


def trust_level(score: float | None) -> str:
    """The badge colour of a score: good (80+), fair (60+), poor, or none (no score; a
    template passes "" for a missing one)."""
    if isinstance(score, bool) or not isinstance(score, int | float):
        return "none"
    if score >= 80:
        return "good"
    if score >= 60:
        return "fair"
    return "poor"


def trust_summary(*, product: DataProduct, history_days: int = TRUST_HISTORY_DAYS) -> TrustSummary:
    """The latest score, each component with its evidence and where to see it, and the
    history of the last `history_days` days. Two queries."""

    latest = trust_score_latest(product=product)
    quality = quality_url(product)
    evidence = latest.evidence if latest is not None and isinstance(latest.evidence, dict) else {}
    components = []
    for name, label, help_text, anchor in TRUST_COMPONENTS:
        page_url = (
            f"{quality}#{anchor}" if anchor else f"{product.get_absolute_url()}#documentation"
        )
        part = evidence.get(name)
        components.append(
            TrustComponent(
                name=name,
                label=label,
                help=help_text,
                score=getattr(latest, name) if latest is not None else None,
                evidence=part if isinstance(part, dict) else {},
                page_url=page_url,
            )
        )
    history = [
        {
            "computed_at": point.computed_at,
            "score": point.score,
            "quality": point.quality,
            "reliability": point.reliability,
            "documentation": point.documentation,
            "support": point.support,
        }
        for point in sorted(
            trust_score_history(product=product, days=history_days),
            key=lambda point: point.computed_at,
        )
    ]
    return TrustSummary(
        latest=latest,
        components=components,
        history=history,
        how_computed_url=reverse("products:trust-score-docs"),
    )


def quality_url(product: DataProduct, anchor: str = "") -> str:
    """The product's quality tab (with an anchor: one of its sections)."""

    url = reverse(
        "products:product-quality",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
    )
    return f"{url}#{anchor}" if anchor else url


def trust_header_context(*, product: DataProduct, latest=None) -> dict:
    """What the header of every page of a product shows: its trust score (badge) and the
    banner of unresolved incidents. Two queries (one when `latest` is given)."""

    if latest is None:
        latest = trust_score_latest(product=product)
    return {
        "trust_score": latest,
        "trust_level": trust_level(latest.score if latest is not None else None),
        # A consumer's sync failing is not the product's incident: not in everyone's banner.
        "open_incidents": list(
            incidents_for_product(product=product, status="unresolved").exclude(
                cause=IncidentCause.SYNC
            )
        ),
        "quality_url": quality_url(product),
    }
