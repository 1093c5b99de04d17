"""Memory benchmark: what the portal's processes hold idle, right after start-up.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/memory.py [--write-results]

Starts, one after the other, as deploy/ runs them:
- the floor: `python -c "import django; django.setup()"` with the portal's settings;
- a Celery worker as deploy/ starts it, `python -m portal.worker --pool=solo`, on its
  own queue (one process: the one that executes tasks), waited for until it says "ready";
- the same worker as deploy/systemd runs it (prefork), with --concurrency 1: the parent
  and its one child;
- the solo worker started by Celery's own command line, `celery -A portal worker`, for
  comparison (that program imports click_repl and prompt_toolkit for its shells);
- gunicorn with deploy/gunicorn.conf.py (WEB_CONCURRENCY=1: the master and one worker,
  preloaded and warmed up as in production), waited for until /healthz answers, then
  one request to /healthz;
- the same gunicorn with GUNICORN_PRELOAD=0 (each worker loads and warms the portal
  itself: what bench/serving.py's plain `gunicorn portal.wsgi -w 1` measures).

For each process it prints RSS (what `ps` and bench/checks.py's VmHWM count: every
page it touches, shared or not), PSS (shared pages divided among the processes sharing
them) and USS (pages only it holds: what ending it would free). A preloaded gunicorn's
worker shares the master's pages copy-on-write, so its RSS counts the whole application
while its USS is what each extra worker costs. Nothing is written to the database; the
worker listens on a queue nobody sends to. Prints figures; never fails on a size.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path
from bench.common import children_of, free_port  # noqa: E402

SECTION = "## Memory of idle processes (issue 13)"
GOAL_WORKER_MB = 90
GOAL_WEB_MB = 200
SETTLE_SECONDS = 3.0


def memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of a process, in MB (from /proc/<pid>/smaps_rollup)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    uss = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"] / 1024, "pss": fields["Pss"] / 1024, "uss": uss / 1024}


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", "insecure-bench-only-key")
    env.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def wait_for(process: subprocess.Popen, log: Path, ready, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited early:\n{log.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.2)
    stop(process)
    sys.exit(f"{what} was not ready within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure_floor() -> dict[str, float]:
    code = (
        "import django, os, sys; django.setup(); "
        "sys.stdout.write(open(f'/proc/{os.getpid()}/smaps_rollup').read())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = {}
    for line in out.splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    uss = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"] / 1024, "pss": fields["Pss"] / 1024, "uss": uss / 1024}


def measure_worker(workdir: Path, pool: str, *, cli: bool = False) -> dict[str, dict[str, float]]:
    """A worker as deploy/ starts it (`python -m portal.worker`), or with `cli` through
    Celery's own command line (`celery -A portal worker`)."""
    log = workdir / f"worker-{pool}-{int(cli)}.log"
    entry = ["celery", "-A", "portal", "worker"] if cli else ["portal.worker"]
    args = [sys.executable, "-m", *entry, "--loglevel=INFO"]
    args += ["-Q", "memory-bench", "-n", f"memory-bench-{pool}-{os.getpid()}@%h"]
    args += ["--pool=solo"] if pool == "solo" else ["--pool=prefork", "--concurrency=1"]
    with open(log, "w") as out:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=environment(CELERY_METRICS_PORT=""),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(process, log, lambda: " ready." in log.read_text(), f"celery ({pool})")
            time.sleep(SETTLE_SECONDS)
            figures = {"worker": memory_mb(process.pid)}
            if pool != "solo":
                children = children_of(process.pid)
                if children:
                    figures["child"] = memory_mb(children[0])
            return figures
        finally:
            stop(process)


