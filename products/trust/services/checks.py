"""Checks: define them (validated), run them (pushed down, claimed once), reap dead runs,
and keep their schedules in django-celery-beat."""

from __future__ import annotations

import json
import logging
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from portal.core import json_values
from portal.core.cron import cron_fires_at, cron_parse
from portal.core.task_queue import enqueue_run_on_commit, redispatch_unclaimed
from products.catalog.permissions import can_edit_product
from products.catalog.services.events import product_event_emit
from products.catalog.services.ports import port_connector
from products.choices import (
    COLUMN_CHECKS,
    ROW_LEVEL_CHECKS,
    CheckKind,
    CheckOutcome,
    CheckRunStatus,
    CheckTrigger,
    PortKind,
    Severity,
)
from products.connectors import ColumnInfo, Connector, ConnectorError
from products.connectors.column_types import typed_value
from products.models import Check, CheckResult, CheckRun, OutputPort, PortObservation
from products.trust.services.check_details import (
    FAILED_MESSAGE,
    FIGURES_FOR_MEMBERS,
    MEMBER_MESSAGE,
    SHAPE_MESSAGE,
    TECHNICAL_DETAIL,
)
from products.trust.services.check_sql import CheckSQL, SampleRequest

logger = logging.getLogger(__name__)

CHECK_FIELDS = (
    "name",
    "kind",
    "column",
    "params",
    "tolerance_percent",
    "severity",
    "schedule",
    "enabled",
)
CUSTOM_SQL_TIMEOUT_SECONDS = 30
VOLUME_WINDOW_DEFAULT = 7
# Engines whose aggregate counts the plain `count(*) ... WHERE` custom checks (_custom_counts)
COUNTED_CUSTOM_DIALECTS = ("duckdb", "spark")


# --- schedules -------------------------------------------------------------------------


def check_effective_schedule(check: Check) -> str:
    return check.schedule or check.port.product.check_schedule


def check_schedules_sync(*, port: OutputPort) -> None:
    """One django-celery-beat periodic task per (port, cron) among the port's enabled
    checks; tasks for schedules no check uses any more are removed. Idempotent."""

    prefix = f"checks:port:{port.pk}:"
    wanted: dict[str, str] = {}
    for check in port.checks.filter(enabled=True).select_related("port__product"):
        cron = check_effective_schedule(check)
        wanted[prefix + cron] = cron
    PeriodicTask.objects.filter(name__startswith=prefix).exclude(name__in=wanted).delete()
    for name, cron in wanted.items():
        minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
            timezone="UTC",
        )
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": "products.tasks.checks_run_scheduled",
                "crontab": schedule,
                "interval": None,
                "kwargs": json.dumps({"port_id": port.pk, "cron": cron}),
                "enabled": True,
            },
        )


# --- definitions -----------------------------------------------------------------------


def _non_finite_params(params: dict) -> str:
    """The name of the first parameter that is a NaN or infinite number ("" if none): a
    bound that compares with nothing, and that jsonb cannot store."""
    for name, value in params.items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            return name
    return ""


