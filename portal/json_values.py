"""JSON for data values, NaN and infinities included.

Python's json writes float NaN and infinities as the bare words NaN and Infinity, which are
not JSON: browsers, `jq` and PostgreSQL's jsonb refuse them. Everywhere the portal writes
data values as JSON (the JSON and JSON-lines reads, check samples stored in jsonb) they are
written as the strings "NaN", "Infinity" and "-Infinity", the convention of Protocol
Buffers' and BigQuery's JSON. XLSX cells get the same strings.
"""

from __future__ import annotations

import json
import math
from typing import Any

NAN = "NaN"
INFINITY = "Infinity"
NEGATIVE_INFINITY = "-Infinity"


def non_finite_as_text(value: Any) -> Any:
    """`value` with every non-finite float (also inside lists and dicts) as its string."""
    if isinstance(value, float):
        if math.isnan(value):
            return NAN
        if math.isinf(value):
            return INFINITY if value > 0 else NEGATIVE_INFINITY
        return value
    if isinstance(value, dict):
        return {key: non_finite_as_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [non_finite_as_text(item) for item in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps that never writes NaN or Infinity as bare words."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:  # a non-finite float somewhere: the slow path, only then
        return json.dumps(non_finite_as_text(value), allow_nan=False, **kwargs)
