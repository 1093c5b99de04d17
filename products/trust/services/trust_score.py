"""The trust score: 0 to 100, from four components anyone can trace to their evidence.
The formula, for consumers, is docs/trust-score.md; keep the two in step.

    score = 0.35 quality + 0.25 reliability + 0.20 documentation + 0.20 support

- quality: latest result of each enabled check, weighted by severity (error 2, warn 1);
  a result that could not be evaluated counts as failing.
- reliability: mean over the product's SLOs (with data) of
  min(100, 30-day attainment / target * 100).
- documentation: 30 for a description, 20 for at least one owner, 40 x the share of
  columns described, 10 for a contract.
- support: 100 - 20 per unresolved incident - 2 per whole day of the oldest one's age
  - 10 per feedback thread unanswered past the product's response objective - 1 per
  business day the most overdue one is late, never below 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import ngettext

from products.choices import (
    MEASURED_SLO_KINDS,
    UNRESOLVED_INCIDENT_STATUSES,
    CheckOutcome,
    IncidentCause,
    IncidentStatus,
    LifecycleStatus,
    Severity,
)
from products.feedback.services.feedback import feedback_overdue
from products.models import (
    Check,
    CheckResult,
    Column,
    DataProduct,
    Incident,
    TrustScore,
)
from products.trust.services.slo_measures import slo_attainment

WEIGHTS = {"quality": 0.35, "reliability": 0.25, "documentation": 0.20, "support": 0.20}
SEVERITY_WEIGHTS = {Severity.ERROR: 2, Severity.WARN: 1}
DOCUMENTATION_POINTS = {"description": 30, "owners": 20, "columns": 40, "contract": 10}
SUPPORT_PER_INCIDENT = 20
SUPPORT_PER_DAY_OF_OLDEST = 2
SUPPORT_PER_OVERDUE_THREAD = 10
SUPPORT_PER_OVERDUE_BUSINESS_DAY = 1  # of the most overdue thread
RELIABILITY_WINDOW_DAYS = 30
FORMULA_DOC = "docs/trust-score.md"


def _r1(value: float) -> float:
    return round(float(value), 1)


# --- components ----------------------------------------------------------------------------


def _quality(product: DataProduct, until: datetime | None = None) -> tuple[float, dict[str, Any]]:
    """`until`: the latest result of each check evaluated by then (a past snapshot)."""
    results_by_then = CheckResult.objects.filter(quality_check=OuterRef("pk"))
    if until is not None:
        results_by_then = results_by_then.filter(evaluated_at__lte=until)
    latest = results_by_then.order_by("-evaluated_at", "-pk").values("pk")[:1]
    checks = list(
        Check.objects.filter(port__product=product, enabled=True)
        .annotate(latest_result_id=Subquery(latest))
        .order_by("port_id", "name")
        .values("pk", "name", "port_id", "severity", "latest_result_id")
    )
    results = CheckResult.objects.in_bulk(
        [c["latest_result_id"] for c in checks if c["latest_result_id"]]
    )
    used, not_run = [], []
    weight_total = weight_passed = 0
    for check in checks:
        result = results.get(check["latest_result_id"])
        if result is None:
            not_run.append({"id": check["pk"], "name": check["name"]})
            continue
        weight = SEVERITY_WEIGHTS.get(check["severity"], 1)
        passed = result.outcome == CheckOutcome.PASS
        weight_total += weight
        weight_passed += weight if passed else 0
        used.append(
            {
                "id": check["pk"],
                "name": check["name"],
                "port_id": check["port_id"],
                "severity": check["severity"],
                "weight": weight,
                "outcome": result.outcome,
                "passed": passed,
                "result_id": result.pk,
                "run_id": result.run_id,
                "evaluated_at": result.evaluated_at.isoformat(),
            }
        )
    if not checks:
        note = "no checks yet"
    elif not used:
        note = "no check has run yet"
    else:
        note = f"{weight_passed} of {weight_total} severity-weighted points passing"
    value = _r1(weight_passed / weight_total * 100) if weight_total else 0.0
    evidence = {
        "value": value,
        "note": note,
        "weights": {str(k): v for k, v in SEVERITY_WEIGHTS.items()},
        "weight_passed": weight_passed,
        "weight_total": weight_total,
        "checks": used,
        "not_run": not_run,
    }
    return value, evidence


def _reliability(product: DataProduct, now: datetime) -> tuple[float, dict[str, Any]]:
    slos = list(product.slos.filter(kind__in=MEASURED_SLO_KINDS).order_by("kind"))
    rows, contributions = [], []
    for slo in slos:
        att = slo_attainment(slo=slo, days=RELIABILITY_WINDOW_DAYS, now=now)
        contribution = None
        if att.attainment_percent is not None:
            contribution = min(100.0, att.attainment_percent / slo.target_percent * 100.0)
            contributions.append(contribution)
        rows.append(
            {
                "id": slo.pk,
                "kind": slo.kind,
                "target_percent": slo.target_percent,
                "window_days": att.window_days,
                "good": att.good,
                "total": att.total,
                "attainment_percent": att.attainment_percent,
                "contribution": None if contribution is None else round(contribution, 2),
            }
        )
    if not slos:
        note = "no SLOs yet"
    elif not contributions:
        note = f"no data in the last {RELIABILITY_WINDOW_DAYS} days for any SLO"
    else:
        note = ngettext(
            "mean of %(count)d SLO over %(days)d days",
            "mean of %(count)d SLOs over %(days)d days",
            len(contributions),
        ) % {"count": len(contributions), "days": RELIABILITY_WINDOW_DAYS} + (
            f"; {len(slos) - len(contributions)} without data left out"
            if len(contributions) < len(slos)
            else ""
        )
    value = _r1(sum(contributions) / len(contributions)) if contributions else 0.0
    return value, {"value": value, "note": note, "slos": rows}


def _documentation(product: DataProduct) -> tuple[float, dict[str, Any]]:
    columns = Column.objects.filter(port__product=product).aggregate(
        total=Count("pk"), described=Count("pk", filter=~Q(description=""))
    )
    owners = product.owners.count()
    has_description = bool((product.description or "").strip())
    share = columns["described"] / columns["total"] if columns["total"] else 0.0
    points = {
        "description": DOCUMENTATION_POINTS["description"] if has_description else 0,
        "owners": DOCUMENTATION_POINTS["owners"] if owners else 0,
        "columns": round(DOCUMENTATION_POINTS["columns"] * share, 2),
        "contract": 0,
    }
    notes = ["no contract yet"]
    if not columns["total"]:
        notes.insert(0, "no columns yet")
    value = _r1(sum(points.values()))
    return value, {
        "value": value,
        "note": "; ".join(notes),
        "description": has_description,
        "owners": owners,
        "columns_total": columns["total"],
        "columns_described": columns["described"],
        "contract": False,
        "points": points,
    }


def _support(
    product: DataProduct, now: datetime, *, past: bool = False
) -> tuple[float, dict[str, Any]]:
    """`past`: the incidents unresolved at `now` (opened by then, resolved after it or
    not yet), for a past snapshot; otherwise those unresolved today."""
    if past:
        unresolved = Incident.objects.filter(product=product, opened_at__lte=now).filter(
            Q(resolved_at__isnull=True) | Q(resolved_at__gt=now)
        )
    else:
        unresolved = Incident.objects.filter(
            product=product, status__in=UNRESOLVED_INCIDENT_STATUSES
        )
    # A consumer's sync failing (cause sync) says nothing of the product's own health.
    unresolved = unresolved.exclude(cause=IncidentCause.SYNC)
    incidents = list(
        unresolved.order_by("opened_at", "pk").values(
            "pk", "title", "status", "cause", "opened_at", "acknowledged_at"
        )
    )
    rows = []
    for incident in incidents:
        age_days = max(0, (now - incident["opened_at"]).days)
        status = incident["status"]
        if past:  # its status then
            acknowledged = incident["acknowledged_at"] and incident["acknowledged_at"] <= now
            status = IncidentStatus.ACKNOWLEDGED if acknowledged else IncidentStatus.OPEN
        rows.append(
            {
                "id": incident["pk"],
                "title": incident["title"],
                "status": str(status),
                "cause": incident["cause"],
                "opened_at": incident["opened_at"].isoformat(),
                "age_days": age_days,
            }
        )
    oldest = max((row["age_days"] for row in rows), default=0)

    overdue = feedback_overdue(product=product, now=now)
    most_late = max((row["business_days_overdue"] for row in overdue), default=0)
    value = _r1(
        max(
            0,
            100
            - SUPPORT_PER_INCIDENT * len(rows)
            - SUPPORT_PER_DAY_OF_OLDEST * oldest
            - SUPPORT_PER_OVERDUE_THREAD * len(overdue)
            - SUPPORT_PER_OVERDUE_BUSINESS_DAY * most_late,
        )
    )
    note = (
        _counted("%(count)d unresolved incident", "%(count)d unresolved incidents", len(rows))
        + ", the oldest "
        + _counted("%(count)d day old", "%(count)d days old", oldest)
        if rows
        else "no unresolved incidents"
    )
    days = product.feedback_response_days
    if overdue:
        note += (
            "; "
            + _counted(
                "%(count)d feedback thread unanswered",
                "%(count)d feedback threads unanswered",
                len(overdue),
            )
            + f" past the {days}-business-day response objective, the most overdue "
            + _counted("%(count)d business day late", "%(count)d business days late", most_late)
        )
    else:
        note += "; feedback answered within the response objective"
    return value, {
        "value": value,
        "note": note,
        "incidents": rows,
        "oldest_age_days": oldest,
        "feedback_response_days": days,
        "overdue_threads": overdue,
        "most_overdue_business_days": most_late,
    }


def _counted(singular: str, plural: str, count: int) -> str:
    """The singular or plural form for `count` with the count: "1 day", "2 days"."""
    return ngettext(singular, plural, count) % {"count": count}


# --- writes --------------------------------------------------------------------------------


def trust_score_compute(*, product: DataProduct, now: datetime | None = None) -> TrustScore:
    """Compute the product's trust score from the evidence now and record a snapshot."""
    return _snapshot(product=product, now=now or timezone.now(), past=False)