def _validate_check(check: Check) -> None:
    errors: dict[str, str] = {}
    params = check.params if isinstance(check.params, dict) else None
    if params is None:
        errors["params"] = "Give the check's parameters as an object."
        params = {}
    if check.kind not in CheckKind.values:
        errors["kind"] = f"Choose one of {', '.join(CheckKind.values)}."
    elif check.port.kind == PortKind.STREAM:
        errors["kind"] = (
            "A stream port has no checks: each message is validated against its schema as it "
            "arrives, and its monitors (messages per minute, last message age, consumer lag, "
            "invalid messages) feed its SLOs and incidents. Add an SLO instead."
        )
    if check.severity not in Severity.values:
        errors["severity"] = "Choose error or warn."
    tolerance = check.tolerance_percent
    if not isinstance(tolerance, int | float) or not 0 <= tolerance <= 100:
        errors["tolerance_percent"] = "A tolerance is a percentage from 0 to 100."
    if check.kind in COLUMN_CHECKS and not check.column:
        errors["column"] = "Name the column this check looks at."
    if check.kind not in COLUMN_CHECKS:
        check.column = ""
    # The port's known columns (from its schema or contract): the check's column is one of
    # them, named exactly (no trimming, no case-folding). Unknown yet: the run will say.
    # A check being disabled is not held to it (its column may be what went away).
    column_types = (
        dict(check.port.columns.values_list("name", "data_type")) if check.enabled else {}
    )
    if check.kind in COLUMN_CHECKS and check.column and column_types:
        if check.column not in column_types:
            errors["column"] = (
                f"The port has no column {check.column!r} (names are exact: spaces and case count)."
            )
    kind = check.kind
    if kind == CheckKind.ACCEPTED_VALUES:
        values = params.get("values")
        if not isinstance(values, list) or not values or len(values) > 1000:
            errors["params"] = "List the accepted values in params.values (1 to 1,000)."
        elif "column" not in errors and check.column in column_types:
            data_type = column_types[check.column]
            for value in values:
                try:
                    typed_value(value, data_type)
                except ValueError as exc:
                    errors["params"] = f"Accepted value {exc}"
                    break
    elif kind == CheckKind.RANGE:
        if params.get("min") is None and params.get("max") is None:
            errors["params"] = "Give a minimum, a maximum or both."
        elif (
            isinstance(params.get("min"), int | float)
            and isinstance(params.get("max"), int | float)
            and params["min"] > params["max"]
        ):
            errors["params"] = "The minimum is above the maximum."
    elif kind == CheckKind.PATTERN:
        if not isinstance(params.get("regex"), str) or not params["regex"]:
            errors["params"] = "Give the regular expression values must match."
    elif kind == CheckKind.ROW_COUNT:
        low, high = params.get("min"), params.get("max")
        if low is None and high is None:
            errors["params"] = "Give the fewest rows allowed, the most, or both."
        elif any(v is not None and (not isinstance(v, int) or v < 0) for v in (low, high)):
            errors["params"] = "Row counts are whole numbers, 0 or more."
        elif low is not None and high is not None and low > high:
            errors["params"] = "The minimum is above the maximum."
    elif kind == CheckKind.FRESHNESS:
        hours = params.get("max_age_hours")
        if not isinstance(hours, int | float) or hours <= 0:
            errors["params"] = "Give how many hours old the newest value may be: a number above 0."
    elif kind == CheckKind.VOLUME_CHANGE:
        percent = params.get("max_change_percent")
        window = params.get("window", VOLUME_WINDOW_DEFAULT)
        if not isinstance(percent, int | float) or percent <= 0:
            errors["params"] = "Give how far the row count may move, as a percentage above 0."
        elif not isinstance(window, int) or not 1 <= window <= 90:
            errors["params"] = "Compare with 1 to 90 past row counts."
    elif kind == CheckKind.CUSTOM_SQL:
        # Here, not at the top: custom SQL is parsed with sqlglot (~7 MB), which a worker
        # that runs no custom check does without.
        from products.trust.services import custom_sql

        try:
            dialect = (
                custom_sql.custom_sql_dialect(port=check.port) if check.port_id else "postgres"
            )
            custom_sql.custom_sql_validate(params.get("sql", ""), dialect=dialect)
        except custom_sql.CustomSQLRefused as exc:
            errors["params"] = str(exc)
    if check.schedule:
        try:
            cron_parse(check.schedule)
        except ValueError as exc:
            errors["schedule"] = str(exc)
    if "params" not in errors:
        infinite = _non_finite_params(params)
        if infinite:
            errors["params"] = (
                f"params.{infinite} must be a finite number (not NaN or an infinity)."
            )
    if errors:
        raise ValidationError(errors)
    check.name = (check.name or "").strip()
    check.full_clean(exclude=["port", "created_by"])


@transaction.atomic
def check_create(*, port: OutputPort, by, **fields: Any) -> Check:
    if not can_edit_product(user=by, product=port.product):
        raise PermissionDenied("Only the domain's owners and stewards define checks.")
    unknown = set(fields) - set(CHECK_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in unknown})
    check = Check(
        port=port, created_by=by if getattr(by, "is_authenticated", False) else None, **fields
    )
    if not check.name:
        check.name = f"{CheckKind(check.kind).label if check.kind in CheckKind.values else 'check'}"
        if check.column:
            check.name += f" {check.column}"
    _validate_check(check)
    if Check.objects.filter(port=port, name=check.name).exists():
        raise ValidationError({"name": "This port already has a check with this name."})
    check.save()
    check_schedules_sync(port=port)
    return check


