"""NATS JetStream destinations: one message per record on `destination.subject`.

The payload is the record as JSON plus {"idempotency_key": ..., "op": ...} (as the HTTP
destination's records); the header `Nats-Msg-Id` is the idempotency key, so JetStream drops a
record re-sent within the stream's duplicate window (a retried batch, a resumed run). A record
is acknowledged when JetStream acknowledged its message; one JetStream refuses (too large, a
stream limit) is rejected with the server's words. The stream must exist: the portal does not
create streams in someone else's NATS (check() names the subject no stream captures).

nats-py is asyncio-only: the writer owns one private event loop and runs each call on it to
completion (as products.connectors.nats_stream.StreamReader does), one connection per writer.
`destination.nats_url` empty: settings.NATS_URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import nats
from django.conf import settings
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

from sharing.models import SyncDestination
from sharing.syncs.destinations.base import (
    BatchOutcome,
    DestinationError,
    DestinationUnavailable,
    OutgoingBatch,
    reason_short,
)

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3
PUBLISH_TIMEOUT_SECONDS = 5
NATS_BATCH = 1000  # records per send()
IN_FLIGHT = 64  # publishes awaiting their acknowledgement at once


async def _error_logged(error: Exception) -> None:
    logger.warning("NATS sync destination: %r", error)  # one line, not nats-py's traceback


class NatsWriter:
    batch_size = NATS_BATCH

    def __init__(self, destination: SyncDestination) -> None:
        self.destination = destination
        self.url = destination.nats_url or settings.NATS_URL
        self.subject = destination.subject
        self._loop = asyncio.new_event_loop()
        # The loop runs on a thread of its own: the calling thread may run an event loop
        # already (a worker's is free, but a process driving a browser, or an async
        # caller, is not), and run_until_complete refuses to nest.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nats-sync")
        self._nc = None
        self._js = None
        self.stream: str | None = None  # the stream capturing the subject, found by check()

    def __enter__(self) -> NatsWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self, coroutine):
        return self._thread.submit(self._loop.run_until_complete, coroutine).result()

    def _unavailable(self, exc: BaseException) -> DestinationUnavailable:
        return DestinationUnavailable(
            f"Destination {self.destination.name!r}: the NATS server could not be reached.",
            technical=f"{self.url}: {exc!r}",
        )

    def _jetstream(self):
        if self._js is not None:
            return self._js
        if not self.url:
            raise DestinationError(
                f"Destination {self.destination.name!r} names no NATS server and NATS_URL "
                "is not set on this host."
            )
        try:
            # nats-py retries a refused first connection however it is configured: bound it.
            self._nc = self._run(
                asyncio.wait_for(
                    nats.connect(
                        servers=[self.url],
                        connect_timeout=CONNECT_TIMEOUT_SECONDS,
                        allow_reconnect=False,
                        max_reconnect_attempts=0,
                        error_cb=_error_logged,
                    ),
                    CONNECT_TIMEOUT_SECONDS + 1,
                )
            )
        except (TimeoutError, NatsError, OSError) as exc:
            raise self._unavailable(exc) from None
        self._js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT_SECONDS)
        return self._js

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            if self._nc is not None:
                self._run(self._nc.close())
        except Exception:  # noqa: BLE001, S110 - closing a dead connection must not mask the error
            pass
        finally:
            self._nc = self._js = None
            self._loop.close()
            self._thread.shutdown()

    def fields(self) -> None:
        return None  # free-form messages

    def check(self) -> None:
        js = self._jetstream()
        try:
            self.stream = self._run(js.find_stream_name_by_subject(self.subject))
        except NotFoundError:
            raise DestinationError(
                f"No JetStream stream captures the subject {self.subject!r}: ask the NATS "
                "server's admins to add one (the portal does not create streams)."
            ) from None
        except (TimeoutError, NatsError, OSError) as exc:
            raise self._unavailable(exc) from None

    def send(self, batch: OutgoingBatch) -> BatchOutcome:
        js = self._jetstream()
        payloads = [
            json.dumps(
                {**record, "idempotency_key": key, "op": batch.operation},
                separators=(",", ":"),
                ensure_ascii=False,
                default=str,
            ).encode()
            for record, key in zip(batch.records, batch.idempotency_keys, strict=True)
        ]
        try:
            results = self._run(self._publish_all(js, payloads, batch.idempotency_keys))
        except NoStreamResponseError:
            raise DestinationError(
                f"No JetStream stream captures the subject {self.subject!r}: the messages "
                "were not stored."
            ) from None
        except (TimeoutError, NatsError, OSError) as exc:
            raise self._unavailable(exc) from None
        outcome = BatchOutcome()
        for index, error in enumerate(results):
            if error is None:
                outcome.acked.append(index)
            else:
                outcome.rejected[index] = reason_short(error)
        return outcome

    async def _publish_all(self, js, payloads: list[bytes], keys: list[str]) -> list[str | None]:
        """None per acknowledged message, else JetStream's reason; publishes in order with
        up to IN_FLIGHT awaiting their acknowledgement."""

        async def publish(payload: bytes, key: str) -> str | None:
            try:
                await js.publish(self.subject, payload, headers={"Nats-Msg-Id": key})
            except NoStreamResponseError:
                raise
            except APIError as exc:
                return f"JetStream refused the message: {exc.description or exc}"
            except MaxPayloadError:
                return f"The message ({len(payload):,} bytes) exceeds the server's maximum payload."
            return None

        results: list[str | None] = []
        for start in range(0, len(payloads), IN_FLIGHT):
            results.extend(
                await asyncio.gather(
                    *(
                        publish(payload, key)
                        for payload, key in zip(
                            payloads[start : start + IN_FLIGHT],
                            keys[start : start + IN_FLIGHT],
                            strict=True,
                        )
                    )
                )
            )
        return results
