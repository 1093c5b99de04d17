"""Running the public `delta-sharing` client as a recipient does: in its own process
and virtualenv (it pins pandas < 3, the portal runs pandas 3), against a live server.

`make delta-sharing-client` creates that virtualenv in var/delta-sharing-client; set
DELTA_SHARING_PYTHON to use another interpreter that has `delta-sharing` installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RUNNER = Path(__file__).resolve().parent / "delta_sharing_client.py"
CLIENT_VENV = ROOT / "var" / "delta-sharing-client"


def delta_sharing_python() -> str | None:
    """An interpreter with the `delta-sharing` client, or None."""
    configured = os.environ.get("DELTA_SHARING_PYTHON")
    if configured:
        return configured if Path(configured).exists() else None
    candidate = CLIENT_VENV / "bin" / "python"
    if candidate.exists():
        return str(candidate)
    if importlib.util.find_spec("delta_sharing") is not None:
        return sys.executable
    return None


def run_client(python: str, profile_path: Path, ops: list[dict], *, timeout: float = 300):
    """The runner's answers, one per operation: {"result": ...} or {"error", "status",
    "message"}."""
    completed = subprocess.run(
        [python, str(RUNNER)],
        input=json.dumps({"profile": str(profile_path), "ops": ops}),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the delta-sharing client failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout)


# The orders a share serves in these tests, and a recipient reading them.

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "email": ["a@x", "b@x", None, "d@x"],
    "amount": [10.5, 20.0, 30.25, 40.0],
}


class Recipient:
    """A recipient's profile file on disk and the client reading with it."""

    def __init__(self, *, share, by, live_server, tmp_path, python, expires_at=None):
        # Imported here: bench/delta_sharing.py imports this module before Django is set up.
        from sharing.delta_sharing.services import delta_profile, delta_recipient_create

        self.model, token = delta_recipient_create(
            share=share, by=by, name="Acme", expires_at=expires_at
        )
        self.token = token
        self.endpoint = live_server.url + "/delta-sharing/"
        self.profile = delta_profile(recipient=self.model, token=token, endpoint=self.endpoint)
        self.path = tmp_path / f"recipient-{self.model.pk}.share"
        self.path.write_text(json.dumps(self.profile))
        self.python = python

    def run(self, *ops: dict) -> list[dict]:
        return run_client(self.python, self.path, list(ops))

    def one(self, op: dict):
        (answer,) = self.run(op)
        return answer

    def load(self, table: str = "partners.default.orders", **kwargs):
        answer = self.one({"op": "load", "table": table, **kwargs})
        assert "result" in answer, answer
        return answer["result"]

    def http(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """A raw protocol request: (status, headers, body text)."""
        request = urllib.request.Request(
            self.endpoint.rstrip("/") + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {self.token if token is None else token}",
                "Content-Type": "application/json",
            },
        )
        return fetch(request)


def fetch(request) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
