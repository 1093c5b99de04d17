"""Webhook subscriptions and their deliveries.

Subscriptions: `webhook_subscription_create` / `_update` / `_delete`, `webhook_secret_rotate`,
`webhook_test_send`. Filters are event types (or prefixes such as `portal.access.*`), an
optional product and an optional domain; the owner must be able to see the product.

Delivery, from the outbox (portal.core.events) to the receiver:

1. `webhooks_fan_out` (a consumer of the outbox, cursor "webhooks") writes one delivery per
   (subscription, event) for the matching events the subscription's owner may see
   (sharing.events.selectors.events_visible_to), in event order, then wakes the
   subscriptions' senders. Paused subscriptions still get their deliveries, which wait.
2. `webhook_deliveries_send` sends a subscription's pending deliveries in order, one at a
   time under the subscription's sender lock (an advisory lock): the next waits until the
   current succeeded or was dead-lettered. A failed try is retried after an exponential
   back-off with jitter (or the receiver's Retry-After on 429/503); after
   WEBHOOKS_MAX_ATTEMPTS tries the delivery is dead-lettered and the next one goes.
   At least once: a worker killed while sending leaves the delivery pending, and it is
   sent again (the receiver de-duplicates by `webhook-id`, the event's id).
3. A subscription failing for WEBHOOKS_PAUSE_AFTER_SECONDS (a day) is paused and its owner
   told; resuming sends what waited."""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import urllib3
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from portal.core.events import (
    EVENT_TYPES,
    event_envelope,
    event_source,
    events_sequence,
    events_sequenced,
)
from portal.core.notifications import notification_create
from portal.core.targets import Target, TargetRefused, target_resolve
from portal.core.task_queue import enqueue
from portal.models import Event, EventCursor
from products.models import DataProduct, Domain
from sharing.events.selectors import events_visible_to
from sharing.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from sharing.models.webhooks import AttemptOutcome, DeliveryStatus, WebhookStatus
from sharing.webhooks.signing import (
    SecretUnreadable,
    secret_decrypt,
    secret_encrypt,
    secret_new,
    signature_headers,
)

logger = logging.getLogger(__name__)

CURSOR_NAME = "webhooks"
DELIVER_TASK = "sharing.webhooks.tasks.webhook_deliver"
TEST_EVENT_TYPE = "portal.webhook.test"
FAN_OUT_BATCH = 500
MAX_NAME = WebhookSubscription._meta.get_field("name").max_length
ERROR_MAX = WebhookAttempt._meta.get_field("error").max_length
RETRY_AFTER_STATUSES = {429, 503}
FIELDS = {"name", "target_url", "event_types", "product", "domain", "active"}


# --- subscriptions ----------------------------------------------------------------------


def _event_types_clean(values) -> list[str]:
    if not isinstance(values, list) or not values:
        raise ValidationError(
            {"event_types": "Choose at least one event type (or a prefix such as portal.access.*)."}
        )
    cleaned: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise ValidationError({"event_types": "Each event type is a string."})
        if value.endswith(".*") and any(t.startswith(value[:-1]) for t in EVENT_TYPES):
            pass
        elif value not in EVENT_TYPES:
            raise ValidationError(
                {
                    "event_types": f"Unknown event type {value!r}. The types are listed on the "
                    "webhooks page and in the API documentation; a prefix ending in .* (such "
                    "as portal.access.*) matches every type under it."
                }
            )
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


def _product_for(owner, key) -> DataProduct | None:
    if key in (None, ""):
        return None
    domain_slug, _, product_slug = str(key).partition(".")
    product = (
        DataProduct.objects.visible_to(owner)
        .filter(domain__slug=domain_slug, slug=product_slug)
        .select_related("domain")
        .first()
    )
    if product is None:  # missing and not visible: the same answer
        raise ValidationError({"product": f"There is no product {key!r} that you can see."})
    return product


def _domain_for(slug) -> Domain | None:
    if slug in (None, ""):
        return None
    domain = Domain.objects.filter(slug=str(slug)).first()
    if domain is None:
        raise ValidationError({"domain": f"There is no domain {slug!r}."})
    return domain


def _target_check(url) -> str:
    url = (url or "").strip() if isinstance(url, str) else ""
    if not url:
        raise ValidationError({"target_url": "Give the URL that receives the events."})
    if len(url) > WebhookSubscription._meta.get_field("target_url").max_length:
        raise ValidationError({"target_url": "The URL is too long (500 characters at most)."})
    try:
        target_resolve(url)
    except TargetRefused as exc:
        raise ValidationError({"target_url": str(exc)}) from None
    return url