@transaction.atomic
def check_update(*, check: Check, by, **fields: Any) -> Check:
    if not can_edit_product(user=by, product=check.port.product):
        raise PermissionDenied("Only the domain's owners and stewards change checks.")
    unknown = set(fields) - set(CHECK_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be changed." for field in unknown})
    for name, value in fields.items():
        setattr(check, name, value)
    _validate_check(check)
    if Check.objects.filter(port=check.port, name=check.name).exclude(pk=check.pk).exists():
        raise ValidationError({"name": "This port already has a check with this name."})
    check.save()
    check_schedules_sync(port=check.port)
    return check


@transaction.atomic
def check_delete(*, check: Check, by) -> None:
    if not can_edit_product(user=by, product=check.port.product):
        raise PermissionDenied("Only the domain's owners and stewards delete checks.")
    port = check.port
    check.delete()
    check_schedules_sync(port=port)


# --- runs ------------------------------------------------------------------------------


def check_run_request(*, port: OutputPort, by, check_ids: list[int] | None = None) -> CheckRun:
    """Queue a run of the port's enabled checks (or the given ones); returns the run to
    poll. A run already queued or running for the port is returned instead."""
    if not can_edit_product(user=by, product=port.product):
        raise PermissionDenied("Only the domain's owners and stewards run checks.")
    with transaction.atomic():
        OutputPort.objects.select_for_update().get(pk=port.pk)
        pending = CheckRun.objects.filter(
            port=port, status__in=(CheckRunStatus.QUEUED, CheckRunStatus.RUNNING)
        ).first()
        if pending is not None:
            return pending
        run = CheckRun.objects.create(
            port=port, requested_by=by, trigger=CheckTrigger.MANUAL, check_ids=check_ids or []
        )
        enqueue_run_on_commit("products.tasks.check_run", run.pk)
    return run


def cron_previous_fire(expression: str, *, at: datetime) -> datetime:
    """The latest time at or before `at` (to the minute) that the cron expression fires."""
    schedule = cron_parse(expression)
    candidate = at.replace(second=0, microsecond=0)
    for _ in range(366 * 24 * 60):
        if cron_fires_at(schedule, candidate):
            return candidate
        candidate -= timedelta(minutes=1)
    raise ValueError("The cron expression never fires.")


def check_run_for_slot(*, port: OutputPort, cron: str, at: datetime) -> CheckRun | None:
    """The run of the schedule slot `at` falls in (the cron's latest fire time at or
    before it), created once: a second delivery of the same slot gets None."""
    check_ids = [
        check.pk
        for check in port.checks.filter(enabled=True).select_related("port__product")
        if check_effective_schedule(check) == cron
    ]
    if not check_ids:
        return None
    slot = f"{cron}@{cron_previous_fire(cron, at=at).isoformat()}"
    try:
        with transaction.atomic():
            return CheckRun.objects.create(
                port=port, trigger=CheckTrigger.SCHEDULE, check_ids=check_ids, slot=slot
            )
    except IntegrityError:
        return None


def _json_safe(rows: list[dict]) -> list[dict]:
    # NaN and infinities as "NaN", "Infinity", "-Infinity": jsonb refuses the bare words.
    return json.loads(json_values.dumps(rows, cls=DjangoJSONEncoder, default=str))


def as_aware(value) -> datetime | None:
    """A source's timestamp or date as an aware UTC datetime (naive values are UTC; an
    aware one is converted, whatever the session's time zone gave it)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _tolerance_words(check: Check) -> str:
    params = check.params or {}
    kind = check.kind
    if kind in ROW_LEVEL_CHECKS or kind == CheckKind.CUSTOM_SQL:
        if check.tolerance_percent:
            return f"at most {check.tolerance_percent:g}% failing rows"
        return "no failing rows"
    if kind == CheckKind.ROW_COUNT:
        parts = []
        if params.get("min") is not None:
            parts.append(f"at least {params['min']:,} rows")
        if params.get("max") is not None:
            parts.append(f"at most {params['max']:,} rows")
        return " and ".join(parts)
    if kind == CheckKind.FRESHNESS:
        return f"newest value at most {params.get('max_age_hours'):g} hours old"
    if kind == CheckKind.VOLUME_CHANGE:
        return (
            f"row count within {params.get('max_change_percent'):g}% of the median of the "
            f"last {params.get('window', VOLUME_WINDOW_DEFAULT)} days' counts"
        )
    if kind == CheckKind.SCHEMA:
        return "columns and types as declared"
    return ""


class _Evaluation:
    """The results of one run, built check by check."""

    def __init__(self, run: CheckRun, now: datetime) -> None:
        self.run = run
        self.now = now
        self.results: list[CheckResult] = []

    def add(self, check: Check, outcome: str, message: str, **values: Any) -> CheckResult:
        result = CheckResult(
            run=self.run,
            quality_check=check,
            port=self.run.port,
            outcome=outcome,
            severity=check.severity,
            threshold=_tolerance_words(check),
            message=message,
            evaluated_at=self.now,
            **values,
        )
        self.results.append(result)
        return result


def _row_level_result(ev: _Evaluation, check: Check, failing: int, row_count: int) -> CheckResult:
    percent = (failing / row_count * 100.0) if row_count else 0.0
    passed = failing == 0 or (check.tolerance_percent > 0 and percent <= check.tolerance_percent)
    noun = {
        CheckKind.NOT_NULL: "null",
        CheckKind.UNIQUE: "duplicate",
        CheckKind.ACCEPTED_VALUES: "unexpected",
        CheckKind.RANGE: "out-of-range",
        CheckKind.PATTERN: "non-matching",
        CheckKind.CUSTOM_SQL: "failing",
    }[check.kind]
    message = (
        f"{failing:,} {noun} row{'s' if failing != 1 else ''} of {row_count:,} ({percent:.3g}%)."
    )
    return ev.add(
        check,
        CheckOutcome.PASS if passed else CheckOutcome.FAIL,
        message,
        observed_value=float(failing),
        failing_rows=failing,
        row_count=row_count,
        failing_percent=percent,
    )


def _schema_result(ev: _Evaluation, check: Check, actual: list[ColumnInfo]) -> CheckResult:
    declared = {c.name: c.data_type for c in check.port.columns.all()}
    found = {c.name: c.data_type for c in actual}
    missing = sorted(set(declared) - set(found))
    extra = sorted(set(found) - set(declared))
    changed = sorted(
        name
        for name in set(declared) & set(found)
        if declared[name] and declared[name].lower() != found[name].lower()
    )
    differences = len(missing) + len(extra) + len(changed)
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"extra {', '.join(extra)}")
    if changed:
        parts.append("changed " + ", ".join(f"{n} ({declared[n]} -> {found[n]})" for n in changed))
    return ev.add(
        check,
        CheckOutcome.PASS if not differences else CheckOutcome.FAIL,
        "Columns and types match the declared schema."
        if not differences
        else "Schema differs: " + "; ".join(parts) + ".",
        observed_value=float(differences),
        details={
            "missing": missing,
            "extra": extra,
            "changed": {n: [declared[n], found[n]] for n in changed},
        },
    )


def _volume_history(port: OutputPort, days: int, *, now: datetime) -> list[int]:
    """The port's row count at the end of each of the last `days` days before today (the
    last observation of each day): a trailing history that monitors observing every few
    minutes cannot swamp, so a drop stays a drop until the data recovers."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        PortObservation.objects.filter(
            port=port,
            row_count__isnull=False,
            observed_at__gte=today - timedelta(days=days),
            observed_at__lt=today,
        )
        .order_by("observed_at")
        .values_list("observed_at", "row_count")
    )
    per_day: dict[date, int] = {}
    for observed_at, row_count in rows:
        per_day[observed_at.astimezone(UTC).date()] = row_count  # the day's last count
    return list(per_day.values())


