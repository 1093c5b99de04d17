"""Operations hooks of Celery processes (connected by importing this module from
portal.celery): task durations for Prometheus, the worker's metrics exporter, JSON logs
and the request id carried from the web request that enqueued a task."""

from __future__ import annotations

import logging
import logging.config
import os

from celery import signals
from django.conf import settings

from portal.logs import current_request_id, request_id_var
from portal.metrics import (
    reset_multiprocess_dir,
    start_worker_exporter,
    task_finished,
    task_started,
)

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "portal_request_id"


def _logging_from_django_settings(**kwargs) -> None:
    """With LOG_FORMAT=json, workers and beat log through Django's LOGGING (JSON lines on
    stdout, with task ids) instead of Celery's own format. Connecting a receiver to
    setup_logging is how Celery is told to leave logging alone, so it is connected only
    then; in the plain format Celery sets up its logging as before."""

    logging.config.dictConfig(settings.LOGGING)


if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    signals.setup_logging.connect(_logging_from_django_settings)


@signals.before_task_publish.connect
def _carry_request_id(headers=None, **kwargs) -> None:
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@signals.task_prerun.connect
def _task_prerun(task_id=None, task=None, **kwargs) -> None:

    task_started(task_id)
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or (
        (task.request.headers or {}).get(REQUEST_ID_HEADER) if task.request.headers else None
    )
    request_id_var.set(request_id or "")


@signals.task_postrun.connect
def _task_postrun(task_id=None, task=None, state=None, **kwargs) -> None:

    task_finished(task_id, task.name, state)
    request_id_var.set("")


@signals.worker_init.connect
def _worker_init(**kwargs) -> None:
    """In the worker's main process, before its pool starts: empty its metrics directory
    and serve /metrics on CELERY_METRICS_PORT when set."""

    reset_multiprocess_dir()
    port = os.environ.get("CELERY_METRICS_PORT", "")
    if port:
        start_worker_exporter(
            address=os.environ.get("CELERY_METRICS_ADDRESS", "0.0.0.0"),  # noqa: S104
            port=int(port),
        )


@signals.worker_process_shutdown.connect
def _worker_process_shutdown(pid=None, **kwargs) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Lazy: prometheus_client only where metrics are exported.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
