"""`make run` starts the web server, a Celery worker and beat with `manage.py runstack`;
Ctrl-C (SIGINT) stops every process it started. What a newcomer needs comes last: the
address and demo logins after the worker's start-up output, a hint line to copy, no line
per static file, and the portal's own 404 page under DEBUG=1 (no route listing)."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from portal.management.commands.runstack import show_line
from tests.conftest import ROOT, require_service, subprocess_env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.django_db(transaction=True)
def test_runstack_serves_and_ctrl_c_stops_everything(media_root, tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql":
        # The test database of SQLite lives in memory: other processes cannot share it.
        require_service("PostgreSQL", "the started processes need a shared test database")
    port = _free_port()
    env = subprocess_env(media_root)
    env["DEBUG"] = "1"
    env["NATS_URL"] = ""  # as on a bare machine: runstack starts its own NATS server
    log_path = tmp_path / "runstack.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runstack", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/admin/login/", timeout=2
                ) as r:
                    status = r.status
            except OSError:
                time.sleep(0.5)
        assert status == 200, log_path.read_text()
        children = _children(process.pid)
        assert len(children) == 6, (
            f"expected nats-server, web, worker, beat, the SQL endpoint and the demo's "
            f"orders: {children}"
        )
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/static/css/portal.css", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"{base}/login/", timeout=5) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/no-such-page/", timeout=5)
        assert missing.value.code == 404
        not_found = missing.value.read().decode()
        assert "We can’t find that page" in not_found
        assert "Using the URLconf" not in not_found and "DEBUG = True" not in not_found

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "Ctrl-C stops" not in log_path.read_text():
            time.sleep(0.5)
        time.sleep(1)  # the web server's lines of the requests above
        output = log_path.read_text()
        assert "Ctrl-C stops" in output, output
        # The banner after the worker's and the web server's start-up output, ending on
        # the hint line.
        ready = re.search(r"celery@\S+ ready\.", output)
        assert ready, output
        banner_at = output.index("Demo logins")
        assert banner_at > ready.start(), output
        assert banner_at > output.index("Starting development server at"), output
        hint = next(line for line in output.splitlines() if "Ctrl-C stops" in line)
        assert f"http://127.0.0.1:{port}/" in hint and "portal-demo" in hint
        assert f"http://127.0.0.1:{port}/" in output[banner_at - 200 :]
        # Pages are logged, static files are not.
        assert '"GET /login/' in output, output
        # The local NATS server, and the demo's checkout publishing on it.
        assert "Publishing orders on sales.live-orders" in output, output
        assert "/static/" not in output, output

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        assert not [pid for pid in children if _alive(pid)], "a child outlived Ctrl-C"
    finally:
        if process.poll() is None:
            process.kill()
        for pid in _children(process.pid):
            os.kill(pid, signal.SIGKILL)


def test_housekeeping_lines_are_left_out_and_real_work_is_shown():
    beat = "beat   | [2026-12-05 05:49:55,653: INFO/MainProcess] Scheduler: Sending due task "
    worker = "worker | [2026-12-05 05:49:55,925: INFO/ForkPoolWorker-1] Task "
    assert not show_line(beat + "queued-tasks-reaper (portal.tasks.queued_tasks_reaper)")
    assert not show_line(worker + "portal.tasks.queued_tasks_reaper[d0d9f725-10fc] received")
    assert not show_line(
        worker + "sharing.export_tasks.export_runs_pruner[40a0c203] succeeded in 0.006s: 0"
    )
    # The event consumers' catch-up runs every few seconds are housekeeping too.
    assert not show_line(beat + "webhooks-fan-out (sharing.webhooks.tasks.webhooks_fan_out)")
    assert not show_line(
        worker + "sharing.events.tasks.events_publish_nats[ea989333] succeeded in 0.007s: 0"
    )
    assert not show_line(worker + "sharing.lineage.tasks.openlineage_send[9e67] received")
    assert show_line(worker + "sharing.webhooks.tasks.webhook_deliver[1a2b] failed: boom")
    assert show_line(worker + "products.tasks.check_run[00673b68] succeeded in 0.45s: None")
    assert show_line(beat + "checks-run-scheduled (products.tasks.checks_run_scheduled)")
    assert show_line(worker + "products.tasks.check_run_reaper[1769001c] failed: boom")