def _name_clean(name) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise ValidationError({"name": "Give the subscription a name."})
    if len(name) > MAX_NAME:
        raise ValidationError({"name": f"The name is too long ({MAX_NAME} characters at most)."})
    return name


def _may_change(subscription: WebhookSubscription, by) -> None:
    if not (by.is_staff or subscription.owner_id == by.pk):
        raise ValidationError("Only the subscription's owner or an admin may change it.")


@dataclass
class NewSecret:
    subscription: WebhookSubscription
    secret: str  # shown once


def webhook_subscription_create(
    *,
    owner,
    name: str,
    target_url: str,
    event_types: list[str],
    product: str | None = None,
    domain: str | None = None,
    active: bool = True,
) -> NewSecret:
    """A subscription of `owner`. Returns it with its signing secret, shown this once."""
    if WebhookSubscription.objects.filter(owner=owner).count() >= settings.WEBHOOKS_MAX_PER_OWNER:
        raise ValidationError(
            f"You have {settings.WEBHOOKS_MAX_PER_OWNER} subscriptions, the most one person "
            "may have: delete one you no longer use."
        )
    secret = secret_new()
    subscription = WebhookSubscription(
        owner=owner,
        name=_name_clean(name),
        target_url=_target_check(target_url),
        event_types=_event_types_clean(event_types),
        product=_product_for(owner, product),
        domain=_domain_for(domain),
        secret_encrypted=secret_encrypt(secret),
    )
    if not active:
        subscription.status = WebhookStatus.PAUSED
        subscription.paused_reason = "Created paused."
        subscription.paused_at = timezone.now()
    subscription.save()
    return NewSecret(subscription=subscription, secret=secret)


def webhook_subscription_update(
    *, subscription: WebhookSubscription, by, **changes
) -> WebhookSubscription:
    """Change the fields given (a partial update). `active=False` pauses, `True` resumes
    (and sends what waited)."""
    _may_change(subscription, by)
    unknown = sorted(set(changes) - FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in unknown})
    if "name" in changes:
        subscription.name = _name_clean(changes["name"])
    if "target_url" in changes:
        subscription.target_url = _target_check(changes["target_url"])
    if "event_types" in changes:
        subscription.event_types = _event_types_clean(changes["event_types"])
    if "product" in changes:
        subscription.product = _product_for(subscription.owner, changes["product"])
    if "domain" in changes:
        subscription.domain = _domain_for(changes["domain"])
    resumed = False
    if "active" in changes:
        if changes["active"] and subscription.status == WebhookStatus.PAUSED:
            subscription.status = WebhookStatus.ACTIVE
            subscription.paused_reason = ""
            subscription.paused_at = None
            subscription.failing_since = None
            resumed = True
        elif not changes["active"] and subscription.status == WebhookStatus.ACTIVE:
            subscription.status = WebhookStatus.PAUSED
            subscription.paused_reason = "Paused by its owner."
            subscription.paused_at = timezone.now()
    subscription.save()
    if resumed:
        transaction.on_commit(lambda: enqueue(DELIVER_TASK, subscription.pk))
    return subscription


def webhook_subscription_delete(*, subscription: WebhookSubscription, by) -> None:
    """Delete the subscription, its deliveries and their log: nothing more is sent."""
    _may_change(subscription, by)
    subscription.delete()


def webhook_secret_rotate(*, subscription: WebhookSubscription, by) -> NewSecret:
    """A new signing secret, shown this once; the old one stops signing at once."""
    _may_change(subscription, by)
    secret = secret_new()
    subscription.secret_encrypted = secret_encrypt(secret)
    subscription.save(update_fields=["secret_encrypted", "updated_at"])
    return NewSecret(subscription=subscription, secret=secret)


def webhook_test_send(*, subscription: WebhookSubscription, by) -> WebhookDelivery:
    """Queue a test event (type portal.webhook.test) behind the subscription's pending
    deliveries, signed like every other."""
    _may_change(subscription, by)
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        event=None,
        message_id=uuid.uuid4(),
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: enqueue(DELIVER_TASK, subscription.pk))
    return delivery


def webhook_dead_letters_replay(
    *, subscription: WebhookSubscription, by, delivery_ids: list[int] | None = None
) -> int:
    """Send dead-lettered deliveries again (all of the subscription's, or those named):
    they are pending again, with their tries counted afresh. Returns how many."""
    _may_change(subscription, by)
    dead = WebhookDelivery.objects.filter(subscription=subscription, status=DeliveryStatus.DEAD)
    if delivery_ids is not None:
        dead = dead.filter(pk__in=delivery_ids)
    count = dead.update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), dead_at=None
    )
    if count:
        transaction.on_commit(lambda: enqueue(DELIVER_TASK, subscription.pk))
    return count


