"""Syncs (reverse ETL): create, change, pause, resume and delete a sync, with every rule
checked at save: the columns within the creator's access (as read_plan decides it for
the sync channel), a key among them and not masked, a mapping onto fields the destination
has, a destination the creator may use, a valid schedule, per-column limits on numeric
columns; and the loop warning (the destination table is the relation a port of this
product reads), which then requires per-column limits before the sync may run.

Runs (planning, guardrails, sending, state, the reaper) are in
sharing.syncs.services.runs."""

from __future__ import annotations

import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from portal.core.beat import periodic_task_keep
from portal.core.cron import cron_parse
from products.catalog.permissions import domain_role, user_is_admin
from products.catalog.selectors import port_for
from products.choices import MembershipRole, SourceKind
from products.connectors.column_types import type_family
from products.models import DataProduct, Metric, OutputPort
from sharing.access.decision import access_decide
from sharing.choices import Channel
from sharing.models import Sync, SyncDestination
from sharing.models.syncs import SyncMode, SyncStatus, SyncTrigger
from sharing.serving.reads import ReadRefused, read_plan
from sharing.syncs.destinations import destination_relation, destination_writer
from sharing.syncs.destinations.base import DestinationError
from sharing.syncs.metric_source import metric_sync_check
from sharing.syncs.services.destinations import destinations_usable_by

# The fields sync_create/sync_update take, besides who and which product.
SYNC_FIELDS = (
    "destination",
    "name",
    "columns",
    "key_columns",
    "mapping",
    "mode",
    "trigger",
    "cron",
    "timezone",
    "port_slug",
    "metric",
    "metric_query",
    "guardrails",
)
GUARDRAIL_FIELDS = (
    "max_changed_pct",
    "max_removed_pct",
    "hold_on_empty_source",
    "max_count_move_pct",
    "column_limits",
    "breaker_failures",
)
LOOP_LIMITS_NEEDED = (
    "Add per-column limits (column_limits) to this sync: its destination feeds the "
    "product it reads, and a sync in a loop may only run within limits."
)


# --- who may do what -------------------------------------------------------------------


