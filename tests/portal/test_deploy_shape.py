"""The multi-machine shape on one machine: two web processes (gunicorn with
deploy/gunicorn.conf.py, as production runs them: DEBUG=0, behind a TLS-terminating
balancer that sets X-Forwarded-Proto) and two Celery workers (prefork, JSON logs, their
own metrics exporters), sharing only PostgreSQL and Redis.

A domain owner signs in through web 1; their session works on web 2, where they start a
check run through the API; polling either web process shows it finish. Exactly one run
and one result exist, exactly one of the two workers ran the task (its log and its
metrics say so, the other's say nothing), the request id of the API call is in that
worker's log lines, and both workers are still up."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from products.choices import CheckOutcome, CheckRunStatus
from products.models import CheckRun
from products.trust.services.checks import check_create
from tests.conftest import require_service, subprocess_env, wait_for
from tests.factories import PASSWORD, FilePortFactory, ProductFactory
from tests.portal.helpers import metric_value
from tests.processes import Process, deployed_gunicorn, free_port

METRICS_TOKEN = secrets.token_urlsafe(24)


def deploy_broker_url(url: str) -> str:
    """A Redis database of its own (the broker's + 2), so that the session's test worker,
    which consumes the usual one, cannot take this test's task."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return parts._replace(path=f"/{(db + 2) % 16}").geturl()


class Browser:
    """A client that keeps cookies, speaking to whichever web process it is told to, as a
    browser behind one balancer would (X-Forwarded-Proto: https, Origin of the page)."""

    def __init__(self):
        self.cookies: dict[str, str] = {}

    def request(self, port: int, method: str, path: str, *, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        sent = {
            "Host": f"127.0.0.1:{port}",
            "X-Forwarded-Proto": "https",
            "Origin": f"https://127.0.0.1:{port}",
            "Referer": f"https://127.0.0.1:{port}{path}",
            **(headers or {}),
        }
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for key, morsel in cookie.items():
                assert morsel["secure"], f"cookie {key} is not Secure"
                self.cookies[key] = morsel.value
        connection.close()
        return response, data


def http_ok(port: int, path: str, headers=None) -> tuple[int, bytes]:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""


@pytest.fixture
def orders(domain, owner, media_root):
    """sales.orders: a Parquet port of 4 emails, 2 missing, and a not-null check."""
    path = media_root / "deploy" / "emails.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"email": pa.array(["a@x", None, None, "d@x"], pa.string())}), path)
    product = ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])
    port = FilePortFactory(product=product, slug="emails", file_path="deploy/emails.parquet")
    check_create(port=port, by=owner, name="email set", kind="not_null", column="email")
    return product, port


@pytest.fixture
def stack(redis_broker_url, media_root, tmp_path, django_db_blocker):
    """Two gunicorn web processes and two Celery workers, as deploy/ runs them."""
    if not os.environ.get("REDIS_URL", "").startswith("redis://"):
        require_service("Redis", "REDIS_URL does not point at Redis")
    with django_db_blocker.unblock():
        base = subprocess_env(media_root)
    broker = deploy_broker_url(redis_broker_url)
    # Celery prefers CELERY_BROKER_URL from the environment to its configuration: the
    # test's own app talks to the deploy broker through an explicit connection.
    probe = Probe(broker)
    probe.purge()
    base.update(
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_PROXY_SSL_HEADER="1",
        CELERY_BROKER_URL=broker,
        LOG_FORMAT="json",
        METRICS_TOKEN=METRICS_TOKEN,
        METRICS_ALLOWED_NETWORKS="",
    )
    base.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    processes: list[Process] = []
    try:
        for name in ("web-1", "web-2"):
            port = free_port()
            env = dict(
                base,
                PORT=str(port),
                WEB_CONCURRENCY="2",
                GUNICORN_THREADS="2",
                PROMETHEUS_MULTIPROC_DIR=str(tmp_path / f"metrics-{name}"),
            )
            web = deployed_gunicorn(name=name, env=env, log_dir=tmp_path, port=port)
            processes.append(web.start())
        for name in ("worker-a", "worker-b"):
            port = free_port()
            env = dict(
                base,
                CELERY_METRICS_PORT=str(port),
                CELERY_METRICS_ADDRESS="127.0.0.1",
                PROMETHEUS_MULTIPROC_DIR=str(tmp_path / f"metrics-{name}"),
            )
            command = [
                sys.executable, "-m", "celery", "-A", "portal", "worker",
                "--pool=prefork", "--concurrency=1", "--without-gossip", "--without-mingle",
                "-n", f"{name}@%h",
            ]  # fmt: skip
            processes.append(Process(name, command, env=env, log_dir=tmp_path, port=port).start())
        webs, workers = processes[:2], processes[2:]

        def everyone_ready():
            for process in processes:
                if not process.running:
                    pytest.fail(f"{process.name} exited early:\n{process.log()}")
            if any(http_ok(web.port, "/readyz")[0] != 200 for web in webs):
                return False
            return probe.workers() >= {"worker-a", "worker-b"}

        deadline = time.monotonic() + 180
        while not everyone_ready():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in processes)
                states = [http_ok(web.port, "/readyz") for web in webs], probe.workers()
                pytest.fail(f"the stack did not come up: {states}\n{logs}")
            time.sleep(1)
        yield {"webs": webs, "workers": workers, "probe": probe}
    finally:
        for process in processes:
            process.stop(timeout=30)
        probe.purge()


