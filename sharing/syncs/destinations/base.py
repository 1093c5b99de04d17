"""The destination writer interface: what a sync run calls to send one batch of changes
to a destination (an HTTP API, a table, a NATS subject) and learn which records it took.

A writer acknowledges a record only when the destination has it (the run then advances
that key's state); a record the destination refused is `rejected` with its reason (kept
in the dead-letter list and retried at the next run); a destination that cannot be
reached, or keeps failing after the retries, raises DestinationUnavailable: nothing of
that batch is acknowledged, and the run stops there."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings

OPERATIONS = ("insert", "update", "upsert", "delete")
REASON_MAX = 500  # characters of a destination's reason kept per rejected record


class DestinationError(Exception):
    """`message` for people (names the field or the problem, never a secret's value);
    `technical` for admins (the driver's or the server's words)."""

    def __init__(self, message: str, *, technical: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.technical = technical or message


class DestinationUnavailable(DestinationError):
    """Unreachable, or retries exhausted: the batch is NOT acknowledged."""


@dataclass
class OutgoingBatch:
    operation: str  # "insert" | "update" | "upsert" | "delete"
    keys: list[str]  # state key per record (canonical JSON text of the key values)
    records: list[dict]  # destination field -> JSON-able value; deletes: key fields only
    idempotency_keys: list[str]  # f"{run_id}:{key}" per record

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise ValueError(f"unknown operation {self.operation!r}")
        if not (len(self.keys) == len(self.records) == len(self.idempotency_keys)):
            raise ValueError("keys, records and idempotency_keys differ in length")


@dataclass
class BatchOutcome:
    acked: list[int] = field(default_factory=list)  # indexes the destination acknowledged
    rejected: dict[int, str] = field(default_factory=dict)  # index -> the destination's reason


class DestinationWriter(Protocol):
    def fields(self) -> list[str] | None: ...  # None: free-form (HTTP, NATS)

    def check(self) -> None: ...  # reachable and usable, else DestinationError

    def send(self, batch: OutgoingBatch) -> BatchOutcome: ...

    def close(self) -> None: ...


def reason_short(text: str) -> str:
    """A destination's reason on one line, at most REASON_MAX characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"


def destination_secret(destination) -> str | None:
    """The value of the environment variable `destination.secret_env` names (None when it
    names none). Only variables meant for syncs (SYNC_SECRET_ENV_PREFIX) are read, here
    at every connection as at save: a destination never carries the portal's own secrets
    (SECRET_KEY, DATABASE_URL...) to its server."""
    name = destination.secret_env
    if not name:
        return None
    prefix = settings.SYNC_SECRET_ENV_PREFIX
    if not name.startswith(prefix):
        raise DestinationError(
            f"Destination {destination.name!r} names the environment variable {name}: only "
            f"variables whose name starts with {prefix} are read for syncs."
        )
    value = os.environ.get(name)
    if value is None:
        raise DestinationError(
            f"The environment variable {name} named by destination {destination.name!r} "
            "is not set on this host."
        )
    return value