def _evaluate_aggregate(ev: _Evaluation, check: Check, value: Any, row_count: int) -> None:
    params = check.params or {}
    if check.kind in ROW_LEVEL_CHECKS:
        _row_level_result(ev, check, int(value or 0), row_count)
    elif check.kind == CheckKind.FRESHNESS:
        newest = as_aware(value)
        if newest is None:
            ev.add(
                check,
                CheckOutcome.FAIL,
                "The column has no values: nothing to be fresh.",
                row_count=row_count,
            )
            return
        age_hours = max(0.0, (ev.now - newest).total_seconds() / 3600)
        limit = float(params["max_age_hours"])
        ev.add(
            check,
            CheckOutcome.PASS if age_hours <= limit else CheckOutcome.FAIL,
            f"Newest value {newest:%Y-%m-%d %H:%M} UTC, {age_hours:.1f} hours old.",
            observed_value=age_hours,
            row_count=row_count,
            details={"newest": newest.isoformat()},
        )


def _evaluate_counts(ev: _Evaluation, check: Check, row_count: int) -> None:
    params = check.params or {}
    if check.kind == CheckKind.ROW_COUNT:
        low, high = params.get("min"), params.get("max")
        ok = (low is None or row_count >= low) and (high is None or row_count <= high)
        ev.add(
            check,
            CheckOutcome.PASS if ok else CheckOutcome.FAIL,
            f"{row_count:,} rows.",
            observed_value=float(row_count),
            row_count=row_count,
        )
    elif check.kind == CheckKind.VOLUME_CHANGE:
        window = int(params.get("window", VOLUME_WINDOW_DEFAULT))
        history = _volume_history(check.port, window, now=ev.now)
        if not history:
            ev.add(
                check,
                CheckOutcome.PASS,
                f"{row_count:,} rows; no earlier counts to compare with yet.",
                observed_value=0.0,
                row_count=row_count,
            )
            return
        median = statistics.median(history)
        change = (
            ((row_count - median) / median * 100.0) if median else (100.0 if row_count else 0.0)
        )
        limit = float(params["max_change_percent"])
        ev.add(
            check,
            CheckOutcome.PASS if abs(change) <= limit else CheckOutcome.FAIL,
            f"{row_count:,} rows against a median of {median:,.0f} over the last "
            f"{len(history)} days: {change:+.1f}%.",
            observed_value=change,
            row_count=row_count,
            details={"median": median, "history": history},
        )


