"""Service level objectives: define them, measure their attainment over rolling windows
(with the error budget left), and open or resolve an incident when the 7-day attainment
falls below the target or recovers.

Definitions (each an aggregate query over the window, never a loop over rows):

- availability: share of the product's port observations (monitor probes and check runs)
  that found the source reachable;
- freshness: share of reachable observations with a known lag whose lag was at most
  `threshold_hours`;
- quality: share of the product's check results that passed, among passed and failed
  (results that could not be evaluated are left out);
- consumer lag (stream ports): share of the observations that measured it whose furthest
  durable consumer was at most `value` messages behind;
- invalid messages (stream ports): share of the observations that measured it with at
  most `value` messages per minute that do not match the port's schema.

Error budget: the target allows (100 - target)% of the window's events to be bad; the
budget spent is bad / allowed, the budget remaining 100% minus that (never below 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from products.catalog.permissions import can_edit_product
from products.catalog.services.events import product_event_emit
from products.choices import (
    DECLARED_SLO_KINDS,
    MEASURED_SLO_KINDS,
    STREAM_SLO_KINDS,
    IncidentCause,
    LifecycleStatus,
    PortKind,
    Severity,
    SLOKind,
)
from products.models import DataProduct, OutputPort, ServiceLevelObjective
from products.trust.services.incidents import cause_key_for_slo, incident_open, incident_recover
from products.trust.services.slo_measures import (
    STREAM_SLO_UNITS,
    SLOAttainment,
    slo_attainment,
    slo_threshold,
)
from products.trust.services.trust_score import trust_score_compute

SLO_FIELDS = ("kind", "target_percent", "threshold_hours", "description", "value", "unit")
# The window a breach is judged on, and the windows reported.
BREACH_WINDOW_DAYS = 7


# --- definitions -------------------------------------------------------------------------


def _validate(slo: ServiceLevelObjective) -> None:
    errors: dict[str, str] = {}
    if slo.kind not in SLOKind.values:
        errors["kind"] = f"Choose one of {', '.join(SLOKind.values)}."
    slo.value = str(slo.value or "").strip()
    slo.unit = str(slo.unit or "").strip()
    if slo.kind in DECLARED_SLO_KINDS:
        # Declared, not measured: the promise is its value (and unit) as written.
        slo.target_percent = 100.0
        if not slo.value:
            errors["value"] = f"A {SLOKind(slo.kind).label.lower()} SLO needs a value."
        elif len(slo.value) > 100:
            errors["value"] = "At most 100 characters."
        if len(slo.unit) > 20:
            errors["unit"] = "At most 20 characters."
    target = slo.target_percent
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target <= 100:
        errors["target_percent"] = "A target is a percentage above 0 and at most 100."
    if slo.kind in STREAM_SLO_KINDS:
        _validate_stream_threshold(slo, errors)
    if slo.kind == SLOKind.FRESHNESS:
        hours = slo.threshold_hours
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
            errors["threshold_hours"] = "A freshness SLO needs threshold_hours, above 0."
    else:
        slo.threshold_hours = None
    slo.description = (slo.description or "").strip()
    if len(slo.description) > 300:
        errors["description"] = "At most 300 characters."
    if (
        "kind" not in errors
        and ServiceLevelObjective.objects.filter(product_id=slo.product_id, kind=slo.kind)
        .exclude(pk=slo.pk)
        .exists()
    ):
        errors["kind"] = f"This product already has a {slo.kind} SLO."
    if errors:
        raise ValidationError(errors)


def _validate_stream_threshold(slo: ServiceLevelObjective, errors: dict[str, str]) -> None:
    """A stream SLO's threshold is `value`: a number of messages (consumer lag) or of
    messages per minute (invalid messages), 0 or more; it measures stream ports only."""
    what = "messages" if slo.kind == SLOKind.CONSUMER_LAG else "invalid messages per minute"
    try:
        threshold = float(slo.value)
    except ValueError:
        threshold = -1.0
    if not math.isfinite(threshold) or threshold < 0:
        errors["value"] = f"Give the largest number of {what} allowed (0 or more)."
    else:
        slo.value = str(int(threshold)) if threshold.is_integer() else repr(threshold)
        slo.unit = STREAM_SLO_UNITS[slo.kind]
    if not OutputPort.objects.filter(product_id=slo.product_id, kind=PortKind.STREAM).exists():
        errors["kind"] = (
            f"A {SLOKind(slo.kind).label.lower()} SLO measures stream ports: this product has none."
        )


def _after_change(product: DataProduct) -> None:

    trust_score_compute(product=product)


@transaction.atomic
def slo_create(
    *,
    product: DataProduct,
    by,
    kind: str,
    target_percent: float,
    threshold_hours: float | None = None,
    description: str = "",
    value: str = "",
    unit: str = "",
) -> ServiceLevelObjective:
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied("Only the domain's owners and stewards define SLOs.")
    slo = ServiceLevelObjective(
        product=product,
        kind=kind,
        target_percent=target_percent,
        threshold_hours=threshold_hours,
        description=description,
        value=value,
        unit=unit,
    )
    _validate(slo)
    slo.save()
    slo_evaluate(slo=slo)
    _after_change(product)
    return slo


@transaction.atomic
def slo_update(*, slo: ServiceLevelObjective, by, **fields: Any) -> ServiceLevelObjective:
    if not can_edit_product(user=by, product=slo.product):
        raise PermissionDenied("Only the domain's owners and stewards change SLOs.")
    unknown = set(fields) - set(SLO_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be changed." for field in unknown})
    for name, value in fields.items():
        setattr(slo, name, value)
    _validate(slo)
    slo.save()
    slo_evaluate(slo=slo)
    _after_change(slo.product)
    return slo


@transaction.atomic
def slo_delete(*, slo: ServiceLevelObjective, by) -> None:
    """Delete the SLO; its unresolved breach incident is resolved (nothing else would)."""
    if not can_edit_product(user=by, product=slo.product):
        raise PermissionDenied("Only the domain's owners and stewards delete SLOs.")
    product = slo.product
    incident_recover(cause_key=cause_key_for_slo(slo.pk), note="Resolved: the SLO was deleted.")
    slo.delete()
    _after_change(product)


def slo_kinds_for(
    *, product: DataProduct, ports: Iterable[OutputPort] | None = None
) -> tuple[str, ...]:
    """The measured SLO kinds the product may have: the stream kinds only with a stream
    port (`ports`: the product's ports when the caller has them, saving a query)."""
    if ports is not None:
        has_stream = any(port.kind == PortKind.STREAM for port in ports)
    else:
        has_stream = OutputPort.objects.filter(product=product, kind=PortKind.STREAM).exists()
    if has_stream:
        return MEASURED_SLO_KINDS
    return tuple(kind for kind in MEASURED_SLO_KINDS if kind not in STREAM_SLO_KINDS)


# --- measurement -------------------------------------------------------------------------


# --- breaches ----------------------------------------------------------------------------


def _breach_title(slo: ServiceLevelObjective, attainment: SLOAttainment) -> str:
    # A stream SLO says what it counted: "at most 1000 messages" behind, or per minute.
    limit = f" at most {slo_threshold(slo):g} {slo.unit}" if slo.kind in STREAM_SLO_KINDS else ""
    return (
        f"{slo.get_kind_display()} SLO breached on {slo.product.name}: "
        f"{attainment.attainment_percent:.2f}% over {attainment.window_days} days "
        f"(target {slo.target_percent:g}%{limit})"
    )


def slo_evaluate(*, slo: ServiceLevelObjective, now: datetime | None = None) -> bool:
    """Open the SLO's incident when its 7-day attainment is below target, resolve it when
    it is met again; no data changes nothing. Returns whether an incident changed state."""
    if slo.kind not in MEASURED_SLO_KINDS:
        return False
    attainment = slo_attainment(slo=slo, days=BREACH_WINDOW_DAYS, now=now)
    key = cause_key_for_slo(slo.pk)
    if attainment.met is None:
        return False
    if attainment.met:
        note = (
            f"Recovered: {attainment.attainment_percent:.2f}% over {attainment.window_days} "
            f"days meets the target of {slo.target_percent:g}%."
        )
        return incident_recover(cause_key=key, note=note) is not None
    with transaction.atomic():
        incident, opened = incident_open(
            product=slo.product,
            cause=IncidentCause.SLO,
            cause_key=key,
            title=_breach_title(slo, attainment),
            severity=Severity.ERROR,
            body=(
                f"{attainment.good:,} good of {attainment.total:,} over "
                f"{attainment.window_days} days; error budget spent "
                f"{attainment.budget_spent_percent:g}%."
            ),
        )
        if opened:  # a breach is recorded once: with the incident it opens
            product_event_emit(
                "portal.slo.breached",
                product=slo.product,
                data={
                    "slo_id": slo.pk,
                    "kind": slo.kind,
                    "target_percent": slo.target_percent,
                    "attainment_percent": attainment.attainment_percent,
                    "window_days": attainment.window_days,
                    "good": attainment.good,
                    "total": attainment.total,
                    "budget_spent_percent": attainment.budget_spent_percent,
                    "incident_id": incident.pk,
                },
            )
    return opened


def slos_evaluate_for_product(*, product: DataProduct, now: datetime | None = None) -> bool:
    changed = False
    for slo in product.slos.filter(kind__in=MEASURED_SLO_KINDS).select_related("product"):
        changed |= slo_evaluate(slo=slo, now=now)
    return changed


def products_with_slos():
    """Ids of the products that have SLOs and are not retired (the periodic evaluation)."""

    return (
        DataProduct.objects.filter(slos__kind__in=MEASURED_SLO_KINDS)
        .exclude(status=LifecycleStatus.RETIRED)
        .values_list("pk", flat=True)
        .distinct()
    )
