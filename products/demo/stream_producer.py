"""The demo's checkout: publishes orders on sales.live-orders (stream SALES_LIVE_ORDERS),
a few a second, with now and then a malformed message (what the stream port's invalid
count and monitor are for). `make run` starts it; on its own:

    python -m products.demo.stream_producer --url nats://127.0.0.1:4222 [--rate 5]

It needs no Django: only the NATS server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
from datetime import UTC, datetime

import nats
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

STREAM_NAME = "SALES_LIVE_ORDERS"
SUBJECT = "sales.live-orders"
# Kept a day, at most a million messages: the stream's retention, shown on the port.
MAX_AGE_SECONDS = 24 * 3600
MAX_MESSAGES = 1_000_000
COUNTRIES = ("BE", "NL", "LU", "FR", "DE")
CHANNELS = ("web", "app", "store")
MALFORMED_EVERY = 200  # one message in this many is not a valid order


async def stream_ensure(js) -> int:
    """Create the stream when missing; the next order id (after the last one published)."""
    try:
        info = await js.stream_info(STREAM_NAME)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=STREAM_NAME,
                subjects=[SUBJECT],
                max_age=MAX_AGE_SECONDS,
                max_msgs=MAX_MESSAGES,
            )
        )
        return 1
    if not info.state.messages:
        return 1
    last = await js.get_last_msg(STREAM_NAME, SUBJECT)
    try:
        return int(json.loads(last.data)["order_id"]) + 1
    except (ValueError, KeyError, TypeError):
        return info.state.last_seq + 1


def order(order_id: int, rng: random.Random) -> dict:
    return {
        "order_id": order_id,
        "placed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "country": rng.choice(COUNTRIES),
        "channel": rng.choice(CHANNELS),
        "amount": round(rng.lognormvariate(3.5, 0.8), 2),
        "customer_email": f"customer{rng.randrange(1, 5000)}@example.com"
        if rng.random() > 0.1
        else None,
    }


async def produce(url: str, rate: float) -> None:
    nc = await nats.connect(url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    next_id = await stream_ensure(js)
    rng = random.Random()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"Publishing orders on {SUBJECT} ({STREAM_NAME}) at {rate:g}/s.", flush=True)
    while not stop.is_set():
        if next_id % MALFORMED_EVERY == 0:
            body = json.dumps({"order_id": "n/a", "note": "a test order from the till"})
        else:
            body = json.dumps(order(next_id, rng))
        await js.publish(SUBJECT, body.encode())
        next_id += 1
        try:
            await asyncio.wait_for(stop.wait(), timeout=rng.expovariate(rate))
        except TimeoutError:
            pass
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--rate", type=float, default=5.0, help="orders per second")
    options = parser.parse_args()
    asyncio.run(produce(options.url, options.rate))


if __name__ == "__main__":
    main()