def _sample(connector: Connector, sql: CheckSQL, check: Check, keys=None) -> list[dict]:
    if keys:
        statement, params = sql.sample_by_keys_sql(check, keys)
    else:
        statement, params = sql.sample_sql(check)
    names, rows = connector.fetch_with_names(statement, params)
    return _json_safe([dict(zip(names, row, strict=True)) for row in rows])


def _samples_read(
    connector: Connector,
    sql: CheckSQL,
    results: list[CheckResult],
    positions: dict[int, list[int]],
) -> int:
    """Fill the sample of each failing row-level result: those that can be read together
    in one statement (CheckSQL.samples_plan), the others (and all of them when that
    statement fails) one statement each, as before. Returns the statements run."""
    requests: dict[int, SampleRequest] = {}
    keys: dict[int, list | None] = {}
    for result in results:
        check = result.quality_check
        keys[check.pk] = result.details.pop("sample_keys", None)
        requests[check.pk] = SampleRequest(
            check=check, positions=positions.get(check.pk), keys=keys[check.pk]
        )
    statements = 0
    samples: dict[int, list[dict]] = {}
    plan = sql.samples_plan(list(requests.values()))
    if plan is not None:
        statements += 1
        try:
            samples = plan.split(*connector.fetch_with_names(plan.sql, plan.params))
        except ConnectorError as exc:
            logger.info("samples query failed, reading each sample alone: %s", exc)
    for result in results:
        check = result.quality_check
        if check.pk in samples:
            result.sample = _json_safe(samples[check.pk])
            continue
        statements += 1
        try:
            result.sample = _sample(connector, sql, check, keys=keys[check.pk])
        except ConnectorError as exc:
            result.details = {**result.details, TECHNICAL_DETAIL: exc.technical}
    return statements


def _run_checks(run: CheckRun, connector: Connector, checks: list[Check], now: datetime):
    """Evaluate the checks; returns (results, statements, row_count, observation)."""
    ev = _Evaluation(run, now)
    statements = 0
    actual = connector.describe()  # the known column list: metadata, not a scan
    statements += 1
    known = {column.name for column in actual}
    sql = CheckSQL(connector, column_types={column.name: column.data_type for column in actual})

    usable: list[Check] = []
    for check in checks:
        if check.kind in COLUMN_CHECKS and check.column not in known:
            ev.add(
                check,
                CheckOutcome.ERROR,
                f"The column {check.column!r} does not exist in the source.",
            )
            continue
        if check.kind == CheckKind.ACCEPTED_VALUES:
            try:  # the column's type may have changed since the check was saved
                sql.failing_condition(check)
            except ValueError as exc:
                ev.add(check, CheckOutcome.ERROR, f"An accepted value does not fit: {exc}")
                continue
        usable.append(check)

    port = run.port
    freshness_column = port.freshness_column if port.freshness_column in known else None
    # check id -> the parsed query of a custom SQL check counted in the aggregate
    counted = _custom_counts(connector, usable, columns=known)
    sql.custom_counts = {pk: condition for pk, (_, condition) in counted.items()}
    aggregated = [c for c in usable if sql.aggregate_expression(c) is not None]
    plan = sql.aggregate_plan(aggregated, extra_max_column=freshness_column, sample_positions=True)
    statements += 1
    # check id -> where its first failing rows are (Parquet), for its sample
    positions: dict[int, list[int]] = {}
    try:
        row = connector.fetch(plan.sql, plan.params)[0]
        failed_checks: dict[int, ConnectorError] = {}
        positions = {pk: row[index] for pk, index in plan.positions.items()}
    except ConnectorError as combined_error:
        # One bad expression (a value the column's type rejects...) must not sink the
        # others: find it by evaluating each check alone, and keep the rest.
        logger.info("aggregate query failed, isolating checks: %s", combined_error)
        # Custom SQL checks go back to a statement each (their time limit, their messages).
        counted, sql.custom_counts = {}, {}
        aggregated = [c for c in aggregated if sql.aggregate_expression(c) is not None]
        base = sql.aggregate_plan([], extra_max_column=freshness_column)
        row = list(connector.fetch(base.sql, base.params)[0])
        statements += 1
        failed_checks = {}
        values: dict[int, Any] = {}
        for check in aggregated:
            alone = sql.aggregate_plan([check], sample_positions=True)
            statements += 1
            try:
                alone_row = connector.fetch(alone.sql, alone.params)[0]
            except ConnectorError as exc:
                failed_checks[check.pk] = exc
            else:
                values[check.pk] = alone_row[1]
                if check.pk in alone.positions:
                    positions[check.pk] = alone_row[alone.positions[check.pk]]
        plan = _PlanFromValues(values, base_row=row)
        row = plan.row
    row_count = int(row[0])

    for check in usable:
        if check.pk in failed_checks:
            _source_error_result(ev, check, failed_checks[check.pk])
        elif check.pk in counted:
            failing = int(row[plan.slots[check.pk]] or 0)
            _custom_sql_outcome(ev, check, counted[check.pk][0], failing, row_count)
        elif check.pk in plan.slots:
            _evaluate_aggregate(ev, check, row[plan.slots[check.pk]], row_count)
        elif check.kind in (CheckKind.ROW_COUNT, CheckKind.VOLUME_CHANGE):
            _evaluate_counts(ev, check, row_count)
        elif check.kind == CheckKind.SCHEMA:
            _schema_result(ev, check, actual)
        elif check.kind == CheckKind.UNIQUE:  # DuckDB, Spark: its own grouping statement
            statements += 1
            try:
                failing, keys = connector.fetch(sql.unique_statement(check))[0]
            except ConnectorError as exc:
                _source_error_result(ev, check, exc)
            else:
                result = _row_level_result(ev, check, int(failing or 0), row_count)
                result.details = {"sample_keys": list(keys or [])}
        elif check.kind == CheckKind.CUSTOM_SQL:
            statements += 1
            _custom_sql_result(ev, check, connector, row_count)

    failing = [
        result
        for result in ev.results
        if result.outcome == CheckOutcome.FAIL and result.quality_check.kind in ROW_LEVEL_CHECKS
    ]
    if failing:
        statements += _samples_read(connector, sql, failing, positions)

    newest = as_aware(row[-1]) if freshness_column else None
    observation = PortObservation(
        port=port,
        observed_at=now,
        available=True,
        row_count=row_count,
        newest_at=newest,
        freshness_lag_seconds=(now - newest).total_seconds() if newest else None,
        source="check_run",
    )
    return ev.results, statements, row_count, observation