def sync_can_create(*, user, product: DataProduct) -> bool:
    """Whoever may read the product's rows (its runs read with their access)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return access_decide(user=user, product=product).allowed


def sync_can_change(*, user, sync: Sync) -> bool:
    """The sync's creator, the owners of its destination's domain, and admins."""
    if not getattr(user, "is_authenticated", False):
        return False
    if sync.created_by_id == user.pk or user_is_admin(user):
        return True
    domain_id = sync.destination.domain_id
    if domain_id is None:
        return False
    return domain_role(user=user, domain=sync.destination.domain) == MembershipRole.OWNER


def destination_usable_by(*, user, destination: SyncDestination) -> bool:
    """Whether `user`'s syncs may write to `destination` (destinations_usable_by's rule)."""
    return destinations_usable_by(user=user).filter(pk=destination.pk).exists()


# --- validation ------------------------------------------------------------------------


def _names(value, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(
        isinstance(name, str) and name for name in value
    ):
        raise ValidationError({field: "A list of column names."})
    return list(dict.fromkeys(value))


def _percent(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError({field: "A number of percent, 0 or more."})
    if value < 0:
        raise ValidationError({field: "A number of percent, 0 or more."})
    return float(value)


def _column_limits(value, *, columns: list[str], types: dict[str, str]) -> list[dict]:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError(
            {"column_limits": 'A list like [{"column": "bid", "max_change_pct": 10}].'}
        )
    limits = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("column"), str):
            raise ValidationError(
                {"column_limits": 'Each limit names its column: {"column": "bid", ...}.'}
            )
        column = item["column"]
        if column not in columns:
            raise ValidationError(
                {"column_limits": f"Column {column!r} is not among the sync's columns."}
            )
        if type_family(types.get(column, "")) != "numeric":
            raise ValidationError(
                {"column_limits": f"Column {column!r} is not numeric: limits are for numbers."}
            )
        if column in seen:
            raise ValidationError({"column_limits": f"Column {column!r} has two limits."})
        seen.add(column)
        unknown = set(item) - {"column", "max_change_pct", "max_sum"}
        if unknown:
            raise ValidationError(
                {
                    "column_limits": f"Unknown limit(s) {', '.join(sorted(unknown))}: use "
                    "max_change_pct and max_sum."
                }
            )
        change = item.get("max_change_pct")
        total = item.get("max_sum")
        if change is None and total is None:
            raise ValidationError(
                {"column_limits": f"The limit of {column!r} needs max_change_pct or max_sum."}
            )
        limits.append(
            {
                "column": column,
                "max_change_pct": None if change is None else _percent(change, "column_limits"),
                "max_sum": None if total is None else _number(total, "column_limits"),
            }
        )
    return limits


def _number(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError({field: "A number."})
    return float(value)


def cron_check(expression: str) -> None:
    """ValidationError on `cron`, naming the field of the five that is wrong."""
    try:
        cron_parse(expression)
    except ValueError as exc:
        raise ValidationError({"cron": str(exc)}) from exc


def timezone_check(name: str) -> None:
    try:
        if not name or not isinstance(name, str):
            raise ValueError
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            {"timezone": f"Unknown time zone {name!r}: use a name such as UTC or Europe/Paris."}
        ) from None


def destination_field(sync: Sync, column: str) -> str:
    """The destination field a source column goes to (a column not mapped keeps its name)."""
    return (sync.mapping or {}).get(column, column)


def _validate_mapping(sync: Sync) -> None:
    mapping = sync.mapping
    if mapping in (None, ""):
        sync.mapping = mapping = {}
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in mapping.items()
    ):
        raise ValidationError({"mapping": 'An object of column -> field, e.g. {"id": "Id"}.'})
    outside = [name for name in mapping if name not in sync.columns]
    if outside:
        raise ValidationError(
            {
                "mapping": f"The mapping names column(s) the sync does not send: "
                f"{', '.join(outside)}."
            }
        )
    targets: dict[str, str] = {}
    for column in sync.columns:
        target = destination_field(sync, column)
        if target in targets:
            raise ValidationError(
                {
                    "mapping": f"Columns {targets[target]!r} and {column!r} both go to field "
                    f"{target!r}: one field takes one column."
                }
            )
        targets[target] = column
    key_fields = [destination_field(sync, c) for c in sync.key_columns]
    try:
        with destination_writer(sync.destination, key_fields=key_fields, run_id="check") as writer:
            fields = writer.fields()
    except DestinationError as exc:
        raise ValidationError({"destination": exc.message}) from exc
    if fields is None:
        return
    missing = [target for target in targets if target not in fields]
    if missing:
        raise ValidationError(
            {
                "mapping": f"The destination {sync.destination.name!r} has no field(s) "
                f"{', '.join(repr(m) for m in missing)} (its fields: {', '.join(fields)}): map "
                "each column to one of its fields."
            }
        )


def _metric(product: DataProduct, key) -> Metric:
    """The product's metric named `key` (a metric of one of its ports)."""
    metric = (
        Metric.objects.filter(port__product=product, key=key)
        .select_related("port__source", "port__product__domain")
        .first()
        if isinstance(key, str)
        else None
    )
    if metric is None:
        keys = list(Metric.objects.filter(port__product=product).values_list("key", flat=True))
        raise ValidationError(
            {
                "metric": f"This product has no metric {key!r}"
                + (f": its metrics are {', '.join(keys)}." if keys else " (it defines none).")
            }
        )
    return metric


def _port_relation(port: OutputPort) -> tuple[str, str, str, str] | None:
    """The port's relation as destination_relation gives a destination's."""
    source = port.source
    if source is None:
        return None
    if source.kind == SourceKind.POSTGRESQL:
        server = f"{(source.host or 'localhost').lower()}:{source.port or 5432}/{source.database}"
        return ("postgresql", server, port.schema_name or "public", port.table_name)
    if source.kind == SourceKind.DUCKDB:
        return ("duckdb", source.path, port.schema_name or "main", port.table_name)
    return None


