"""Schema refresh: read a port's columns and types from its source, keep what people wrote.

Requested by a person (page or API), executed by a Celery worker; a run is claimed once
even if its task is delivered twice, and the reaper fails runs whose worker died.
"""

import logging
from dataclasses import replace
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from portal.core.task_queue import enqueue_run_on_commit, redispatch_unclaimed
from products.catalog.permissions import can_edit_product
from products.catalog.services.events import product_event_emit
from products.catalog.services.ports import port_location_check
from products.catalog.services.search_index import product_search_index_update
from products.choices import PortKind, RunStatus
from products.connectors import ColumnInfo, ConnectorError, connector_for_port
from products.connectors.file_probe import too_many_columns
from products.connectors.nats_stream import StreamReader, columns_from_samples
from products.models import Column, OutputPort, SchemaRefreshRun

logger = logging.getLogger(__name__)

DATA_TYPE_MAX_LENGTH = Column._meta.get_field("data_type").max_length


def schema_refresh_request(*, port: OutputPort, by) -> SchemaRefreshRun:
    """Queue a refresh of the port's schema; returns the run to poll. A refresh already
    queued or running for the port is returned instead of starting a second one."""
    if not can_edit_product(user=by, product=port.product):
        raise PermissionDenied("Only the domain's owners and stewards refresh a schema.")
    with transaction.atomic():
        OutputPort.objects.select_for_update().get(pk=port.pk)
        pending = (
            SchemaRefreshRun.objects.filter(
                port=port, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)
            )
            .order_by("-created_at")
            .first()
        )
        if pending is not None:
            return pending
        run = SchemaRefreshRun.objects.create(port=port, requested_by=by)
        enqueue_run_on_commit("products.tasks.schema_refresh_run", run.pk)
    return run


def schema_apply_columns(
    *, port: OutputPort, columns: list[ColumnInfo]
) -> tuple[list[str], list[str], list[str]]:
    """Make the port's columns match the source; descriptions and classifications of
    columns that still exist are kept. Returns (added, removed, changed) names."""
    existing = {column.name: column for column in port.columns.all()}
    seen = set()
    added, changed, to_create, to_update = [], [], [], []
    before: dict[str, tuple[str, bool]] = {}  # a changed column's type and nullability
    for info in columns:
        if len(info.data_type) > DATA_TYPE_MAX_LENGTH:  # a long STRUCT(...) type
            info = replace(info, data_type=info.data_type[: DATA_TYPE_MAX_LENGTH - 1] + "…")
        seen.add(info.name)
        column = existing.get(info.name)
        if column is None:
            added.append(info.name)
            to_create.append(
                Column(
                    port=port,
                    name=info.name,
                    data_type=info.data_type,
                    nullable=info.nullable,
                    position=info.position,
                )
            )
            continue
        if column.data_type != info.data_type or column.nullable != info.nullable:
            changed.append(info.name)
            before[info.name] = (column.data_type, column.nullable)
        column.data_type = info.data_type
        column.nullable = info.nullable
        column.position = info.position
        to_update.append(column)
    removed = [name for name in existing if name not in seen]
    with transaction.atomic():
        if removed:
            port.columns.filter(name__in=removed).delete()
        Column.objects.bulk_update(to_update, ["data_type", "nullable", "position"])
        Column.objects.bulk_create(to_create)
        port.schema_refreshed_at = timezone.now()
        port.save(update_fields=["schema_refreshed_at"])
        product_search_index_update(product_ids=[port.product_id])
        if added or removed or changed:
            _schema_changed_emit(
                port=port,
                added=[column for column in to_create if column.name in added],
                removed=[existing[name] for name in removed],
                changed=[(before[name], existing[name]) for name in changed],
            )
    return added, removed, changed


def _schema_changed_emit(
    *,
    port: OutputPort,
    added: list[Column],
    removed: list[Column],
    changed: list[tuple[tuple[str, bool], Column]],
) -> None:
    """The event of a schema change: each column by name and type (never a value)."""
    product_event_emit(
        "portal.schema.changed",
        product=port.product,
        data={
            "port": port.slug,
            "port_id": port.pk,
            "added": [{"name": c.name, "type": c.data_type, "nullable": c.nullable} for c in added],
            "removed": [
                {"name": c.name, "type": c.data_type, "nullable": c.nullable} for c in removed
            ],
            "changed": [
                {
                    "name": c.name,
                    "type": c.data_type,
                    "nullable": c.nullable,
                    "previous_type": previous_type,
                    "previous_nullable": previous_nullable,
                }
                for (previous_type, previous_nullable), c in changed
            ],
        },
    )


