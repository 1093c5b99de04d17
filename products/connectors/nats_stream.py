"""Stream ports: a NATS JetStream stream read from synchronous code.

nats-py is asyncio-only; `StreamReader` owns one private event loop and runs each call on
it to completion, so a Django view, a Celery task or a bench script reads a stream as an
iterator of batches without an async stack:

    with StreamReader(url=..., stream="SALES_LIVE_ORDERS", subject="sales.live-orders") as r:
        facts = r.facts()
        r.start(from_seq=1)          # or from_time=datetime
        for seq, payload in r.fetch(batch=500, wait_seconds=1.0): ...

Messages are served in stream order from an ephemeral, ack-less pull consumer filtered on
the port's subject (removed when the reader closes, and by the server after it idles).
Errors are ConnectorError: a message safe for every reader, the server's words as detail.

`MessageSchema` is the one test of whether a message matches a port's schema: the governed
read (sharing.streams.reads) serves only the messages it accepts and the monitors
(products.trust.services.monitors) count the ones it refuses.

nats-py is imported where a stream is read, not when the catalog's modules load: every
web and worker process loads them with the URLs, few ever read a stream.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from products.connectors.base import ColumnInfo, ConnectorError, RelationMissing

CONNECT_TIMEOUT_SECONDS = 3
# An ephemeral consumer left behind by a killed process is removed by the server after this.
CONSUMER_IDLE_SECONDS = 60
SAMPLE_MESSAGES = 200
CONSUMERS_PAGE = 256  # the server lists a stream's consumers in pages of this many
# NATS names: a stream name has no spaces, dots, * or >; a subject is dot-separated tokens.
STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,120}")
SUBJECT = re.compile(r"[A-Za-z0-9_\-*]+(\.[A-Za-z0-9_\-*]+)*(\.>)?|>")


@dataclass(frozen=True)
class StreamFacts:
    """What a stream holds now, for pages and the read (`from` bounds)."""

    first_seq: int
    last_seq: int
    messages: int
    bytes: int
    retention: str  # limits | interest | workqueue
    max_age_seconds: float | None
    max_messages: int | None
    max_bytes: int | None
    subjects: tuple[str, ...]
    last_time: datetime | None

    @property
    def retention_in_words(self) -> str:
        parts = [f"{self.retention} retention"]
        if self.max_age_seconds:
            hours = self.max_age_seconds / 3600
            parts.append(f"kept {hours:g} h" if hours < 48 else f"kept {hours / 24:g} days")
        if self.max_messages:
            parts.append(f"at most {self.max_messages:,} messages")
        if self.max_bytes:
            parts.append(f"at most {self.max_bytes:,} bytes")
        return ", ".join(parts)


@dataclass(frozen=True)
class ConsumerLag:
    """A durable consumer of a stream: `pending` messages it has not been delivered yet,
    `ack_pending` delivered but not acknowledged; `lag` is both."""

    name: str
    pending: int
    ack_pending: int
    lag: int


def stream_location_errors(*, stream_name: str, subject: str, prefix: str) -> dict[str, str]:
    """Why a stream name or subject cannot be a port's (empty when they can)."""
    errors = {}
    if not STREAM_NAME.fullmatch(stream_name or ""):
        errors["stream_name"] = (
            "Name the JetStream stream: letters, digits, - and _ only (for example "
            f"{prefix}LIVE_ORDERS)."
        )
    elif not stream_name.startswith(prefix):
        errors["stream_name"] = (
            f"A port of this domain may name only streams whose name starts with {prefix} "
            f"(for example {prefix}LIVE_ORDERS)."
        )
    if not SUBJECT.fullmatch(subject or ""):
        errors["stream_subject"] = (
            "Give the subject as dot-separated tokens, for example sales.live-orders "
            "(* for one token, > at the end for the rest)."
        )
    return errors


def _refused(exc: Exception, what: str) -> ConnectorError:
    from nats.js.errors import NotFoundError

    if isinstance(exc, NotFoundError):
        return RelationMissing(f"The stream {what} does not exist on the NATS server.")
    return ConnectorError(
        "The NATS server could not be reached or read.", detail=f"{what}: {exc!r}"
    )


