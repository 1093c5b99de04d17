"""Export schedules: who may create and change them, validation (each bad field named),
and their one django-celery-beat task each, with the cron in the schedule's time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule

from portal.core.beat import periodic_task_keep
from portal.core.cron import cron_next_runs, cron_parse
from products.catalog.permissions import can_edit_product
from products.catalog.selectors import port_for
from products.models import DataProduct, OutputPort
from sharing.access.decision import access_decide, reads_everything
from sharing.access.filters import FilterError, clauses_typed, parse_filter, unknown_columns
from sharing.choices import (
    FILE_FORMATS,
    ExportStatus,
)
from sharing.models import ExportRun, ExportSchedule

MAX_RETENTION_RUNS = 365
SCHEDULE_FIELDS = (
    "name",
    "port",
    "columns",
    "row_filter",
    "masked_columns",
    "format",
    "neutralise_formulas",
    "cron",
    "timezone",
    "retention_runs",
    "quality_gate",
    "enabled",
)
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
CRON_FIELD_WORDS = {
    "minute": "minute",
    "hour": "hour",
    "day_of_month": "day-of-month",
    "month_of_year": "month",
    "day_of_week": "day-of-week",
}


# --- who may do what -----------------------------------------------------------------


def export_schedule_can_create(*, user, product: DataProduct) -> bool:
    """Owners and stewards of the product's domain and admins; and anyone who may read
    its rows (domain members, grantees), whose own access then applies at every run."""
    if can_edit_product(user=user, product=product):
        return True
    return access_decide(user=user, product=product).allowed


def export_schedule_can_change(*, user, schedule: ExportSchedule) -> bool:
    """The schedule's creator, and the owners and stewards of its domain and admins."""
    if not getattr(user, "is_authenticated", False):
        return False
    return schedule.created_by_id == user.pk or can_edit_product(
        user=user, product=schedule.product
    )


def export_schedules_see_all(*, user, product: DataProduct) -> bool:
    """Who sees every schedule of a product (others see their own): its managers and
    whoever reads all of its rows anyway (admins, domain members)."""
    return can_edit_product(user=user, product=product) or reads_everything(
        user=user, product=product
    )


# --- schedules -------------------------------------------------------------------------


def cron_check(expression: str) -> None:
    """Raise ValidationError on `cron` naming which of the five fields is wrong."""

    try:
        cron_parse(expression)
    except ValueError as exc:
        parts = (expression or "").split()
        if len(parts) == 5:
            for name, value in zip(CRON_FIELDS, parts, strict=True):
                try:
                    crontab(**{name: value})
                except Exception as field_exc:  # noqa: BLE001 - celery's own parse errors
                    raise ValidationError(
                        {
                            "cron": f"The {CRON_FIELD_WORDS[name]} field {value!r} is not "
                            f"valid: {field_exc} Write minute hour day-of-month month "
                            "day-of-week, e.g. '0 6 * * 1-5'."
                        }
                    ) from exc
        raise ValidationError({"cron": str(exc)}) from exc
    for name, value in zip(CRON_FIELDS, expression.split(), strict=True):
        longest = CrontabSchedule._meta.get_field(name).max_length
        if len(value) > longest:
            raise ValidationError(
                {"cron": f"The {CRON_FIELD_WORDS[name]} field is too long ({longest} max)."}
            )


def timezone_check(name: str) -> ZoneInfo:
    try:
        if not name or not isinstance(name, str):
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            {"timezone": f"Unknown time zone {name!r}: use a name such as UTC or Europe/Paris."}
        ) from None


def cron_preview(*, cron: str, tz: str, count: int = 3) -> list[datetime]:
    """The next `count` times the schedule fires, in its time zone (ValidationError on a
    bad cron or time zone, naming the field)."""
    zone = timezone_check(tz)
    cron_check(cron)
    after = timezone.now().astimezone(zone)
    return cron_next_runs(" ".join(cron.split()), count=count, after=after)


def export_schedule_next_runs(schedule: ExportSchedule, count: int = 3) -> list[datetime]:
    if not schedule.enabled or schedule.ended_at:
        return []
    try:
        return cron_preview(cron=schedule.cron, tz=schedule.timezone, count=count)
    except ValidationError:
        return []


