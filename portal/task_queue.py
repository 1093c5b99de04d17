"""Handing work to the Celery workers without letting the broker decide whether a page
answers.

Work is always recorded first (a queued run row), then its task is sent after the commit.
When the broker (Redis) cannot be reached, the send fails fast, the run stays queued, the
person is told that the work is queued and will start when the task queue is back, and
the reapers re-send queued runs that no worker has claimed once it is back (a run is
claimed once, so a run sent twice still runs once)."""

from __future__ import annotations

import contextvars
import logging
import time

from django.db import transaction
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Errors a publish raises when the broker is down or unreachable.
BROKER_ERRORS = (OperationalError, ConnectionError, OSError, TimeoutError)
# Try once more after half a second, then give up and leave the run queued.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0.5,
    "interval_step": 0.5,
    "interval_max": 0.5,
}
# How long after a failed send this process keeps saying the queue is unavailable.
UNAVAILABLE_NOTICE_SECONDS = 120

_last_failure: float | None = None  # process-wide: time.monotonic() of the last failed send
_failed_in_request: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "task_queue_failed_in_request", default=False
)

QUEUE_UNAVAILABLE_MESSAGE = (
    "The task queue is unavailable right now: the work is saved as queued and starts by "
    "itself when the queue is back."
)


def enqueue(task, *args) -> bool:
    """Send `task(*args)` to the workers. Returns False (and logs) when the broker cannot
    be reached, instead of raising."""
    global _last_failure
    try:
        task.apply_async(args=args, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except BROKER_ERRORS as exc:
        _last_failure = time.monotonic()
        _failed_in_request.set(True)
        logger.warning("task queue unavailable, %s%r stays queued: %s", task.name, args, exc)
        return False
    _last_failure = None
    return True


def enqueue_on_commit(task, *args) -> None:
    """Send the task once the current transaction commits (so the worker sees the row)."""
    transaction.on_commit(lambda: enqueue(task, *args))


def queue_recently_unavailable() -> bool:
    """Whether a send from this process failed lately (and none succeeded since)."""
    return _last_failure is not None and (
        time.monotonic() - _last_failure < UNAVAILABLE_NOTICE_SECONDS
    )


class TaskQueueStatusMiddleware:
    """Tells API clients, with a header, that work they started during this request is
    queued but could not be handed to a worker yet (pages show a banner instead)."""

    header = "X-Task-Queue"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _failed_in_request.set(False)
        try:
            response = self.get_response(request)
            if _failed_in_request.get():
                response[self.header] = "unavailable"
            return response
        finally:
            _failed_in_request.reset(token)


def task_queue(request) -> dict:
    """Template context: whether to show the "task queue unavailable" banner."""
    if not queue_recently_unavailable():
        return {}
    return {"task_queue_unavailable": QUEUE_UNAVAILABLE_MESSAGE}


def queue_depth() -> int | None:
    """Messages waiting in the default queue, or None when the broker cannot be asked."""
    from portal.celery import app
    from portal.metrics import queue_lengths

    try:
        return queue_lengths().get(app.conf.task_default_queue, 0)
    except (*BROKER_ERRORS, RedisError):
        return None
    except Exception:  # a transport that cannot count its queue
        logger.exception("could not read the task queue's depth")
        return None


def redispatch_unclaimed(runs, task, *, limit: int = 500) -> int:
    """Send `task(run id)` again for runs (a queryset of queued runs old enough to have
    started) whose message was lost, typically because the broker was down when they were
    queued. Only when the queue is empty: a queue with messages means the workers are
    busy, not that the message is lost. Returns how many were sent."""
    ids = list(runs.order_by("pk").values_list("pk", flat=True)[:limit])
    if not ids or queue_depth() != 0:
        return 0
    return sum(1 for pk in ids if enqueue(task, pk))
