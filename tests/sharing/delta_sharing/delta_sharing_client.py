"""Runs the public `delta-sharing` client, as a recipient would, and prints what it got
as JSON. Started by tests/sharing/delta_sharing/test_*.py and bench/delta_sharing.py with the
client's own Python (see `delta_sharing_python()` in tests/sharing/delta_sharing/recipient.py):
the client pins pandas < 3, so it lives in its own virtualenv, like a recipient's
machine. It imports nothing of the portal.

    <client python> tests/sharing/delta_sharing/delta_sharing_client.py \
        < {"profile": path, "ops": [...]}

Operations: {"op": "list_shares"}, {"op": "list_all_tables"},
{"op": "load", "table": "share.schema.table", "limit": n}, {"op": "version", "table"},
{"op": "metadata", "table"}, {"op": "time_load", "table", "repeat": n} and
{"op": "time_local", "path", "repeat": n} (seconds of each read, for the benchmark).
Each answer is a result or {"error": class, "status": HTTP status, "message": text}.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import sys
import time


def _plain(value):
    """A JSON-friendly value: None for missing ones, ISO text for dates and times."""
    import numpy as np
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _frame(frame) -> dict:
    return {
        "columns": [str(name) for name in frame.columns],
        "dtypes": {str(name): str(dtype) for name, dtype in frame.dtypes.items()},
        "rows": [[_plain(value) for value in row] for row in frame.itertuples(index=False)],
    }


def run(profile: str, op: dict):
    import delta_sharing

    kind = op["op"]
    url = f"{profile}#{op.get('table', '')}"
    if kind == "list_shares":
        return [share.name for share in delta_sharing.SharingClient(profile).list_shares()]
    if kind == "list_all_tables":
        tables = delta_sharing.SharingClient(profile).list_all_tables()
        return [f"{t.share}.{t.schema}.{t.name}" for t in tables]
    if kind == "load":
        return _frame(delta_sharing.load_as_pandas(url, limit=op.get("limit")))
    if kind == "version":
        return delta_sharing.get_table_version(url)
    if kind == "metadata":
        metadata = delta_sharing.get_table_metadata(url)
        return {"id": metadata.id, "schema": json.loads(metadata.schema_string)}
    if kind == "time_load":
        seconds, shape = [], None
        for _ in range(op.get("repeat", 1)):
            began = time.perf_counter()
            frame = delta_sharing.load_as_pandas(url)
            seconds.append(time.perf_counter() - began)
            shape = list(frame.shape)
            del frame
        return {"seconds": seconds, "shape": shape}
    if kind == "time_local":
        import pandas as pd

        seconds, shape = [], None
        for _ in range(op.get("repeat", 1)):
            began = time.perf_counter()
            frame = pd.read_parquet(op["path"])
            seconds.append(time.perf_counter() - began)
            shape = list(frame.shape)
            del frame
        return {"seconds": seconds, "shape": shape}
    raise ValueError(f"unknown operation {kind!r}")


def main() -> None:
    spec = json.load(sys.stdin)
    answers = []
    for op in spec["ops"]:
        try:
            answers.append({"result": run(spec["profile"], op)})
        except Exception as exc:  # noqa: BLE001 - reported to the test, which judges it
            response = getattr(exc, "response", None)
            answers.append(
                {
                    "error": type(exc).__name__,
                    "status": getattr(response, "status_code", None),
                    "message": str(exc)[:2000],
                }
            )
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
