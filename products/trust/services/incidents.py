"""Incidents: something broke. One unresolved incident per cause (`cause_key`), opened by
evidence (a failing error-severity check, an unreachable source, an SLO breach) and
resolved by recovery or by hand; owners and stewards acknowledge and comment. Every state
change writes an IncidentEvent, and opened/resolved events are notified once (after
commit, see services/notifications.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from portal.core.task_queue import enqueue_on_commit
from products.catalog.permissions import can_edit_product
from products.catalog.services.events import product_event_emit
from products.choices import (
    UNRESOLVED_INCIDENT_STATUSES,
    CheckOutcome,
    CheckRunStatus,
    IncidentCause,
    IncidentEventKind,
    IncidentStatus,
    Severity,
)
from products.models import (
    Check,
    CheckResult,
    CheckRun,
    DataProduct,
    Incident,
    IncidentEvent,
    OutputPort,
    PortObservation,
)
from products.trust.services.trust_score import trust_score_compute
from sharing.access.decision import reads_everything

MAX_COMMENT_LENGTH = 20_000
# Event kinds that are state changes people are told about (email, webhook).
NOTIFIED_EVENT_KINDS = (IncidentEventKind.OPENED, IncidentEventKind.RESOLVED)


# --- cause keys --------------------------------------------------------------------------


def cause_key_for_check(check_id: int) -> str:
    return f"check:{check_id}"


def cause_key_for_availability(port_id: int) -> str:
    return f"availability:{port_id}"


def cause_key_for_slo(slo_id: int) -> str:
    return f"slo:{slo_id}"


# --- selectors ---------------------------------------------------------------------------


def incidents_for_product(*, product: DataProduct, status: str | None = None) -> QuerySet[Incident]:
    """A product's incidents, newest first. `status` is one of IncidentStatus, or
    "unresolved" for open and acknowledged ones."""
    qs = Incident.objects.filter(product=product).select_related("port", "acknowledged_by")
    if status == "unresolved":
        qs = qs.filter(status__in=UNRESOLVED_INCIDENT_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    return qs.order_by("-opened_at", "-pk")


def incident_unresolved(*, cause_key: str) -> Incident | None:
    return Incident.objects.filter(
        cause_key=cause_key, status__in=UNRESOLVED_INCIDENT_STATUSES
    ).first()


def products_with_open_incidents(product_ids: Iterable[int]) -> set[int]:
    """Which of these products have an open or acknowledged incident (one query; the
    search results' marker)."""
    ids = list(product_ids)
    if not ids:
        return set()
    return set(
        Incident.objects.filter(product_id__in=ids, status__in=UNRESOLVED_INCIDENT_STATUSES)
        .exclude(cause=IncidentCause.SYNC)  # a consumer's sync, not the product's health
        .values_list("product_id", flat=True)
        .distinct()
    )


def incident_events(*, incident: Incident) -> QuerySet[IncidentEvent]:
    return incident.events.select_related("author").order_by("created_at", "pk")


def incident_detail_for(*, incident: Incident, user) -> str:
    """The incident's technical detail for the domain's members and admins, "" for
    everyone else (a reader never sees a source's address or a driver's error)."""
    if not incident.detail or not reads_everything(user=user, product=incident.product):
        return ""
    return incident.detail


# --- writes ------------------------------------------------------------------------------


def _notify_after_commit(event: IncidentEvent) -> None:
    enqueue_on_commit("products.tasks.incident_notify", event.pk)


def incident_open(
    *,
    product: DataProduct,
    cause: str,
    cause_key: str,
    title: str,
    severity: str = Severity.ERROR,
    port: OutputPort | None = None,
    body: str = "",
    detail: str = "",
    at: datetime | None = None,
) -> tuple[Incident, bool]:
    """Open the incident of a cause, or return the unresolved one it already has.

    `title` and `body` reach every reader (pages, API, emails, webhooks): they never quote
    a source's address or a driver's error. Those go to `detail`, which only the domain's
    members and admins see (`incident_detail_for`).

    Returns (incident, opened). Race-safe: two workers seeing the same failure at once
    both try to insert; the partial unique constraint lets one win and the other gets the
    winner's incident."""
    existing = incident_unresolved(cause_key=cause_key)
    if existing is not None:
        return existing, False
    at = at or timezone.now()
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                product=product,
                port=port,
                cause=cause,
                cause_key=cause_key,
                title=title[:300],
                detail=detail,
                severity=severity,
                status=IncidentStatus.OPEN,
                opened_at=at,
            )
            event = IncidentEvent.objects.create(
                incident=incident, kind=IncidentEventKind.OPENED, body=body
            )
            _notify_after_commit(event)
            _incident_event_emit("portal.incident.opened", incident)
    except IntegrityError:
        existing = incident_unresolved(cause_key=cause_key)
        if existing is None:  # resolved in between: nothing left to join
            raise
        return existing, False
    return incident, True


