"""What the load balancer, Prometheus and the log shipper rely on: /healthz and /readyz
(naming the dependency that failed), /metrics for allowed scrapers only (request counts,
queue lengths from the broker), the security headers of every page, request ids, and JSON
log lines with LOG_FORMAT=json."""

import json
import os
import subprocess
import sys

import pytest
import redis
from django.test import Client

from portal.celery import app as celery_app
from tests.conftest import ROOT, require_service
from tests.portal.helpers import metric_value, run_command

pytestmark = pytest.mark.django_db


# --- health -------------------------------------------------------------------------------


def test_healthz_answers_without_a_session_a_host_check_or_https(settings):
    settings.SECURE_SSL_REDIRECT = True  # as in production: the probe speaks plain HTTP
    response = Client().get("/healthz", HTTP_HOST="10.1.2.3:8000")  # not in ALLOWED_HOSTS
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "Set-Cookie" not in response and "Content-Security-Policy" not in response


def test_readyz_checks_the_database_the_cache_and_the_broker(settings):
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


def test_readyz_names_the_broker_when_it_is_unreachable(monkeypatch):
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok" and body["checks"]["cache"] == "ok"
    assert body["checks"]["broker"].startswith("failed (")


def test_readyz_names_the_cache_when_it_is_unreachable(settings):
    """The configured cache backend, pointed where nothing listens (a backend that turns
    errors into misses fails the check too: what it wrote does not come back)."""
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        require_service("Redis", "REDIS_URL is not set: the cache is not Redis")
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = Client().get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok" and checks["broker"] == "ok"
    assert checks["cache"].startswith("failed (")


def test_readyz_names_the_database_when_it_is_unreachable():
    """In a process of its own whose DATABASE_URL points where nothing listens."""
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/readyz');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    result = run_command(
        sys.executable,
        "-c",
        script,
        DATABASE_URL="postgres://postgres@127.0.0.1:1/nothing",
        DJANGO_SETTINGS_MODULE="portal.settings",
        SECURE_SSL_REDIRECT="0",
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    assert answer["body"]["checks"]["database"] == "failed (OperationalError)"
    assert answer["body"]["checks"]["cache"] == "ok"


def test_health_endpoints_take_only_get():
    assert Client().post("/readyz").status_code == 405


# --- metrics ------------------------------------------------------------------------------


def test_metrics_are_refused_outside_the_allowed_networks_without_the_token(settings):
    settings.METRICS_TOKEN = "scrape-secret"
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 403
    wrong = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    right = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer scrape-secret"
    )
    assert right.status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_metrics_count_requests_by_view_and_read_queue_lengths_from_the_broker(
    redis_broker_url, outsider
):
    # A queue no test worker consumes, routed like a real one, with three messages.
    queue = f"metrics-probe-{os.getpid()}"
    routes = celery_app.conf.task_routes
    celery_app.conf.task_routes = {"probe.task": {"queue": queue}}
    for _ in range(3):
        celery_app.send_task("probe.task", queue=queue)
    broker = redis.Redis.from_url(redis_broker_url)
    try:
        client = Client()
        client.force_login(outsider)
        before = metric_value(
            client.get("/metrics").content.decode(),
            "django_http_requests_total_by_view_transport_method_total",
            view="products:domain-list",
            method="GET",
        )
        for _ in range(2):
            assert client.get("/domains/").status_code == 200
        text = client.get("/metrics").content.decode()
    finally:
        broker.delete(queue)
        celery_app.conf.task_routes = routes
    after = metric_value(
        text,
        "django_http_requests_total_by_view_transport_method_total",
        view="products:domain-list",
        method="GET",
    )
    assert after - (before or 0) == 2
    assert metric_value(text, "portal_celery_queue_length", queue=queue) == 3
    assert metric_value(text, "portal_celery_queue_length", queue="celery") is not None
    assert metric_value(text, "portal_celery_broker_up") == 1
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in text


def test_probes_and_scrapes_are_not_counted_as_requests():
    client = Client()
    name = "django_http_requests_before_middlewares_total"
    before = metric_value(client.get("/metrics").content.decode(), name) or 0
    for path in ("/healthz", "/readyz", "/healthz", "/metrics"):
        client.get(path)
    assert metric_value(client.get("/metrics").content.decode(), name) == before
    client.get("/login/")
    assert metric_value(client.get("/metrics").content.decode(), name) == before + 1


# --- headers, request ids, logs --------------------------------------------------------


def test_pages_carry_the_content_security_policy(client, outsider):
    client.force_login(outsider)
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ):
        assert directive in policy
    assert "unsafe" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_request_id_is_answered_and_a_valid_one_from_the_balancer_kept(client):
    made = client.get("/login/")["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/login/")["X-Request-ID"]
    kept = client.get("/login/", HTTP_X_REQUEST_ID="lb-7f3a9c2e1d")["X-Request-ID"]
    assert kept == "lb-7f3a9c2e1d"
    replaced = client.get("/login/", HTTP_X_REQUEST_ID="<script>")["X-Request-ID"]
    assert replaced != "<script>" and len(replaced) == 32


def test_json_logs_carry_the_request_id():
    script = (
        "import django, logging; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/login/', HTTP_X_REQUEST_ID='req-abcdef123');"
        "logging.getLogger('portal.test').warning('after the request')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **os.environ,
            "LOG_FORMAT": "json",
            "ALLOWED_HOSTS": "testserver",
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "SECURE_SSL_REDIRECT": "0",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    request_line = next(line for line in lines if line["logger"] == "portal.request")
    assert request_line["request_id"] == "req-abcdef123"
    assert request_line["method"] == "GET" and request_line["path"] == "/login/"
    assert request_line["status"] == 200 and request_line["duration_ms"] >= 0
    assert {"time", "level", "message"} <= set(request_line)
    after = next(line for line in lines if line["message"] == "after the request")
    assert after["level"] == "WARNING" and after["request_id"] == ""
