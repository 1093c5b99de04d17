"""Observability monitors: an availability probe, and the row count (volume) and newest
timestamp (freshness) of each port, on a schedule, kept as history. Stream ports also get
messages per minute, the lag of their durable consumers and the new messages that do not
match the port's schema (docs/streams.md, "Monitors")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from portal.core.events import event_emit
from products.catalog.services.ports import port_connector
from products.choices import LifecycleStatus, PortKind
from products.connectors import ConnectorError
from products.connectors.nats_stream import (
    InvalidMessage,
    MessageSchema,
    StreamFacts,
    StreamReader,
    port_schema,
)
from products.models import OutputPort, PortObservation
from products.trust.services.check_sql import CheckSQL
from products.trust.services.checks import as_aware
from sharing.access.filters import value_converter

# Each observation checks at most this many of the messages that arrived since the one
# before (the newest); above it, the invalid rate is estimated from them.
STREAM_VALIDATE_MESSAGES = 1000


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


@dataclass(frozen=True)
class _NewMessages:
    """What arrived on the port's subject since the previous observation."""

    arrived: int | None  # None: no previous observation to count from
    validated: int
    invalid: int
    example: str


def _stream_unavailable(*, port: OutputPort, now, detail: str) -> PortObservation:
    return PortObservation.objects.create(
        port=port,
        observed_at=now,
        available=False,
        error=f"The stream {port.stream_name} could not be read on the NATS server. {detail}"[
            :2000
        ],
    )


def _stream_observe(*, port: OutputPort, now) -> PortObservation:
    before = port.observations.filter(available=True).order_by("-observed_at").first()
    if not settings.NATS_URL:
        return _stream_unavailable(port=port, now=now, detail="The portal has no NATS_URL.")
    try:
        with StreamReader(
            url=settings.NATS_URL, stream=port.stream_name, subject=port.stream_subject
        ) as reader:
            facts = reader.facts()
            lags = reader.consumer_lags()
            new = _new_messages_check(
                reader=reader,
                schema=MessageSchema(port_schema(port), converter=value_converter),
                facts=facts,
                after_seq=before.stream_last_seq if before else None,
            )
    except ConnectorError as exc:
        return _stream_unavailable(port=port, now=now, detail=exc.technical)
    except TimeoutError as exc:  # the server took too long to answer (nats-py's subclasses it)
        return _stream_unavailable(port=port, now=now, detail=f"Timed out: {exc!r}")
    newest = facts.last_time
    lag = max((now - newest).total_seconds(), 0) if newest else None
    minutes = (now - before.observed_at).total_seconds() / 60 if before else 0
    per_minute = invalid_per_minute = None
    if new.arrived is not None and minutes > 0:
        per_minute = round(new.arrived / minutes, 3)
        if new.validated:  # the share found invalid, over all that arrived
            invalid_per_minute = round(new.invalid / new.validated * new.arrived / minutes, 3)
        elif new.arrived == 0:
            invalid_per_minute = 0.0
    furthest = lags[0] if lags else None
    observation = PortObservation.objects.create(
        port=port,
        observed_at=now,
        available=True,
        row_count=facts.messages,
        newest_at=newest,
        freshness_lag_seconds=lag,
        stream_last_seq=facts.last_seq,
        messages_per_minute=per_minute,
        consumer_lag=furthest.lag if furthest else None,
        consumer_lag_name=furthest.name if furthest else "",
        validated_messages=new.validated,
        invalid_messages=new.invalid,
        invalid_per_minute=invalid_per_minute,
        invalid_example=new.example,
    )
    _lag_breach_announce(port=port, observation=observation, before=before)
    return observation


def _new_messages_check(
    *, reader: StreamReader, schema: MessageSchema, facts: StreamFacts, after_seq: int | None
) -> _NewMessages:
    """Count the subject's messages after `after_seq` (the previous observation's last
    sequence; None: the first observation, which counts none but still checks the newest)
    and check the newest STREAM_VALIDATE_MESSAGES of them against the port's schema, the
    test the governed read serves by. The example names a sequence, a column and what is
    wrong, never a value: the column may be masked for the people who see the monitor."""
    if after_seq is not None and facts.last_seq < after_seq:
        after_seq = None  # the stream was created again: its sequences started over
    if facts.messages == 0 or (after_seq is not None and facts.last_seq <= after_seq):
        return _NewMessages(
            arrived=None if after_seq is None else 0, validated=0, invalid=0, example=""
        )
    first = max(facts.first_seq, after_seq + 1 if after_seq is not None else 1)
    reader.start(from_seq=first)
    arrived = reader.pending() if after_seq is not None else None
    newest_first = max(first, facts.last_seq - STREAM_VALIDATE_MESSAGES + 1)
    if newest_first > first:
        reader.start(from_seq=newest_first)
    invalid, example = 0, ""
    messages = reader.read_until(facts.last_seq, limit=STREAM_VALIDATE_MESSAGES)
    for seq, payload in messages:
        try:
            schema.parse(payload)
        except InvalidMessage as exc:
            invalid += 1
            example = example or f"message {seq}: {exc}"
    return _NewMessages(arrived=arrived, validated=len(messages), invalid=invalid, example=example)


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