def _resolve(incident: Incident, *, by, note: str, at: datetime | None = None) -> bool:
    """Resolve if still unresolved (a conditional UPDATE: resolved once however many
    callers race). Returns whether this call resolved it."""
    at = at or timezone.now()
    with transaction.atomic():
        changed = Incident.objects.filter(
            pk=incident.pk, status__in=UNRESOLVED_INCIDENT_STATUSES
        ).update(status=IncidentStatus.RESOLVED, resolved_at=at, resolution_note=note)
        if not changed:
            return False
        event = IncidentEvent.objects.create(
            incident=incident,
            kind=IncidentEventKind.RESOLVED,
            author=by if getattr(by, "is_authenticated", False) else None,
            body=note,
        )
        _notify_after_commit(event)
        incident.status, incident.resolved_at = IncidentStatus.RESOLVED, at
        _incident_event_emit(
            "portal.incident.resolved",
            incident,
            resolved_by=by.get_username() if getattr(by, "is_authenticated", False) else "",
        )
    incident.refresh_from_db()
    return True


def _incident_event_emit(type: str, incident: Incident, **extra) -> None:  # noqa: A002
    """An incident's event: what every reader of the product may know of it (its title,
    never its technical detail)."""
    port = incident.port
    product_event_emit(
        type,
        product=incident.product,
        data={
            "incident_id": incident.pk,
            "title": incident.title,
            "cause": incident.cause,
            "severity": incident.severity,
            "port": port.slug if port else "",
            "port_id": port.pk if port else None,
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
            **extra,
        },
    )


def incident_recover(*, cause_key: str, note: str) -> Incident | None:
    """Recovery: resolve the cause's unresolved incident with a note. Returns the incident
    resolved, or None when there was none."""
    incident = incident_unresolved(cause_key=cause_key)
    if incident is None:
        return None
    return incident if _resolve(incident, by=None, note=note) else None


def _require_editor(*, incident: Incident, by, action: str) -> None:
    if not can_edit_product(user=by, product=incident.product):
        raise PermissionDenied(f"Only the domain's owners and stewards {action} incidents.")


def _clean_text(value: str, *, field: str, empty_message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: empty_message})
    if len(value) > MAX_COMMENT_LENGTH:
        raise ValidationError({field: f"At most {MAX_COMMENT_LENGTH:,} characters."})
    return value


def _recompute_trust(product: DataProduct) -> None:

    trust_score_compute(product=product)


def incident_acknowledge(*, incident: Incident, by, note: str = "") -> Incident:
    """An owner says "we are on it". Acknowledging an acknowledged incident changes
    nothing; a resolved one cannot be acknowledged."""
    _require_editor(incident=incident, by=by, action="acknowledge")
    note = (note or "").strip()
    if len(note) > MAX_COMMENT_LENGTH:
        raise ValidationError({"note": f"At most {MAX_COMMENT_LENGTH:,} characters."})
    now = timezone.now()
    with transaction.atomic():
        changed = Incident.objects.filter(pk=incident.pk, status=IncidentStatus.OPEN).update(
            status=IncidentStatus.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by
        )
        if not changed:
            incident.refresh_from_db()
            if incident.status == IncidentStatus.RESOLVED:
                raise ValidationError({"status": "This incident is resolved already."})
            return incident
        IncidentEvent.objects.create(
            incident=incident, kind=IncidentEventKind.ACKNOWLEDGED, author=by, body=note
        )
        incident.refresh_from_db()
        _recompute_trust(incident.product)
    return incident


def incident_comment(*, incident: Incident, by, body: str) -> IncidentEvent:
    _require_editor(incident=incident, by=by, action="comment on")
    body = _clean_text(body, field="body", empty_message="Write a comment.")
    return IncidentEvent.objects.create(
        incident=incident, kind=IncidentEventKind.COMMENT, author=by, body=body
    )


def incident_resolve(*, incident: Incident, by, note: str) -> Incident:
    """Resolve by hand, saying how (the note is required). If the cause persists, the
    next failing evidence opens a new incident."""
    _require_editor(incident=incident, by=by, action="resolve")
    note = _clean_text(note, field="note", empty_message="Say how the incident was resolved.")
    with transaction.atomic():
        if not _resolve(incident, by=by, note=note):
            raise ValidationError({"status": "This incident is resolved already."})
        _recompute_trust(incident.product)
    return incident