class StreamReader:
    """One connection to the NATS server, reading one stream's subject."""

    def __init__(self, *, url: str, stream: str, subject: str) -> None:
        self.url, self.stream, self.subject = url, stream, subject
        self._loop = asyncio.new_event_loop()
        self._nc = None
        self._js = None
        self._sub = None

    def _run(self, coroutine):
        from nats.errors import Error as NatsError
        from nats.errors import TimeoutError as NatsTimeout

        try:
            return self._loop.run_until_complete(coroutine)
        except (TimeoutError, NatsError, OSError) as exc:
            if isinstance(exc, NatsTimeout):
                raise
            raise _refused(exc, self.stream) from exc

    # -- connection --------------------------------------------------------------------------

    def __enter__(self) -> StreamReader:
        import nats

        self._nc = self._run(
            nats.connect(
                self.url,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                allow_reconnect=False,
                max_reconnect_attempts=0,
            )
        )
        self._js = self._nc.jetstream()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            if self._sub is not None:
                self._loop.run_until_complete(self._sub.unsubscribe())
            if self._nc is not None:
                self._loop.run_until_complete(self._nc.close())
        except Exception:  # noqa: BLE001 - closing a dead connection must not mask the error
            pass
        finally:
            self._loop.close()

    # -- reads -------------------------------------------------------------------------------

    def facts(self) -> StreamFacts:
        info = self._run(self._js.stream_info(self.stream))
        config, state = info.config, info.state
        last_time = None
        if state.messages:
            try:  # the time of the port's subject's last message
                last = self._run(self._js.get_last_msg(self.stream, self.subject))
                last_time = last.time
            except RelationMissing:  # none on this subject
                pass
        return StreamFacts(
            first_seq=state.first_seq,
            last_seq=state.last_seq,
            messages=state.messages,
            bytes=state.bytes,
            retention=str(getattr(config.retention, "value", config.retention) or "limits"),
            max_age_seconds=config.max_age or None,
            max_messages=config.max_msgs if config.max_msgs and config.max_msgs > 0 else None,
            max_bytes=config.max_bytes if config.max_bytes and config.max_bytes > 0 else None,
            subjects=tuple(config.subjects or ()),
            last_time=last_time,
        )

    def start(self, *, from_seq: int | None = None, from_time: datetime | None = None) -> None:
        """Open the consumer: from a stream sequence, from a time, or from new messages
        only (neither given). Starting again replaces the consumer opened before."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        if self._sub is not None:
            self._run(self._sub.unsubscribe())
            self._sub = None
        if from_seq is not None:
            policy = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": from_seq}
        elif from_time is not None:
            policy = {
                "deliver_policy": DeliverPolicy.BY_START_TIME,
                "opt_start_time": from_time,
            }
        else:
            policy = {"deliver_policy": DeliverPolicy.NEW}
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            filter_subject=self.subject,
            inactive_threshold=CONSUMER_IDLE_SECONDS,
            **policy,
        )
        self._sub = self._run(
            self._js.pull_subscribe(self.subject, durable=None, stream=self.stream, config=config)
        )

    def fetch(self, *, batch: int, wait_seconds: float) -> list[tuple[int, bytes]]:
        """Up to `batch` messages as (stream sequence, payload), waiting at most
        `wait_seconds` for the first; [] when none came."""
        from nats.errors import TimeoutError as NatsTimeout

        try:
            messages = self._run(self._sub.fetch(batch, timeout=wait_seconds))
        except NatsTimeout:
            return []
        return [(_stream_seq(message.reply), message.data) for message in messages]

    def pending(self) -> int:
        """The messages on the subject from the started consumer's position to the end of
        the stream (the server counts them: nothing is fetched)."""
        return self._run(self._sub.consumer_info()).num_pending or 0

    def consumer_lags(self) -> list[ConsumerLag]:
        """The stream's durable consumers and how far each is behind, largest lag first.
        Ephemeral consumers (the portal's own readers) are left out."""
        lags = []
        offset = 0
        while True:
            page = self._run(self._js.consumers_info(self.stream, offset=offset or None))
            for info in page:
                if not info.config.durable_name:
                    continue
                pending, unacked = info.num_pending or 0, info.num_ack_pending or 0
                lags.append(
                    ConsumerLag(
                        name=info.config.durable_name,
                        pending=pending,
                        ack_pending=unacked,
                        lag=pending + unacked,
                    )
                )
            if len(page) < CONSUMERS_PAGE:
                break
            offset += len(page)
        return sorted(lags, key=lambda lag: (-lag.lag, lag.name))

    def read_until(self, last_seq: int, *, limit: int) -> list[tuple[int, bytes]]:
        """After `start`: the messages up to stream sequence `last_seq`, at most `limit`."""
        messages: list[tuple[int, bytes]] = []
        while len(messages) < limit:
            got = self.fetch(batch=min(limit - len(messages), 500), wait_seconds=0.5)
            if not got:
                break
            messages.extend((seq, payload) for seq, payload in got if seq <= last_seq)
            if got[-1][0] >= last_seq:
                break
        return messages[:limit]

    def sample(self, count: int = SAMPLE_MESSAGES) -> list[bytes]:
        """The payloads of the stream's last `count` messages on the subject."""
        facts = self.facts()
        if facts.messages == 0:
            return []
        self.start(from_seq=max(facts.first_seq, facts.last_seq - count + 1))
        payloads: list[bytes] = []
        while len(payloads) < count:
            got = self.fetch(batch=count - len(payloads), wait_seconds=0.5)
            if not got:
                break
            payloads.extend(payload for _, payload in got)
            if got[-1][0] >= facts.last_seq:
                break
        return payloads


def _stream_seq(reply: str) -> int:
    # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>,
    # or on newer servers with a domain and an account hash after ACK (and a token more at
    # the end): the stream sequence is the sixth token, or the eighth.
    tokens = reply.split(".")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])  # noqa: PLR2004 - v1 ack