def _port_of(product: DataProduct, port) -> OutputPort:
    if isinstance(port, OutputPort):
        chosen = OutputPort.objects.filter(product=product, pk=port.pk).first()
    else:
        chosen = port_for(product=product, slug=str(port) if port else None)
    if chosen is None:
        if port:
            raise ValidationError({"port": f"This product has no output port {str(port)!r}."})
        raise ValidationError({"port": "This product has no output port to export."})
    return chosen


def _names(value, field: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValidationError({field: "Give a list of column names."})
    if not all(isinstance(name, str) for name in value):
        raise ValidationError({field: "Give a list of column names."})
    return list(dict.fromkeys(name for name in value if name))  # names verbatim


def _validate(schedule: ExportSchedule) -> None:
    """Check every field; collect the errors per field. Columns and the row filter are
    checked against the port and against the creator's access (whose access every run
    uses)."""
    errors: dict[str, str] = {}
    schedule.name = (schedule.name or "").strip()
    if not schedule.name:
        errors["name"] = "Give the schedule a name."
    elif len(schedule.name) > 200:
        errors["name"] = "At most 200 characters."
    if schedule.format not in FILE_FORMATS:
        errors["format"] = f"Choose one of {', '.join(FILE_FORMATS)}."
    try:
        cron_check(schedule.cron)
        schedule.cron = " ".join(schedule.cron.split())
    except ValidationError as exc:
        errors["cron"] = exc.message_dict["cron"][0]
    try:
        timezone_check(schedule.timezone)
    except ValidationError as exc:
        errors["timezone"] = exc.message_dict["timezone"][0]
    retention = schedule.retention_runs
    if isinstance(retention, bool) or not isinstance(retention, int):
        errors["retention_runs"] = "Give a whole number of runs to keep."
    elif not 1 <= retention <= MAX_RETENTION_RUNS:
        errors["retention_runs"] = f"Keep from 1 to {MAX_RETENTION_RUNS} runs' files."
    for flag in ("quality_gate", "enabled", "neutralise_formulas"):
        if not isinstance(getattr(schedule, flag), bool):
            errors[flag] = "Give true or false."

    known = list(schedule.port.columns.order_by("position", "name").values_list("name", flat=True))
    if not known:
        errors["port"] = "This port's schema is not known yet: refresh it first."
    decision = access_decide(user=schedule.created_by, product=schedule.product)
    allowed = [name for name in known if decision.allows_column(name)]
    try:
        schedule.columns = _names(schedule.columns, "columns")
        unknown = [name for name in schedule.columns if name not in known]
        outside = [name for name in schedule.columns if name not in allowed]
        if unknown:
            errors["columns"] = f"Unknown column(s) of {schedule.port.name}: {', '.join(unknown)}."
        elif decision.allowed and outside:
            errors["columns"] = (
                f"Outside the access of {schedule.created_by.username}, whose access every "
                f"run uses: {', '.join(outside)}."
            )
    except ValidationError as exc:
        errors["columns"] = exc.message_dict["columns"][0]
    try:
        schedule.masked_columns = _names(schedule.masked_columns, "masked_columns")
        unknown = [name for name in schedule.masked_columns if name not in known]
        if unknown:
            errors["masked_columns"] = f"Unknown column(s): {', '.join(unknown)}."
    except ValidationError as exc:
        errors["masked_columns"] = exc.message_dict["masked_columns"][0]
    try:
        types = dict(schedule.port.columns.values_list("name", "data_type"))
        clauses = clauses_typed(parse_filter(schedule.row_filter), types)
    except FilterError as exc:
        errors["row_filter"] = str(exc)
    else:
        unknown = unknown_columns(clauses, known)
        outside = sorted({c.column for c in clauses if c.column not in allowed})
        masked = sorted(
            {c.column for c in clauses if c.column in decision.masked}
            | {c.column for c in clauses if c.column in schedule.masked_columns}
        )
        if unknown:
            errors["row_filter"] = f"The filter names unknown column(s): {', '.join(unknown)}."
        elif decision.allowed and outside:
            errors["row_filter"] = (
                f"The filter names column(s) outside the creator's access: {', '.join(outside)}."
            )
        elif masked:
            errors["row_filter"] = f"The filter names masked column(s): {', '.join(masked)}."
        schedule.row_filter = [clause.as_dict() for clause in clauses]
    if errors:
        raise ValidationError(errors)


def _apply(schedule: ExportSchedule, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in sorted(unknown)})
    for name, value in fields.items():
        if name == "port":
            schedule.port = _port_of(schedule.product, value)
        elif name in ("cron", "timezone", "name", "format"):
            setattr(schedule, name, value.strip() if isinstance(value, str) else value)
        else:
            setattr(schedule, name, value)
    if schedule.port_id is None:
        schedule.port = _port_of(schedule.product, None)
    _validate(schedule)


