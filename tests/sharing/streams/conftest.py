"""Stream ports on the real NATS server (NATS_URL, else 127.0.0.1:4222): each test gets a
JetStream stream of its own, named for this feature (SALES_STREAMSTEST_<hex>), deleted
after it."""

import asyncio
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import nats
import pytest
from nats.js.api import StreamConfig

from products.choices import Classification, PortKind
from products.models import OutputPort
from tests.conftest import require_service
from tests.factories import ColumnFactory, ProductFactory

NATS_URL = os.environ.get("NATS_URL") or "nats://127.0.0.1:4222"

# The port's schema: (name, type, nullable, classification).
SCHEMA = [
    ("order_id", "bigint", False, Classification.INTERNAL),
    ("country", "text", True, Classification.INTERNAL),
    ("amount", "double precision", True, Classification.INTERNAL),
    ("email", "text", True, Classification.CONFIDENTIAL),
    ("placed_at", "timestamptz", True, Classification.INTERNAL),
]


class TestStream:
    """A stream of the test's own on the real server, with a synchronous publish."""

    def __init__(self, url: str) -> None:
        token = uuid.uuid4().hex[:10]
        self.url = url
        self.name = f"SALES_STREAMSTEST_{token}"
        self.subject = f"streamstest.{token}.orders"
        self._loop = asyncio.new_event_loop()
        # Its own thread: a browser test's thread runs Playwright's event loop already.
        self._thread = ThreadPoolExecutor(max_workers=1)
        self._nc = self._run(nats.connect(url, connect_timeout=3))
        self._js = self._nc.jetstream()
        self._run(self._js.add_stream(StreamConfig(name=self.name, subjects=[self.subject])))

    def _run(self, coroutine):
        return self._thread.submit(self._loop.run_until_complete, coroutine).result()

    def publish(self, *messages) -> list[int]:
        """Publish each message (a dict as JSON, bytes as they are); their sequences."""

        async def send():
            seqs = []
            for message in messages:
                body = message if isinstance(message, bytes) else json.dumps(message).encode()
                ack = await self._js.publish(self.subject, body)
                seqs.append(ack.seq)
            return seqs

        return self._run(send())

    def close(self) -> None:
        self._run(self._js.delete_stream(self.name))
        self._run(self._nc.close())
        self._thread.submit(self._loop.close).result()
        self._thread.shutdown()


def open_stream(settings):
    """A stream of the test's own, NATS_URL set for the portal (a fixture's body)."""
    try:
        stream = TestStream(NATS_URL)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        require_service("NATS JetStream", f"{NATS_URL}: {exc!r}")
    settings.NATS_URL = NATS_URL
    settings.STREAM_KEEPALIVE_SECONDS = 1
    yield stream
    stream.close()


@pytest.fixture
def nats_stream(settings):
    yield from open_stream(settings)


@pytest.fixture
def stream_product(domain, owner, nats_stream):
    """Sales' Live orders: a published product with one stream port on `nats_stream`."""
    product = ProductFactory(domain=domain, name="Live orders", slug="live-orders", owners=[owner])
    port = OutputPort.objects.create(
        product=product,
        name="Orders",
        slug="orders",
        kind=PortKind.STREAM,
        stream_name=nats_stream.name,
        stream_subject=nats_stream.subject,
    )
    for position, (name, data_type, nullable, classification) in enumerate(SCHEMA):
        ColumnFactory(
            port=port,
            name=name,
            data_type=data_type,
            nullable=nullable,
            classification=classification,
            position=position,
        )
    return product


def order(order_id, country="BE", amount=10.0, email="a@example.com", placed_at=None):
    return {
        "order_id": order_id,
        "country": country,
        "amount": amount,
        "email": email,
        "placed_at": placed_at or "2026-12-05T10:00:00+00:00",
    }


def ndjson(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines() if line.strip()]