def trust_score_backfill(*, product: DataProduct, moments: Iterable[datetime]) -> list[TrustScore]:
    """Record the snapshots the product would have had at each of `moments` (past times),
    by the same formula from the evidence as it stood then: the latest check results
    evaluated by then, SLO attainment over the 30 days before, the incidents unresolved
    then, feedback overdue then. Documentation is today's (its history is not kept).
    For a history recorded after the fact (a demo, an import of past check runs)."""
    return [_snapshot(product=product, now=moment, past=True) for moment in sorted(moments)]


def _snapshot(*, product: DataProduct, now: datetime, past: bool) -> TrustScore:
    quality, quality_ev = _quality(product, until=now if past else None)
    reliability, reliability_ev = _reliability(product, now)
    documentation, documentation_ev = _documentation(product)
    support, support_ev = _support(product, now, past=past)
    components = {
        "quality": quality,
        "reliability": reliability,
        "documentation": documentation,
        "support": support,
    }
    score = _r1(sum(WEIGHTS[name] * value for name, value in components.items()))
    evidence = {
        "formula": {"weights": WEIGHTS, "doc": FORMULA_DOC},
        "quality": quality_ev,
        "reliability": reliability_ev,
        "documentation": documentation_ev,
        "support": support_ev,
    }
    return TrustScore.objects.create(
        product=product, computed_at=now, score=score, evidence=evidence, **components
    )


