"""Prometheus metrics: who may scrape, what /metrics answers, and the Celery side.

- Web: django-prometheus counts requests and their latency by view name and method
  (bounded labels; /healthz, /readyz and /metrics themselves are answered before its
  middleware, see portal.ops). /metrics adds `portal_celery_queue_length`, the number of
  messages waiting in each Celery queue, read from the broker at scrape time.
- Workers: `portal_celery_task_duration_seconds{task, state}` (task_prerun/postrun), served
  by each worker on CELERY_METRICS_PORT (a tiny HTTP server in the worker's main process).
- Several processes per machine (gunicorn workers, prefork children): set
  PROMETHEUS_MULTIPROC_DIR, one empty directory per gunicorn master or Celery worker;
  each scrape then sums its processes' files (prometheus_client's multiprocess mode).
- Protection: a scrape is answered only with `Authorization: Bearer <METRICS_TOKEN>` or
  from an address in METRICS_ALLOWED_NETWORKS (default: this machine only).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
from django.conf import settings
from kombu.exceptions import ChannelError
from kombu.transport.redis import Channel
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from portal.proxy import address_in, parse_networks

logger = logging.getLogger(__name__)

TASK_DURATION = Histogram(
    "portal_celery_task_duration_seconds",
    "Wall time of Celery tasks, by task name and final state.",
    ["task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)


# --- who may scrape ----------------------------------------------------------------------


def scrape_allowed(*, remote_addr: str, authorization: str) -> bool:
    """A bearer token equal to METRICS_TOKEN, or a client in METRICS_ALLOWED_NETWORKS."""

    token = settings.METRICS_TOKEN
    if token and authorization.startswith("Bearer "):
        given = authorization.removeprefix("Bearer ").strip()
        if hmac.compare_digest(given.encode(), token.encode()):
            return True
    return address_in(remote_addr, parse_networks(settings.METRICS_ALLOWED_NETWORKS))


# --- what a scrape answers ---------------------------------------------------------------


def _multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class _ProcessRegistry(Collector):
    """This process's own metrics (when not in multiprocess mode)."""

    def collect(self):
        yield from REGISTRY.collect()


def queue_lengths() -> dict[str, int]:
    """Messages waiting per Celery queue. Redis: LLEN of the queue's list (and its
    priority lists, as kombu's Redis transport names them); any other transport (AMQP,
    the embedded filesystem broker): a passive declare. Raises the broker's error when it
    cannot be reached."""
    # Not at the top: portal.celery loads this module (through portal.celery_ops).
    from portal.celery import app

    names = celery_queue_names()
    url = app.conf.broker_url or ""
    if url.startswith(("redis://", "rediss://")):
        options = app.conf.broker_transport_options or {}
        steps = [0, *sorted(set(options.get("priority_steps", [3, 6, 9])))]
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            pipe = client.pipeline()
            keys = {}
            for name in names:
                keys[name] = [name if step == 0 else f"{name}{Channel.sep}{step}" for step in steps]
                for key in keys[name]:
                    pipe.llen(key)
            counts = iter(pipe.execute())
            return {name: sum(next(counts) for _ in keys[name]) for name in names}
        finally:
            client.close()
    # Any other transport (AMQP, the embedded filesystem broker...): a passive declare.
    lengths = {}
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)
        channel = connection.default_channel
        for name in names:
            try:
                lengths[name] = channel.queue_declare(queue=name, passive=True).message_count
            except ChannelError:  # a queue not declared yet holds nothing
                lengths[name] = 0
                channel = connection.channel()
    return lengths


def celery_queue_names() -> list[str]:
    # Not at the top: portal.celery loads this module (through portal.celery_ops).
    from portal.celery import app

    names = {app.conf.task_default_queue}
    for queue in app.conf.task_queues or ():
        names.add(queue.name)
    routes = app.conf.task_routes or {}
    if isinstance(routes, dict):
        for route in routes.values():
            if isinstance(route, dict) and route.get("queue"):
                names.add(str(route["queue"]))
    return sorted(names)


class QueueLengthCollector(Collector):
    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "portal_celery_queue_length",
            "Messages waiting in each Celery queue (read from the broker at scrape time).",
            labels=["queue"],
        )
        up = GaugeMetricFamily(
            "portal_celery_broker_up", "Whether the broker answered the last scrape."
        )
        try:
            for name, length in queue_lengths().items():
                family.add_metric([name], length)
            up.add_metric([], 1)
        except Exception:  # noqa: BLE001 - a scrape must answer even when the broker does not
            logger.warning("metrics: the broker did not answer the queue length query")
            up.add_metric([], 0)
        yield family
        yield up


def metrics_payload(*, include_queues: bool) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if _multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    if include_queues:
        registry.register(QueueLengthCollector())
    return generate_latest(registry)


# --- Celery: task durations and the worker's exporter ----------------------------------

_started: dict[str, float] = {}


def task_started(task_id: str) -> None:
    _started[task_id] = time.perf_counter()


def task_finished(task_id: str, task_name: str, state: str | None) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        TASK_DURATION.labels(task=task_name, state=(state or "UNKNOWN").lower()).observe(
            time.perf_counter() - started
        )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


class _ThreadingServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request, client_address):
        threading.Thread(target=self._handle, args=(request, client_address), daemon=True).start()

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def worker_metrics_app(environ, start_response):
    """WSGI app of a worker's exporter: /metrics (protected like the web's)."""
    if environ.get("PATH_INFO", "/") not in ("/metrics", "/metrics/"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not found: the metrics are at /metrics\n"]
    if not scrape_allowed(
        remote_addr=environ.get("REMOTE_ADDR", ""),
        authorization=environ.get("HTTP_AUTHORIZATION", ""),
    ):
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"Metrics need a bearer token (METRICS_TOKEN) or an allowed network.\n"]
    body = metrics_payload(include_queues=False)
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [body]


def start_worker_exporter(*, address: str, port: int):
    server = make_server(
        address,
        port,
        worker_metrics_app,
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True)
    thread.start()
    logger.info("worker metrics on http://%s:%s/metrics", address or "0.0.0.0", port)
    return server


def reset_multiprocess_dir() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR at the start of the process group that owns it
    (the gunicorn master, a Celery worker): files of earlier runs would be summed in."""
    path = _multiprocess_dir()
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
