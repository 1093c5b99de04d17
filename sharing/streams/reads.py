"""The governed read of a stream port: the same plan as every channel, applied to every
message.

    subscription = stream_subscribe(user=..., product=..., port_slug=..., columns=...,
                                    filter=..., start="-20", limit=..., follow=True)
    for chunk in subscription.chunks(fmt="sse"): ...

`read_plan` (the one access decision) gives the columns, the masked columns and the row
filter; `MessageShaper` compiles them once into Python functions over a message's JSON
object, with the values converted to each column's type by the same converters the SQL
channels bind with (`sharing.access.filters.value_converter`), and SQL's NULL rules (a
comparison with a missing value holds for nothing, `is null` for it alone). A message that
is not a JSON object of the port's schema is counted invalid and never served. Access is
decided again before each batch of messages and at every keep-alive: a grant revoked,
expired or narrowed cuts the subscription off before its next message. One audit event
per subscription when it ends (who, columns, filter, from, messages, bytes, duration).
"""

from __future__ import annotations

import json
import operator
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from products.catalog.selectors import port_for
from products.choices import PortKind
from products.connectors import column_types
from products.connectors.base import ConnectorError
from products.connectors.nats_stream import (
    InvalidMessage,
    MessageSchema,
    StreamFacts,
    StreamReader,
    port_schema,
)
from products.models import DataProduct, OutputPort
from sharing.access.decision import access_decide
from sharing.access.filters import (
    LIST_OPERATORS,
    Clause,
    FilterError,
    clauses_typed,
    value_converter,
)
from sharing.choices import Channel
from sharing.serving.reads import MASK, ReadPlan, ReadRefused, audit_read, read_plan

NDJSON, SSE = "ndjson", "sse"
STREAM_FORMATS = (NDJSON, SSE)
CONTENT_TYPES = {NDJSON: "application/x-ndjson", SSE: "text/event-stream"}
UNLIMITED = 2**62
_LAST = re.compile(r"-([0-9]{1,9})")


# --- where a subscription starts -------------------------------------------------------------


@dataclass(frozen=True)
class StreamStart:
    """`seq` (a stream sequence), `time`, `last` (the last n messages) or none of them
    (only new messages)."""

    seq: int | None = None
    time: datetime | None = None
    last: int | None = None
    text: str = "new"


