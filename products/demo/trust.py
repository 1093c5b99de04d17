"""The demo's trust evidence: checks and SLOs per product, 30 days of history, and one real
check run per port, so that after `make run` trust scores differ and incidents are open.

What the checks find (the defects planted in `products.demo.catalog`):
  - sales.orders: "Order lines are unique" fails (37 duplicate order ids, loaded twice
    52 hours ago).
  - sales.customers: "Every customer has an email" fails (0.4% of customers).
  - supply-chain.supplier-quality: "Inspections recorded daily" fails (newest 10 days old).
  - marketing.web-sessions: "Volume as usual" fails (the table holds 40% of the rows its
    history had), and the warning "Multi-page sessions have a duration" fails (a tagging
    quirk: about 0.3% of multi-page sessions are recorded with no duration).
Every other check passes.

History: for the 30 days before the data's `as_of` hour, one scheduled check run per slot
of the port's check schedule (hourly for orders, every few hours or daily for the others)
and an hourly monitor probe, each with what the table held then: the rows that had
arrived by then (by the port's `arrival_column`; a table rewritten whole keeps its size),
the newest value, the failing rows of each check. The demo warehouse was down for two
hours 12 days ago (table ports unreachable). Check results are derived from the real
run's (same tolerance words) and written once: only for a port with no check run yet.
Monitors really probe every 15 minutes; the history keeps one probe an hour.

Trust score history: one snapshot a day over the same 30 days (at the `as_of` hour),
computed by the real formula from that history as it stood then (the check results
evaluated by then, SLO attainment over the 30 days before, the incidents open then), so
the trust chart tells the same story as the checks; written once, with the history.

Real runs: after seeding, each port whose data this seeding wrote, or that has no run
since `as_of`, runs its checks once, synchronously (check_run_request by the admin, then
check_run_execute, then trust_after_check_run: incidents open, SLOs are evaluated and the
trust score recorded). Seeding again with nothing new runs nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import F

from products.choices import (
    ROW_LEVEL_CHECKS,
    UNRESOLVED_INCIDENT_STATUSES,
    CheckKind,
    CheckOutcome,
    CheckRunStatus,
    CheckTrigger,
    IncidentEventKind,
    Severity,
    SLOKind,
)
from products.demo.catalog import TableSpec
from products.models import (
    Check,
    CheckResult,
    CheckRun,
    DataProduct,
    Incident,
    IncidentEvent,
    OutputPort,
    PortObservation,
)
from products.trust.services.checks import (
    VOLUME_WINDOW_DEFAULT,
    check_create,
    check_run_execute,
    check_run_request,
    check_update,
    cron_previous_fire,
)
from products.trust.services.incidents import cause_key_for_check
from products.trust.services.slos import slo_create, slo_update
from products.trust.services.trust_score import trust_score_backfill, trust_score_compute

ERROR, WARN = Severity.ERROR, Severity.WARN
HISTORY_DAYS = 30
PROBE_OFFSET = timedelta(minutes=30)  # hourly monitor probes, at half past
DUPLICATES_LOADED = timedelta(hours=52)  # sales.orders: when the batch was loaded twice
OUTAGE_STARTED = timedelta(days=12, hours=3)  # before as_of: the warehouse went down...
OUTAGE_LASTED = timedelta(hours=2)  # ...for this long (table ports only)
OUTAGE_ERROR = (
    "Cannot connect to data source '{source}': connection refused (the warehouse was "
    "restarted for maintenance)"
)


@dataclass(frozen=True)
class CheckSpec:
    name: str
    kind: str
    column: str = ""
    params: dict = field(default_factory=dict)
    tolerance_percent: float = 0.0
    severity: str = ERROR
    # Row count checks: the minimum as this share of the generated rows (the scale varies).
    min_rows_share: float = 0.0
    # Custom SQL: the same rule in pandas, which tells the history (and the tests) which
    # rows fail.
    failing: Callable[[pd.DataFrame], pd.Series] | None = None


@dataclass(frozen=True)
class SLOSpec:
    kind: str
    target_percent: float
    threshold_hours: float | None = None
    description: str = ""


@dataclass(frozen=True)
class PortTrustSpec:
    checks: tuple[CheckSpec, ...]
    slos: tuple[SLOSpec, ...] = ()
    # The column that says when a row arrived; "" when the table is rewritten whole.
    arrival_column: str = ""
    # The checks' schedule (cron); "" for the product's default (hourly).
    schedule: str = ""


def _availability(target: float) -> SLOSpec:
    return SLOSpec(
        SLOKind.AVAILABILITY, target, description=f"The table answers {target:g}% of probes."
    )


def _quality(target: float) -> SLOSpec:
    return SLOSpec(SLOKind.QUALITY, target, description=f"{target:g}% of check evaluations pass.")


def _freshness(hours: float, target: float) -> SLOSpec:
    return SLOSpec(
        SLOKind.FRESHNESS,
        target,
        threshold_hours=hours,
        description=f"Data at most {hours:g} hours old in {target:g}% of observations.",
    )


EVERY_6_HOURS = "0 */6 * * *"


def _schema() -> CheckSpec:
    return CheckSpec("Columns as agreed", CheckKind.SCHEMA, severity=WARN)


def _rows(share: float = 0.8) -> CheckSpec:
    return CheckSpec("Row count", CheckKind.ROW_COUNT, min_rows_share=share)


TRUST: dict[str, PortTrustSpec] = {
    "sales.orders": PortTrustSpec(
        arrival_column="ordered_at",
        checks=(
            CheckSpec("Order lines are unique", CheckKind.UNIQUE, "order_id"),
            CheckSpec("Every line has a customer", CheckKind.NOT_NULL, "customer_id"),
            CheckSpec(
                "Status is a known value",
                CheckKind.ACCEPTED_VALUES,
                "status",
                {"values": ["processing", "shipped", "completed", "cancelled", "returned"]},
                severity=WARN,
            ),
            CheckSpec("Quantity is at least 1", CheckKind.RANGE, "quantity", {"min": 1}),
            CheckSpec(
                "SKU format", CheckKind.PATTERN, "sku", {"regex": "^SKU-[0-9]{5}$"}, severity=WARN
            ),
            CheckSpec(
                "Orders arrive hourly", CheckKind.FRESHNESS, "ordered_at", {"max_age_hours": 6}
            ),
            _rows(),
            _schema(),
            CheckSpec(
                "Net amount adds up",
                CheckKind.CUSTOM_SQL,
                params={
                    "sql": "SELECT count(*) FROM {table} "
                    "WHERE abs(net_amount - (quantity * unit_price - discount)) > 0.01"
                },
                failing=lambda f: (
                    (
                        f.net_amount.astype(float)
                        - (f.quantity * f.unit_price.astype(float) - f.discount.astype(float))
                    ).abs()
                    > 0.01
                ),
            ),
        ),
        slos=(_freshness(6, 99), _availability(99.5), _quality(95)),
    ),
    "sales.customers": PortTrustSpec(
        schedule=EVERY_6_HOURS,
        arrival_column="signed_up_on",
        checks=(
            CheckSpec("Every customer has an email", CheckKind.NOT_NULL, "email"),
            CheckSpec("Customer ids are unique", CheckKind.UNIQUE, "customer_id"),
            CheckSpec(
                "Segment is a known value",
                CheckKind.ACCEPTED_VALUES,
                "segment",
                {"values": ["consumer", "small business", "enterprise"]},
                severity=WARN,
            ),
            CheckSpec(
                "Email looks like an address",
                CheckKind.PATTERN,
                "email",
                {"regex": r"^[^@ ]+@[^@ ]+\.[a-z]+$"},
                severity=WARN,
            ),
            CheckSpec(
                "Lifetime value is not negative", CheckKind.RANGE, "lifetime_value", {"min": 0}
            ),
            _rows(),
        ),
        slos=(_availability(99), _quality(95)),
    ),
    "sales.returns-by-supplier": PortTrustSpec(
        schedule="0 6 * * *",
        arrival_column="month",
        checks=(
            CheckSpec(
                "Return rate between 0 and 1",
                CheckKind.RANGE,
                "return_rate",
                {"min": 0, "max": 1},
            ),
            CheckSpec("Every row names a supplier", CheckKind.NOT_NULL, "supplier_id"),
            CheckSpec(
                "Returns never exceed units sold",
                CheckKind.CUSTOM_SQL,
                params={"sql": "SELECT count(*) FROM {table} WHERE units_returned > units_sold"},
                failing=lambda f: f.units_returned > f.units_sold,
            ),
            CheckSpec("Updated monthly", CheckKind.FRESHNESS, "month", {"max_age_hours": 45 * 24}),
            CheckSpec(
                "Return reason is a known value",
                CheckKind.ACCEPTED_VALUES,
                "top_return_reason",
                {
                    "values": [
                        "defective",
                        "damaged in transit",
                        "not as described",
                        "wrong item",
                        "changed mind",
                    ]
                },
                severity=WARN,
            ),
        ),
        slos=(_freshness(45 * 24, 99), _availability(99)),
    ),
    "sales.daily-revenue": PortTrustSpec(
        schedule="30 6 * * *",
        arrival_column="day",
        checks=(
            CheckSpec("Updated daily", CheckKind.FRESHNESS, "day", {"max_age_hours": 48}),
            CheckSpec("Every row has a day", CheckKind.NOT_NULL, "day"),
            CheckSpec(
                "Revenue is not negative",
                CheckKind.RANGE,
                "net_revenue",
                {"min": 0},
                severity=WARN,
            ),
            CheckSpec(
                "Channel is a known value",
                CheckKind.ACCEPTED_VALUES,
                "channel",
                {"values": ["web", "store", "marketplace", "phone"]},
            ),
        ),
        slos=(_availability(95),),
    ),
    "marketing.campaigns": PortTrustSpec(
        schedule=EVERY_6_HOURS,
        arrival_column="starts_on",
        checks=(
            CheckSpec("Campaign ids are unique", CheckKind.UNIQUE, "campaign_id"),
            CheckSpec(
                "Channel is a known value",
                CheckKind.ACCEPTED_VALUES,
                "channel",
                {"values": ["email", "paid search", "social", "display", "affiliate"]},
            ),
            CheckSpec("Clicks are not negative", CheckKind.RANGE, "clicks", {"min": 0}),
            CheckSpec(
                "Spend within budget",
                CheckKind.CUSTOM_SQL,
                params={"sql": "SELECT count(*) FROM {table} WHERE spend > budget * 1.1"},
                severity=WARN,
                failing=lambda f: f.spend.astype(float) > f.budget.astype(float) * 1.1,
            ),
            _schema(),
        ),
        slos=(_availability(99), _quality(95)),
    ),
    "marketing.web-sessions": PortTrustSpec(
        schedule="0 */3 * * *",
        arrival_column="started_at",
        checks=(
            CheckSpec(
                "Volume as usual",
                CheckKind.VOLUME_CHANGE,
                params={"max_change_percent": 30, "window": 90},
            ),
            CheckSpec("Session ids are unique", CheckKind.UNIQUE, "session_id"),
            CheckSpec(
                "Device is a known value",
                CheckKind.ACCEPTED_VALUES,
                "device",
                {"values": ["mobile", "desktop", "tablet"]},
                severity=WARN,
            ),
            CheckSpec(
                "Sessions arrive continuously",
                CheckKind.FRESHNESS,
                "started_at",
                {"max_age_hours": 12},
            ),
            CheckSpec(
                "Multi-page sessions have a duration",
                CheckKind.CUSTOM_SQL,
                params={
                    "sql": "SELECT count(*) FROM {table} "
                    "WHERE pageviews > 1 AND duration_seconds = 0"
                },
                tolerance_percent=0.1,
                severity=WARN,
                failing=lambda f: (f.pageviews > 1) & (f.duration_seconds == 0),
            ),
        ),
        slos=(_freshness(12, 95), _availability(99)),
    ),
    "marketing.lead-scores": PortTrustSpec(
        schedule="0 6 * * *",
        checks=(
            CheckSpec("Score is a probability", CheckKind.RANGE, "score", {"min": 0, "max": 1}),
            CheckSpec(
                "Score band is A to D",
                CheckKind.ACCEPTED_VALUES,
                "score_band",
                {"values": ["A", "B", "C", "D"]},
            ),
            CheckSpec("Every lead has an email", CheckKind.NOT_NULL, "email", severity=WARN),
            CheckSpec("Scored weekly", CheckKind.FRESHNESS, "scored_at", {"max_age_hours": 8 * 24}),
        ),
        slos=(_quality(90),),
    ),
    "supply-chain.inventory": PortTrustSpec(
        schedule="0 7 * * *",
        checks=(
            CheckSpec(
                "Snapshot of yesterday", CheckKind.FRESHNESS, "snapshot_date", {"max_age_hours": 50}
            ),
            CheckSpec("Available is not negative", CheckKind.RANGE, "available", {"min": 0}),
            CheckSpec(
                "Available = on hand - reserved",
                CheckKind.CUSTOM_SQL,
                params={
                    "sql": "SELECT count(*) FROM {table} WHERE available <> on_hand - reserved"
                },
                failing=lambda f: f.available != f.on_hand - f.reserved,
            ),
            CheckSpec(
                "Warehouse is a known code",
                CheckKind.ACCEPTED_VALUES,
                "warehouse",
                {"values": ["AMS", "ANR", "DUS", "LYS"]},
            ),
            CheckSpec("Every row has a SKU", CheckKind.NOT_NULL, "sku"),
            _rows(0.9),
        ),
        slos=(_freshness(50, 99), _availability(99.5), _quality(95)),
    ),
    "supply-chain.supplier-quality": PortTrustSpec(
        schedule="0 8 * * *",
        arrival_column="inspected_on",
        checks=(
            CheckSpec(
                "Inspections recorded daily",
                CheckKind.FRESHNESS,
                "inspected_on",
                {"max_age_hours": 48},
            ),
            CheckSpec("Inspection ids are unique", CheckKind.UNIQUE, "inspection_id"),
            CheckSpec(
                "Defect rate between 0 and 1",
                CheckKind.RANGE,
                "defect_rate",
                {"min": 0, "max": 1},
            ),
            CheckSpec(
                "Result is pass, conditional or fail",
                CheckKind.ACCEPTED_VALUES,
                "result",
                {"values": ["pass", "conditional", "fail"]},
                severity=WARN,
            ),
            CheckSpec("Every lot names its supplier", CheckKind.NOT_NULL, "supplier_id"),
        ),
        slos=(_freshness(48, 95), _availability(99), _quality(95)),
    ),
}


# --- definitions -----------------------------------------------------------------------


def _nice_floor(value: float) -> int:
    """Round down to two significant digits: 96,029 -> 96,000."""
    value = int(value)
    if value < 100:
        return value
    step = 10 ** (len(str(value)) - 2)
    return value // step * step


def check_fields(spec: CheckSpec, frame: pd.DataFrame, *, schedule: str = "") -> dict[str, Any]:
    """check_create arguments for the spec, on a table of this many rows."""
    params = dict(spec.params)
    if spec.min_rows_share:
        params["min"] = _nice_floor(spec.min_rows_share * len(frame))
    return {
        "name": spec.name,
        "kind": spec.kind,
        "column": spec.column,
        "params": params,
        "tolerance_percent": spec.tolerance_percent,
        "severity": spec.severity,
        "schedule": schedule,
    }


def failing_rows(spec: CheckSpec, frame: pd.DataFrame) -> np.ndarray:
    """Which rows the check counts as failing, computed in pandas: what the pushed-down
    SQL should find (row-level and custom SQL checks)."""
    if spec.kind == CheckKind.CUSTOM_SQL:
        return spec.failing(frame).fillna(False).to_numpy(dtype=bool)
    values = frame[spec.column]
    present = values.notna().to_numpy()
    if spec.kind == CheckKind.NOT_NULL:
        return ~present
    if spec.kind == CheckKind.UNIQUE:
        return (values.duplicated(keep="first") & values.notna()).to_numpy()
    if spec.kind == CheckKind.ACCEPTED_VALUES:
        accepted = [str(v) for v in spec.params["values"]]
        return present & ~values.astype(str).isin(accepted).to_numpy()
    if spec.kind == CheckKind.RANGE:
        numbers = pd.to_numeric(values).astype(float)
        low, high = spec.params.get("min"), spec.params.get("max")
        out = np.zeros(len(frame), dtype=bool)
        if low is not None:
            out |= (numbers < low).fillna(False).to_numpy()
        if high is not None:
            out |= (numbers > high).fillna(False).to_numpy()
        return out
    if spec.kind == CheckKind.PATTERN:
        matches = values.astype(str).str.contains(spec.params["regex"], regex=True)
        return present & ~matches.fillna(False).to_numpy(dtype=bool)
    raise ValueError(f"{spec.kind} does not count failing rows")


def ensure_checks(
    *, port: OutputPort, spec: PortTrustSpec, frame: pd.DataFrame, admin, count
) -> dict[str, Check]:
    """The spec's checks on the port, created or brought in line (checks people added are
    left alone)."""
    existing = {check.name: check for check in port.checks.all()}
    checks = {}
    for check_spec in spec.checks:
        fields = check_fields(check_spec, frame, schedule=spec.schedule)
        check = existing.get(check_spec.name)
        if check is None:
            check = check_create(port=port, by=admin, **fields)
            count("checks", True, True)
        else:
            changed = {k: v for k, v in fields.items() if getattr(check, k) != v}
            if changed:
                check = check_update(check=check, by=admin, **changed)
                count("checks", False, True)
        checks[check_spec.name] = check
    return checks


def ensure_slos(*, product, spec: PortTrustSpec, admin, count) -> None:
    existing = {slo.kind: slo for slo in product.slos.all()}
    for slo_spec in spec.slos:
        fields = {
            "target_percent": slo_spec.target_percent,
            "threshold_hours": slo_spec.threshold_hours,
            "description": slo_spec.description,
        }
        slo = existing.get(slo_spec.kind)
        if slo is None:
            slo_create(product=product, by=admin, kind=slo_spec.kind, **fields)
            count("SLOs", True, True)
        else:
            changed = {k: v for k, v in fields.items() if getattr(slo, k) != v}
            if changed:
                slo_update(slo=slo, by=admin, **changed)
                count("SLOs", False, True)


# --- what the table held over time -----------------------------------------------------


@dataclass
class Timeline:
    """A port's table as it was at given times: rows, newest value, failing rows per
    check. Built from the rows generated now and when each arrived."""

    rows: np.ndarray
    newest: np.ndarray  # datetime64[s], NaT when the table was empty
    failing: dict[str, np.ndarray]  # check name -> failing rows


def timeline(
    *,
    table: TableSpec,
    spec: PortTrustSpec,
    frame: pd.DataFrame,
    times: np.ndarray,
    as_of: np.datetime64,
) -> Timeline:
    defects = table.defects
    duplicates = defects.duplicate_rows
    base = frame.iloc[: len(frame) - duplicates] if duplicates else frame
    share = defects.loaded_share  # the history saw the whole table, before the partial load
    row_level = [c for c in spec.checks if c.kind in ROW_LEVEL_CHECKS or c.failing]
    fresh = table.freshness_column
    is_date = table.column(fresh).type == "date"
    if spec.arrival_column:
        arrival = base[spec.arrival_column].to_numpy("datetime64[s]")
        order = np.argsort(arrival, kind="stable")
        arrived = np.searchsorted(arrival[order], times, side="right")
        rows = np.round(arrived / share).astype("int64")
        newest_sorted = np.maximum.accumulate(base[fresh].to_numpy("datetime64[s]")[order])
        newest = np.where(
            arrived > 0, newest_sorted[np.maximum(arrived - 1, 0)], np.datetime64("NaT")
        )
        failing = {}
        for check in row_level:
            cumulative = np.concatenate([[0], np.cumsum(failing_rows(check, base)[order])])
            failing[check.name] = np.round(cumulative[arrived] / share).astype("int64")
    else:
        # Rewritten whole on a cadence: the same size, and as fresh as it is now, counted
        # in days for a date (a daily snapshot changes at midnight).
        rows = np.full(len(times), len(base), dtype="int64")
        newest_now = frame[fresh].max().to_datetime64().astype("datetime64[s]")
        if is_date:
            days = as_of.astype("datetime64[D]") - times.astype("datetime64[D]")
            newest = newest_now - days.astype("timedelta64[s]")
        else:
            newest = newest_now - (as_of - times)
        failing = {c.name: np.full(len(times), int(failing_rows(c, base).sum())) for c in row_level}
    if duplicates:
        loaded = times >= as_of - np.timedelta64(int(DUPLICATES_LOADED.total_seconds()), "s")
        rows = rows + np.where(loaded, duplicates, 0)
        for check in row_level:
            if check.kind == CheckKind.UNIQUE and check.column in table.key:
                failing[check.name] = failing[check.name] + np.where(loaded, duplicates, 0)
    return Timeline(rows=rows, newest=newest, failing=failing)


# --- history ---------------------------------------------------------------------------


def _slot_times(cron: str, as_of: datetime) -> list[datetime]:
    """The schedule's fire times in the HISTORY_DAYS before as_of (oldest first)."""
    start = as_of - timedelta(days=HISTORY_DAYS)
    times, moment = [], as_of - timedelta(minutes=1)
    while True:
        moment = cron_previous_fire(cron, at=moment)
        if moment <= start:
            break
        times.append(moment)
        moment -= timedelta(minutes=1)
    return times[::-1]