# --- schema from sampled messages -------------------------------------------------------------


def _kind_of(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return "text"
        if "T" not in value and " " not in value:
            return "date"
        return "timestamptz" if parsed.tzinfo is not None else "timestamp"
    return "json"


_WIDER = {
    frozenset({"bigint", "double"}): "double",
    frozenset({"timestamp", "timestamptz"}): "text",
}


def columns_from_samples(payloads: Sequence[bytes]) -> list[ColumnInfo]:
    """The columns of JSON-object messages: each key in order of first appearance, its
    type from its values (whole numbers bigint, numbers double, true/false boolean, ISO
    dates and times date/timestamp(tz), other text text, objects and lists json), nullable
    when a message lacks it or has null. Messages that are not JSON objects are skipped."""
    order: dict[str, str | None] = {}
    present: dict[str, int] = {}
    nulls: set[str] = set()
    objects = 0
    for payload in payloads:
        try:
            message = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        objects += 1
        for key, value in message.items():
            kind = _kind_of(value)
            present[key] = present.get(key, 0) + 1
            if kind is None:
                nulls.add(key)
                order.setdefault(key, None)
                continue
            seen = order.get(key)
            if seen is None or seen == kind:
                order[key] = kind
            else:
                order[key] = _WIDER.get(frozenset({seen, kind}), "text")
    return [
        ColumnInfo(
            name=name,
            data_type=kind or "text",
            nullable=name in nulls or present[name] < objects,
            position=position,
        )
        for position, (name, kind) in enumerate(order.items())
    ]


# --- messages against the port's schema -----------------------------------------------------


class InvalidMessage(Exception):
    """A message that does not match the port's schema. Its text names the column and
    what is wrong, never a value (the column may be masked for the reader)."""


Converter = Callable[[Any], Any]


def _as_given(value: Any) -> Any:
    return value


class MessageSchema:
    """A port's schema ((name, type, nullable) per column) compiled once. A message
    matches when it is a JSON object whose columns each convert to their type, and every
    column that is not nullable has a value (keys outside the schema are ignored).

    `converter(data_type)` gives the function turning a JSON value into a value of the
    type (raising when it does not fit), or None for types taken as given: the governed
    read passes the one the SQL channels bind filter values with."""

    def __init__(
        self,
        schema: Sequence[tuple[str, str, bool]],
        *,
        converter: Callable[[str], Converter | None],
    ) -> None:
        self.columns = [
            (name, converter(data_type) or _as_given, nullable)
            for name, data_type, nullable in schema
        ]

    def parse(self, payload: bytes) -> tuple[dict, dict]:
        """(the message as sent, the schema's columns converted to their types); raises
        InvalidMessage."""
        try:
            message = json.loads(payload)
        except ValueError:
            raise InvalidMessage("not JSON") from None
        if not isinstance(message, dict):
            raise InvalidMessage("not a JSON object")
        typed = {}
        for name, convert, nullable in self.columns:
            value = message.get(name)
            if value is None:
                if not nullable:
                    raise InvalidMessage(f"{name} is missing")
                typed[name] = None
                continue
            try:
                typed[name] = convert(value)
            except Exception:  # noqa: BLE001 - any value its converter refuses
                raise InvalidMessage(f"{name} does not fit its type") from None
        return message, typed


def port_schema(port) -> list[tuple[str, str, bool]]:
    """The stream port's columns as (name, type, nullable), in their order."""
    return list(
        port.columns.order_by("position", "name").values_list("name", "data_type", "nullable")
    )


def port_stream_facts(port) -> StreamFacts | None:
    """What the stream port's stream holds now (for pages), or None when it cannot be
    read (no NATS server, no such stream): pages say so without the server's words."""
    # Lazy: settings are read at call time (tests and `make run` set NATS_URL late).
    from django.conf import settings

    if not settings.NATS_URL:
        return None
    try:
        with StreamReader(
            url=settings.NATS_URL, stream=port.stream_name, subject=port.stream_subject
        ) as reader:
            return reader.facts()
    except ConnectorError:
        return None
