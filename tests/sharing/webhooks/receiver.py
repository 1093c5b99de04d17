"""A real local HTTP receiver for webhook tests (and bench/webhooks.py): a thread that
records every request and answers what its script says: 200, 500, 429 with Retry-After,
or hangs past the sender's timeout."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    headers: dict
    body: bytes
    answered: int
    at: float  # time.time() when it arrived
    client_port: int = 0  # the sender's side of the connection (a kept-alive one repeats)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def envelope(self) -> dict:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    retry_after: str | None = None
    hang_seconds: float = 0.0
    delay_seconds: float = 0.0


@dataclass
class Receiver:
    """`script(n)` -> Answer for the n-th request (0-based); default: 200."""

    script: object = None
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/portal?team=data"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps connections alive, as real receivers do
            # The answer goes out in two writes (headers, body): without this, Nagle's
            # algorithm holds the second for the client's delayed ACK, 40 ms a request on
            # a kept-alive connection (real servers send the answer in one write).
            disable_nagle_algorithm = True

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    number = len(receiver.requests)
                    answer = receiver.script(number) if receiver.script else Answer()
                    receiver.requests.append(
                        Received(
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            answered=answer.status,
                            at=time.time(),
                            client_port=self.client_address[1],
                        )
                    )
                if answer.hang_seconds:
                    time.sleep(answer.hang_seconds)
                    return  # no answer: the sender timed out
                if answer.delay_seconds:
                    time.sleep(answer.delay_seconds)
                self.send_response(answer.status)
                if answer.retry_after is not None:
                    self.send_header("Retry-After", answer.retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def delivered(self) -> list[Received]:
        """The requests it answered 2xx, in arrival order."""
        return [r for r in self.snapshot() if 200 <= r.answered < 300]


def verified(secret: str, request: Received) -> dict:
    """The envelope, after checking the signature with the reference Standard Webhooks
    library (raises when it does not verify)."""
    return Webhook(secret).verify(request.body, request.headers)