# --- reconciling with evidence -------------------------------------------------------------


def _availability_title(port: OutputPort) -> str:
    return f"Port '{port.name}' of {port.product.name} is unreachable"


def availability_message(port: OutputPort) -> str:
    """What every reader is told about an unreachable port: the source's name, never its
    address or the driver's error (those are the incident's `detail`)."""
    if port.source_id:
        return f"Data source '{port.source.name}' could not be reached or read."
    return "The port's file could not be read."


def incidents_reconcile_availability(
    *, port: OutputPort, available: bool, at: datetime, detail: str = ""
) -> bool:
    """Open or resolve the port's availability incident from evidence seen at `at`.
    Evidence older than the port's latest observation is ignored. Returns whether an
    incident changed state. `detail` is the technical reason (members and admins only);
    readers get `availability_message`."""
    if PortObservation.objects.filter(port=port, observed_at__gt=at).exists():
        return False
    key = cause_key_for_availability(port.pk)
    if available:
        return (
            incident_recover(cause_key=key, note="Recovered: the source is reachable again.")
            is not None
        )
    _, opened = incident_open(
        product=port.product,
        port=port,
        cause=IncidentCause.AVAILABILITY,
        cause_key=key,
        title=_availability_title(port),
        severity=Severity.ERROR,
        body=availability_message(port),
        detail=detail,
        at=at,
    )
    return opened


def _check_title(check: Check, port: OutputPort) -> str:
    return f"Check '{check.name}' failing on {port.product.name}"


def incidents_reconcile_check_run(*, run: CheckRun) -> bool:
    """Open, keep or resolve incidents from a finished run. Returns whether any incident
    changed state. Safe to call twice: an unresolved incident is never opened again, a
    resolved one never resolved again, and a result older than its check's latest is
    ignored."""
    port = run.port
    changed = False
    if run.status == CheckRunStatus.ERROR:
        return incidents_reconcile_availability(
            port=port, available=False, at=run.started_at or run.created_at, detail=run.error
        )
    if run.status != CheckRunStatus.DONE:
        return False
    changed |= incidents_reconcile_availability(
        port=port, available=True, at=run.started_at or run.created_at
    )
    results = list(run.results.select_related("quality_check"))
    newer: set[int] = set()
    if results:
        evaluated_at = max(result.evaluated_at for result in results)
        newer = set(
            CheckResult.objects.filter(
                quality_check_id__in=[r.quality_check_id for r in results],
                evaluated_at__gt=evaluated_at,
            ).values_list("quality_check_id", flat=True)
        )
    for result in results:
        check = result.quality_check
        if check.pk in newer:
            continue
        key = cause_key_for_check(check.pk)
        if result.outcome == CheckOutcome.FAIL and result.severity == Severity.ERROR:
            _, opened = incident_open(
                product=port.product,
                port=port,
                cause=IncidentCause.CHECK,
                cause_key=key,
                title=_check_title(check, port),
                severity=Severity.ERROR,
                body=f"{result.message} (run #{run.pk}; tolerance: {result.threshold or '-'})",
                at=result.evaluated_at,
            )
            changed |= opened
        elif result.outcome == CheckOutcome.PASS:
            note = f"Recovered: {result.message}".strip()
            changed |= incident_recover(cause_key=key, note=note) is not None
    changed |= _resolve_orphaned_check_incidents(port=port)
    return changed


def _resolve_orphaned_check_incidents(*, port: OutputPort) -> bool:
    """Check incidents of the port whose check was deleted or disabled: nothing will
    ever recover them, so they are resolved with a note saying why."""
    open_keys = list(
        Incident.objects.filter(
            port=port, cause=IncidentCause.CHECK, status__in=UNRESOLVED_INCIDENT_STATUSES
        ).values_list("cause_key", flat=True)
    )
    if not open_keys:
        return False
    ids = {int(key.split(":", 1)[1]) for key in open_keys}
    enabled = set(Check.objects.filter(pk__in=ids, enabled=True).values_list("pk", flat=True))
    existing = set(Check.objects.filter(pk__in=ids).values_list("pk", flat=True))
    changed = False
    for check_id in sorted(ids - enabled):
        why = "disabled" if check_id in existing else "deleted"
        note = f"Resolved: the check was {why}."
        changed |= incident_recover(cause_key=cause_key_for_check(check_id), note=note) is not None
    return changed