def stream_start_parse(text: str | None, *, resume_after: str | None = None) -> StreamStart:
    """`from` as given: a sequence number (1 = the first message the stream ever held),
    an ISO 8601 time (UTC unless it has an offset), `-n` (the last n messages), `new`, or
    empty (the oldest message the stream still holds). An SSE client's Last-Event-ID
    (`resume_after`) wins: the message after it. Raises ReadRefused(400)."""
    if resume_after not in (None, ""):
        if not resume_after.isdigit():
            raise ReadRefused(400, "Last-Event-ID must be the sequence number of a message.")
        return StreamStart(seq=int(resume_after) + 1, text=f"after {resume_after}")
    text = (text or "").strip()
    if text == "":
        return StreamStart(seq=1, text="oldest")
    if text == "new":
        return StreamStart()
    if text.isdigit() and len(text) <= 18:  # noqa: PLR2004 - fits a uint64 sequence
        return StreamStart(seq=max(int(text), 1), text=text)
    last = _LAST.fullmatch(text)
    if last:
        return StreamStart(last=int(last.group(1)), text=text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ReadRefused(
            400,
            f"`from` must be a message's sequence number (1 or more), a time in ISO 8601 "
            f"(2026-12-05T14:00:00Z), -n for the last n messages, or new; not {text[:60]!r}.",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return StreamStart(time=moment, text=moment.isoformat())


# --- the plan compiled over messages ---------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _column_converter(data_type: str) -> Callable[[Any], Any]:
    """A value of the message turned into the column's type (raising _Mismatch); times
    made comparable the way the database compares them (timestamptz in UTC, timestamp
    without an offset)."""
    convert = value_converter(data_type)
    kind = column_types.column_type(data_type).kind
    if convert is None:
        return lambda value: value
    if kind == column_types.TIMESTAMPTZ:
        return lambda value: _utc(convert(value))
    if kind == column_types.TIMESTAMP:
        return lambda value: _naive(convert(value))
    return convert


_COMPARE = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _clause_test(clause: Clause, convert: Callable[[Any], Any]) -> Callable[[dict], bool]:
    """One clause over a message's converted values, with SQL's rules for NULL."""
    name = clause.column
    if clause.op == "is null":
        return lambda row: row[name] is None
    if clause.op == "is not null":
        return lambda row: row[name] is not None
    if clause.op in LIST_OPERATORS:
        values = frozenset(convert(value) for value in clause.value)
        inside = clause.op == "in"
        return lambda row: row[name] is not None and (row[name] in values) == inside
    compare, bound = _COMPARE[clause.op], convert(clause.value)

    def test(row: dict) -> bool:
        value = row[name]
        if value is None:
            return False
        try:
            return compare(value, bound)
        except TypeError:  # a json column compared with a number: no match, as in SQL
            return False

    return test


class MessageShaper:
    """The plan compiled once: a message's bytes -> the row served, None when the row
    filter drops it, InvalidMessage when it does not match the schema."""

    def __init__(self, plan: ReadPlan, schema: list[tuple[str, str, bool]]) -> None:
        types = {name: data_type for name, data_type, _ in schema}
        # The one schema test (the monitors count what it refuses), with this read's converters.
        self.parse = MessageSchema(schema, converter=_column_converter).parse
        try:  # the grant's clauses are typed here too: one comparison for both
            clauses = clauses_typed(plan.clauses, types)
            self.tests = [
                _clause_test(clause, _column_converter(types.get(clause.column, "")))
                for clause in clauses
            ]
        except FilterError as exc:
            raise ReadRefused(
                400, f"The row filter does not fit the stream's schema: {exc}"
            ) from None
        self.served = [(name, name in plan.masked) for name in plan.columns]

    def shape(self, payload: bytes) -> dict | None:
        message, typed = self.parse(payload)
        for test in self.tests:
            if not test(typed):
                return None
        row = {}
        for name, masked in self.served:
            value = message.get(name)
            if masked:
                row[name] = None if value is None else MASK
            else:
                row[name] = value
        return row


# --- a subscription --------------------------------------------------------------------------


def _decision_key(decision) -> tuple:
    return (decision.allowed, decision.columns, decision.masked, decision.row_filter)


def stream_port_for(product: DataProduct, port_slug: str | None) -> OutputPort:
    """The named port, which must be a stream port, or the product's first stream port."""
    if port_slug:
        port = port_for(product=product, slug=port_slug)
        if port is None:
            raise ReadRefused(404, f"This product has no output port {port_slug!r}.")
    else:
        port = product.ports.filter(kind=PortKind.STREAM).order_by("name").first()
        if port is None:
            raise ReadRefused(
                400,
                "This product has no stream port: read its rows at "
                f"/api/v1/products/{product.key}/data/ instead.",
            )
    if port.kind != PortKind.STREAM:
        raise ReadRefused(
            400,
            f"The port {port.slug!r} is a {port.get_kind_display().lower()}, not a stream: "
            f"read it at /api/v1/products/{product.key}/data/?port={port.slug}.",
        )
    return port


@dataclass
class StreamSubscription:
    plan: ReadPlan
    reader: StreamReader
    facts: StreamFacts
    start: StreamStart
    shaper: MessageShaper
    follow: bool
    client_address: str | None
    end_seq: int  # without follow: the last message when the subscription began
    served: int = 0
    invalid: int = 0
    filtered: int = 0
    sent: int = 0
    last_seq: int | None = None
    ended: str = ""
    started: float = field(default_factory=time.monotonic)

    def _still_allowed(self) -> str:
        """ "" when the reader's access is what it was; else why not (in their words)."""
        decision = access_decide(user=self.plan.user, product=self.plan.product)
        if not decision.allowed:
            return decision.reason
        if _decision_key(decision) != _decision_key(self.plan.decision):
            return "Your access to this product changed: subscribe again."
        return ""

    def _batches(self) -> Iterator[list[tuple[int, dict]]]:
        """The rows to serve, one list per batch fetched (an empty list: a keep-alive),
        the access decided again before each."""
        batch = settings.STREAM_BATCH_MESSAGES
        wait = settings.STREAM_KEEPALIVE_SECONDS if self.follow else 1.0
        deadline = self.started + settings.STREAM_MAX_SECONDS
        shape = self.shaper.shape
        while True:
            if not self.follow and (self.last_seq or 0) >= self.end_seq:
                self.ended = "end"
                return
            if time.monotonic() > deadline:
                self.ended = "time"
                return
            got = self.reader.fetch(batch=batch, wait_seconds=wait)
            refusal = self._still_allowed()
            if refusal:
                self.ended = "access"
                raise ReadRefused(403, refusal)
            if not got:
                if not self.follow:
                    self.ended = "end"
                    return
                yield []
                continue
            rows = []
            for seq, payload in got:
                if not self.follow and seq > self.end_seq:
                    self.ended = "end"
                    break
                self.last_seq = seq
                try:
                    row = shape(payload)
                except InvalidMessage:
                    self.invalid += 1
                    continue
                if row is None:
                    self.filtered += 1
                    continue
                rows.append((seq, row))
                if self.served + len(rows) >= self.plan.limit:
                    self.ended = "limit"
                    break
            self.served += len(rows)
            yield rows
            if self.ended:
                return

    def chunks(self, *, fmt: str) -> Iterator[bytes]:
        """The messages as NDJSON lines `{"seq": n, "data": {...}}` or SSE events (id = the
        sequence), one chunk per batch; an ending other than the stream's end or the limit
        is said last (`{"error": ...}` / `event: error`). Closes the reader and writes the
        audit when it ends, however it ends."""
        sse = fmt == SSE
        dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
        try:
            if sse:
                yield self._count(b"retry: 3000\n\n")
            try:
                for rows in self._batches():
                    if not rows:
                        yield self._count(b": keep-alive\n\n" if sse else b"\n")
                    elif sse:
                        yield self._count(
                            "".join(
                                f"id: {seq}\ndata: {dumps(row)}\n\n" for seq, row in rows
                            ).encode()
                        )
                    else:
                        yield self._count(
                            "".join(
                                f'{{"seq": {seq}, "data": {dumps(row)}}}\n' for seq, row in rows
                            ).encode()
                        )
            except (ReadRefused, ConnectorError) as exc:
                self.ended = self.ended or "error"
                message = exc.message if isinstance(exc, ReadRefused) else str(exc)
                body = dumps({"error": message})
                yield self._count(
                    f"event: error\ndata: {body}\n\n".encode() if sse else f"{body}\n".encode()
                )
                return
            if sse:
                reason = dumps({"reason": self.ended})
                yield self._count(f"event: end\ndata: {reason}\n\n".encode())
        finally:
            self.close()

    def _count(self, chunk: bytes) -> bytes:
        self.sent += len(chunk)
        return chunk

    def close(self) -> None:
        if self.reader is None:
            return
        self.reader.close()
        self.reader = None
        audit_read(
            self.plan,
            rows=self.served,
            nbytes=self.sent,
            client_address=self.client_address,
            fmt="stream",
            extra={
                "from": self.start.text,
                "last_seq": self.last_seq,
                "invalid": self.invalid,
                "filtered": self.filtered,
                "follow": self.follow,
                "ended": self.ended or "client",
                "duration_ms": round((time.monotonic() - self.started) * 1000),
            },
        )


def stream_subscribe(
    *,
    user,
    product: DataProduct,
    port_slug: str | None = None,
    columns: list[str] | None = None,
    filter: str | list | None = None,  # noqa: A002 - the API parameter's name
    start: StreamStart,
    limit: int | None = None,
    follow: bool = True,
    client_address: str | None = None,
) -> StreamSubscription:
    """Decide, plan and open one subscription; nothing is served yet. Raises ReadRefused
    (400 bad input or not a stream port, 403 no access, 404 unknown port or stream) and
    ConnectorError (the NATS server could not be reached)."""
    # The port first: a table port's name answers "not a stream" before read_plan reads it.
    access = access_decide(user=user, product=product)
    if not access.allowed:
        raise ReadRefused(403, access.reason)
    port = stream_port_for(product, port_slug)
    if limit is not None and limit < 1:
        raise ReadRefused(400, "The limit must be 1 or more.")
    plan = read_plan(
        user=user,
        product=product,
        channel=Channel.STREAM,
        port_slug=port.slug,
        columns=columns,
        filter=filter,
        limit=limit,
        max_rows=UNLIMITED,
    )
    shaper = MessageShaper(plan, port_schema(port))
    if not settings.NATS_URL:
        raise ConnectorError("Streams are not served here: the portal has no NATS server.")
    reader = StreamReader(
        url=settings.NATS_URL, stream=port.stream_name, subject=port.stream_subject
    )
    try:
        reader.__enter__()
        facts = reader.facts()
        if start.last is not None:
            reader.start(from_seq=max(facts.first_seq, facts.last_seq - start.last + 1, 1))
        elif start.time is not None and (facts.last_time is None or start.time > facts.last_time):
            # After the last message: only what comes next (the server would start over).
            reader.start(from_seq=facts.last_seq + 1)
        else:
            reader.start(from_seq=start.seq, from_time=start.time)
    except BaseException:
        reader.close()
        raise
    return StreamSubscription(
        plan=plan,
        reader=reader,
        facts=facts,
        start=start,
        shaper=shaper,
        follow=follow,
        client_address=client_address,
        end_seq=facts.last_seq,
    )
