"""The OpenLineage sender: a reader of the outbox of events (cursor "openlineage") that
POSTs the run events of check runs and export runs (sharing.lineage.openlineage) to
settings.OPENLINEAGE_URL, in outbox order.

What happens to each event, and why:

- no endpoint configured: passed over, the cursor advances (configuring one later
  starts from then on, it does not replay months of history);
- not a check-run or export-run event: passed over;
- sent, the endpoint answers 2xx: done;
- endpoint unreachable, timing out, 5xx, 408 or 429: the cursor stays before it and the
  next wake-up or beat (every few seconds) tries again; nothing is lost and the order
  (START before COMPLETE) holds;
- any other 4xx: the endpoint refuses that event for good; logged and passed over, so
  that one refusal does not stop every later run's lineage;
- the event translates into something the spec's schema rejects: a bug of ours (the
  emitter's or the translation's). It is not sent and the cursor stays before it, like
  an unreachable endpoint: sending it would put bad lineage in the company's catalog,
  passing over it would lose that run's lineage for good, while holding it sends it, in
  order, once the bug is fixed. Admins are told in the portal (once per event) and the
  error is logged at each attempt.

Each event is handled in a transaction of its own under the cursor's row lock, so that a
worker killed mid-way sends at most that one event again."""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from portal.core.events import events_sequence, events_sequenced
from portal.core.notifications import notifications_create
from portal.models import Event, EventCursor
from sharing.lineage.openlineage import LINEAGE_TYPES, LineageEventInvalid, run_event_for

logger = logging.getLogger(__name__)

CURSOR_NAME = "openlineage"
# Answers that say "try again later" although they are 4xx.
RETRY_STATUSES = frozenset({408, 429})
# One run of the sender stops after this long; the next wake-up or beat goes on.
RUN_BUDGET_SECONDS = 60.0
RESPONSE_EXCERPT_CHARS = 300
# Events read after the cursor at a time, to find the next one to send.
PAGE_SIZE = 500


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would resend the API key to the new address
    (another host, perhaps) and turn the POST into a GET without its body."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass
class LineageSendReport:
    """What one run of the sender did."""

    sent: int = 0
    passed_over: int = 0
    refused: int = 0  # 4xx: logged and passed over
    stopped: str = ""  # why it stopped before the end of the outbox, if it did


@dataclass
class _Delivery:
    ok: bool
    retry: bool
    detail: str


def lineage_events_send() -> LineageSendReport:
    """Send what the outbox holds after the "openlineage" cursor, in order, until it is
    caught up, an event must wait (endpoint down, invalid event) or the run's time budget
    is spent. Safe to run concurrently: a second run finds the cursor locked and leaves."""
    report = LineageSendReport()
    events_sequence()  # events committed since the last wake-up get their positions
    EventCursor.objects.get_or_create(name=CURSOR_NAME)
    deadline = time.monotonic() + RUN_BUDGET_SECONDS
    while time.monotonic() < deadline:
        with transaction.atomic():
            cursor = (
                EventCursor.objects.select_for_update(skip_locked=True)
                .filter(name=CURSOR_NAME)
                .first()
            )
            if cursor is None:  # another run holds it and will carry on
                report.stopped = "another run is sending"
                return report
            if not settings.OPENLINEAGE_URL:
                _pass_over_everything(cursor, report)
                return report
            progressed = _send_next(cursor, report)
        if not progressed:
            return report
    report.stopped = report.stopped or "time budget spent; the next run goes on"
    return report


def _pass_over_everything(cursor: EventCursor, report: LineageSendReport) -> None:
    after = events_sequenced(after=cursor.last_event_id)
    last = after.order_by("-position").values_list("position", flat=True).first() or 0
    if last > cursor.last_event_id:
        report.passed_over += after.filter(position__lte=last).count()
        _advance(cursor, last)


def _send_next(cursor: EventCursor, report: LineageSendReport) -> bool:
    """Pass over the events before the next lineage one and send that one; advance the
    cursor past what was finished. False when there is nothing more to do now."""
    # One read of what follows the cursor, so that an event committed meanwhile is never
    # passed over unseen.
    following = list(
        events_sequenced(after=cursor.last_event_id).values_list("position", "type")[:PAGE_SIZE]
    )
    if not following:
        return False
    lineage_id = next((pk for pk, type_ in following if type_ in LINEAGE_TYPES), None)
    if lineage_id is None:
        report.passed_over += len(following)
        _advance(cursor, following[-1][0])
        return len(following) == PAGE_SIZE
    report.passed_over += sum(1 for pk, _ in following if pk < lineage_id)
    _advance(cursor, lineage_id - 1)  # positions follow each other without gaps
    event = Event.objects.get(position=lineage_id)
    try:
        run_event = run_event_for(event)
    except LineageEventInvalid as exc:
        logger.error("OpenLineage: %s; held until fixed (nothing after it is sent)", exc)
        _admins_tell_invalid(exc)
        report.stopped = str(exc)
        return False
    delivery = _post(run_event)
    if delivery.ok:
        report.sent += 1
    elif delivery.retry:
        logger.warning(
            "OpenLineage: event %s (%s) not delivered, tried again later: %s",
            event.pk,
            event.type,
            delivery.detail,
        )
        report.stopped = delivery.detail
        return False
    else:
        logger.error(
            "OpenLineage: the endpoint refused event %s (%s), passed over: %s",
            event.pk,
            event.type,
            delivery.detail,
        )
        report.refused += 1
    _advance(cursor, event.position)
    return True


def _advance(cursor: EventCursor, position: int) -> None:
    if position > cursor.last_event_id:
        cursor.last_event_id = position
        cursor.save(update_fields=["last_event_id", "updated_at"])


def _post(run_event: dict) -> _Delivery:
    """POST one run event as JSON, with the API key (if any) as a Bearer token."""
    headers = {"Content-Type": "application/json", "User-Agent": "data-product-portal"}
    api_key = os.environ.get(settings.OPENLINEAGE_API_KEY_ENV, "")
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(
        settings.OPENLINEAGE_URL,
        data=json.dumps(run_event).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=settings.OPENLINEAGE_TIMEOUT_SECONDS):
            return _Delivery(ok=True, retry=False, detail="")
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            # A moved endpoint is a setting to mend, not a refusal: hold until it is.
            where = exc.headers.get("Location", "?")
            detail = (
                f"HTTP {exc.code}: the endpoint redirects to {where}; set OPENLINEAGE_URL to it"
            )
            return _Delivery(ok=False, retry=True, detail=detail)
        body = exc.read(RESPONSE_EXCERPT_CHARS).decode("utf-8", "replace")
        retry = exc.code >= 500 or exc.code in RETRY_STATUSES
        return _Delivery(ok=False, retry=retry, detail=f"HTTP {exc.code}: {body}".strip())
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
        reason = getattr(exc, "reason", exc)
        return _Delivery(ok=False, retry=True, detail=f"endpoint unreachable: {reason}")


def _admins_tell_invalid(exc: LineageEventInvalid) -> None:
    """Tell the portal's admins, once per event, that lineage is held behind it."""
    admins = get_user_model().objects.filter(is_active=True, is_superuser=True)
    notifications_create(
        users=admins,
        title=f"OpenLineage sending is held: event {exc.event.pk} ({exc.event.type}) is invalid",
        body="; ".join(exc.problems)
        + ". Nothing after it is sent until the portal is fixed; see docs/openlineage.md.",
        key=f"openlineage-invalid:{exc.event.event_id}",
    )
