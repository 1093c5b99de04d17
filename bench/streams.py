"""Stream ports benchmark: the governed read of a stream (masking + row filter, the access
decided again every batch) against a plain nats-py consumer reading the same subject.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_streamsbench \\
        NATS_URL=nats://127.0.0.1:4222 .venv/bin/python bench/streams.py \\
        [--messages 1000000] [--repeat 3] [--write-results]

Creates (and drops, unless --keep) the database named in DATABASE_URL ("bench" in its
name), and a JetStream stream BENCH_STREAMSBENCH_<hex> on NATS_URL (deleted at the end)
holding --messages orders (6 columns, about 190 bytes each). Then, --repeat times,
alternating:

(a) plain: an ephemeral ack-less pull consumer on the subject, fetching batches of
    STREAM_BATCH_MESSAGES (the portal's batch) with nats-py, each payload touched
    (its length summed), nothing parsed;
(b) governed: `sharing.streams.reads.stream_subscribe` for a grantee whose grant masks the
    confidential `email` and keeps the rows with `country in (BE, NL)` (about 40% of
    them), its NDJSON chunks consumed in process (no HTTP: the channel's own cost), one
    audit event at the end.

Prints messages/s of each (the governed one counted over the messages it READ, served or
filtered), the ratio (goal: >= 50%), and the process's RSS before and after each run (flat:
the read holds one batch at a time). Never fails on a time (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402 - needs the repository on sys.path
from bench.common import drop_database, recreate_database  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def fill(url: str, stream: str, subject: str, count: int) -> float:
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
    rng = random.Random(16)
    countries = ("BE", "NL", "LU", "FR", "DE")
    started = time.perf_counter()
    pending = []
    for order_id in range(1, count + 1):
        body = json.dumps(
            {
                "order_id": order_id,
                "placed_at": f"2026-12-05T10:{order_id // 60 % 60:02d}:{order_id % 60:02d}Z",
                "country": countries[rng.randrange(5)],
                "channel": "web",
                "amount": round(rng.uniform(1, 500), 2),
                "email": f"customer{order_id % 5000}@example.com",
            }
        ).encode()
        pending.append(js.publish(subject, body))
        if len(pending) >= 2000:  # noqa: PLR2004 - publish acks awaited in groups
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    await nc.close()
    return time.perf_counter() - started


async def drop(url: str, stream: str) -> None:
    import nats

    nc = await nats.connect(url)
    await nc.jetstream().delete_stream(stream)
    await nc.close()


def plain_read(url: str, stream: str, subject: str, count: int, batch: int) -> tuple[float, int]:
    """(seconds, messages) with nats-py alone, as fast as it reads."""

    async def read() -> tuple[float, int]:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        nc = await nats.connect(url)
        js = nc.jetstream()
        started = time.perf_counter()
        sub = await js.pull_subscribe(
            subject,
            durable=None,
            stream=stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.ALL,
                filter_subject=subject,
            ),
        )
        seen = size = 0
        while seen < count:
            for message in await sub.fetch(batch, timeout=5):
                size += len(message.data)
                seen += 1
        seconds = time.perf_counter() - started
        await sub.unsubscribe()
        await nc.close()
        return seconds, seen

    return asyncio.run(read())


def governed_read(user, product, count: int) -> tuple[float, int, int]:
    """(seconds, messages read, messages served) through the stream channel."""
    from sharing.streams.reads import stream_start_parse, stream_subscribe

    started = time.perf_counter()
    subscription = stream_subscribe(
        user=user, product=product, start=stream_start_parse("1"), follow=False
    )
    for _chunk in subscription.chunks(fmt="ndjson"):
        pass
    seconds = time.perf_counter() - started
    read = subscription.served + subscription.filtered + subscription.invalid
    assert read == count, (read, count)
    return seconds, read, subscription.served


def setup_product(stream: str, subject: str):
    from products.catalog.services.schema_refresh import schema_apply_columns
    from products.choices import Classification, LifecycleStatus, PortKind
    from products.connectors.base import ColumnInfo
    from products.models import DataProduct, Domain, OutputPort
    from sharing.access.services.grants import grant_create
    from tests.factories import UserFactory

    domain = Domain.objects.create(name="Bench", slug="bench")
    admin = UserFactory(username="bench-admin", is_staff=True, is_superuser=True)
    product = DataProduct.objects.create(
        domain=domain, name="Live orders", slug="live-orders", status=LifecycleStatus.PUBLISHED
    )
    port = OutputPort.objects.create(
        product=product,
        name="Orders",
        slug="orders",
        kind=PortKind.STREAM,
        stream_name=stream,
        stream_subject=subject,
    )
    types = [
        ("order_id", "bigint"),
        ("placed_at", "timestamptz"),
        ("country", "text"),
        ("channel", "text"),
        ("amount", "double precision"),
        ("email", "text"),
    ]
    schema_apply_columns(
        port=port,
        columns=[
            ColumnInfo(name=name, data_type=data_type, nullable=True, position=position)
            for position, (name, data_type) in enumerate(types)
        ],
    )
    port.columns.filter(name="email").update(classification=Classification.CONFIDENTIAL)
    reader = UserFactory(username="bench-reader")
    grant_create(
        product=product,
        by=admin,
        user=reader,
        row_filter=[{"column": "country", "op": "in", "value": ["BE", "NL"]}],
        reason="bench",
    )
    return reader, product


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    url = os.environ.get("NATS_URL") or "nats://127.0.0.1:4222"
    os.environ["NATS_URL"] = url
    config = common.database_config("bench/streams.py")
    recreate_database(config)
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    token = uuid.uuid4().hex[:8]
    stream, subject = f"BENCH_STREAMSBENCH_{token}", f"streamsbench.{token}.orders"
    try:
        call_command("migrate", verbosity=0)
        reader, product = setup_product(stream, subject)
        print(f"Publishing {args.messages:,} messages to {stream}...", flush=True)
        seconds = asyncio.run(fill(url, stream, subject, args.messages))
        print(f"  published in {seconds:.1f} s ({args.messages / seconds:,.0f}/s)", flush=True)
        batch = settings.STREAM_BATCH_MESSAGES
        plain, governed, memory = [], [], []
        for run in range(1, args.repeat + 1):
            seconds, seen = plain_read(url, stream, subject, args.messages, batch)
            plain.append(seen / seconds)
            print(f"run {run}: plain nats-py  {seen / seconds:>10,.0f} messages/s", flush=True)
            before = rss_mb()
            seconds, read, served = governed_read(reader, product, args.messages)
            after = rss_mb()
            governed.append(read / seconds)
            memory.append((before, after))
            print(
                f"run {run}: governed read  {read / seconds:>10,.0f} messages/s "
                f"({served:,} served, masked email, country in BE/NL); "
                f"RSS {before:.0f} -> {after:.0f} MB",
                flush=True,
            )
        ratio = statistics.median(governed) / statistics.median(plain)
        lines = [
            f"{args.messages:,} messages, batch {batch}, median of {args.repeat}",
            f"plain nats-py consumer: {statistics.median(plain):,.0f} messages/s",
            f"governed stream read:   {statistics.median(governed):,.0f} messages/s",
            f"ratio governed/plain:   {ratio:.0%} (goal >= 50%)",
            "RSS around each governed read: "
            + ", ".join(f"{a:.0f}->{b:.0f} MB" for a, b in memory),
        ]
        print("\n".join(lines))
        if args.write_results:
            common.write_results(
                "## Stream ports (bench/streams.py)", "\n".join(f"- {line}" for line in lines)
            )
    finally:
        asyncio.run(drop(url, stream))
        if not args.keep:
            drop_database(config)


if __name__ == "__main__":
    main()