def _finish(run: SchemaRefreshRun, *, status: str, error: str = "", **fields) -> None:
    SchemaRefreshRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=status, error=error[:2000], finished_at=timezone.now(), **fields
    )


def stream_columns(port: OutputPort) -> list[ColumnInfo]:
    """A stream port's columns, from the JSON objects of its last messages. Raises
    ConnectorError when the stream holds none (its columns are then left as they are)."""
    if not settings.NATS_URL:
        raise ConnectorError("The portal has no NATS server (NATS_URL) to read streams from.")
    with StreamReader(
        url=settings.NATS_URL, stream=port.stream_name, subject=port.stream_subject
    ) as reader:
        columns = columns_from_samples(reader.sample())
    if not columns:
        raise ConnectorError(
            f"The stream {port.stream_name} holds no JSON-object message on "
            f"{port.stream_subject} to learn the schema from: publish one, or declare the "
            "columns in the contract."
        )
    return columns


def schema_refresh_execute(*, run_id: int) -> SchemaRefreshRun | None:
    """Claim and execute a queued run. Returns None when the run is gone or was already
    claimed (a duplicate delivery)."""
    claimed = SchemaRefreshRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    run = SchemaRefreshRun.objects.select_related("port__source", "port__product__domain").get(
        pk=run_id
    )
    try:
        # The same rule as saving the port: a relation the domain may no longer use
        # (its allowance was withdrawn) is not read.
        port_location_check(port=run.port)
        if run.port.kind == PortKind.STREAM:
            columns = stream_columns(run.port)
        else:
            with connector_for_port(run.port) as connector:
                columns = connector.describe()
        if len(columns) > settings.PORT_MAX_COLUMNS:
            # Refused before any Column row is written.
            raise ConnectorError(
                f"The source has {too_many_columns(len(columns), settings.PORT_MAX_COLUMNS)}"
            )
        added, removed, changed = schema_apply_columns(port=run.port, columns=columns)
    except ConnectorError as exc:
        _finish(run, status=RunStatus.FAILED, error=exc.technical)
    except ValidationError as exc:
        _finish(run, status=RunStatus.FAILED, error=" ".join(exc.messages))
    except Exception as exc:  # a run must never stay "running": record and re-raise
        logger.exception("schema refresh run %s failed", run_id)
        _finish(run, status=RunStatus.FAILED, error=f"Unexpected error: {exc.__class__.__name__}")
        raise
    else:
        _finish(
            run,
            status=RunStatus.SUCCEEDED,
            columns_added=added,
            columns_removed=removed,
            columns_changed=changed,
        )
    run.refresh_from_db()
    return run


def schema_refresh_reap(*, now: datetime | None = None) -> int:
    """Fail runs whose worker died (running past the timeout) or that no worker picked up
    in an hour; send again queued runs whose message was lost (the broker was down).
    Returns how many runs were failed."""
    now = now or timezone.now()
    timeout = settings.SCHEMA_REFRESH_TIMEOUT
    stuck = SchemaRefreshRun.objects.filter(
        status=RunStatus.RUNNING, started_at__lt=now - timeout
    ).update(
        status=RunStatus.FAILED,
        finished_at=now,
        error=f"The worker stopped before finishing (no result after {timeout}).",
    )
    redispatch_unclaimed(
        SchemaRefreshRun.objects.filter(
            status=RunStatus.QUEUED,
            created_at__lt=now - settings.TASK_REDISPATCH_AFTER,
            created_at__gte=now - 6 * timeout,
        ),
        "products.tasks.schema_refresh_run",
    )
    unclaimed = SchemaRefreshRun.objects.filter(
        status=RunStatus.QUEUED, created_at__lt=now - 6 * timeout
    ).update(
        status=RunStatus.FAILED,
        finished_at=now,
        error="No worker picked this run up. Is a Celery worker running?",
    )
    return stuck + unclaimed