# --- selectors -----------------------------------------------------------------------------


def products_for_trust_scores() -> QuerySet[DataProduct]:
    """Products whose score is kept up to date (every product not retired)."""

    return DataProduct.objects.exclude(status=LifecycleStatus.RETIRED).order_by("pk")


def trust_score_latest(*, product: DataProduct) -> TrustScore | None:
    return TrustScore.objects.filter(product=product).order_by("-computed_at", "-pk").first()


def trust_score_history(
    *, product: DataProduct, days: int = 30, now: datetime | None = None
) -> QuerySet[TrustScore]:
    """Snapshots of the last `days` days, oldest first (a chart's x axis). The evidence is
    deferred: a chart needs the numbers only."""
    now = now or timezone.now()
    return (
        TrustScore.objects.filter(product=product, computed_at__gte=now - timedelta(days=days))
        .defer("evidence")
        .order_by("computed_at", "pk")
    )


def trust_scores_latest_for(product_ids: Iterable[int]) -> dict[int, TrustScore]:
    """The latest snapshot of each product, in one query (search results' badges). Each
    product's latest is an index lookup (trust_product_time_idx), however long its
    history. The evidence is deferred (a badge needs the numbers)."""
    ids = list(product_ids)
    if not ids:
        return {}
    latest = (
        TrustScore.objects.filter(product_id=OuterRef("pk"))
        .order_by("-computed_at", "-pk")
        .values("pk")[:1]
    )
    latest_ids = DataProduct.objects.filter(pk__in=ids).values(latest_id=Subquery(latest))
    return {
        score.product_id: score
        for score in TrustScore.objects.filter(pk__in=latest_ids).defer("evidence")
    }
