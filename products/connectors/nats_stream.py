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
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import nats
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from products.connectors.base import ColumnInfo, ConnectorError, RelationMissing

CONNECT_TIMEOUT_SECONDS = 3
# An ephemeral consumer left behind by a killed process is removed by the server after this.
CONSUMER_IDLE_SECONDS = 60
SAMPLE_MESSAGES = 200
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
        try:
            return self._loop.run_until_complete(coroutine)
        except (TimeoutError, NatsError, OSError) as exc:
            if isinstance(exc, NatsTimeout):
                raise
            raise _refused(exc, self.stream) from exc

    # -- connection --------------------------------------------------------------------------

    def __enter__(self) -> StreamReader:
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
        only (neither given)."""
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
        try:
            messages = self._run(self._sub.fetch(batch, timeout=wait_seconds))
        except NatsTimeout:
            return []
        return [(_stream_seq(message.reply), message.data) for message in messages]

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