def _in_outage(moment: datetime, as_of: datetime) -> bool:
    start = as_of - OUTAGE_STARTED
    return start <= moment < start + OUTAGE_LASTED


def _noun(kind: str) -> str:
    return {
        CheckKind.NOT_NULL: "null",
        CheckKind.UNIQUE: "duplicate",
        CheckKind.ACCEPTED_VALUES: "unexpected",
        CheckKind.RANGE: "out-of-range",
        CheckKind.PATTERN: "non-matching",
        CheckKind.CUSTOM_SQL: "failing",
    }[kind]


def _past_result(
    check: Check,
    latest: CheckResult,
    *,
    at: datetime,
    rows: int,
    newest: datetime | None,
    failing: int | None,
    volume: list[int],
) -> CheckResult:
    """What the check would have recorded at `at`, worded like its latest result."""
    params = check.params or {}
    values: dict[str, Any] = {"row_count": rows}
    if check.kind in ROW_LEVEL_CHECKS or check.kind == CheckKind.CUSTOM_SQL:
        percent = failing / rows * 100 if rows else 0.0
        ok = failing == 0 or (check.tolerance_percent > 0 and percent <= check.tolerance_percent)
        noun = _noun(check.kind)
        message = (
            f"{failing:,} {noun} row{'s' if failing != 1 else ''} of {rows:,} ({percent:.3g}%)."
        )
        values |= {
            "observed_value": float(failing),
            "failing_rows": failing,
            "failing_percent": percent,
        }
    elif check.kind == CheckKind.FRESHNESS:
        age = (at - newest).total_seconds() / 3600
        ok = age <= float(params["max_age_hours"])
        message = f"Newest value {newest:%Y-%m-%d %H:%M} UTC, {age:.1f} hours old."
        values |= {"observed_value": age, "details": {"newest": newest.isoformat()}}
    elif check.kind == CheckKind.ROW_COUNT:
        low, high = params.get("min"), params.get("max")
        ok = (low is None or rows >= low) and (high is None or rows <= high)
        message = f"{rows:,} rows."
        values |= {"observed_value": float(rows)}
    elif check.kind == CheckKind.VOLUME_CHANGE:
        window = volume[-int(params.get("window", VOLUME_WINDOW_DEFAULT)) :]
        if not window:
            ok, change, message = (
                True,
                0.0,
                f"{rows:,} rows; no earlier counts to compare with yet.",
            )
        else:
            median = statistics.median(window)
            change = (rows - median) / median * 100 if median else 0.0
            ok = abs(change) <= float(params["max_change_percent"])
            message = (
                f"{rows:,} rows against a median of {median:,.0f} over the last "
                f"{len(window)} counts: {change:+.1f}%."
            )
        values |= {"observed_value": change}
    else:  # schema: the columns were as declared all along
        ok, message = True, "Columns and types match the declared schema."
        values |= {"observed_value": 0.0, "details": {"missing": [], "extra": [], "changed": {}}}
    return CheckResult(
        quality_check=check,
        port=check.port,
        outcome=CheckOutcome.PASS if ok else CheckOutcome.FAIL,
        severity=check.severity,
        threshold=latest.threshold,
        message=message,
        evaluated_at=at,
        **values,
    )


