"""Server-Sent Events of the outbox (`GET /api/v1/events/stream/`), served by the web
process itself (docs/deploy.md, "Server-Sent Events"):

- a stream holds one of the process's threads for its life, so each process serves at most
  SSE_MAX_CONNECTIONS streams at once and answers 503 with Retry-After beyond (the page's
  script falls back to its slow polling, API clients retry); every stream ends after
  SSE_MAX_SECONDS and the client resumes with Last-Event-ID;
- one watcher thread per process polls the newest outbox id (an index-only read of the
  primary key) every SSE_POLL_SECONDS and wakes the streams waiting on it: the database
  sees one poll per process, not one per connection, and a stream queries its events only
  when there are new ones; between reads a stream holds no database connection;
- before each read the person is loaded again (deactivated: the stream ends) and the
  visibility rule runs in the read itself, so someone removed from a domain stops seeing
  its events at once; a revoked token or an ended session ends the stream too;
- a closed tab gives its slot back at once where the server shows the client's socket
  (gunicorn: the stream looks at it every SSE_CLIENT_PROBE_SECONDS while it waits), and
  elsewhere (runserver) at the second keep-alive that cannot be written, so keep-alives come
  often there (settings.py). Without this a person clicking through pages filled a process's
  slots with streams nobody read, and the next page was refused with 503."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import JsonResponse, StreamingHttpResponse
from django.utils import timezone
from knox.models import AuthToken

from portal.core.events import event_envelope
from sharing.events.selectors import (
    EventFilters,
    events_after,
    events_latest_position,
)

# Events one read of a stream takes at most (the rest follow at once, in the next read).
STREAM_READ_SIZE = 200


class OutboxWatch:
    """The newest outbox id, polled by one thread per process while streams are open."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._latest = -1  # not read yet
        self._streams = 0
        self._thread: threading.Thread | None = None

    def stream_opened(self) -> None:
        with self._changed:
            self._streams += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._poll, name="sse-outbox-watch", daemon=True
                )
                self._thread.start()

    def stream_closed(self) -> None:
        with self._changed:
            self._streams -= 1

    def latest(self, timeout: float) -> int:
        """The newest id, once the watcher has read it (waits up to `timeout` at start)."""
        with self._changed:
            self._changed.wait_for(lambda: self._latest >= 0, timeout)
            return self._latest

    def wait_beyond(self, seen: int, timeout: float) -> int:
        """Wait until an event newer than `seen` exists, or `timeout` seconds; the newest id."""
        with self._changed:
            self._changed.wait_for(lambda: self._latest > seen, max(timeout, 0))
            return self._latest

    def _poll(self) -> None:
        try:
            while True:
                with self._changed:
                    if self._streams <= 0:
                        self._thread = None
                        self._latest = -1
                        return
                try:
                    latest = events_latest_position()
                except Exception:  # noqa: BLE001 - the database is down: streams wait, we retry
                    latest = None
                finally:
                    connection.close()  # back to the pool until the next poll
                if latest is not None:
                    with self._changed:
                        if latest != self._latest:
                            self._latest = latest
                            self._changed.notify_all()
                time.sleep(settings.SSE_POLL_SECONDS)
        finally:
            connection.close()


class StreamSlots:
    """How many streams this process serves at once (each holds a thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0

    def take(self) -> bool:
        with self._lock:
            if self.open >= settings.SSE_MAX_CONNECTIONS:
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


WATCH = OutboxWatch()
SLOTS = StreamSlots()


def _credentials_check(request) -> Callable[[], bool]:
    """Whether the request's token or session is still good (checked before each read)."""
    token = request.auth if isinstance(request.auth, AuthToken) else None
    if token is not None:
        token_key, expiry = token.pk, token.expiry

        def token_alive() -> bool:
            if expiry is not None and expiry <= timezone.now():
                return False
            return AuthToken.objects.filter(pk=token_key).exists()

        return token_alive
    session = getattr(request._request, "session", None)
    session_key = session.session_key if session is not None else None
    if session_key:
        return lambda: session.exists(session_key)
    return lambda: True


