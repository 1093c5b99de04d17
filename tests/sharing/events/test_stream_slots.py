"""A closed tab gives its event-stream slot back within seconds, on the servers the portal
runs under: gunicorn (the client's socket is looked at while the stream waits) and the dev
and test server (the keep-alive that cannot be written ends it). Before, a stream nobody
read held its slot until the second failed keep-alive, 15-30 s, and a person clicking
through pages (or a browser test visiting many) filled a process's slots: the next page's
stream was refused with 503."""

from __future__ import annotations

import http.client
import socket
import time

import pytest
from django.db import connection
from knox.models import AuthToken

from sharing.events.sse import SLOTS, client_gone_probe
from tests.conftest import require_service, subprocess_env, wait_for
from tests.processes import deployed_gunicorn, free_port, wait_until_ready

URL = "/api/v1/events/stream/"
# As a TLS-terminating load balancer passes it on (gunicorn runs with SECURE_PROXY_SSL_HEADER).
FORWARDED = {"X-Forwarded-Proto": "https"}


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}", "Accept": "text/event-stream", **FORWARDED}


def _open_stream(port: int, token: str) -> http.client.HTTPConnection:
    """A stream opened over a real connection, its headers read; the caller closes it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", URL, headers=_headers(token))
    response = conn.getresponse()
    assert response.status == 200, (response.status, response.read()[:300])
    assert response.readline().startswith(b"retry:")
    return conn


def _stream_status(port: int, token: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", URL, headers=_headers(token))
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_probe_tells_a_closed_client_from_a_quiet_one():
    assert client_gone_probe({})() is False  # no socket shown (runserver): keep-alives decide
    server_side, client_side = socket.socketpair()
    with server_side:
        gone = client_gone_probe({"gunicorn.socket": server_side})
        assert gone() is False  # open and quiet
        client_side.sendall(b"GET / HTTP/1.1\r\n")  # sent something: still there
        assert gone() is False
        client_side.close()
        server_side.recv(64)
        assert gone() is True


@pytest.mark.django_db(transaction=True)
def test_a_closed_stream_gives_its_slot_back_under_the_test_server(live_server, owner):
    _, token = AuthToken.objects.create(owner)
    port = int(live_server.url.rsplit(":", 1)[1])
    before = SLOTS.open
    conn = _open_stream(port, token)
    wait_for(lambda: SLOTS.open == before + 1, timeout=10, message="the stream took no slot")
    conn.close()
    wait_for(
        lambda: SLOTS.open == before,
        timeout=8,  # two keep-alives of 2 s, with room; 15-30 s before
        message=f"the closed stream still holds its slot ({SLOTS.open} open)",
    )


@pytest.mark.django_db(transaction=True)
def test_a_closed_stream_gives_its_slot_back_under_gunicorn(owner, media_root, tmp_path):
    """deploy/gunicorn.conf.py, one process, one stream slot: a closed stream's slot is free
    for the next one at once, though keep-alives come only every 15 s."""
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "gunicorn needs a shared test database")
    _, token = AuthToken.objects.create(owner)
    port = free_port()
    env = subprocess_env(media_root)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_PROXY_SSL_HEADER="1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="4",
        SSE_MAX_CONNECTIONS="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    web = deployed_gunicorn(env=env, log_dir=tmp_path).start()
    try:
        wait_until_ready(web, port=port)
        first = _open_stream(port, token)
        assert _stream_status(port, token) == 503  # the one slot is taken
        first.close()
        deadline = time.monotonic() + 5  # the probe looks every second; 15-30 s before
        while _stream_status(port, token) != 200:
            assert time.monotonic() < deadline, f"the slot never came back:\n{web.log()}"
            time.sleep(0.2)
    finally:
        web.stop()