def _source_error_result(ev: _Evaluation, check: Check, exc: ConnectorError) -> CheckResult:
    """A check whose query the source refused: readers get a fixed message (the driver's
    text may quote a value they may not read); the domain's members get the technical
    detail (shown to them only, as for custom SQL)."""
    return ev.add(
        check, CheckOutcome.ERROR, FAILED_MESSAGE, details={TECHNICAL_DETAIL: exc.technical}
    )


def _custom_sql_result(
    ev: _Evaluation, check: Check, connector: Connector, row_count: int
) -> CheckResult:
    """Run one custom SQL check, confined to the port, read-only, under its time limit.
    Readers get fixed sentences; the driver's text (which may quote a value) and, for a
    check reading confidential or restricted columns, its figures are kept in details
    for the domain's members and admins."""
    from products.trust.services import custom_sql  # sqlglot: see _validate_check

    try:
        query = custom_sql.custom_sql_parse(
            (check.params or {}).get("sql", ""),
            dialect=custom_sql.custom_sql_dialect(port=check.port),
        )
        statement = query.statement(relation_sql=connector.relation_sql())
    except custom_sql.CustomSQLRefused as exc:  # saved before the rules it now breaks
        return ev.add(check, CheckOutcome.ERROR, f"The check's SQL is not accepted: {exc}")
    try:
        rows = connector.fetch(statement, timeout_seconds=CUSTOM_SQL_TIMEOUT_SECONDS)
    except ConnectorError as exc:
        message = (
            f"The check's query was stopped after its time limit "
            f"({CUSTOM_SQL_TIMEOUT_SECONDS:g} s)."
            if custom_sql.custom_sql_timed_out(exc)
            else FAILED_MESSAGE
        )
        return ev.add(check, CheckOutcome.ERROR, message, details={TECHNICAL_DETAIL: str(exc)})
    try:
        failing = custom_sql.custom_sql_failing_rows(rows)
    except custom_sql.CustomSQLRefused:
        return ev.add(
            check,
            CheckOutcome.ERROR,
            SHAPE_MESSAGE,
            details={TECHNICAL_DETAIL: custom_sql.custom_sql_shape(rows)},
        )
    return _custom_sql_outcome(ev, check, query, failing, row_count)


def _custom_sql_outcome(
    ev: _Evaluation, check: Check, query, failing: int, row_count: int
) -> CheckResult:
    """The result of a custom SQL check that counted `failing` rows; the figures of one
    reading confidential or restricted columns are kept for the domain's members."""
    from products.trust.services import custom_sql  # sqlglot: see _validate_check

    result = _row_level_result(ev, check, failing, row_count)
    sensitive = custom_sql.custom_sql_sensitive_columns(query=query, port=check.port)
    if sensitive:
        names = ", ".join(sensitive)
        result.details = {
            **result.details,
            FIGURES_FOR_MEMBERS: sensitive,
            MEMBER_MESSAGE: result.message,
        }
        result.message = (
            f"The check {'passed' if result.outcome == CheckOutcome.PASS else 'failed'}. "
            f"It reads confidential or restricted columns ({names}): its figures are "
            "shown to the domain's members and admins."
        )
    return result