def periodic_task_name(schedule_id: int) -> str:
    return f"exports:schedule:{schedule_id}"


def export_schedule_sync(*, schedule: ExportSchedule) -> None:
    """Keep the schedule's django-celery-beat task: one per active schedule, with its
    cron in its time zone; none when paused or ended. Idempotent."""

    task = periodic_task_keep(
        name=periodic_task_name(schedule.pk),
        active=schedule.enabled and schedule.ended_at is None,
        cron=schedule.cron,
        timezone=schedule.timezone,
        task="sharing.export_tasks.export_schedule_fire",
        kwargs={"schedule_id": schedule.pk},
        description=f"Scheduled export {schedule.name} of {schedule.product.key}",
        current_id=schedule.periodic_task_id,
    )
    if schedule.periodic_task_id != (task.pk if task else None):
        ExportSchedule.objects.filter(pk=schedule.pk).update(periodic_task=task)
        schedule.periodic_task = task


@transaction.atomic
def export_schedule_create(*, product: DataProduct, by, **fields: Any) -> ExportSchedule:
    """A schedule reading with `by`'s access. Raises PermissionDenied (403) for someone
    who may not read the product, ValidationError (400) naming each bad field."""
    if not export_schedule_can_create(user=by, product=product):
        raise PermissionDenied(
            "Only people who may read this product's data schedule its exports: request "
            "access first."
        )
    schedule = ExportSchedule(product=product, created_by=by)
    _apply(schedule, fields)
    schedule.save()
    export_schedule_sync(schedule=schedule)
    return schedule


@transaction.atomic
def export_schedule_update(*, schedule: ExportSchedule, by, **fields: Any) -> ExportSchedule:
    """Change a schedule (its creator, or the domain's owners and stewards, or admins).
    Runs keep reading with the creator's access."""
    if not export_schedule_can_change(user=by, schedule=schedule):
        raise PermissionDenied(
            "Only the schedule's creator and the domain's owners and stewards change it."
        )
    if schedule.ended_at is not None:
        raise ValidationError({"enabled": "This schedule has ended; create a new one."})
    schedule = ExportSchedule.objects.select_for_update().get(pk=schedule.pk)
    _apply(schedule, fields)
    schedule.save()
    export_schedule_sync(schedule=schedule)
    return schedule


@transaction.atomic
def export_schedule_end(
    *, schedule: ExportSchedule, by, reason: str = "", now: datetime | None = None
) -> ExportSchedule:
    """End a schedule: no more runs (its beat task is removed, its runs still queued
    fail); its finished runs and their files stay downloadable until they are pruned. A
    run already running finishes (the reaper does not retry it: the schedule has ended).
    Ending twice is a no-op."""
    if not export_schedule_can_change(user=by, schedule=schedule):
        raise PermissionDenied(
            "Only the schedule's creator and the domain's owners and stewards end it."
        )
    schedule = ExportSchedule.objects.select_for_update().get(pk=schedule.pk)
    if schedule.ended_at is None:
        schedule.ended_at = now or timezone.now()
        schedule.enabled = False
        schedule.end_reason = (reason or "").strip() or f"Ended by {by.username}."
        schedule.save(update_fields=["ended_at", "enabled", "end_reason", "updated_at"])
        ExportRun.objects.filter(schedule=schedule, status=ExportStatus.QUEUED).update(
            status=ExportStatus.FAILED,
            finished_at=schedule.ended_at,
            error="The schedule ended before this run started.",
        )
    export_schedule_sync(schedule=schedule)
    return schedule
