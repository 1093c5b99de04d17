"""Observability monitors: an availability probe, and the row count (volume) and newest
timestamp (freshness) of each port, on a schedule, kept as history."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from portal.core.events import event_emit
from products.catalog.services.ports import port_connector
from products.choices import LifecycleStatus, PortKind
from products.connectors import ConnectorError
from products.connectors.nats_stream import port_stream_facts
from products.models import OutputPort, PortObservation
from products.trust.services.check_sql import CheckSQL
from products.trust.services.checks import as_aware


def port_observe(*, port: OutputPort, now: datetime | None = None) -> PortObservation:
    """Probe the port: is the source reachable and the relation readable; how many rows;
    how old is the newest value of its freshness column. One aggregate statement. A
    stream port: is its stream readable, how many messages it holds, when the last came."""
    now = now or timezone.now()
    if port.kind == PortKind.STREAM:
        return _stream_observe(port=port, now=now)
    try:
        with port_connector(port) as connector:
            freshness_column = port.freshness_column or None
            if freshness_column:
                known = {column.name for column in connector.describe()}
                if freshness_column not in known:
                    freshness_column = None
            plan = CheckSQL(connector).aggregate_plan([], extra_max_column=freshness_column)
            row = connector.fetch(plan.sql, plan.params)[0]
    except ConnectorError as exc:
        return PortObservation.objects.create(
            port=port, observed_at=now, available=False, error=exc.technical[:2000]
        )
    newest = as_aware(row[-1]) if freshness_column else None
    return PortObservation.objects.create(
        port=port,
        observed_at=now,
        available=True,
        row_count=int(row[0]),
        newest_at=newest,
        freshness_lag_seconds=(now - newest).total_seconds() if newest else None,
    )


def _stream_observe(*, port: OutputPort, now) -> PortObservation:
    facts = port_stream_facts(port)
    if facts is None:
        return PortObservation.objects.create(
            port=port,
            observed_at=now,
            available=False,
            error=f"The stream {port.stream_name} could not be read on the NATS server.",
        )
    newest = facts.last_time
    lag = max((now - newest).total_seconds(), 0) if newest else None
    before = port.observations.filter(available=True).order_by("-observed_at").first()
    observation = PortObservation.objects.create(
        port=port,
        observed_at=now,
        available=True,
        row_count=facts.messages,
        newest_at=newest,
        freshness_lag_seconds=lag,
    )
    _lag_breach_announce(port=port, observation=observation, before=before)
    return observation


def _lag_breached(observation: PortObservation | None) -> bool:
    lag = observation.freshness_lag_seconds if observation else None
    return lag is not None and lag > settings.STREAM_LAG_LIMIT_SECONDS


def _lag_breach_announce(
    *, port: OutputPort, observation: PortObservation, before: PortObservation | None
) -> None:
    """`portal.stream.lag_breached` when the stream's last message grows older than
    STREAM_LAG_LIMIT_SECONDS (its producer stopped): once per stall, that is per last
    message, however many observations see it."""
    if not _lag_breached(observation):
        return
    if _lag_breached(before) and before.newest_at == observation.newest_at:
        return
    event_emit(
        "portal.stream.lag_breached",
        product=port.product,
        data={
            "port": port.slug,
            "stream": port.stream_name,
            "subject": port.stream_subject,
            "lag_seconds": round(observation.freshness_lag_seconds),
            "limit_seconds": settings.STREAM_LAG_LIMIT_SECONDS,
            "last_message_at": observation.newest_at.isoformat(),
            "messages": observation.row_count,
        },
    )


def ports_to_observe():
    """Every port of a product that is not retired."""

    return OutputPort.objects.exclude(product__status=LifecycleStatus.RETIRED).values_list(
        "pk", flat=True
    )