# --- fan-out from the outbox ------------------------------------------------------------


def _type_matches(patterns: list[str], event_type: str) -> bool:
    return any(
        event_type.startswith(p[:-1]) if p.endswith(".*") else event_type == p for p in patterns
    )


def _subscription_matches(subscription: WebhookSubscription, event: Event) -> bool:
    if event.time < subscription.created_at:  # what happened before it was made
        return False
    if subscription.product_id is not None and event.product_id != subscription.product_id:
        return False
    if subscription.domain_id is not None and event.domain_id != subscription.domain_id:
        return False
    return _type_matches(subscription.event_types, event.type)


def webhooks_fan_out(*, batch: int = FAN_OUT_BATCH) -> int:
    """Write the deliveries of the events after the "webhooks" cursor, batch by batch;
    wake each active subscription that got some. Returns how many deliveries were written."""
    events_sequence()  # events committed since the last wake-up get their positions
    EventCursor.objects.get_or_create(name=CURSOR_NAME)
    written = 0
    woken: set[int] = set()
    while True:
        with transaction.atomic():
            # Another fan-out holding the cursor reads again after its commit (the loop),
            # so it sees what this one was woken for: no need to wait for it.
            cursor = (
                EventCursor.objects.select_for_update(skip_locked=True)
                .filter(name=CURSOR_NAME)
                .first()
            )
            if cursor is None:
                break
            # Positions follow commits: an event committed late comes after, never skipped.
            events = list(events_sequenced(after=cursor.last_event_id)[:batch])
            if not events:
                break
            rows = _deliveries_for(events, woken)
            WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
            written += len(rows)
            cursor.last_event_id = events[-1].position
            cursor.save(update_fields=["last_event_id", "updated_at"])
        for subscription_id in sorted(woken):  # after each commit, not after the loop
            _sender_wake(subscription_id)
        woken.clear()
    return written


def _wake_key(subscription_id: int) -> str:
    return f"webhooks:sender-woken:{subscription_id}"


def _sender_wake(subscription_id: int) -> None:
    """Wake the subscription's sender unless a wake-up is already queued: at 50 events/s
    each commit's fan-out would otherwise queue one sender task per event, each finding
    at most one delivery. The sender clears the mark when it starts, before it reads, so
    a delivery written after that wakes it again. Only with a cache every process shares
    (WEBHOOKS_WAKE_COALESCE_SECONDS, 0 without REDIS_URL); a mark whose message was lost
    (a killed worker) expires, and webhooks_due_wake catches up meanwhile."""
    ttl = settings.WEBHOOKS_WAKE_COALESCE_SECONDS
    if ttl and cache.add(_wake_key(subscription_id), 1, timeout=ttl) is False:
        return
    enqueue(DELIVER_TASK, subscription_id)


def _deliveries_for(events: list[Event], woken: set[int]) -> list[WebhookDelivery]:
    now = timezone.now()
    rows: list[tuple[int, int, WebhookDelivery]] = []
    subscriptions = WebhookSubscription.objects.select_related("owner").order_by("id")
    for subscription in subscriptions:
        candidates = [event for event in events if _subscription_matches(subscription, event)]
        if not candidates:
            continue
        visible = set(
            events_visible_to(subscription.owner)
            .filter(id__in=[event.id for event in candidates])
            .values_list("id", flat=True)
        )
        for event in candidates:
            if event.id in visible:
                delivery = WebhookDelivery(
                    subscription=subscription,
                    event=event,
                    message_id=event.event_id,
                    next_attempt_at=now,
                )
                rows.append((event.id, subscription.pk, delivery))
                if subscription.status == WebhookStatus.ACTIVE:
                    woken.add(subscription.pk)
    # In event order, so each subscription's deliveries are numbered in event order.
    return [delivery for _, _, delivery in sorted(rows, key=lambda row: row[:2])]


def webhooks_due_wake() -> int:
    """Wake the sender of every active subscription with a delivery due (retries after a
    back-off, wake-ups lost to a broker outage or a killed worker). Returns how many."""
    due = (
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=timezone.now(),
            subscription__status=WebhookStatus.ACTIVE,
        )
        .values_list("subscription_id", flat=True)
        .distinct()
    )
    ids = sorted(set(due))
    for subscription_id in ids:
        enqueue(DELIVER_TASK, subscription_id)
    return len(ids)


# --- sending ----------------------------------------------------------------------------


@dataclass
class SendResult:
    ok: bool
    latency_ms: int
    response_code: int | None = None
    error: str = ""
    retry_after: float | None = None


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - timezone.now()).total_seconds())