def sync_loop_find(sync: Sync) -> str:
    """The loop warning of a sync, "" when none: its destination table is the relation of
    a port of the sync's own product, or of a port on the same relation as one of them
    (another product re-serving the table this product reads)."""
    relation = destination_relation(sync.destination)
    if relation is None:
        return ""
    own = [
        port
        for port in OutputPort.objects.filter(product=sync.product).select_related("source")
        if _port_relation(port) is not None
    ]
    own_relations = {_port_relation(port): port for port in own}
    if relation in own_relations:
        port = own_relations[relation]
        return (
            f"Loop: the destination table {relation[2]}.{relation[3]} is the table port "
            f"{port.slug!r} of this product reads: what the sync writes comes back into it."
        )
    return ""


def _apply(sync: Sync, fields: dict[str, Any], *, by) -> str | None:
    """Set and check `fields` on `sync` (not saved). Returns the port slug named."""
    unknown = set(fields) - set(SYNC_FIELDS)
    if unknown:
        raise ValidationError({name: "Unknown field." for name in sorted(unknown)})
    guardrails = fields.pop("guardrails", None)
    port_slug = fields.pop("port_slug", None)
    metric_key = fields.pop("metric", None)
    metric_query = fields.pop("metric_query", None)
    if (metric_key is not None or metric_query is not None) and sync.pk is not None:
        # What a metric sync sends follows what it asks: its columns and key are chosen
        # again (all of the values, by period and dimensions) unless named with it.
        fields.setdefault("columns", None)
        fields.setdefault("key_columns", None)
    for name, value in fields.items():
        if value is not None or name in ("columns", "key_columns"):
            setattr(sync, name, value)
    if guardrails is not None:
        if not isinstance(guardrails, dict):
            raise ValidationError({"guardrails": "An object of guardrail -> value."})
        unknown = set(guardrails) - set(GUARDRAIL_FIELDS)
        if unknown:
            raise ValidationError(
                {"guardrails": f"Unknown guardrail(s): {', '.join(sorted(unknown))}."}
            )
        for name, value in guardrails.items():
            setattr(sync, name, value)
    if metric_key is not None:
        sync.metric = _metric(sync.product, metric_key) if metric_key else None
        if sync.metric is None:
            sync.metric_query = {}
    if metric_query is not None:
        sync.metric_query = metric_query
    if sync.metric is not None:
        if port_slug and port_slug != sync.metric.port.slug:
            raise ValidationError(
                {
                    "port_slug": f"The metric {sync.metric.key} reads port "
                    f"{sync.metric.port.slug!r}: name a port or a metric, not both."
                }
            )
        sync.port = sync.metric.port
    elif port_slug:
        port = port_for(product=sync.product, slug=port_slug)
        if port is None:
            raise ValidationError({"port_slug": f"This product has no port {port_slug!r}."})
        sync.port = port
    elif sync.port_id is None:
        sync.port = port_for(product=sync.product)
    if sync.port is None:
        raise ValidationError({"port_slug": "This product has no output port to sync."})
    _validate(sync, by=by)
    return port_slug


def _port_source_check(sync: Sync) -> dict[str, str]:
    """The columns and key of a port sync within its creator's access (as read_plan
    decides it for the sync channel), the key among them and not masked. Returns each
    column's type."""
    if not sync.columns:
        raise ValidationError({"columns": "Choose the columns to send."})
    if not sync.key_columns:
        raise ValidationError(
            {
                "key_columns": "Name the key: the column(s) identifying a record in the "
                "destination (every mode, mirror included, needs one)."
            }
        )
    try:
        plan = read_plan(
            user=sync.created_by,
            product=sync.product,
            channel=Channel.SYNC,
            port_slug=sync.port.slug,
            columns=sync.columns,
        )
    except ReadRefused as exc:
        raise ValidationError({"columns": exc.message}) from exc
    outside = [c for c in sync.key_columns if c not in sync.columns]
    if outside:
        raise ValidationError(
            {"key_columns": f"Key column(s) {', '.join(outside)} are not among the columns sent."}
        )
    masked = [c for c in sync.key_columns if c in plan.masked]
    if masked:
        raise ValidationError(
            {
                "key_columns": f"Key column(s) {', '.join(masked)} are masked in the creator's "
                "access: a masked key cannot identify a record."
            }
        )
    return dict(sync.port.columns.values_list("name", "data_type"))


