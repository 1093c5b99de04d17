"""Real processes for tests that need them whole: a private Redis or PostgreSQL server
that a test may stop and restart, the web application under gunicorn, Celery workers and
beat. Each writes its output to a log file the failure message shows."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_service, wait_for


def manage(*command: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python manage.py <command>` in a process of its own with `env`; fails the test,
    showing the command's output, when it exits non-zero."""
    done = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Process:
    """One subprocess with its log."""

    def __init__(
        self, name: str, args: list[str], *, env: dict, log_dir: Path, cwd=ROOT, port=None
    ):
        self.name, self.args, self.env, self.cwd, self.port = name, args, env, cwd, port
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        log = open(self.log_path, "a")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of pytest reaches the test, not the child
        )
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def json_lines(self) -> list[dict]:
        """The log's JSON lines (LOG_FORMAT=json), parsed; other lines skipped."""
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return lines

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> None:
        if not self.running:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as when a machine dies."""
        self.stop(signal.SIGKILL)


def redis_server(*, port: int, log_dir: Path) -> Process:
    if shutil.which("redis-server") is None:
        require_service("Redis", "redis-server is not installed")
    return Process(
        f"redis-{port}",
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        env=dict(os.environ),
        log_dir=log_dir,
    )


def start_redis(process: Process, port: int) -> Process:
    process.start()
    wait_for(lambda: port_open(port), timeout=20, message=f"redis did not start:\n{process.log()}")
    return process


def gunicorn(*, env: dict, port: int, log_dir: Path, name: str = "web") -> Process:
    return Process(
        name,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "120",
        ],
        env=env,
        log_dir=log_dir,
    )


def deployed_gunicorn(
    *, env: dict, log_dir: Path, name: str = "gunicorn", port: int | None = None
) -> Process:
    """gunicorn as deploy/ runs it: `gunicorn -c deploy/gunicorn.conf.py portal.wsgi`
    (its address, workers and threads from `env`: PORT, WEB_CONCURRENCY, GUNICORN_THREADS)."""
    command = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "portal.wsgi"]
    return Process(name, command, env=env, log_dir=log_dir, port=port)


def celery_worker(*, env: dict, log_dir: Path, name: str = "worker") -> Process:
    return Process(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{name}-{os.getpid()}@%h",
        ],
        env=env,
        log_dir=log_dir,
    )


def celery_beat(*, env: dict, log_dir: Path, name: str = "beat") -> Process:
    return Process(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "--loglevel=INFO",
            "--pidfile=",
            "--max-interval=5",
        ],
        env=env,
        log_dir=log_dir,
    )


def wait_until_ready(process: Process, *, port: int | None = None, timeout: float = 60) -> None:
    """Until the web process answers on its port, or the worker logs that it is ready."""

    def ready() -> bool:
        if not process.running:
            pytest.fail(f"{process.name} exited early:\n{process.log()}")
        if port is not None:
            return port_open(port)
        return " ready." in process.log()

    wait_for(ready, timeout=timeout, interval=0.3, message=f"{process.name}:\n{process.log()}")


class WebClient:
    """A signed-in person talking to a running server over HTTP (cookies, CSRF), and an
    API client with a token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.token = ""

    def request(self, method: str, path: str, *, data=None, headers=None, timeout=30):
        """(status, headers, body) without raising on 4xx/5xx."""
        body = None
        headers = dict(headers or {})
        if isinstance(data, dict) and headers.get("Content-Type") == "application/json":
            body = json.dumps(data).encode()
        elif isinstance(data, dict):
            body = urllib.parse.urlencode(data).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if self.token:
            headers.setdefault("Authorization", f"Token {self.token}")
        request = urllib.request.Request(
            self.base_url + path, data=body, method=method, headers=headers
        )
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def get(self, path: str):
        return self.request("GET", path)

    def csrf_token(self) -> str:
        return next(c.value for c in self.cookies if c.name == "csrftoken")

    def sign_in(self, username: str, password: str) -> None:
        status, _, body = self.get("/login/")
        assert status == 200, body[:500]
        status, _, body = self.request(
            "POST",
            "/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": self.csrf_token(),
            },
        )
        assert status == 200 and b"Sign out" in body, body[:1000]

    def api_sign_in(self, username: str, password: str) -> None:
        status, _, body = self.request(
            "POST",
            "/api/v1/auth/token/",
            data={"username": username, "password": password},
            headers={"Content-Type": "application/json"},
        )
        assert status == 200, body
        self.token = json.loads(body)["token"]

    def api(self, method: str, path: str, payload: dict | None = None):
        status, headers, body = self.request(
            method, path, data=payload or {}, headers={"Content-Type": "application/json"}
        )
        return status, headers, (json.loads(body) if body else None)


def page_title(body: bytes) -> str:
    found = re.search(rb"<title>(.*?)</title>", body, re.S)
    return found.group(1).decode().strip() if found else ""


def wait_status(client: WebClient, path: str, expected: int = 200, timeout: float = 30):
    def answered():
        status, _, body = client.get(path)
        return body if status == expected else None

    return wait_for(answered, timeout=timeout, interval=0.5, message=f"{path} != {expected}")


def elapsed(start: float) -> float:
    return time.monotonic() - start
