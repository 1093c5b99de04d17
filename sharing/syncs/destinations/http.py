"""HTTP API destinations: records POSTed as JSON batches.

The request
    POST <destination.url>, body from `destination.body_template` (JSON text with the string
    "{{records}}" where the array of records goes; empty: {"records": [...]}), at most
    `destination.batch_size` records per request. Each record is the sync's destination
    fields plus two of the portal's:
        {"idempotency_key": "<run id>:<key>", "op": "insert" | "update" | "upsert" | "delete", ...}
    (a destination field named "idempotency_key" or "op" is overridden by the portal's).
    Headers: Content-Type: application/json; Idempotency-Key: a hash of the run id, the
    operation and the batch's first and last keys (the same for a resend of the same batch);
    and `destination.auth_header` (default Authorization) with the value of the environment
    variable `destination.secret_env`, when one is named.

The answer
    2xx      the batch is acknowledged, except the records the JSON body lists as rejected:
                 {"rejected": [{"idempotency_key": "42:[\"c-1\"]", "reason": "unknown owner"}]}
             (any other body, or none, acknowledges every record).
    429, 503 retried after the receiver's Retry-After (seconds or an HTTP date, capped),
             or after the back-off when it gives none.
    408, other 5xx, timeouts, refused connections
             retried with exponential back-off and jitter; after SYNCS_HTTP_MAX_TRIES
             tries the batch is not acknowledged (DestinationUnavailable) and the run stops.
    401, 403, 404, 405, 413
             a DestinationError that stops the run, nothing acknowledged: the credentials,
             the URL or the batch size need fixing, not the records (a rejected token
             must not send every record to the dead-letter list).
    other 4xx
             every record of the batch is rejected with the status and the start of the
             answer (kept as rejected records, retried at the next run).
    3xx      a DestinationError: redirects are not followed, give the final URL.

A receiver that applies a record once per idempotency key gets every record exactly once,
even when a batch is re-sent (a retry after a timeout, a run resumed after a killed worker).

The URL must be https and resolve to public addresses only, unless
settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS (shared with webhooks: tests and closed networks);
the connection goes to the address that was checked (sharing.webhooks.targets). One
connection is kept open and reused for every request of a writer. `rate_per_second` bounds
the requests (a token bucket), retries included.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import random
import socket
import time
from datetime import UTC, datetime

import urllib3
from django.conf import settings

from portal.core.targets import Target, TargetRefused, target_resolve
from sharing.models import SyncDestination
from sharing.syncs.destinations.base import (
    BatchOutcome,
    DestinationError,
    DestinationUnavailable,
    OutgoingBatch,
    destination_secret,
    reason_short,
)

DEFAULT_AUTH_HEADER = "Authorization"
RECORDS_PLACEHOLDER = "{{records}}"
ANSWER_READ_BYTES = 4 * 1024 * 1024  # enough for a rejected list of a 10,000-record batch
RETRY_AFTER_STATUSES = {429, 503}
RETRIED_STATUSES = {408, 429} | set(range(500, 600))
# Refusals of the request, not of its records: what to fix, for the person who registered it.
SETUP_REFUSALS = {
    401: "refused the credentials (check the variable named as the secret)",
    403: "refused the credentials (check the variable named as the secret)",
    404: "has no such URL",
    405: "does not take POST at this URL",
    413: "found the request too large (lower the batch size)",
}
USER_AGENT = "portal-syncs/1"


def _setting(name: str, default: float) -> float:
    # Tunable per deployment (and shortened by tests); the defaults suit a CRM API.
    return float(getattr(settings, name, default))


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def body_template_error(template: str) -> str | None:
    """Why `template` cannot be a body template (None when it can)."""
    if not template.strip():
        return None
    if RECORDS_PLACEHOLDER not in template:
        return f'The body template must contain "{RECORDS_PLACEHOLDER}" where the records go.'
    try:
        json.loads(template.replace(RECORDS_PLACEHOLDER, "[]"))
    except ValueError as exc:
        return (
            f"The body template is not JSON once {RECORDS_PLACEHOLDER} is replaced by the "
            f"records: {exc}."
        )
    return None


class TokenBucket:
    """At most `rate` acquisitions per second on average, bursts of up to max(1, rate)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def acquire(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            time.sleep((1 - self.tokens) / self.rate)


class HttpWriter:
    """One HTTP destination for one run: one kept connection, batches of batch_size."""

    def __init__(self, destination: SyncDestination, *, run_id: int | str) -> None:
        self.destination = destination
        self.run_id = str(run_id)
        self.batch_size = max(1, destination.batch_size or 500)
        self.timeout = _setting("SYNCS_HTTP_TIMEOUT_SECONDS", 30.0)
        self.max_tries = int(_setting("SYNCS_HTTP_MAX_TRIES", 8))
        self.retry_base = _setting("SYNCS_HTTP_RETRY_BASE_SECONDS", 0.5)
        self.retry_max = _setting("SYNCS_HTTP_RETRY_MAX_SECONDS", 60.0)
        self.bucket = (
            TokenBucket(destination.rate_per_second) if destination.rate_per_second else None
        )
        template = destination.body_template or ""
        if template.strip():
            error = body_template_error(template)
            if error:
                raise DestinationError(error)
            self._before, _, self._after = template.partition(RECORDS_PLACEHOLDER)
        else:
            self._before, self._after = '{"records":', "}"
        self._target: Target | None = None
        self._pool: urllib3.HTTPConnectionPool | None = None

    # -- the connection ----------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        value = destination_secret(self.destination)
        if value is None:
            return {}
        return {self.destination.auth_header or DEFAULT_AUTH_HEADER: value}

    def _connection(self) -> urllib3.HTTPConnectionPool:
        if self._pool is not None:
            return self._pool
        try:
            target = target_resolve(self.destination.url)
        except TargetRefused as exc:
            raise DestinationError(
                f"Destination {self.destination.name!r}: {exc}", technical=str(exc)
            ) from None
        timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                target.address,
                target.port,
                timeout=timeout,
                retries=False,
                maxsize=1,
                server_hostname=target.host,
                assert_hostname=target.host,
                cert_reqs="CERT_REQUIRED",
            )
        else:
            pool = urllib3.HTTPConnectionPool(
                target.address, target.port, timeout=timeout, retries=False, maxsize=1
            )
        default_port = 443 if target.scheme == "https" else 80
        host = f"[{target.host}]" if ":" in target.host else target.host
        self._host_header = host if target.port == default_port else f"{host}:{target.port}"
        self._target, self._pool = target, pool
        return pool

    def _reset(self) -> None:
        """Drop the connection (after a failure): the next try resolves and connects again."""
        if self._pool is not None:
            self._pool.close()
        self._pool = self._target = None

    def close(self) -> None:
        self._reset()

    def __enter__(self) -> HttpWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the interface -----------------------------------------------------------------------

    def fields(self) -> None:
        return None  # free-form: the receiver takes whatever fields the sync maps

    def check(self) -> None:
        """The secret is set, the URL allowed and a connection opens (nothing is POSTed)."""
        self._auth_headers()
        self._connection()
        try:
            socket.create_connection(
                (self._target.address, self._target.port), timeout=self.timeout
            ).close()
        except OSError as exc:
            self._reset()
            raise DestinationUnavailable(
                f"Destination {self.destination.name!r} could not be reached.",
                technical=f"{self.destination.url}: {exc!r}",
            ) from None

    def send(self, batch: OutgoingBatch) -> BatchOutcome:
        outcome = BatchOutcome()
        for start in range(0, len(batch.records), self.batch_size):
            part = OutgoingBatch(
                operation=batch.operation,
                keys=batch.keys[start : start + self.batch_size],
                records=batch.records[start : start + self.batch_size],
                idempotency_keys=batch.idempotency_keys[start : start + self.batch_size],
            )
            part_outcome = self._send_one(part)
            outcome.acked.extend(start + index for index in part_outcome.acked)
            outcome.rejected.update(
                {start + index: reason for index, reason in part_outcome.rejected.items()}
            )
        return outcome

    # -- one request -------------------------------------------------------------------------

    def idempotency_key(self, batch: OutgoingBatch) -> str:
        """The request's key: a hash of the operation and the batch's first and last record
        keys (each "<run id>:<key>"), so a resend of the same batch carries the same one."""
        if not batch.idempotency_keys:
            return ""
        text = "\n".join(
            [
                self.run_id,
                batch.operation,
                batch.idempotency_keys[0],
                batch.idempotency_keys[-1],
                str(len(batch.idempotency_keys)),
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def body(self, batch: OutgoingBatch) -> bytes:
        records = [
            {**record, "idempotency_key": key, "op": batch.operation}
            for record, key in zip(batch.records, batch.idempotency_keys, strict=True)
        ]
        array = json.dumps(records, separators=(",", ":"), ensure_ascii=False, default=str)
        return (self._before + array + self._after).encode()

    def _send_one(self, batch: OutgoingBatch) -> BatchOutcome:
        if not batch.records:
            return BatchOutcome()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": self.idempotency_key(batch),
            **self._auth_headers(),
        }
        body = self.body(batch)
        last_error = ""
        for attempt in range(1, self.max_tries + 1):
            if self.bucket is not None:
                self.bucket.acquire()
            pool = self._connection()
            try:
                response = pool.urlopen(
                    "POST",
                    self._target.path,
                    body=body,
                    headers={**headers, "Host": self._host_header},
                    redirect=False,
                    retries=False,
                    preload_content=False,
                )
                try:
                    answer = response.read(ANSWER_READ_BYTES)
                finally:
                    response.release_conn()
            except urllib3.exceptions.NewConnectionError as exc:  # a TimeoutError subclass
                last_error = f"connection failed: {exc.reason if hasattr(exc, 'reason') else exc}"
                self._reset()
                retry_after = None
            except urllib3.exceptions.TimeoutError:
                last_error = f"no answer within {self.timeout:g} s"
                self._reset()
                retry_after = None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                last_error = f"connection failed: {getattr(exc, 'reason', None) or exc}"
                self._reset()
                retry_after = None
            else:
                status = response.status
                if 200 <= status < 300:
                    return self._acknowledged(batch, answer)
                if 300 <= status < 400:
                    raise DestinationError(
                        f"Destination {self.destination.name!r} answered {status}: redirects "
                        "are not followed, give the final URL."
                    )
                if status in SETUP_REFUSALS:
                    raise DestinationError(
                        f"Destination {self.destination.name!r} answered {status}: it "
                        f"{SETUP_REFUSALS[status]}.",
                        technical=reason_short(
                            f"{self.destination.url}: {status} "
                            f"{answer[:300].decode(errors='replace')}"
                        ),
                    )
                if status not in RETRIED_STATUSES:
                    reason = reason_short(
                        f"The destination answered {status}: "
                        f"{answer[:300].decode(errors='replace')}"
                    )
                    return BatchOutcome(rejected=dict.fromkeys(range(len(batch.records)), reason))
                last_error = f"answered {status}"
                retry_after = (
                    retry_after_seconds(response.headers.get("Retry-After"))
                    if status in RETRY_AFTER_STATUSES
                    else None
                )
            if attempt < self.max_tries:
                time.sleep(self.retry_delay(attempt, retry_after))
        raise DestinationUnavailable(
            f"Destination {self.destination.name!r} failed {self.max_tries} tries in a row "
            f"(last: {last_error}); the batch was not acknowledged.",
            technical=f"{self.destination.url}: {last_error}",
        )

    def retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before the next try after `attempt` failed ones: the receiver's
        Retry-After (capped), else exponential back-off with jitter (half fixed, half random)."""
        if retry_after is not None:
            return min(retry_after, self.retry_max)
        delay = min(self.retry_max, self.retry_base * 2 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not a secret

    def _acknowledged(self, batch: OutgoingBatch, answer: bytes) -> BatchOutcome:
        rejected: dict[int, str] = {}
        listed = _rejected_listed(answer)
        if listed:
            index_of = {key: index for index, key in enumerate(batch.idempotency_keys)}
            for key, reason in listed:
                if key in index_of:
                    rejected[index_of[key]] = reason_short(reason or "rejected by the destination")
        acked = [index for index in range(len(batch.records)) if index not in rejected]
        return BatchOutcome(acked=acked, rejected=rejected)


def _rejected_listed(answer: bytes) -> list[tuple[str, str]]:
    """(idempotency key, reason) of the records a 2xx answer lists as rejected."""
    if b"rejected" not in answer:
        return []
    try:
        document = json.loads(answer)
    except ValueError:
        return []
    entries = document.get("rejected") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return []
    return [
        (str(entry["idempotency_key"]), str(entry.get("reason") or ""))
        for entry in entries
        if isinstance(entry, dict) and "idempotency_key" in entry
    ]
