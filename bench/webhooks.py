"""Webhooks: from an event's commit to a local receiver, through the outbox, the fan-out
and a real Celery worker (issue 16).

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_webhooksbench \\
        CELERY_BROKER_URL=redis://127.0.0.1:6379/5 REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/webhooks.py \\
        [--seconds 20] [--rates 50,100,200,400] [--workers 1]

- Its own database (dropped and recreated: its name must contain "bench"), migrated; one
  domain, one published product, one person with one subscription to a receiver thread
  on 127.0.0.1 (WEBHOOKS_ALLOW_PRIVATE_TARGETS=1 for the run).
- `--workers` Celery worker processes (`--pool=solo`, as deploy/ starts them) on
  CELERY_BROKER_URL.
- For each rate: events emitted at that rate for `--seconds`, each in its own
  transaction (`event_emit`, one commit, one wake-up); the latency of an event is from
  just after its commit to its arrival at the receiver (first arrival of its
  webhook-id). p50, p95, max, and how many arrived. Stops at the first rate whose p95
  passes 1 s.
- Baseline, in the same run: the same bodies POSTed straight from this process to the
  receiver at the same rate (the floor: one HTTP request on this machine); the ratio
  says how much the outbox, the broker and the worker add.
Prints figures; never fails on a time."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.common import ROOT, recreate_database  # noqa: E402

GOAL_SECONDS = 1.0


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def start_workers(count: int, log_dir: Path) -> list[subprocess.Popen]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", WEBHOOKS_ALLOW_PRIVATE_TARGETS="1")
    workers = []
    for n in range(count):
        log = open(log_dir / f"worker-{n}.log", "w")  # noqa: SIM115 - the child keeps it
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "portal.worker",
                    "--pool=solo",
                    "--loglevel=WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "-n",
                    f"webhooks-bench-{n}-{os.getpid()}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return workers


def paced(rate: int, seconds: float):
    """Yield at `rate` per second for `seconds` (on schedule, not after each other)."""
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        due = start + n / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        yield n


def measure_portal(receiver, product, rate: int, seconds: float) -> dict:
    from django.db import transaction

    from portal.core.events import event_emit

    committed: dict[str, float] = {}
    for n in paced(rate, seconds):
        with transaction.atomic():
            event = event_emit(
                "portal.product.version_changed", product=product, data={"version": str(n)}
            )
        committed[str(event.event_id)] = time.time()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len({r.webhook_id for r in receiver.delivered()} & committed.keys()) == len(committed):
            break
        time.sleep(0.2)
    first: dict[str, float] = {}
    for request in receiver.delivered():
        first.setdefault(request.webhook_id, request.at)
    latencies = [first[i] - t for i, t in committed.items() if i in first]
    return {
        "sent": len(committed),
        "arrived": len(latencies),
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "max": max(latencies) if latencies else float("nan"),
    }


def measure_baseline(receiver_url: str, rate: int, seconds: float) -> dict:
    latencies = []
    body = json.dumps({"specversion": "1.0", "type": "portal.product.version_changed"}).encode()
    for n in paced(rate, seconds):
        request = urllib.request.Request(
            receiver_url,
            data=body,
            headers={"Content-Type": "application/json", "webhook-id": f"baseline-{n}"},
        )
        started = time.time()
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - local
            answer.read()
        latencies.append(time.time() - started)
    return {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20, help="seconds at each rate")
    parser.add_argument("--rates", default="50,100,200,400", help="events/s, ascending")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]

    config = common.database_config("bench/webhooks.py")
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        sys.exit("bench/webhooks.py needs CELERY_BROKER_URL=redis://... (a real broker)")
    recreate_database(config)
    os.environ["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from portal.celery import app
    from products.choices import MembershipRole
    from products.models import DataProduct, Domain, DomainMembership
    from sharing.webhooks.services import webhook_subscription_create
    from tests.sharing.webhooks.receiver import Receiver

    log_dir = Path(tempfile.mkdtemp(prefix="webhooksbench-"))
    receiver = Receiver().start()
    workers: list[subprocess.Popen] = []
    try:
        call_command("migrate", verbosity=0)
        from django.contrib.auth import get_user_model

        person = get_user_model().objects.create_user("bench-owner", password="x")
        domain = Domain.objects.create(name="Sales", slug="sales")
        DomainMembership.objects.create(domain=domain, user=person, role=MembershipRole.OWNER)
        product = DataProduct.objects.create(
            domain=domain, name="Orders", slug="orders", status="published"
        )
        webhook_subscription_create(
            owner=person,
            name="bench",
            target_url=receiver.url,
            event_types=["portal.product.*"],
        )
        app.control.purge()
        workers = start_workers(args.workers, log_dir)
        time.sleep(8)  # the workers' start-up
        measure_portal(receiver, product, 10, 2)  # warm-up: imports, connections
        print(
            f"{args.workers} worker(s), {args.seconds:g} s per rate, load average "
            f"{os.getloadavg()[0]:.2f}",
            flush=True,
        )
        print("| events/s | sent | arrived | p50 s | p95 s | max s | baseline p95 s | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        passed_at = None
        for rate in rates:
            figures = measure_portal(receiver, product, rate, args.seconds)
            baseline = measure_baseline(receiver.url, rate, min(args.seconds, 5))
            ratio = figures["p95"] / baseline["p95"] if baseline["p95"] else float("nan")
            print(
                f"| {rate} | {figures['sent']} | {figures['arrived']} | {figures['p50']:.3f} "
                f"| {figures['p95']:.3f} | {figures['max']:.3f} | {baseline['p95']:.4f} "
                f"| {ratio:.0f}x |",
                flush=True,
            )
            if figures["p95"] > GOAL_SECONDS or figures["arrived"] < figures["sent"]:
                passed_at = rate
                break
        if passed_at:
            print(f"p95 passed {GOAL_SECONDS:g} s at {passed_at} events/s.")
        else:
            print(f"p95 stayed within {GOAL_SECONDS:g} s up to {rates[-1]} events/s.")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        receiver.stop()
        if not args.keep:
            common.drop_database(config)
        print(f"logs: {log_dir}")


if __name__ == "__main__":
    main()