@dataclass
class History:
    runs: int = 0
    results: int = 0
    observations: int = 0
    # check id -> when its current streak of failures began (for the incidents' age)
    failing_since: dict[int, datetime] = field(default_factory=dict)


def history_seed(
    *,
    port: OutputPort,
    table: TableSpec,
    spec: PortTrustSpec,
    frame: pd.DataFrame,
    as_of: datetime,
    run: CheckRun | None,
    observations_only: bool,
) -> History:
    """Write the port's past: monitor probes and check runs with their results and
    observations. With `observations_only`, the probes and run observations only (what a
    volume check reads); the runs come in a second call, once `run` (the real run) has
    said how each check words its tolerance."""
    cron = spec.schedule or port.product.check_schedule
    hours = HISTORY_DAYS * 24
    probes = [as_of - timedelta(hours=h) + PROBE_OFFSET for h in range(hours, 0, -1)]
    # (time, is a check run), oldest first; a probe and a run may share a time.
    events = sorted([(t, False) for t in probes] + [(t, True) for t in _slot_times(cron, as_of)])
    line = timeline(
        table=table,
        spec=spec,
        frame=frame,
        times=np.array([t.replace(tzinfo=None) for t, _ in events], dtype="datetime64[s]"),
        as_of=np.datetime64(as_of.replace(tzinfo=None), "s"),
    )
    newest = _aware_or_none(line.newest)
    outage_possible = port.source_id is not None
    source_name = port.source.name if port.source_id else ""
    history = History()

    if observations_only:
        observations = []
        for i, (t, is_run) in enumerate(events):
            down = outage_possible and _in_outage(t, as_of)
            at = t + timedelta(seconds=2) if is_run else t
            observations.append(
                PortObservation(
                    port=port,
                    observed_at=at,
                    available=not down,
                    error=OUTAGE_ERROR.format(source=source_name) if down else "",
                    row_count=None if down else int(line.rows[i]),
                    newest_at=None if down else newest[i],
                    freshness_lag_seconds=None
                    if down or newest[i] is None
                    else (at - newest[i]).total_seconds(),
                    source="check_run" if is_run else "monitor",
                )
            )
        PortObservation.objects.bulk_create(observations, batch_size=1000)
        history.observations = len(observations)
        return history

    latest = {r.quality_check_id: r for r in run.results.all()} if run else {}
    checks = [c for c in port.checks.filter(enabled=True).order_by("name") if c.pk in latest]
    runs, results_by_run = [], []
    volume: list[int] = []  # the counts a volume check would have read, oldest first
    streak: dict[int, datetime | None] = {c.pk: None for c in checks}
    for i, (t, is_run) in enumerate(events):
        down = outage_possible and _in_outage(t, as_of)
        if not is_run:  # a monitor probe: only its count matters here
            if not down:
                volume.append(int(line.rows[i]))
            continue
        rows = int(line.rows[i])
        if down:
            runs.append(
                CheckRun(
                    port=port,
                    status=CheckRunStatus.ERROR,
                    trigger=CheckTrigger.SCHEDULE,
                    slot=f"{cron}@{t.isoformat()}",
                    started_at=t,
                    finished_at=t + timedelta(seconds=5),
                    error=OUTAGE_ERROR.format(source=source_name),
                )
            )
            results_by_run.append([])
            continue
        results = [
            _past_result(
                check,
                latest[check.pk],
                at=t + timedelta(seconds=1),
                rows=rows,
                newest=newest[i],
                failing=int(line.failing[check.name][i]) if check.name in line.failing else None,
                volume=volume,
            )
            for check in checks
        ]
        outcomes = [r.outcome for r in results]
        for result in results:
            if result.outcome == CheckOutcome.FAIL:
                streak[result.quality_check_id] = streak[result.quality_check_id] or t
            else:
                streak[result.quality_check_id] = None
        samples = sum(
            1
            for r in results
            if r.outcome == CheckOutcome.FAIL and r.quality_check.kind in ROW_LEVEL_CHECKS
        )
        customs = sum(1 for c in checks if c.kind == CheckKind.CUSTOM_SQL)
        runs.append(
            CheckRun(
                port=port,
                status=CheckRunStatus.DONE,
                trigger=CheckTrigger.SCHEDULE,
                slot=f"{cron}@{t.isoformat()}",
                started_at=t,
                finished_at=t + timedelta(seconds=2),
                row_count=rows,
                statements=2 + customs + samples,
                passed=outcomes.count(CheckOutcome.PASS),
                failed=outcomes.count(CheckOutcome.FAIL),
            )
        )
        results_by_run.append(results)
        volume.append(rows)  # the run's own observation, read by the next run

    CheckRun.objects.bulk_create(runs, batch_size=1000)
    # auto_now_add stamped them now; a run was created when it started.
    CheckRun.objects.filter(port=port, trigger=CheckTrigger.SCHEDULE, started_at__lt=as_of).update(
        created_at=F("started_at")
    )
    results = []
    for past, run_results in zip(runs, results_by_run, strict=True):
        for result in run_results:
            result.run = past
            results.append(result)
    CheckResult.objects.bulk_create(results, batch_size=1000)
    history.runs, history.results = len(runs), len(results)
    history.failing_since = {pk: since for pk, since in streak.items() if since is not None}
    return history