def _validate(sync: Sync, *, by) -> None:
    sync.name = (sync.name or "").strip()
    if not sync.name:
        raise ValidationError({"name": "Give the sync a name."})
    if len(sync.name) > 200:
        raise ValidationError({"name": "At most 200 characters."})
    if not isinstance(sync.destination, SyncDestination):
        raise ValidationError({"destination": "Choose a destination."})
    if not destination_usable_by(user=sync.created_by, destination=sync.destination):
        raise ValidationError(
            {
                "destination": f"Destination {sync.destination.name!r} belongs to domain "
                f"{sync.destination.domain.name}: only its members' syncs use it."
            }
        )
    sync.columns = _names(sync.columns, "columns")
    sync.key_columns = _names(sync.key_columns, "key_columns")
    if sync.metric is not None:
        types = metric_sync_check(sync)  # fills in the columns and key left out
    else:
        sync.metric_query = {}
        types = _port_source_check(sync)
    if sync.mode not in SyncMode.values:
        raise ValidationError({"mode": f"One of {', '.join(SyncMode.values)}."})
    if sync.trigger not in SyncTrigger.values:
        raise ValidationError({"trigger": f"One of {', '.join(SyncTrigger.values)}."})
    if sync.trigger == SyncTrigger.SCHEDULE:
        cron_check(sync.cron)
        timezone_check(sync.timezone)
    elif sync.timezone:
        timezone_check(sync.timezone)
    for name in ("max_changed_pct", "max_removed_pct", "max_count_move_pct"):
        setattr(sync, name, _percent(getattr(sync, name), name))
    if not isinstance(sync.hold_on_empty_source, bool):
        raise ValidationError({"hold_on_empty_source": "true or false."})
    failures = sync.breaker_failures
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
        raise ValidationError(
            {
                "breaker_failures": "A whole number, 1 or more: pause after that many failed "
                "runs in a row."
            }
        )
    sync.column_limits = _column_limits(sync.column_limits, columns=sync.columns, types=types)
    _validate_mapping(sync)
    sync.loop_warning = sync_loop_find(sync)


def sync_warnings(sync: Sync) -> list[str]:
    """What a save answers besides success: the loop warning, and what to do about it."""
    if sync.loop_warning and not sync.column_limits:
        return [f"{sync.loop_warning} {LOOP_LIMITS_NEEDED}"]
    if sync.loop_warning:
        return [sync.loop_warning]
    return []


# --- schedules -------------------------------------------------------------------------


def periodic_task_name(sync_id: int) -> str:
    return f"syncs:sync:{sync_id}"


def sync_schedule_sync(*, sync: Sync) -> None:
    """Keep the sync's django-celery-beat task: one per active scheduled sync, with its
    cron in its time zone; none otherwise. Idempotent."""
    task = periodic_task_keep(
        name=periodic_task_name(sync.pk),
        active=sync.trigger == SyncTrigger.SCHEDULE and sync.status == SyncStatus.ACTIVE,
        cron=sync.cron,
        timezone=sync.timezone,
        task="sharing.syncs.tasks.sync_run_scheduled",
        kwargs={"sync_id": sync.pk},
        description=f"Sync {sync.name} of {sync.product.key}",
        current_id=sync.periodic_task_id,
    )
    if sync.periodic_task_id != (task.pk if task else None):
        Sync.objects.filter(pk=sync.pk).update(periodic_task=task)
        sync.periodic_task = task


# --- writes ----------------------------------------------------------------------------


