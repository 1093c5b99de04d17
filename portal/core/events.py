"""The outbox of events: what happened in the portal, written in the transaction of the
change (`event_emit`), followed from the `Event` table by every consumer.

A service records a change and its event together:

    with transaction.atomic():
        product.save(update_fields=["status"])
        event_emit("portal.product.published", product=product, data={"version": "1.2.0"})

A committed change always has its event, a rolled-back one never does. Every reader gives
the committed events their `position` before it reads (`events_sequence`): consumers
follow positions, never ids, because ids are taken at insert and transactions commit in
another order (a reader past id 11 would never see id 10 committed a second later). The
writer does not sequence: after its commit it only wakes each task named in
settings.EVENT_CONSUMER_TASKS (the NATS publisher, the webhook fan-out, the OpenLineage
sender...) through portal.core.task_queue; each sequences, keeps its own cursor
(`EventCursor`, a position), and its periodic run catches up on what a lost wake-up
missed. The replay API and Server-Sent Events sequence (`events_latest_position`), then
read `events_sequenced()` after a position.

Event types are listed once, in EVENT_TYPES (type -> what it says); `data` holds JSON
values only, never secrets, never row values (a check's counts, not its failing rows).
Who may see an event is decided here, when it is written (`Event.audience`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from portal.core.task_queue import enqueue
from portal.models import Event, EventCursor

# type -> what it says (the API's documentation and the webhook page's choices use it).
EVENT_TYPES: dict[str, str] = {
    "portal.product.created": "A product was created.",
    "portal.product.published": "A product was published.",
    "portal.product.deprecated": "A product was deprecated.",
    "portal.product.retired": "A product was retired.",
    "portal.product.version_changed": "A product's version changed.",
    "portal.schema.changed": "An output port's schema changed (columns added, removed, retyped).",
    "portal.contract.published": "A data contract was published (data.breaking: breaks consumers).",
    "portal.check_run.started": "A run of a port's checks started.",
    "portal.check_run.finished": "A run of a port's checks finished (passed or failed, counts).",
    "portal.incident.opened": "An incident was opened on a product.",
    "portal.incident.resolved": "An incident was resolved.",
    "portal.slo.breached": "A service-level objective was breached.",
    "portal.access.requested": "Someone requested access to a product.",
    "portal.access.granted": "Access was granted.",
    "portal.access.denied": "An access request was denied.",
    "portal.access.revoked": "A grant was revoked.",
    "portal.access.expired": "A grant expired.",
    "portal.export_run.started": "A scheduled export's run started.",
    "portal.export_run.finished": "A scheduled export's run finished (succeeded or failed).",
    "portal.share_link.created": "A share link was created.",
    "portal.share_link.revoked": "A share link was revoked.",
    "portal.announcement.posted": "An owner posted an announcement.",
    "portal.stream.lag_breached": "A stream port's lag passed its limit.",
    "portal.sync_run.finished": "A sync's run finished (succeeded or failed), with its counts.",
    "portal.sync_run.held": "A sync's run was held by a guardrail for an owner's approval.",
}
# Events about access go to the people involved and the product's managers only; so do
# the events of export runs, sync runs and share links, which only their creator and the
# product's managers see on pages (sharing.exports.selectors, sharing.syncs.selectors).
PEOPLE_TYPES = frozenset(
    t
    for t in EVENT_TYPES
    if t.startswith(
        ("portal.access.", "portal.export_run.", "portal.sync_run.", "portal.share_link.")
    )
)
# The statuses whose products' metadata every signed-in person may see (as
# DataProduct.objects.visible_to): other products' events stay within their domain.
PUBLIC_STATUSES = frozenset({"published", "deprecated"})


def event_source() -> str:
    """CloudEvents `source`: the portal's public address (PORTAL_URL)."""
    return settings.PORTAL_SITE_URL.rstrip("/") or "/portal"


def product_key(product) -> str:
    return f"{product.domain.slug}.{product.slug}"