def delivery_body(delivery: WebhookDelivery) -> str:
    """The request body: the event's CloudEvents envelope (a test event's own)."""
    if delivery.event_id is None:
        envelope = {
            "specversion": "1.0",
            "id": str(delivery.message_id),
            "source": event_source(),
            "type": TEST_EVENT_TYPE,
            "time": delivery.created_at.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": {"subscription": delivery.subscription_id, "test": True},
        }
    else:
        envelope = event_envelope(delivery.event)
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def _pool_new(target: Target) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(
        connect=settings.WEBHOOKS_TIMEOUT_SECONDS, read=settings.WEBHOOKS_TIMEOUT_SECONDS
    )
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False)


class TargetPools:
    """The connections of one sending round, per checked address: a round's deliveries
    go to one target, so they share a kept-alive connection instead of one TCP (and TLS)
    handshake each. Keyed by the address the target resolved to at each try, so a DNS
    answer that changed mid-round never reuses the old address."""

    def __init__(self) -> None:
        self._pools: dict[tuple, urllib3.HTTPConnectionPool] = {}

    def for_target(self, target: Target) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, target.address, target.port, target.host)
        if key not in self._pools:
            self._pools[key] = _pool_new(target)
        return self._pools[key]

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _post(
    target: Target, *, body: str, headers: dict, pools: TargetPools | None = None
) -> SendResult:
    """POST to the checked address (never a second DNS answer), TLS checked against the
    host as written; no redirect followed. `pools`: the round's kept-alive connections
    (none: a connection for this request only)."""
    own_pools = pools is None
    pools = pools or TargetPools()
    pool = pools.for_target(target)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:  # an IPv6 literal
        host_header = (
            f"[{target.host}]" if target.port == default_port else f"[{target.host}]:{target.port}"
        )
    started = time.monotonic()
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body.encode(),
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=False,
        )
        try:
            response.read(1024)  # a short look, not a download
        finally:
            if response.length_remaining != 0:  # more (or unknown) left: not reused
                response.close()
            response.release_conn()
    except urllib3.exceptions.TimeoutError:
        latency = int((time.monotonic() - started) * 1000)
        return SendResult(
            ok=False,
            latency_ms=latency,
            error=f"No answer within {settings.WEBHOOKS_TIMEOUT_SECONDS:g} s.",
        )
    except urllib3.exceptions.HTTPError as exc:
        latency = int((time.monotonic() - started) * 1000)
        reason = getattr(exc, "reason", None) or exc
        return SendResult(
            ok=False, latency_ms=latency, error=_short(f"Connection failed: {reason}")
        )
    finally:
        if own_pools:
            pools.close()
    latency = int((time.monotonic() - started) * 1000)
    code = response.status
    if 200 <= code < 300:
        return SendResult(ok=True, latency_ms=latency, response_code=code)
    error = f"The receiver answered {code}."
    if 300 <= code < 400:
        error += " Redirects are not followed: give the final URL."
    retry_after = (
        _retry_after(response.headers.get("Retry-After")) if code in RETRY_AFTER_STATUSES else None
    )
    return SendResult(
        ok=False, latency_ms=latency, response_code=code, error=error, retry_after=retry_after
    )


def delivery_send_once(
    delivery: WebhookDelivery, *, pools: TargetPools | None = None
) -> SendResult:
    """One signed try of `delivery`: the target re-checked and resolved now."""
    subscription = delivery.subscription
    try:
        target = target_resolve(subscription.target_url)
        secret = secret_decrypt(subscription.secret_encrypted)
    except (TargetRefused, SecretUnreadable) as exc:
        return SendResult(ok=False, latency_ms=0, error=_short(str(exc)))
    body = delivery_body(delivery)
    headers = signature_headers(
        secret=secret, message_id=str(delivery.message_id), timestamp=timezone.now(), body=body
    )
    headers.update({"Content-Type": "application/json", "User-Agent": "portal-webhooks/1"})
    return _post(target, body=body, headers=headers, pools=pools)


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next try after `attempts` failed ones: exponential, capped,
    with jitter (half fixed, half random); the receiver's Retry-After when it gave one."""
    cap = settings.WEBHOOKS_RETRY_MAX_SECONDS
    if retry_after is not None:
        return min(retry_after, cap)
    delay = min(cap, settings.WEBHOOKS_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not a secret


def _record(delivery: WebhookDelivery, result: SendResult, started_at: datetime) -> float | None:
    """Write the attempt and its consequences; returns the seconds until the retry (None
    when the delivery is finished)."""
    subscription = delivery.subscription
    now = timezone.now()
    delivery.attempts += 1
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        started_at=started_at,
        outcome=AttemptOutcome.SUCCEEDED if result.ok else AttemptOutcome.FAILED,
        latency_ms=result.latency_ms,
        response_code=result.response_code,
        error=result.error,
    )
    delivery.last_response_code = result.response_code
    delivery.last_error = result.error
    subscription.last_attempt_at = now
    wait = None
    if result.ok:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = now
        subscription.last_success_at = now
        subscription.failing_since = None
    else:
        subscription.failing_since = subscription.failing_since or started_at
        if delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.DEAD
            delivery.dead_at = now
        else:
            wait = retry_delay(delivery.attempts, result.retry_after)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
        if now - subscription.failing_since >= timedelta(
            seconds=settings.WEBHOOKS_PAUSE_AFTER_SECONDS
        ):
            _pause_failing(subscription, now)
            wait = None
    delivery.save()
    # Only what the sender owns: a pause or resume by the owner meanwhile stays.
    fields = ["last_attempt_at", "last_success_at", "failing_since", "updated_at"]
    if subscription.status == WebhookStatus.PAUSED:
        fields += ["status", "paused_reason", "paused_at"]
    subscription.save(update_fields=fields)
    return wait