@transaction.atomic
def sync_create(
    *,
    by,
    product: DataProduct,
    destination: SyncDestination,
    name: str,
    columns: list[str] | None = None,
    key_columns: list[str] | None = None,
    mapping: dict | None = None,
    mode: str = SyncMode.UPSERT,
    trigger: str = SyncTrigger.MANUAL,
    cron: str = "",
    timezone: str = "UTC",  # noqa: A002 - the field's name
    port_slug: str | None = None,
    metric: str | None = None,
    metric_query: dict | None = None,
    guardrails: dict | None = None,
) -> Sync:
    """A sync reading with `by`'s access: of a port's rows, or of the values of the
    product's metric keyed `metric` (grouped as `metric_query` says; columns and key may
    then be left out: all of the values, keyed by period and dimensions). Raises
    PermissionDenied for someone who may not read the product, ValidationError naming the
    bad field. `sync.loop_warning` (and sync_warnings) tells about a loop."""
    if not sync_can_create(user=by, product=product):
        raise PermissionDenied(
            "Only people who may read this product's data sync it: request access first."
        )
    sync = Sync(product=product, created_by=by)
    _apply(
        sync,
        {
            "destination": destination,
            "name": name,
            "columns": columns,
            "key_columns": key_columns,
            "mapping": mapping or {},
            "mode": mode,
            "trigger": trigger,
            "cron": cron or "",
            "timezone": timezone or "UTC",
            "port_slug": port_slug,
            "metric": metric,
            "metric_query": metric_query,
            "guardrails": guardrails,
        },
        by=by,
    )
    sync.save()
    sync_schedule_sync(sync=sync)
    return sync


@transaction.atomic
def sync_update(*, sync: Sync, by, **fields: Any) -> Sync:
    """Change a sync (its creator, its destination domain's owners, admins), with the
    checks of sync_create. Runs keep reading with the creator's access."""
    if not sync_can_change(user=by, sync=sync):
        raise PermissionDenied(
            "Only the sync's creator, its destination domain's owners and admins change it."
        )
    sync = Sync.objects.select_for_update().select_related("destination", "product").get(pk=sync.pk)
    _apply(sync, dict(fields), by=by)
    sync.save()
    sync_schedule_sync(sync=sync)
    return sync


@transaction.atomic
def sync_pause(*, sync: Sync, by, reason: str) -> Sync:
    if not sync_can_change(user=by, sync=sync):
        raise PermissionDenied(
            "Only the sync's creator, its destination domain's owners and admins pause it."
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the sync is paused."})
    return sync_paused(sync=sync, reason=f"{reason} ({by.get_username()})")


def sync_paused(*, sync: Sync, reason: str) -> Sync:
    """Pause `sync` (the circuit breaker, losing access, or a person): no run starts
    until it is resumed."""
    Sync.objects.filter(pk=sync.pk).update(
        status=SyncStatus.PAUSED, paused_reason=reason[:300], paused_at=timezone.now()
    )
    sync.refresh_from_db()
    sync_schedule_sync(sync=sync)
    return sync


@transaction.atomic
def sync_resume(*, sync: Sync, by) -> Sync:
    if not sync_can_change(user=by, sync=sync):
        raise PermissionDenied(
            "Only the sync's creator, its destination domain's owners and admins resume it."
        )
    Sync.objects.filter(pk=sync.pk).update(
        status=SyncStatus.ACTIVE, paused_reason="", paused_at=None, consecutive_failures=0
    )
    sync.refresh_from_db()
    sync_schedule_sync(sync=sync)
    return sync


@transaction.atomic
def sync_delete(*, sync: Sync, by) -> None:
    if not sync_can_change(user=by, sync=sync):
        raise PermissionDenied(
            "Only the sync's creator, its destination domain's owners and admins delete it."
        )
    PeriodicTask.objects.filter(
        Q(name=periodic_task_name(sync.pk)) | Q(pk=sync.periodic_task_id)
    ).delete()
    sync.delete()