def event_emit(
    type: str,  # noqa: A002 - CloudEvents' own name
    *,
    product=None,
    domain=None,
    data: dict | None = None,
    people: Iterable = (),
    subject: str = "",
) -> Event:
    """Record that `type` happened to `product` (or to `domain`), in the current
    transaction. `people`: users involved (access events: the requester, the grantee).
    Consumers are woken once the transaction commits."""
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}: add it to EVENT_TYPES.")
    if product is not None:
        domain_id = product.domain_id
        subject = subject or product_key(product)
    else:
        domain_id = getattr(domain, "pk", domain)
    if type in PEOPLE_TYPES:
        audience = Event.AUDIENCE_PEOPLE
    elif product is not None and product.status not in PUBLIC_STATUSES:
        audience = Event.AUDIENCE_DOMAIN
    elif product is None and domain_id is not None:
        audience = Event.AUDIENCE_DOMAIN
    else:
        audience = Event.AUDIENCE_CATALOG
    event = Event.objects.create(
        event_id=uuid.uuid4(),
        type=type,
        source=event_source(),
        subject=subject,
        data=data or {},
        product_id=getattr(product, "pk", None),
        domain_id=domain_id,
        audience=audience,
    )
    people_ids = {getattr(person, "pk", person) for person in people if person is not None}
    if people_ids:
        event.people.add(*people_ids)
    _wake_consumers_on_commit()
    return event


SEQUENCER = "sequencer"
SEQUENCE_BATCH = 1000


def events_sequence() -> int:
    """Give positions to the committed events that have none, in id order, after the last
    position given; returns how many. Serialised by the sequencer's row (its first
    statement is an UPDATE: a row lock on PostgreSQL, the write lock on SQLite), so two
    processes never give the same position; an event whose transaction commits later
    gets a later position. Cheap when there is nothing to do (a partial index)."""
    if not Event.objects.filter(position__isnull=True).exists():
        return 0
    given = 0
    with transaction.atomic():
        EventCursor.objects.get_or_create(name=SEQUENCER)
        EventCursor.objects.filter(name=SEQUENCER).update(updated_at=timezone.now())
        last = EventCursor.objects.get(name=SEQUENCER).last_event_id
        while True:
            pending = list(
                Event.objects.filter(position__isnull=True)
                .order_by("id")
                .only("id")[:SEQUENCE_BATCH]
            )
            if not pending:
                break
            for event in pending:
                last += 1
                event.position = last
            Event.objects.bulk_update(pending, ["position"])
            given += len(pending)
        EventCursor.objects.filter(name=SEQUENCER).update(last_event_id=last)
    return given


def events_sequenced(after: int = 0):
    """The events with a position after `after`, in position order: what every consumer
    reads (after `events_sequence()` has run, which its wake-up does)."""
    return Event.objects.filter(position__gt=after).order_by("position")


def _consumer_wake_key(task_name: str) -> str:
    return f"events:consumer-woken:{task_name}"


def _consumers_wake() -> None:
    """Wake each consumer unless a wake-up of it is already queued: at 50 commits a second
    each consumer would otherwise get 50 tasks a second, each finding an event or none,
    and the workers would spend their time starting tasks. The consumer clears its mark
    when it starts (`event_consumer_started`), before it reads, so an event committed
    after that wakes it again. Only with a cache every process shares
    (EVENTS_WAKE_COALESCE_SECONDS, 0 without REDIS_URL); a mark whose task was lost (a
    killed worker) expires, and the consumers' beat runs catch up.

    Positions are not given here: every reader gives them before it reads (the consumers,
    the replay API, the stream), once for the commits of many writers. Sequencing here
    cost each writing request or task about ten statements after its commit."""
    ttl = settings.EVENTS_WAKE_COALESCE_SECONDS
    for name in settings.EVENT_CONSUMER_TASKS:
        # The cache down answers None (IGNORE_EXCEPTIONS): then it is woken anyway.
        if ttl and cache.add(_consumer_wake_key(name), 1, timeout=ttl) is False:
            continue
        enqueue(name)


def event_consumer_started(task_name: str) -> None:
    """A consumer's task calls this first, before it reads the outbox: a commit after
    this point wakes it again (see _consumers_wake)."""
    if settings.EVENTS_WAKE_COALESCE_SECONDS:
        cache.delete(_consumer_wake_key(task_name))


def _wake_consumers_on_commit() -> None:
    """One wake-up per transaction however many events it wrote (a bulk expiry writes
    hundreds). A lost wake-up (broker down) is caught up by the consumers' periodic runs."""
    pending = connection.run_on_commit if connection.in_atomic_block else []
    if any(func is _consumers_wake for _, func, _ in pending):
        return
    transaction.on_commit(_consumers_wake)


def event_envelope(event: Event) -> dict:
    """The CloudEvents 1.0 JSON form of `event` (structured mode), the same on every
    channel. `sequence` (the CloudEvents sequence extension) is the event's position: the
    cursor to resume after."""
    envelope = {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": event.source,
        "type": event.type,
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "sequence": str(event.position or ""),
        "data": event.data,
    }
    if event.subject:
        envelope["subject"] = event.subject
    return envelope