def _pause_failing(subscription: WebhookSubscription, now: datetime) -> None:
    subscription.status = WebhookStatus.PAUSED
    subscription.paused_at = now
    subscription.paused_reason = (
        f"Paused after failing since {subscription.failing_since:%Y-%m-%d %H:%M} UTC."
    )
    notification_create(
        user=subscription.owner,
        title=f"Webhook “{subscription.name}” paused: its target kept failing",
        body=f"Every delivery to {subscription.target_url} failed since "
        f"{subscription.failing_since:%Y-%m-%d %H:%M} UTC. Fix the receiver, then resume "
        "the subscription: the events that waited are sent in order.",
        url=f"/my/webhooks/{subscription.pk}/",
        key=f"webhook-paused:{subscription.pk}:{subscription.failing_since.isoformat()}",
    )


@dataclass
class SendRound:
    sent: int = 0
    retry_in: float | None = None  # seconds until the head delivery's next try
    more: bool = False  # stopped at the batch limit with deliveries due


# Session-level advisory locks of senders: (this namespace << 32) | subscription id.
SENDER_LOCK_NAMESPACE = 0x5745_4248  # "WEBH"
CHUNK = 20


@contextlib.contextmanager
def _sender_lock(subscription_id: int):
    """One sender per subscription: a PostgreSQL advisory lock held for the round (not a
    row lock: each try commits on its own, and nobody else's write waits for a POST). It
    goes with the connection when a worker dies. Elsewhere (SQLite, the embedded mode's
    single worker) there is no second sender to keep out."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = (SENDER_LOCK_NAMESPACE << 32) | subscription_id
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def webhook_deliveries_send(*, subscription_id: int, limit: int = 100) -> SendRound:
    """Send the subscription's due deliveries in order, up to `limit` tries, each try
    committed with its outcome before the next. Returns quietly when another worker is
    sending them (the sender lock), when the subscription is paused or gone (checked
    every CHUNK deliveries), or when the head delivery waits for its retry (`retry_in` is
    set only by the round that scheduled it)."""
    outcome = SendRound()
    if settings.WEBHOOKS_WAKE_COALESCE_SECONDS:
        cache.delete(_wake_key(subscription_id))
    with _sender_lock(subscription_id) as locked, contextlib.closing(TargetPools()) as pools:
        if not locked:
            return outcome
        while outcome.sent < limit:
            subscription = (
                WebhookSubscription.objects.select_related("owner")
                .filter(pk=subscription_id, status=WebhookStatus.ACTIVE)
                .first()
            )
            if subscription is None:
                return outcome
            chunk = list(
                WebhookDelivery.objects.filter(
                    subscription=subscription, status=DeliveryStatus.PENDING
                )
                .select_related("event")
                .order_by("id")[: min(CHUNK, limit - outcome.sent)]
            )
            if not chunk:
                return outcome
            for delivery in chunk:
                if delivery.next_attempt_at > timezone.now():
                    return outcome
                delivery.subscription = subscription
                started_at = timezone.now()
                result = delivery_send_once(delivery, pools=pools)
                with transaction.atomic():
                    wait = _record(delivery, result, started_at)
                outcome.sent += 1
                if wait is not None:
                    outcome.retry_in = wait
                    return outcome
                if subscription.status != WebhookStatus.ACTIVE:  # paused for failing
                    return outcome
    outcome.more = True
    return outcome
