"""A metric's values as a sync's source ("the revenue per country and month, into the CRM").

The metric is evaluated as every channel evaluates it (metric_evaluate: the creator's
access decided again, the metric's one aggregate pushed down to its port's source, one
audit event on the sync channel), so the numbers a sync sends are the numbers its page,
the API and the notebook client show. An evaluation holds at most MAX_GROUPS rows: each
row's key and hash are computed here, and the plan diffs them with the acknowledged state
as the scan of a port's rows is diffed (sharing.syncs.planning.diff_plan). An evaluation
with more groups than that is refused, never sent in part.

A metric sync's columns are the evaluation's: "period" (with a grain), the dimensions it
groups by, "value"; its key is the period and the dimensions unless the sync names
another."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.exceptions import ValidationError

from portal.core.json_values import json_value
from products.definitions.services.metrics import (
    MAX_GROUPS,
    MetricRefused,
    metric_evaluate,
    metric_query_parse,
    metric_read_plan,
    metric_result_columns,
    port_column_types,
)
from sharing.choices import Channel
from sharing.models import Sync
from sharing.syncs.planning import PlanCounts, key_text

QUERY_FIELDS = ("dimensions", "grain", "filters")


def metric_sync_check(sync: Sync) -> dict[str, str]:
    """Check a metric sync's source at save, and fill in what the sync may leave out: its
    columns (every column of the evaluation) and its key (the period and dimensions).
    Refused (ValidationError naming the field) as an evaluation by its creator would be:
    a query the metric does not take, a column outside the creator's grant or masked in
    it. Returns each column's type (for per-column limits)."""
    stored = sync.metric_query
    if stored in (None, ""):
        stored = {}
    if not isinstance(stored, dict):
        raise ValidationError(
            {"metric_query": 'An object like {"dimensions": ["country"], "grain": "month"}.'}
        )
    unknown = sorted(set(stored) - set(QUERY_FIELDS))
    if unknown:
        raise ValidationError(
            {
                "metric_query": f"Unknown field(s) {', '.join(unknown)}: use dimensions, grain "
                "and filters."
            }
        )
    dimensions, grain = stored.get("dimensions"), stored.get("grain")
    if dimensions is not None and not (
        isinstance(dimensions, list) and all(isinstance(name, str) for name in dimensions)
    ):
        raise ValidationError({"metric_query": "dimensions: a list of dimension names."})
    if grain is not None and not isinstance(grain, str):
        raise ValidationError({"metric_query": "grain: day, week or month (or none)."})
    metric = sync.metric
    types = port_column_types(metric.port)
    try:
        query = metric_query_parse(metric=metric, **stored)
        metric_read_plan(
            metric=metric, user=sync.created_by, channel=Channel.SYNC, query=query, types=types
        )
    except MetricRefused as exc:
        field = "metric" if exc.status == 403 else "metric_query"
        raise ValidationError({field: exc.message}) from exc
    sync.metric_query = {
        "dimensions": list(query.dimensions),
        "grain": query.grain,
        "filters": [clause.as_dict() for clause in query.filters],
    }
    outputs = metric_result_columns(query)
    keyed_by = [name for name in outputs if name != "value"]
    if not keyed_by:
        raise ValidationError(
            {
                "metric_query": f"Group {metric.key} by a grain or dimension(s): they identify "
                "the records a sync sends (one value alone has no key)."
            }
        )
    sync.columns = list(sync.columns or outputs)
    sync.key_columns = list(sync.key_columns or keyed_by)
    outside = [name for name in [*sync.columns, *sync.key_columns] if name not in outputs]
    if outside:
        raise ValidationError(
            {
                "columns": f"{', '.join(dict.fromkeys(outside))}: not a column of the metric's "
                f"values, which are {', '.join(outputs)}."
            }
        )
    outside = [name for name in sync.key_columns if name not in sync.columns]
    if outside:
        raise ValidationError(
            {"key_columns": f"Key column(s) {', '.join(outside)} are not among the columns sent."}
        )
    return {
        "period": "date",
        **{name: types.get(name, "") for name in query.dimensions},
        "value": "double",
    }


def metric_source_batch(sync: Sync, *, run_id: int):
    """The metric's values for a run as one Arrow batch: the key (canonical JSON text),
    an md5 of the values sent, then the sync's columns. Raises MetricRefused: the
    evaluation's answers (403 for access lost), 400 for more groups than one evaluation
    holds."""
    # Lazy: pyarrow only in the processes that read Arrow (a run, not a starting worker).
    import pyarrow as pa

    metric = sync.metric
    result = metric_evaluate(  # checks the stored query against the metric as it is now
        metric=metric,
        user=sync.created_by,
        channel=Channel.SYNC,
        detail={"sync": sync.pk, "sync_run": run_id},
        **(sync.metric_query or {}),
    )
    if result.truncated:
        raise MetricRefused(
            400,
            f"{metric.key} has more than {MAX_GROUPS:,} groups as this sync asks it: a sync "
            "sends every group or none. Filter it, or group it by fewer dimensions or a "
            "coarser grain.",
        )
    rows = result.rows
    keys = [key_text([row[name] for name in sync.key_columns]) for row in rows]
    hashes = [values_hash([row[name] for name in sync.columns]) for row in rows]
    arrays = [pa.array(keys, pa.string()), pa.array(hashes, pa.string())]
    arrays += [_column_array([row[name] for row in rows]) for name in sync.columns]
    return pa.RecordBatch.from_arrays(arrays, names=["sync_key", "sync_hash", *sync.columns])


def _column_array(values: list[Any]):
    """Arrow's own type for the values (dates, decimals, numbers, text); text when Arrow
    finds none (all null) or no single one."""
    import pyarrow as pa  # lazy, as in metric_source_batch

    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.array(values, pa.string()) if pa.types.is_null(array.type) else array


def values_hash(values: list[Any]) -> str:
    """md5 of the values' canonical JSON text (what the state keeps, to find changes)."""
    text = json.dumps(
        [json_value(value) for value in values],
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def batch_key_counts(batch) -> PlanCounts:
    """A first run's counts (every key added), and the first key that repeats."""
    counts = PlanCounts(source_rows=batch.num_rows, added=batch.num_rows)
    seen: set[str] = set()
    for key in batch.column(0).to_pylist():
        if key in seen:
            counts.duplicate = key
            break
        seen.add(key)
    return counts
