"""The NATS publisher: every event of the outbox published to JetStream as
`<NATS_EVENTS_SUBJECT_PREFIX>.<type>` (portal.events.portal.product.published), in the
CloudEvents NATS binding's structured mode (the envelope as JSON, content-type
application/cloudevents+json), with `Nats-Msg-Id` = the event's id so JetStream drops a
re-sent duplicate within its duplicate window.

Runs in a Celery worker (sharing.events.tasks.events_publish_nats), woken after each commit
that wrote events and every few seconds by beat. Its cursor ("nats") is read and advanced
under its row lock, only past events JetStream acknowledged: when NATS is down the cursor
stays and the next run publishes from there. A worker killed mid-batch leaves the cursor
where it was; the next run publishes that batch again and JetStream drops the duplicates
(NATS_DUPLICATE_WINDOW).

The cursor is an event position (given after commit, in commit order): an event whose
transaction commits after a later one's is published after it, never skipped."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

import nats
from django.conf import settings
from django.db import transaction
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from portal.core.events import event_envelope, events_sequence
from portal.models import Event, EventCursor
from sharing.events.selectors import events_latest_position

logger = logging.getLogger(__name__)

NATS_CURSOR = "nats"
NATS_BATCH = 500
NATS_TIMEOUT_SECONDS = 5


@dataclass
class PublishOutcome:
    published: int = 0
    last_event_id: int = 0
    error: str = ""
    acked_ids: list[int] = field(default_factory=list)


def event_subject(event_type: str) -> str:
    return f"{settings.NATS_EVENTS_SUBJECT_PREFIX}.{event_type}"


async def _stream_ensure(js) -> None:
    name = settings.NATS_EVENTS_STREAM
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=name,
                subjects=[f"{settings.NATS_EVENTS_SUBJECT_PREFIX}.>"],
                duplicate_window=settings.NATS_DUPLICATE_WINDOW.total_seconds(),
            )
        )


async def _error_logged(error: Exception) -> None:
    logger.warning("NATS: %s", error)


async def _publish(events: list[Event]) -> PublishOutcome:
    """Publish in order, stopping at the first failure; the ids JetStream acknowledged."""
    outcome = PublishOutcome()
    try:
        # nats-py retries a refused first connection however it is configured: bound it.
        client = await asyncio.wait_for(
            nats.connect(
                servers=[settings.NATS_URL],
                connect_timeout=NATS_TIMEOUT_SECONDS,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                error_cb=_error_logged,
            ),
            NATS_TIMEOUT_SECONDS,
        )
    except Exception as error:  # noqa: BLE001 - any failure to connect: the cursor stays
        outcome.error = f"cannot connect to NATS: {error!r}"
        return outcome
    try:
        js = client.jetstream(timeout=NATS_TIMEOUT_SECONDS)
        await _stream_ensure(js)
        for event in events:
            payload = json.dumps(event_envelope(event), separators=(",", ":")).encode()
            await js.publish(
                event_subject(event.type),
                payload,
                headers={
                    "Nats-Msg-Id": str(event.event_id),
                    "content-type": "application/cloudevents+json",
                },
            )
            outcome.acked_ids.append(event.position)
    except Exception as error:  # noqa: BLE001 - NATS went away mid-batch: keep what was acked
        outcome.error = f"NATS publish failed: {error!r}"
    finally:
        try:
            await client.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken connection
            pass
    outcome.published = len(outcome.acked_ids)
    return outcome


def events_publish_to_nats(*, batch: int = NATS_BATCH) -> PublishOutcome:
    """Publish the events after the "nats" cursor to JetStream and advance the cursor past
    those acknowledged. Nothing when NATS_URL is empty."""
    total = PublishOutcome()
    if not settings.NATS_URL:
        return total
    EventCursor.objects.get_or_create(name=NATS_CURSOR)
    while True:
        with transaction.atomic():
            cursor = EventCursor.objects.select_for_update().get(name=NATS_CURSOR)
            settled = max(events_latest_position(), cursor.last_event_id)
            events = list(
                Event.objects.filter(
                    position__gt=cursor.last_event_id, position__lte=settled
                ).order_by("position")
            )
            outcome = asyncio.run(_publish(events)) if events else PublishOutcome()
            if outcome.acked_ids:
                cursor.last_event_id = outcome.acked_ids[-1]
                cursor.save(update_fields=["last_event_id", "updated_at"])
        total.published += outcome.published
        total.acked_ids += outcome.acked_ids
        total.last_event_id = cursor.last_event_id
        if outcome.error:
            logger.warning(
                "Events not published to NATS after #%s: %s", cursor.last_event_id, outcome.error
            )
            total.error = outcome.error
            return total
        if len(events) == batch:
            continue  # more to publish
        events_sequence()  # events committed meanwhile get their positions
        if not Event.objects.filter(position__gt=cursor.last_event_id).exists():
            return total
