"""Endpoints for the load balancer and Prometheus, answered before any other middleware:

- `GET /healthz` (liveness): the process answers; touches nothing else.
- `GET /readyz` (readiness): the metadata database answers a query, the cache a write
  and read, the Celery broker a connection. 200 when all do; 503 naming the one that
  failed, as JSON. No authentication: the answer names dependencies, never addresses.
- `GET /metrics`: Prometheus text format (portal.metrics), for a bearer token or an
  allowed network only.

Being first in MIDDLEWARE keeps them out of the SSL redirect (a load balancer probes over
plain HTTP), the ALLOWED_HOSTS check (it probes by address), sessions, CSP and the
request metrics (no label per probe).
"""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.db import connections
from django.http import HttpResponse, JsonResponse

from portal.celery import app
from portal.metrics import metrics_payload, scrape_allowed

logger = logging.getLogger(__name__)

BROKER_TIMEOUT = 3.0


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:

    # A key per probe: concurrent probes (several balancers, threads) must not read each
    # other's value and report the cache broken.
    value = uuid.uuid4().hex
    key = f"readyz:probe:{value}"
    cache.set(key, value, timeout=30)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was written")
    cache.delete(key)


def check_broker() -> None:
    with app.connection_for_write() as connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT
        )


CHECKS = {"database": check_database, "cache": check_cache, "broker": check_broker}


def readiness() -> tuple[bool, dict[str, str]]:
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readyz: %s failed: %s: %s", name, exc.__class__.__name__, exc)
            results[name] = f"failed ({exc.__class__.__name__})"
        else:
            results[name] = "ok"
    return all(value == "ok" for value in results.values()), results


def healthz_response() -> HttpResponse:
    return JsonResponse({"status": "ok"})


def readyz_response() -> HttpResponse:
    ready, checks = readiness()
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


def metrics_response(request) -> HttpResponse:
    # Lazy: prometheus_client only where metrics are exported.
    from prometheus_client import CONTENT_TYPE_LATEST

    if not scrape_allowed(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        authorization=request.META.get("HTTP_AUTHORIZATION", ""),
    ):
        return HttpResponse(
            "Metrics need a bearer token (METRICS_TOKEN) or an address in "
            "METRICS_ALLOWED_NETWORKS.\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(metrics_payload(include_queues=True), content_type=CONTENT_TYPE_LATEST)


class OpsEndpointsMiddleware:
    ROUTES = {"/healthz", "/readyz", "/metrics"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Exactly these paths: `/metrics/` (with its slash) is the metrics layer's page.
        path = request.path_info
        if path not in self.ROUTES:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405, content_type="text/plain")
            response["Allow"] = "GET, HEAD"
            return response
        if path == "/healthz":
            response = healthz_response()
        elif path == "/readyz":
            response = readyz_response()
        else:
            response = metrics_response(request)
        response["Cache-Control"] = "no-store"
        return response
