"""How well an SLO is kept: its attainment over rolling windows, measured from the
observations and check results in the database. Reads only: the trust score, the quality
tab and SLO evaluation (products.trust.services.slos) all measure through here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from products.choices import (
    MEASURED_SLO_KINDS,
    STREAM_SLO_KINDS,
    CheckOutcome,
    SLOKind,
)
from products.models import CheckResult, DataProduct, PortObservation, ServiceLevelObjective

REPORT_WINDOWS_DAYS = (7, 30)
# The observation field each stream SLO measures, and what its threshold (`value`) counts.
STREAM_SLO_MEASURE = {
    SLOKind.CONSUMER_LAG: "consumer_lag",
    SLOKind.INVALID_MESSAGES: "invalid_per_minute",
}
STREAM_SLO_UNITS = {
    SLOKind.CONSUMER_LAG: "messages",
    SLOKind.INVALID_MESSAGES: "messages/min",
}


def slo_threshold(slo: ServiceLevelObjective) -> float:
    """A stream SLO's threshold: its `value` as a number (validated when it was saved)."""
    return float(slo.value or 0)


@dataclass(frozen=True)
class SLOAttainment:
    window_days: int
    good: int
    total: int
    attainment_percent: float | None  # None: no data in the window
    target_percent: float
    met: bool | None  # None: no data in the window
    error_budget_remaining_percent: float  # 0 to 100
    budget_spent_percent: float  # may exceed 100 (400 = four times the budget)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SLOReport:
    slo: ServiceLevelObjective
    windows: dict[int, SLOAttainment]  # days -> attainment

    @property
    def attainment_7d(self) -> SLOAttainment:
        return self.windows[7]

    @property
    def attainment_30d(self) -> SLOAttainment:
        return self.windows[30]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.slo.pk,
            "kind": self.slo.kind,
            "target_percent": self.slo.target_percent,
            "threshold_hours": self.slo.threshold_hours,
            "description": self.slo.description,
            "windows": {f"{days}d": att.as_dict() for days, att in self.windows.items()},
        }


def _counts(slo: ServiceLevelObjective, windows: tuple[int, ...], now: datetime):
    """(good, total) per window, all windows in one aggregate query."""
    longest = max(windows)
    start_of = {days: now - timedelta(days=days) for days in windows}
    if slo.kind == SLOKind.QUALITY:
        qs = CheckResult.objects.filter(
            port__product_id=slo.product_id,
            evaluated_at__gt=start_of[longest],
            evaluated_at__lte=now,
            outcome__in=(CheckOutcome.PASS, CheckOutcome.FAIL),
        )
        time_field, good = "evaluated_at", Q(outcome=CheckOutcome.PASS)
    else:
        qs = PortObservation.objects.filter(
            port__product_id=slo.product_id,
            observed_at__gt=start_of[longest],
            observed_at__lte=now,
        )
        time_field = "observed_at"
        if slo.kind == SLOKind.AVAILABILITY:
            good = Q(available=True)
        elif slo.kind in STREAM_SLO_KINDS:
            # Only the observations that measured it: stream ports, after their first.
            measured = STREAM_SLO_MEASURE[slo.kind]
            qs = qs.filter(available=True, **{f"{measured}__isnull": False})
            good = Q(**{f"{measured}__lte": slo_threshold(slo)})
        else:
            qs = qs.filter(available=True, freshness_lag_seconds__isnull=False)
            good = Q(freshness_lag_seconds__lte=float(slo.threshold_hours or 0) * 3600)
    aggregates = {}
    for days in windows:
        in_window = Q(**{f"{time_field}__gt": start_of[days]})
        aggregates[f"total_{days}"] = Count("pk", filter=in_window)
        aggregates[f"good_{days}"] = Count("pk", filter=in_window & good)
    row = qs.aggregate(**aggregates)
    return {days: (row[f"good_{days}"], row[f"total_{days}"]) for days in windows}


def _attainment(slo: ServiceLevelObjective, days: int, good: int, total: int) -> SLOAttainment:
    target = float(slo.target_percent)
    if not total:
        return SLOAttainment(
            window_days=days,
            good=0,
            total=0,
            attainment_percent=None,
            target_percent=target,
            met=None,
            error_budget_remaining_percent=100.0,
            budget_spent_percent=0.0,
        )
    attainment = round(good / total * 100.0, 4)
    bad = total - good
    allowed = total * (100.0 - target) / 100.0
    if bad == 0:
        spent = 0.0
    elif allowed <= 0:  # a 100% target has no budget: any bad event spends all of it
        spent = 100.0
    else:
        spent = round(bad / allowed * 100.0, 2)
    return SLOAttainment(
        window_days=days,
        good=good,
        total=total,
        attainment_percent=attainment,
        target_percent=target,
        met=attainment >= target,
        error_budget_remaining_percent=max(0.0, round(100.0 - spent, 2)),
        budget_spent_percent=spent,
    )


def slo_attainment(
    *, slo: ServiceLevelObjective, days: int, now: datetime | None = None
) -> SLOAttainment:
    """The SLO's attainment over the `days` days before `now`."""
    now = now or timezone.now()
    good, total = _counts(slo, (days,), now)[days]
    return _attainment(slo, days, good, total)


def slo_attainments(
    *, slo: ServiceLevelObjective, windows: tuple[int, ...] = REPORT_WINDOWS_DAYS, now=None
) -> dict[int, SLOAttainment]:
    """Attainment over several windows at once (one query)."""
    now = now or timezone.now()
    counts = _counts(slo, windows, now)
    return {days: _attainment(slo, days, *counts[days]) for days in windows}


def product_slo_report(*, product: DataProduct, now: datetime | None = None) -> list[SLOReport]:
    """Each measured SLO of the product with its 7- and 30-day attainment (one query per
    SLO). Declared SLOs (frequency, retention, time of availability) have none."""
    now = now or timezone.now()
    return [
        SLOReport(slo=slo, windows=slo_attainments(slo=slo, now=now))
        for slo in product.slos.filter(kind__in=MEASURED_SLO_KINDS).order_by("kind")
    ]
