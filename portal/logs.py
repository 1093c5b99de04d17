"""Structured logs: a request id per request (and per task it enqueues), carried into
every log record; JSON lines on stdout when LOG_FORMAT=json (see settings.LOGGING).

- RequestIdMiddleware takes the load balancer's X-Request-ID when it looks like one
  (nginx: `proxy_set_header X-Request-ID $request_id;`) or makes one, answers it in the
  X-Request-ID header, and, with LOG_FORMAT=json, logs one line per request.
- ContextFilter adds `request_id` (and in workers `task_id`, `task_name`) to records.
- Celery: a task enqueued during a request carries the request id in its headers; the
  worker logs the task's lines under it (portal.celery_ops connects the signals).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from celery._state import get_current_task
from django.conf import settings

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")

request_logger = logging.getLogger("portal.request")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return request_id_var.get()


class ContextFilter(logging.Filter):
    """Adds request_id, task_id and task_name to every record (empty when none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        task_id, task_name = "", ""
        try:
            task = get_current_task()
            if task is not None and task.request.id:
                task_id, task_name = task.request.id, task.name
        except Exception:  # noqa: BLE001 - logging must never fail
            pass
        if not getattr(record, "task_id", ""):
            record.task_id = task_id
        if not getattr(record, "task_name", ""):
            record.task_name = task_name
        return True


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_request_id()
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            if settings.LOG_REQUESTS:
                user = getattr(request, "user", None)
                request_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "user_id": user.pk if user is not None and user.is_authenticated else None,
                        "remote_addr": request.META.get("REMOTE_ADDR", ""),
                    },
                )
            return response
        finally:
            request_id_var.reset(token)
