"""Guardrails: evaluated on a run's plan before anything is sent. When one trips, the run
is held for an owner's approval with the reasons (and the offending records) listed.

- max_changed_pct: added + changed records over the records the destination holds from
  this sync. The very first run (nothing held yet) is not "changes": it is exempt.
- max_removed_pct: records a mirror run would delete over the records held (only mirror
  removes anything).
- hold_on_empty_source: the source returns no row while the destination holds records.
- max_count_move_pct: the source's row count moves more than this from the median of the
  last 5 succeeded runs.
- column_limits: per numeric column, a record's value may move at most max_change_pct
  from the value last sent (SyncRecordState.limited_values), and the sum of the column
  over the records sent stays under max_sum.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from sharing.models import Sync, SyncRun
from sharing.models.syncs import SyncMode, SyncRunStatus

OFFENDING_LISTED = 20  # records listed per column limit in held_reasons
MEDIAN_RUNS = 5


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _fmt(number: float) -> str:
    return f"{number:,.1f}".rstrip("0").rstrip(".")


def count_guardrails(
    *,
    sync: Sync,
    run: SyncRun,
    source_rows: int,
    state_rows: int,
    added: int,
    changed: int,
    removed: int,
    retried: int = 0,
) -> list[dict]:
    """The guardrails on the plan's counts that trip, as held_reasons entries. `retried`:
    records of the plan that are retries of rejected records (not new changes)."""
    reasons: list[dict] = []
    if state_rows and source_rows == 0 and sync.hold_on_empty_source:
        reasons.append(
            {
                "guardrail": "hold_on_empty_source",
                "message": f"The source returned no rows while the destination holds "
                f"{state_rows:,} records from this sync.",
            }
        )
    if state_rows:
        changes = max(0, added + changed - retried)
        moved = _pct(changes, state_rows)
        if moved > sync.max_changed_pct:
            reasons.append(
                {
                    "guardrail": "max_changed_pct",
                    "message": f"{changes:,} records would change or be added, "
                    f"{_fmt(moved)}% of the {state_rows:,} held (limit "
                    f"{_fmt(sync.max_changed_pct)}%).",
                }
            )
        if sync.mode == SyncMode.MIRROR:
            gone = _pct(removed, state_rows)
            if gone > sync.max_removed_pct:
                reasons.append(
                    {
                        "guardrail": "max_removed_pct",
                        "message": f"{removed:,} records would be deleted, {_fmt(gone)}% of "
                        f"the {state_rows:,} held (limit {_fmt(sync.max_removed_pct)}%).",
                    }
                )
    previous = list(
        SyncRun.objects.filter(
            sync=sync, status=SyncRunStatus.SUCCEEDED, dry_run=False, source_rows__isnull=False
        )
        .exclude(pk=run.pk)
        .order_by("-finished_at", "-pk")
        .values_list("source_rows", flat=True)[:MEDIAN_RUNS]
    )
    if previous and source_rows:
        median = statistics.median(previous)
        if median:
            move = abs(source_rows - median) * 100.0 / median
            if move > sync.max_count_move_pct:
                reasons.append(
                    {
                        "guardrail": "max_count_move_pct",
                        "message": f"The source has {source_rows:,} rows, {_fmt(move)}% from "
                        f"the median {_fmt(median)} of the last {len(previous)} runs (limit "
                        f"{_fmt(sync.max_count_move_pct)}%).",
                    }
                )
    return reasons


@dataclass
class ColumnLimitCheck:
    """Fed the records a run would send, one at a time; `reasons()` at the end."""

    limits: list[dict]
    offending: dict[str, list[dict]] = field(default_factory=dict)
    offending_count: dict[str, int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)

    def add(self, *, key: str, values: dict[str, Any], before: dict[str, Any] | None) -> None:
        """`values`: the record's source column -> value; `before`: the values last sent."""
        for limit in self.limits:
            column = limit["column"]
            new = _as_number(values.get(column))
            if new is None:
                continue
            self.sums[column] = self.sums.get(column, 0.0) + new
            pct = limit.get("max_change_pct")
            old = _as_number((before or {}).get(column))
            if pct is None or old is None:
                continue
            if old == 0:
                moved = 0.0 if new == 0 else float("inf")
            else:
                moved = abs(new - old) * 100.0 / abs(old)
            if moved > pct:
                self.offending_count[column] = self.offending_count.get(column, 0) + 1
                listed = self.offending.setdefault(column, [])
                if len(listed) < OFFENDING_LISTED:
                    listed.append(
                        {
                            "key": key,
                            "before": old,
                            "after": new,
                            "change_pct": None if moved == float("inf") else round(moved, 2),
                        }
                    )

    def reasons(self) -> list[dict]:
        reasons = []
        for limit in self.limits:
            column = limit["column"]
            count = self.offending_count.get(column, 0)
            if count:
                reasons.append(
                    {
                        "guardrail": "column_limits",
                        "column": column,
                        "message": f"{count:,} records would move {column} by more than "
                        f"{_fmt(limit['max_change_pct'])}% from the value last sent.",
                        "records": self.offending[column],
                    }
                )
            cap = limit.get("max_sum")
            total = self.sums.get(column, 0.0)
            if cap is not None and total > cap:
                reasons.append(
                    {
                        "guardrail": "column_limits",
                        "column": column,
                        "message": f"The sum of {column} over the records sent would be "
                        f"{_fmt(total)}, above its cap {_fmt(cap)}.",
                    }
                )
        return reasons


def _as_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