class Probe:
    """Pings and purges the workers of one broker, with Celery's command line (in the test
    process CELERY_BROKER_URL names the session's broker, and Celery prefers it)."""

    def __init__(self, url: str):
        self.url = url

    def _celery(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "CELERY_BROKER_URL": self.url}
        return subprocess.run(
            [sys.executable, "-m", "celery", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def workers(self) -> set[str]:
        result = self._celery("inspect", "ping", "--timeout=1", "--json")
        try:
            answers = json.loads(result.stdout or "{}")
        except json.JSONDecodeError:
            return set()
        return {name.split("@")[0] for name in answers}

    def purge(self) -> None:
        self._celery("purge", "-f")


def worker_metrics(process: Process) -> str:
    status, body = http_ok(
        process.port, "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert status == 200, (status, body[:200])
    return body.decode()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_check_run_goes_through_two_web_processes_and_one_of_two_workers(stack, orders, owner):
    product, port = orders
    web1, web2 = stack["webs"]
    browser = Browser()

    # Sign in through web 1.
    response, page = browser.request(web1.port, "GET", "/login/")
    assert response.status == 200
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    form = urlencode(
        {"username": owner.username, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
    )
    response, _ = browser.request(
        web1.port,
        "POST",
        "/login/",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 302, response.status
    assert "sessionid" in browser.cookies
    assert response.getheader("Strict-Transport-Security", "").startswith("max-age=")

    # The same session on web 2 starts a check run through the API.
    response, body = browser.request(
        web2.port,
        "POST",
        f"/api/v1/products/{product.key}/check-runs/",
        body=json.dumps({"port": port.slug}),
        headers={"Content-Type": "application/json", "X-CSRFToken": browser.cookies["csrftoken"]},
    )
    assert response.status == 202, body
    run = json.loads(body)
    request_id = response.getheader("X-Request-ID")
    assert request_id
    run_path = urlsplit(run["url"]).path

    # Poll through both web processes until a worker has finished it.
    polls = 0

    def finished():
        nonlocal polls
        web = (web1, web2)[polls % 2]
        polls += 1
        answer, data = browser.request(web.port, "GET", run_path)
        assert answer.status == 200, data
        state = json.loads(data)
        return state if state["is_finished"] else None

    state = wait_for(finished, timeout=120, interval=0.5, message="the check run never finished")
    assert state["status"] == CheckRunStatus.DONE, state

    # One run, one result, as computed by the worker.
    runs = CheckRun.objects.filter(port=port)
    assert runs.count() == 1
    result = runs.get().results.get()
    assert (result.outcome, result.observed_value) == (CheckOutcome.FAIL, 2)

    # Exactly one worker ran it: its log says the task succeeded, the other's says nothing.
    # (The worker writes the run's result before Celery logs the task's success and
    # observes its duration: wait for those too.)
    def successes():
        return {
            worker.name: [
                line
                for line in worker.json_lines()
                if "products.tasks.check_run[" in line.get("message", "")
                and "succeeded" in line.get("message", "")
            ]
            for worker in stack["workers"]
        }

    wait_for(lambda: any(successes().values()), timeout=30, message="no worker logged the task")
    ran = successes()
    runners = [name for name, lines in ran.items() if lines]
    assert len(runners) == 1, ran
    assert len(ran[runners[0]]) == 1
    runner = next(w for w in stack["workers"] if w.name == runners[0])
    other = next(w for w in stack["workers"] if w.name != runners[0])
    # The task's log lines carry the request id of the API call that queued it.
    task_lines = [line for line in runner.json_lines() if line.get("task_name")]
    assert any(line.get("request_id") == request_id for line in task_lines), task_lines[-5:]

    # And so do their metrics: one check_run observed by the runner, none by the other.
    count = "portal_celery_task_duration_seconds_count"
    wait_for(
        lambda: metric_value(worker_metrics(runner), count, task="products.tasks.check_run"),
        timeout=30,
        message="the runner's metrics never counted the task",
    )
    assert metric_value(worker_metrics(runner), count, task="products.tasks.check_run") == 1
    assert metric_value(worker_metrics(other), count, task="products.tasks.check_run") is None

    # The web processes' metrics sum their gunicorn workers; the API call is counted once.
    status, text = http_ok(
        web2.port, "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert status == 200
    posts = metric_value(
        text.decode(),
        "django_http_requests_total_by_view_transport_method_total",
        view="products-api:product-check-run-list",
        method="POST",
    )
    assert posts == 1
    assert metric_value(text.decode(), "portal_celery_queue_length", queue="celery") == 0
    # Unauthenticated scrapes are refused (no allowed network here).
    assert http_ok(web2.port, "/metrics")[0] == 403

    # Both workers are still up.
    assert stack["probe"].workers() >= {"worker-a", "worker-b"}