def _aware_or_none(values: np.ndarray) -> list[datetime | None]:
    """datetime64 values as aware UTC datetimes (None for NaT)."""
    seconds = values.astype("datetime64[s]")
    return [
        None if np.isnat(v) else datetime.fromtimestamp(int(v.astype("int64")), tz=UTC)
        for v in seconds
    ]


# --- real runs -------------------------------------------------------------------------


def checks_run_now(*, port: OutputPort, admin) -> CheckRun | None:
    """Run the port's checks once, here and now, like a worker would. The task that
    check_run_request queues is sent after this transaction commits, when the run is
    already done: a worker that receives it finds nothing to do."""
    with transaction.atomic():
        queued = check_run_request(port=port, by=admin)
        run = check_run_execute(run_id=queued.pk)
    return run


def incidents_backdate(*, history: History, since: datetime) -> int:
    """Check incidents opened by this seeding for a failure the history shows began
    earlier: open them when the failures began. Returns how many."""
    moved = 0
    for check_id, began in history.failing_since.items():
        incidents = Incident.objects.filter(
            cause_key=cause_key_for_check(check_id),
            status__in=UNRESOLVED_INCIDENT_STATUSES,
            opened_at__gte=since,
        )
        for incident in incidents:
            Incident.objects.filter(pk=incident.pk).update(opened_at=began)
            IncidentEvent.objects.filter(incident=incident, kind=IncidentEventKind.OPENED).update(
                created_at=began
            )
            moved += 1
    return moved


def trust_history_backfill(*, product: DataProduct, as_of: datetime) -> int:
    """One trust snapshot a day for the HISTORY_DAYS before `as_of` (the oldest inside the
    window the page draws), from the seeded history as it stood then, and today's again:
    the one the real check run recorded counted its incidents before they were moved back
    to when their failures began (incidents_backdate). Returns how many were backfilled."""
    moments = [as_of - timedelta(days=days) for days in range(HISTORY_DAYS - 1, 0, -1)]
    backfilled = trust_score_backfill(product=product, moments=moments)
    trust_score_compute(product=product)
    return len(backfilled)
