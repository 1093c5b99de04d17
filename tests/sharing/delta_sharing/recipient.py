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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "delta_sharing_client.py"
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