def client_gone_probe(environ: dict) -> Callable[[], bool]:
    """Whether the client has closed the connection, read from its socket where the WSGI
    server shows it (gunicorn's `gunicorn.socket`): readable with nothing to read is closed.
    Elsewhere it answers "not gone" and the failing keep-alive write ends the stream."""
    client = environ.get("gunicorn.socket")
    if not isinstance(client, socket.socket):
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, _ = select.select([client], [], [], 0)
            if not readable:
                return False
            return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError, ValueError):  # ValueError: TLS socket
            return False
        except OSError:  # reset by the peer, or closed under us
            return True

    return gone


def _connection_released() -> None:
    """Give the thread's connection back to the pool while the stream waits (not inside a
    transaction: a test's, or a caller's that iterates the stream itself)."""
    if not connection.in_atomic_block:
        connection.close()


def frame(event) -> str:
    """One event as an SSE frame: `id:` the sequence, `event:` the type, `data:` the envelope."""
    data = json.dumps(event_envelope(event), separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.position}\nevent: {event.type}\ndata: {data}\n\n"


def event_frames(
    *,
    user_id: int,
    filters: EventFilters,
    still_allowed: Callable[[], bool] = lambda: True,
    client_gone: Callable[[], bool] = lambda: False,
) -> Iterator[str]:
    """The stream's text: a `retry:` hint, then each new visible event, keep-alive comments
    when quiet, until SSE_MAX_SECONDS have passed, the person may no longer follow or the
    client has gone."""
    users = get_user_model().objects
    retry_ms = int(settings.SSE_RETRY_SECONDS * 1000)
    yield f"retry: {retry_ms}\n: connected\n\n"
    started = time.monotonic()
    ends = started + settings.SSE_MAX_SECONDS
    keepalive = settings.SSE_KEEPALIVE_SECONDS
    next_keepalive = started + keepalive
    WATCH.stream_opened()
    try:
        seen = WATCH.latest(timeout=keepalive)
        position = filters.after or 0  # every event up to here was sent or is not for them
        while True:  # at least one read (the backlog after the client's position)
            try:
                user = users.filter(pk=user_id, is_active=True).first()
                if user is None or not still_allowed():
                    return
                settled = max(events_latest_position(), position)
                events = events_after(
                    user=user,
                    filters=replace(filters, after=position),
                    limit=STREAM_READ_SIZE,
                    up_to=settled,
                )
            finally:
                _connection_released()
            for event in events:
                yield frame(event)
            if events:
                next_keepalive = time.monotonic() + keepalive
            if time.monotonic() >= ends:
                return  # the client resumes from the last id it got
            if len(events) == STREAM_READ_SIZE:
                position = events[-1].position
                continue  # more are waiting: read on at once
            position = settled
            if seen > settled:
                continue  # newer positions were given since this read: read on
            while True:
                now = time.monotonic()
                if now >= ends:
                    return
                wake = min(next_keepalive, ends, now + settings.SSE_CLIENT_PROBE_SECONDS)
                latest = WATCH.wait_beyond(seen, wake - now)
                if latest > seen:
                    seen = latest
                    break
                if client_gone():
                    return
                if time.monotonic() >= next_keepalive:
                    yield ": keep-alive\n\n"
                    next_keepalive = time.monotonic() + keepalive
    finally:
        WATCH.stream_closed()


def event_stream_response(*, request, filters: EventFilters):
    """The stream's response, or 503 with Retry-After when this process's slots are full."""
    if not SLOTS.take():
        response = JsonResponse(
            {
                "detail": "This server is serving as many event streams as it can. "
                f"Retry in {settings.SSE_RETRY_AFTER_SECONDS} seconds, or replay "
                "/api/v1/events/?after=<your last sequence> meanwhile."
            },
            status=503,
        )
        response["Retry-After"] = str(settings.SSE_RETRY_AFTER_SECONDS)
        return response
    try:
        if filters.after is None:  # no Last-Event-ID, no `after`: live, from the newest on
            filters = replace(filters, after=events_latest_position())
        still_allowed = _credentials_check(request)
        response = StreamingHttpResponse(
            event_frames(
                user_id=request.user.pk,
                filters=filters,
                still_allowed=still_allowed,
                client_gone=client_gone_probe(request.META),
            ),
            content_type="text/event-stream; charset=utf-8",
        )
    except BaseException:
        SLOTS.give_back()
        raise
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    response._resource_closers.append(SLOTS.give_back)
    return response
