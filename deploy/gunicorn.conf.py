"""gunicorn settings of a portal web machine: `gunicorn -c deploy/gunicorn.conf.py portal.wsgi`.

Every value can be changed from the environment (docs/deploy.md). Threads per worker let a
long streamed download (a CSV of millions of rows) and quick page views share a worker;
the timeout is long because a sync worker serving such a stream is silent towards the
arbiter for the whole download.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# Database connections: each worker process has one pool (portal/settings.py) of at most
# DB_POOL_MAX_SIZE connections; a thread holds one at most, so the pool is as large as the
# threads unless set (docs/deploy.md, "Database connections").
if not os.environ.get("DB_POOL_MAX_SIZE"):
    os.environ["DB_POOL_MAX_SIZE"] = str(threads)
# A request (a download, an export) may take this long; raise it with bigger downloads.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 900)
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 60)
keepalive = 5  # seconds; the load balancer keeps connections to us open
# Load the application (and, in portal/wsgi.py, every view) once in the master: workers
# start ready to serve, share that memory, and one recycled below answers at once
# instead of spending a second importing on its first request.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") == "1"
# Recycle workers now and then: bounded memory over weeks of uptime.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS") or 2000)
max_requests_jitter = 200
# The portal logs one line per request itself (LOG_FORMAT=json, with the request id);
# gunicorn's own messages go to stderr.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "portal-web"


def _prometheus_directory_emptied() -> None:
    """The master owns PROMETHEUS_MULTIPROC_DIR: start it empty (files of an earlier run
    would be summed into this one's metrics). Here, when gunicorn reads this file: before
    preload_app loads the application, whose metrics open their files in it."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.unlink(os.path.join(path, name))


_prometheus_directory_emptied()


def pre_fork(server, worker):
    """Workers must not inherit the master's database connections or pool (preload_app
    may have opened one while loading the application): close them before forking."""
    import sys

    if "django.apps" not in sys.modules:
        return
    from django.apps import apps

    if not apps.ready:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
        # `connection.pool` would create a pool: look whether one was made.
        if connection.alias in getattr(connection, "_connection_pools", {}):
            connection.close_pool()


def child_exit(server, worker):
    """A worker that exits leaves its metric files for the others' totals; mark it dead."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# No runtime control socket (gunicorn 25+): systemd signals the master, and several
# gunicorns on one machine would share its default path.
control_socket_disable = True