def measure_web(workdir: Path, preload: bool) -> dict[str, dict[str, float]]:
    log = workdir / f"gunicorn-preload-{int(preload)}.log"
    port = free_port()
    env = environment(
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_PROXY_SSL_HEADER="1",
        WEB_CONCURRENCY="1",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_PRELOAD="1" if preload else "0",
        GUNICORN_MAX_REQUESTS="0",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    args = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "portal.wsgi"]

    def answers() -> bool:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-Proto": "https"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                response.read()
                return True
        except OSError:
            return False

    with open(log, "w") as out:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(process, log, answers, f"gunicorn (preload {preload})")
            time.sleep(SETTLE_SECONDS)
            workers = children_of(process.pid)
            if len(workers) != 1:
                sys.exit(f"expected one gunicorn worker, found {workers}")
            return {"master": memory_mb(process.pid), "worker": memory_mb(workers[0])}
        finally:
            stop(process)


def _row(label: str, m: dict[str, float], floor: dict[str, float]) -> str:
    return (
        f"| {label} | {m['rss']:.0f} | {m['pss']:.0f} | {m['uss']:.0f} "
        f"| {m['rss'] / floor['rss']:.2f} |"
    )


def report(figures: dict) -> str:
    floor = figures["floor"]
    lines = [
        "| process | RSS MB | PSS MB | USS MB | RSS / floor |",
        "|---|---|---|---|---|",
        _row('floor: `python -c "import django; django.setup()"`', floor, floor),
        _row("`celery -A portal worker --pool=solo`", figures["solo-cli"]["worker"], floor),
        _row("`python -m portal.worker --pool=solo`", figures["solo"]["worker"], floor),
        _row("portal.worker, prefork --concurrency 1: parent", figures["prefork"]["worker"], floor),
    ]
    if "child" in figures["prefork"]:
        lines.append(_row("celery prefork: its child", figures["prefork"]["child"], floor))
    for preload in (True, False):
        web = figures[f"web-{int(preload)}"]
        label = "preloaded (deploy default)" if preload else "GUNICORN_PRELOAD=0"
        lines.append(_row(f"gunicorn {label}: master", web["master"], floor))
        lines.append(_row(f"gunicorn {label}: worker", web["worker"], floor))
    solo = figures["solo"]["worker"]["rss"]
    web = figures["web-0"]["worker"]["rss"]
    lines += [
        "",
        f"Goal, an idle worker <= {GOAL_WORKER_MB} MB RSS: "
        + ("met" if solo <= GOAL_WORKER_MB else "missed")
        + f" ({solo:.0f} MB, --pool=solo).",
        f"Goal, an idle web worker <= {GOAL_WEB_MB} MB RSS: "
        + ("met" if web <= GOAL_WEB_MB else "missed")
        + f" ({web:.0f} MB, a worker that loads the portal itself, as"
        " bench/serving.py --no-preload runs it;"
        f" preloaded: {figures['web-1']['worker']['rss']:.0f} MB RSS of which"
        f" {figures['web-1']['worker']['uss']:.0f} MB its own).",
    ]
    load = os.getloadavg()
    lines.append(f"Load average at the end: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write-results", action="store_true", help="update RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memorybench-") as workdir:
        work = Path(workdir)
        figures = {"floor": measure_floor()}
        print(f"floor {figures['floor']['rss']:.0f} MB RSS", flush=True)
        for pool in ("solo", "prefork"):
            figures[pool] = measure_worker(work, pool)
            print(f"celery {pool}: {figures[pool]}", flush=True)
        figures["solo-cli"] = measure_worker(work, "solo", cli=True)
        print(f"celery solo, Celery's command line: {figures['solo-cli']}", flush=True)
        for preload in (True, False):
            figures[f"web-{int(preload)}"] = measure_web(work, preload)
            print(f"gunicorn preload={preload}: {figures[f'web-{int(preload)}']}", flush=True)
    text = report(figures)
    print()
    print(text)
    if args.write_results:
        common.write_results(
            SECTION,
            f"{date.today().isoformat()}, `bench/memory.py` (each process idle "
            f"{SETTLE_SECONDS:.0f} s after it is ready; {os.cpu_count()} CPUs).\n\n{text}",
        )


if __name__ == "__main__":
    main()