def _custom_counts(
    connector: Connector, checks: list[Check], *, columns: set[str]
) -> dict[int, tuple[Any, str]]:
    """The custom SQL checks a DuckDB or Spark aggregate can count in its own scan: those
    written as `SELECT count(*) FROM {table} [WHERE <condition>]` (check id -> (the parsed
    query, the condition)). Each is then a `count(*) FILTER (WHERE <condition>)` of the one
    aggregate, the same number without reading the file (or the cluster's table) again.
    Any other query (and every query on PostgreSQL, whose aggregate keeps its plan as
    measured) runs alone."""
    customs = [check for check in checks if check.kind == CheckKind.CUSTOM_SQL]
    if connector.dialect not in COUNTED_CUSTOM_DIALECTS or not customs:
        return {}
    from products.trust.services import custom_sql  # sqlglot: see _validate_check

    counted = {}
    for check in customs:
        try:
            query = custom_sql.custom_sql_parse(
                (check.params or {}).get("sql", ""),
                dialect=custom_sql.custom_sql_dialect(port=check.port),
            )
        except custom_sql.CustomSQLRefused:
            continue  # its own statement says why
        condition = _count_condition(query, port_relation=custom_sql.PORT_RELATION, columns=columns)
        if condition is not None:
            counted[check.pk] = (query, condition)
    return counted


def _count_condition(query, *, port_relation: str, columns: set[str]) -> str | None:
    """The condition of a validated custom query that is a plain filtered count of the
    port's relation, written in the query's dialect ("TRUE" without a WHERE); None for
    anything else: an alias, a join, a grouping, DISTINCT, a LIMIT, a subquery or another
    table in the condition, a qualified column, a name that is none of the relation's
    `columns` (the aggregate may read a view with more columns: the file's row number)."""
    from sqlglot import exp  # loaded with custom_sql already (see _validate_check)

    tree = query.tree
    if not isinstance(tree, exp.Select):
        return None
    if {name for name, value in tree.args.items() if value} - {"expressions", "from_", "where"}:
        return None
    if len(tree.expressions) != 1:
        return None
    selected = tree.expressions[0].unalias()
    if not isinstance(selected, exp.Count) or not isinstance(selected.this, exp.Star):
        return None
    if {name for name, value in selected.args.items() if value} - {"this", "big_int"}:
        return None
    table = tree.args["from_"].this if tree.args.get("from_") else None
    if (
        not isinstance(table, exp.Table)
        or {name for name, value in table.args.items() if value} != {"this"}
        or table.name != port_relation
    ):
        return None
    where = tree.args.get("where")
    if where is None:
        return "TRUE"
    condition = where.this
    names = {column.lower() for column in columns}  # DuckDB's and Spark's names ignore case
    if any(
        isinstance(node, exp.Subquery | exp.Select | exp.Table | exp.AggFunc | exp.Window)
        or (isinstance(node, exp.Column) and (node.table or node.name.lower() not in names))
        for node in condition.walk()
    ):
        return None
    return condition.sql(dialect=query.dialect, comments=False)


class _PlanFromValues:
    """A plan-shaped view of values computed check by check (the isolation path)."""

    def __init__(self, values: dict[int, Any], base_row: list[Any]) -> None:
        self.row = [base_row[0], *values.values(), *base_row[1:]]
        self.slots = {pk: index for index, pk in enumerate(values, start=1)}


