"""Schemathesis hooks for tests/portal/api/test_fuzz.py: hostile values mixed into the generated
requests, so the run also sends what an attacker would.

Each generated path parameter set, query and body is kept, or replaced by a copy with:
- a NUL byte in a string (path parameters, query values, body strings and keys);
- deep JSON: 500 levels of nested arrays in a body field and in `filter`/`filters`
  (the client's own json encoder stops near 1,000 levels; tests/portal/test_input_guard.py
  sends 10,000 levels as raw bodies);
- a filter clause whose value does not fit its column's type (text for a whole number),
  in `filter`/`filters` query parameters and `row_filter`/`filters` body fields;
- an over-long query value (5,000 characters).

Loaded by Schemathesis from the SCHEMATHESIS_HOOKS environment variable (a file path).
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

NUL = "a\x00b"
DEPTH = 500
MISMATCH = [{"column": "order_id", "op": "=", "value": "not a number"}]
FILTER_NAMES = ("filter", "filters", "row_filter")


def deep(depth: int = DEPTH) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def deep_text(depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth


def _with_nul(values: dict[str, Any], *, add: str | None = None) -> dict[str, Any]:
    """A copy with a NUL byte ending its first string, or in a new parameter `add`."""
    out = dict(values)
    for name, value in values.items():
        if isinstance(value, str):
            out[name] = value + "\x00"
            return out
    if add:
        out[add] = NUL
    return out


def _query_variants(query: dict[str, Any]) -> list[dict[str, Any]]:
    query = dict(query or {})
    variants = [_with_nul(query, add="q"), {**query, "q": "x" * 5000}]
    names = [name for name in FILTER_NAMES if name in query] or ["filter"]
    for name in names:
        variants.append({**query, name: deep_text()})
        variants.append({**query, name: _json(MISMATCH)})
    return variants


def _body_variants(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        return []  # YAML documents and raw bodies are left as generated
    variants = [{**body, "\x00key": 1}, {**body, "deep": deep()}]
    for name, value in body.items():
        if isinstance(value, str):
            variants.append({**body, name: NUL})
            break
    for name in FILTER_NAMES:
        variants.append({**body, name: MISMATCH})
        variants.append({**body, name: deep()})
    return variants


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    return st.sampled_from([path_parameters, _with_nul(path_parameters or {})])


@schemathesis.hook
def flatmap_query(context, query):
    return st.sampled_from([query, *_query_variants(query)])


@schemathesis.hook
def flatmap_body(context, body):
    return st.sampled_from([body, *_body_variants(body)])
