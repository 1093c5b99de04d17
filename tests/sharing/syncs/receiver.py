"""A real local HTTP receiver for sync destination tests and bench/sync_destinations.py.

It takes JSON batches ({"records": [...]} or any body whose records are the first list of
objects carrying "idempotency_key"), applies each record once per idempotency key (a
duplicate is counted, not applied again) and answers as its modes say, settable per test:

    retry_after_every=N   every Nth request answers 429 with Retry-After: retry_after
    fail_next=N           the next N requests answer fail_status (500)
    sleep_next=N          the next N requests apply their records, then sleep sleep_seconds
                          before answering (past the sender's timeout: it re-sends)
    reject={key: reason}  those idempotency keys are not applied and are listed as rejected
    status=(code, text)   every request answers that (a 4xx refusal)

In another process: `python -m tests.sharing.syncs.receiver --retry-after-every 10` prints
its URL and serves; GET /stats answers the counts as JSON."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    headers: dict
    body: bytes
    records: int
    answered: int
    at: float  # time.monotonic() when it arrived


def _records_of(document) -> list[dict]:
    if isinstance(document, list):
        if all(isinstance(item, dict) and "idempotency_key" in item for item in document):
            return document
        for item in document:
            found = _records_of(item)
            if found:
                return found
    if isinstance(document, dict):
        for value in document.values():
            found = _records_of(value)
            if found:
                return found
    return []


@dataclass
class SyncReceiver:
    retry_after_every: int = 0
    retry_after: str = "0"
    fail_next: int = 0
    fail_status: int = 500
    sleep_next: int = 0
    sleep_seconds: float = 0.0
    reject: dict = field(default_factory=dict)
    status: tuple[int, str] | None = None
    applied: dict = field(default_factory=dict)  # idempotency key -> record
    duplicates: int = 0
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/crm/records"

    def _answer(self, headers: dict, body: bytes) -> tuple[int, dict, bytes, float]:
        """(status, headers, body, seconds to sleep first) for one request."""
        with self.lock:
            number = len(self.requests) + 1
            if self.status is not None:
                status, text = self.status
                self.requests.append(Request(headers, body, 0, status, time.monotonic()))
                return status, {}, text.encode(), 0.0
            if self.retry_after_every and number % self.retry_after_every == 0:
                self.requests.append(Request(headers, body, 0, 429, time.monotonic()))
                return 429, {"Retry-After": self.retry_after}, b"slow down", 0.0
            if self.fail_next:
                self.fail_next -= 1
                self.requests.append(Request(headers, body, 0, self.fail_status, time.monotonic()))
                return self.fail_status, {}, b"unavailable", 0.0
            records = _records_of(json.loads(body))
            rejected = []
            for record in records:
                key = record["idempotency_key"]
                if key in self.reject:
                    rejected.append({"idempotency_key": key, "reason": self.reject[key]})
                elif key in self.applied:
                    self.duplicates += 1
                else:
                    self.applied[key] = record
            sleep = 0.0
            if self.sleep_next:
                self.sleep_next -= 1
                sleep = self.sleep_seconds
            self.requests.append(Request(headers, body, len(records), 200, time.monotonic()))
        answer = {"rejected": rejected} if rejected else {"ok": True}
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode(), sleep

    def stats(self) -> dict:
        with self.lock:
            answered: dict[str, int] = {}
            for request in self.requests:
                answered[str(request.answered)] = answered.get(str(request.answered), 0) + 1
            return {
                "requests": len(self.requests),
                "answered": answered,
                "applied": len(self.applied),
                "duplicates": self.duplicates,
            }

    def start(self, port: int = 0) -> SyncReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the sender reuses its connection
            disable_nagle_algorithm = True  # headers and body go out as two writes

            def _reply(self, status: int, headers: dict, body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer_headers, answer, sleep = receiver._answer(headers, body)
                if sleep:
                    time.sleep(sleep)
                try:
                    self._reply(status, answer_headers, answer)
                except OSError:
                    pass  # the sender gave up waiting

            def do_GET(self):  # noqa: N802
                self._reply(
                    200, {"Content-Type": "application/json"}, json.dumps(receiver.stats()).encode()
                )

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def arrivals(self) -> list[Request]:
        with self.lock:
            return list(self.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--retry-after-every", type=int, default=0)
    parser.add_argument("--retry-after", default="0")
    args = parser.parse_args()
    receiver = SyncReceiver(
        retry_after_every=args.retry_after_every, retry_after=args.retry_after
    ).start(args.port)
    print(receiver.url, flush=True)
    try:
        sys.stdin.read()  # serve until the parent closes our stdin (or kills us)
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
