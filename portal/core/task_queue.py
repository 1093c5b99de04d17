"""Handing work to the Celery workers without letting the broker decide whether a page
answers. This is the one way code starts background work: by task NAME (a string such as
"products.tasks.feedback_notify"), after the commit, through the functions below.
Services never import task modules.

- `enqueue_on_commit(name, *args)`: work that has no row of its own (a notification, an
  announcement's delivery). A QueuedTask row is written in the caller's transaction (the
  outbox), the task is sent after the commit and the row marked sent. When the broker
  cannot be reached the row stays unsent and `queued_tasks_redispatch` (a periodic task)
  sends it again once the broker answers. With `once=True` the task receives
  `outbox_id=<row>` and calls `queued_task_claim` first, so a message delivered twice
  acts once (for tasks that have no claim of their own).
- `enqueue_run_on_commit(name, run_id)`: work recorded as a queued run (check runs,
  schema refreshes, export runs). The run row is the record: the reapers re-send runs no
  worker claimed (`redispatch_unclaimed`), and a run is claimed once, so a run sent twice
  still runs once.
- `enqueue(name, *args)`: send now (reapers, fan-out inside tasks). Returns False
  instead of raising when the broker is down.

When a send fails, the person is told that the work is queued and starts when the task
queue is back (banner, X-Task-Queue header).

`transaction.on_commit` is still used directly for local cleanup that is not background
work (deleting replaced files of uploads and Delta Sharing caches, a new search index
generation): on_commit for local cleanup; background work goes through enqueue."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from datetime import datetime, timedelta

from celery import Task
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from portal.celery import app
from portal.metrics import queue_lengths
from portal.models import QueuedTask

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


_discovery_lock = threading.Lock()


def _registered(name: str) -> Task:
    """The task named `name`. Web processes import the task modules at start-up
    (portal.startup.warm_up); otherwise the first lookup runs Celery's autodiscovery, as a
    worker does when it starts: under a lock, because a second thread of the process
    asking meanwhile found the registry half-filled (NotRegistered, a 500 after commit)."""
    if name not in app.tasks:
        with _discovery_lock:
            app.loader.import_default_modules()
    return app.tasks[name]


def enqueue(name: str, *args, **kwargs) -> bool:
    """Send the task named `name` with `args` to the workers now. Returns False (and
    logs) when the broker cannot be reached, instead of raising."""
    global _last_failure
    try:
        # Through the registered task, so that eager mode (tests) runs it in-process.
        _registered(name).apply_async(
            args=args, kwargs=kwargs, retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except BROKER_ERRORS as exc:
        _last_failure = time.monotonic()
        _failed_in_request.set(True)
        logger.warning("task queue unavailable, %s%r stays queued: %s", name, args, exc)
        return False
    _last_failure = None
    return True


def enqueue_run_on_commit(name: str, run_id: int) -> None:
    """Send the task `name`(run_id) once the current transaction commits (so the worker
    sees the run). For work recorded as a queued run, which its reaper re-sends when lost."""
    transaction.on_commit(lambda: enqueue(name, run_id))


def enqueue_on_commit(name: str, *args, once: bool = False) -> QueuedTask:
    """Ask for the task `name`(*args) durably: an outbox row written in the current transaction,
    sent once it commits, re-sent by the reaper when the broker was down. `args` must be
    JSON values (ids, short strings). `once=True`: the task gets `outbox_id` and claims
    the row first (`queued_task_claim`)."""
    queued = QueuedTask.objects.create(task=name, args=list(args), once=once)
    transaction.on_commit(lambda: queued_task_send(queued=queued))
    return queued


def queued_task_send(*, queued: QueuedTask) -> bool:
    """Send one outbox row's task and mark it sent; on a broker error count the attempt
    and leave it for the reaper."""
    kwargs = {"outbox_id": queued.pk} if queued.once else {}
    sent = enqueue(queued.task, *queued.args, **kwargs)
    changes = {"attempts": F("attempts") + 1}
    if sent:
        changes["sent_at"] = timezone.now()
    else:
        changes["last_error"] = "The task queue could not be reached."
    QueuedTask.objects.filter(pk=queued.pk, sent_at__isnull=True).update(**changes)
    return sent


def queued_task_claim(outbox_id: int | None) -> bool:
    """A task's first step when it has no claim of its own: True the first time it runs
    for this outbox row, False when a redelivered message runs it again. A direct call
    (no row) always runs."""
    if outbox_id is None:
        return True
    return bool(
        QueuedTask.objects.filter(pk=outbox_id, claimed_at__isnull=True).update(
            claimed_at=timezone.now()
        )
    )


# Sent rows are kept this long (a claim must outlive any redelivery), then deleted.
QUEUED_TASK_KEEP = timedelta(days=7)


def queued_tasks_redispatch(*, now: datetime | None = None, limit: int = 500) -> int:
    """The reaper of the outbox: send again the rows left unsent for longer than
    TASK_REDISPATCH_AFTER (the broker was down after their commit), once the broker
    answers again; delete rows sent long ago. Each row under its lock (skip locked): two
    reapers at once send it once. Returns how many were sent."""
    now = now or timezone.now()
    QueuedTask.objects.filter(sent_at__lt=now - QUEUED_TASK_KEEP).delete()
    due = QueuedTask.objects.filter(
        sent_at__isnull=True, created_at__lt=now - settings.TASK_REDISPATCH_AFTER
    )
    ids = list(due.order_by("pk").values_list("pk", flat=True)[:limit])
    if not ids or queue_depth() is None:  # nothing to send, or the broker is still down
        return 0
    sent = 0
    for pk in ids:
        with transaction.atomic():
            queued = (
                QueuedTask.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, sent_at__isnull=True)
                .first()
            )
            if queued is None:
                continue
            if not queued_task_send(queued=queued):
                break  # the broker went away again: the next round resumes
            sent += 1
    return sent


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
    try:
        return queue_lengths().get(app.conf.task_default_queue, 0)
    except (*BROKER_ERRORS, RedisError):
        return None
    except Exception:  # a transport that cannot count its queue
        logger.exception("could not read the task queue's depth")
        return None


def redispatch_unclaimed(runs, name: str, *, limit: int = 500) -> int:
    """Send the task named `name` again, with the run's id, for runs (a queryset of queued
    runs old enough to have started) whose message was lost, typically because the broker
    was down when they were queued. Only when the queue is empty: a queue with messages
    means the workers are busy, not that the message is lost. Returns how many were
    sent."""
    ids = list(runs.order_by("pk").values_list("pk", flat=True)[:limit])
    if not ids or queue_depth() != 0:
        return 0
    return sum(1 for pk in ids if enqueue(name, pk))