def check_run_execute(*, run_id: int) -> CheckRun | None:
    """Claim and execute a queued run. Returns None when the run is gone or was already
    claimed (a duplicate delivery)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = CheckRun.objects.filter(pk=run_id, status=CheckRunStatus.QUEUED).update(
            status=CheckRunStatus.RUNNING, started_at=now
        )
        if not claimed:
            return None
        run = CheckRun.objects.select_related("port__source", "port__product__domain").get(
            pk=run_id
        )
        _check_run_started_emit(run)
    # Every check reads the run's port (the reverse manager gives each check that very
    # object: its source, and its declared columns loaded once).
    prefetch_related_objects([run.port], "columns")
    wanted = run.port.checks.filter(enabled=True)
    if run.check_ids:
        wanted = wanted.filter(pk__in=run.check_ids)
    checks = list(wanted.order_by("name"))
    try:
        with port_connector(run.port) as connector:
            results, statements, row_count, observation = _run_checks(run, connector, checks, now)
    except ConnectorError as exc:
        with transaction.atomic():
            PortObservation.objects.create(
                port=run.port,
                observed_at=now,
                available=False,
                error=exc.technical[:2000],
                source="check_run",
            )
            _check_run_finish(run, status=CheckRunStatus.ERROR, error=exc.technical[:2000])
    except Exception as exc:  # never leave a run "running"
        logger.exception("check run %s failed", run_id)
        with transaction.atomic():
            _check_run_finish(
                run,
                status=CheckRunStatus.ERROR,
                error=f"Unexpected error: {exc.__class__.__name__}",
            )
        raise
    else:
        outcomes = [result.outcome for result in results]
        with transaction.atomic():
            CheckResult.objects.bulk_create(results)
            observation.save()
            _check_run_finish(
                run,
                status=CheckRunStatus.DONE,
                row_count=row_count,
                statements=statements,
                passed=outcomes.count(CheckOutcome.PASS),
                failed=outcomes.count(CheckOutcome.FAIL),
                errored=outcomes.count(CheckOutcome.ERROR),
            )
    run.refresh_from_db()
    return run


def _check_run_data(run: CheckRun) -> dict[str, Any]:
    return {
        "run_id": run.pk,
        "port": run.port.slug,
        "port_id": run.port_id,
        "trigger": run.trigger,
    }


def _check_run_started_emit(run: CheckRun) -> None:
    product_event_emit(
        "portal.check_run.started", product=run.port.product, data=_check_run_data(run)
    )


def check_run_outcome(run: CheckRun) -> str:
    """A finished run in one word: "failed" when a check failed, "error" when the source
    could not be read or a check could not be evaluated, else "passed"."""
    if run.status == CheckRunStatus.DONE and run.failed:
        return "failed"
    if run.status != CheckRunStatus.DONE or run.errored:
        return "error"
    return "passed"


def _check_run_finish(run: CheckRun, **values: Any) -> bool:
    """Record the end of a running run and write its event, in the caller's transaction;
    False (nothing written) when the run is no longer running (the reaper ended it)."""
    values.setdefault("finished_at", timezone.now())
    ended = CheckRun.objects.filter(pk=run.pk, status=CheckRunStatus.RUNNING).update(**values)
    if ended:
        _check_run_finished_emit(run, **values)
    return bool(ended)


def _check_run_finished_emit(run: CheckRun, **values: Any) -> None:
    """The finished event of `run`, from the values its end wrote (the run object itself
    may not have been read again)."""
    for field, value in values.items():
        setattr(run, field, value)
    product_event_emit(
        "portal.check_run.finished",
        product=run.port.product,
        data={
            **_check_run_data(run),
            "outcome": check_run_outcome(run),
            "counts": {"passed": run.passed, "failed": run.failed, "errored": run.errored},
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat(),
        },
    )


def check_run_reap(*, now: datetime | None = None) -> int:
    """Fail check runs whose worker died (running past the timeout) and runs no worker
    picked up in an hour; send again queued runs whose message was lost (the broker was
    down). Returns how many runs were ended."""
    now = now or timezone.now()
    timeout = settings.CHECK_RUN_TIMEOUT
    stuck = _check_runs_end(
        CheckRun.objects.filter(status=CheckRunStatus.RUNNING, started_at__lt=now - timeout),
        status=CheckRunStatus.RUNNING,
        finished_at=now,
        error=f"The worker stopped before finishing (no result after {timeout}).",
    )
    redispatch_unclaimed(
        CheckRun.objects.filter(
            status=CheckRunStatus.QUEUED,
            created_at__lt=now - settings.TASK_REDISPATCH_AFTER,
            created_at__gte=now - timedelta(hours=1),
        ),
        "products.tasks.check_run",
    )
    unclaimed = _check_runs_end(
        CheckRun.objects.filter(
            status=CheckRunStatus.QUEUED, created_at__lt=now - timedelta(hours=1)
        ),
        status=CheckRunStatus.QUEUED,
        finished_at=now,
        error="No worker picked this run up. Is a Celery worker running?",
    )
    return stuck + unclaimed


def _check_runs_end(runs, *, status: str, finished_at: datetime, error: str) -> int:
    """End the given runs (still in `status`) as errors, each with its finished event, one
    transaction per run: a run a worker finished meanwhile is left as it is."""
    ended = 0
    for run in runs.select_related("port__product__domain").order_by("pk"):
        with transaction.atomic():
            changed = CheckRun.objects.filter(pk=run.pk, status=status).update(
                status=CheckRunStatus.ERROR, finished_at=finished_at, error=error
            )
            if changed:
                _check_run_finished_emit(
                    run, status=CheckRunStatus.ERROR, finished_at=finished_at, error=error
                )
                ended += 1
    return ended
