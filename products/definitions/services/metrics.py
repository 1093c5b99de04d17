"""Metrics: defined once over an output port, evaluated as one SQL query pushed down to the
port's source (PostgreSQL, DuckDB or Spark), by the same code for the page, the API and the
notebook client.

    result = metric_evaluate(metric=metric, user=user, channel=Channel.API,
                             dimensions=["channel"], grain="month", start=date(2025, 1, 1))
    result.rows  # [{"period": date(2025, 1, 1), "channel": "web", "value": 1234.5}, ...]

An evaluation is a read of the serving path (sharing.serving.reads): the query is checked
against the metric's definition, then one read plan (sharing.serving.reads.read_plan, which
asks the one access decision) names the columns the metric reads (its measure, its fixed
filters, the dimensions, time column and filters asked for) and the reader's filters: no
access, or a column outside the grant, is a 403 as for any read; the grant's row filter
is added to the query; a column the grant masks is a 403 naming it (an aggregate of
masked values would reveal them). The aggregate runs through sharing.serving.reads.read_query:
one audit event (a read, on the caller's channel). Identifiers are quoted from the
port's known columns; every value is a bound parameter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from products.catalog.permissions import require_product_editor
from products.choices import NUMERIC_AGGREGATIONS, MetricAggregation, MetricGrain
from products.connectors import Connector, ConnectorError, RelationMissing
from products.connectors.dialects import sql_type, sqlglot_dialect
from products.models import DataProduct, Metric, OutputPort
from sharing.access.filters import (
    Clause,
    FilterError,
    clauses_typed,
    columns_as_written,
    compile_clauses,
    parse_filter,
)
from sharing.serving.reads import ReadPlan, ReadRefused, read_plan, read_query
from sharing.serving.source_errors import shows_source_detail, source_error_message

MAX_GROUPS = 10_000  # rows of one evaluation; more says `truncated`
TIMEOUT_SECONDS = 120
MAX_DIMENSIONS = 20
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9][a-z0-9_-]*$")
RESERVED_NAMES = ("period", "value")  # the result's own columns
NUMERIC_TYPE = re.compile(
    r"\b(tinyint|smallint|integer|int|bigint|hugeint|int2|int4|int8|utinyint|usmallint|"
    r"uinteger|ubigint|uhugeint|numeric|decimal|double|float|float4|float8|real|money)\b",
    re.IGNORECASE,
)
# A placeholder no identifier can contain (quote_ident refuses NUL), replaced by the
# driver's marker at the end.
PLACEHOLDER = "\x00p\x00"


class MetricRefused(Exception):
    """An evaluation that cannot be served: `status` is the HTTP status (400, 403, 502)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- column types ------------------------------------------------------------------------


def time_kind(data_type: str) -> str | None:
    """ "tz" (timestamp with time zone), "naive" (timestamp), "date", or None."""
    text = (data_type or "").lower()
    if "timestamp" in text or "datetime" in text:
        return "tz" if ("with time zone" in text or "timestamptz" in text) else "naive"
    if text.startswith("date"):
        return "date"
    return None


def is_numeric(data_type: str) -> bool:
    """Whether a column type holds numbers (unknown types pass: the source decides)."""
    return not data_type or bool(NUMERIC_TYPE.search(data_type))


def port_column_types(port: OutputPort) -> dict[str, str]:
    """The port's known columns and their types, in order."""
    return dict(port.columns.order_by("position", "name").values_list("name", "data_type"))


# --- the definition ----------------------------------------------------------------------


def _measure_errors(
    *, prefix: str, aggregation: str, column: str, types: dict[str, str]
) -> dict[str, str]:
    label = "denominator" if prefix else "measure"
    agg_field, col_field = f"{prefix}aggregation", f"{prefix}column"
    if aggregation not in MetricAggregation.values:
        return {agg_field: f"Choose the {label}'s aggregation: {', '.join(MetricAggregation)}."}
    if not column:
        if aggregation == MetricAggregation.COUNT:
            return {}
        return {col_field: f"Name the column the {label} aggregates ({aggregation})."}
    if column not in types:
        return {col_field: f"Unknown column {column!r}: the port has no such column."}
    if aggregation in NUMERIC_AGGREGATIONS and not is_numeric(types[column]):
        return {
            col_field: f"Column {column!r} holds {types[column]}, not numbers: "
            f"{MetricAggregation(aggregation).label.lower()} needs a numeric column."
        }
    return {}


def metric_definition_errors(metric: Metric, types: dict[str, str]) -> dict[str, str]:
    """What is wrong with a metric's definition against the port's columns (field ->
    message), or {}. Every message names the column at fault."""
    if not types:
        return {"port": "This port's columns are not known yet: refresh its schema first."}
    errors = _measure_errors(
        prefix="", aggregation=metric.aggregation, column=metric.column, types=types
    )
    if metric.denominator_aggregation or metric.denominator_column:
        errors.update(
            _measure_errors(
                prefix="denominator_",
                aggregation=metric.denominator_aggregation,
                column=metric.denominator_column,
                types=types,
            )
        )
    try:
        clauses = clauses_typed(parse_filter(metric.filters), types)
    except FilterError as exc:
        errors["filters"] = str(exc)
    else:
        unknown = sorted({c.column for c in clauses if c.column not in types})
        if unknown:
            errors["filters"] = f"The filters name unknown column(s): {', '.join(unknown)}."
    dimensions = metric.dimensions
    if not isinstance(dimensions, list) or not all(isinstance(d, str) for d in dimensions):
        errors["dimensions"] = "Give the dimensions as a list of column names."
    else:
        unknown = [d for d in dimensions if d not in types]
        reserved = [d for d in dimensions if d in RESERVED_NAMES]
        if unknown:
            errors["dimensions"] = f"Unknown dimension column(s): {', '.join(unknown)}."
        elif reserved:
            errors["dimensions"] = (
                f"{', '.join(reserved)} cannot be a dimension: the results use that name."
            )
        elif len(dimensions) > MAX_DIMENSIONS:
            errors["dimensions"] = f"At most {MAX_DIMENSIONS} dimensions."
        elif len(set(dimensions)) != len(dimensions):
            errors["dimensions"] = "A dimension is named twice."
    if metric.time_column:
        if metric.time_column not in types:
            errors["time_column"] = f"Unknown column {metric.time_column!r}."
        elif time_kind(types[metric.time_column]) is None:
            held = types[metric.time_column] or "values of an unknown type"
            errors["time_column"] = (
                f"Column {metric.time_column!r} holds {held}, not dates or timestamps."
            )
    return errors


def _clean_list(value, *, field_name: str, known: Collection[str]) -> list:
    """A list of column names, given as a list (names verbatim) or as text typed
    "channel, country": there each name is taken as written, or without the spaces
    around it when that is no column of `known` as written (as the data API's
    ?columns=). Unknown names are left for the definition check to name."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return columns_as_written([part for part in value.split(",") if part.strip()], known)
    if isinstance(value, list | tuple):
        return list(value)
    raise ValidationError({field_name: "Give a list."})


@transaction.atomic
def metric_create(
    *,
    by,
    port: OutputPort,
    key: str,
    name: str,
    aggregation: str,
    column: str = "",
    description: str = "",
    denominator_aggregation: str = "",
    denominator_column: str = "",
    filters=None,
    dimensions=None,
    time_column: str = "",
) -> Metric:
    """Define a metric on `port` (the product's editors). Its key is
    `<domain-slug>.<name>` in the product's domain, e.g. `sales.revenue`."""
    product: DataProduct = port.product
    require_product_editor(user=by, product=product, action=f"define metrics on {product.name}")
    key = (key or "").strip().lower()
    errors: dict[str, str] = {}
    if not KEY_PATTERN.match(key):
        errors["key"] = (
            f"Write the key as <domain>.<name> in lower case, e.g. {product.domain.slug}.revenue "
            "(letters, digits, - and _)."
        )
    elif key.split(".", 1)[0] != product.domain.slug:
        errors["key"] = (
            f"A metric on {product.name} belongs to the {product.domain.name} domain: its key "
            f"starts with {product.domain.slug}."
        )
    elif Metric.objects.filter(key=key).exists():
        errors["key"] = f"There is already a metric {key}."
    name = " ".join((name or "").split())
    if not name:
        errors["name"] = "Name the metric, as people say it (for example “Net revenue”)."
    try:
        filter_list = parse_filter(filters)
    except FilterError as exc:
        errors["filters"] = str(exc)
        filter_list = []
    types = port_column_types(port)
    metric = Metric(
        key=key,
        name=name[:200],
        description=(description or "").strip(),
        port=port,
        aggregation=aggregation or "",
        column=column or "",  # identifiers are verbatim: "amount " is not "amount"
        denominator_aggregation=denominator_aggregation or "",
        denominator_column=denominator_column or "",
        filters=[clause.as_dict() for clause in filter_list],
        dimensions=_clean_list(dimensions, field_name="dimensions", known=types),
        time_column=time_column or "",
        created_by=by,
    )
    definition_errors = metric_definition_errors(metric, types)
    errors = {**definition_errors, **errors}
    if errors:
        raise ValidationError(errors)
    metric.full_clean()
    metric.save()
    return metric


# --- a query of the metric -----------------------------------------------------------------


@dataclass(frozen=True)
class MetricQuery:
    """What one evaluation asks: group by these dimensions (and a time grain), keep the
    rows from `start` to `end` (dates, both included, UTC) passing `filters`."""

    dimensions: tuple[str, ...] = ()
    grain: str | None = None
    start: date | None = None
    end: date | None = None
    filters: tuple[Clause, ...] = ()


def _date(value, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise MetricRefused(
            400, f"{name} must be a date written YYYY-MM-DD, not {str(value)[:40]!r}."
        ) from None


def metric_query_parse(
    *, metric: Metric, dimensions=None, grain=None, start=None, end=None, filters=None
) -> MetricQuery:
    """Check a query against the metric: declared dimensions only, a grain and dates only
    with a time column, filters (structured, see sharing.access.filters) on declared dimensions
    or the time column. Raises MetricRefused(400) naming what is wrong."""
    if isinstance(dimensions, str):
        # "channel, country": a dimension's own spaces are part of its name.
        dimensions = columns_as_written(
            [part for part in dimensions.split(",") if part.strip()], metric.dimensions
        )
    dimensions = list(dict.fromkeys(dimensions or ()))
    undeclared = [name for name in dimensions if name not in metric.dimensions]
    if undeclared:
        declared = ", ".join(metric.dimensions) or "none"
        raise MetricRefused(
            400,
            f"{metric.key} has no dimension {', '.join(undeclared)}: its dimensions are "
            f"{declared}.",
        )
    grain = (grain or "").strip().lower() or None
    if grain is not None and grain not in MetricGrain.values:
        raise MetricRefused(400, f"Unknown grain {grain!r}: use {', '.join(MetricGrain.values)}.")
    start_date, end_date = _date(start, "start"), _date(end, "end")
    if (grain or start_date or end_date) and not metric.time_column:
        raise MetricRefused(
            400, f"{metric.key} has no time column: it takes no grain, start or end."
        )
    if start_date and end_date and end_date < start_date:
        raise MetricRefused(400, "end is before start.")
    try:
        clauses = parse_filter(filters)
    except FilterError as exc:
        raise MetricRefused(400, str(exc)) from exc
    allowed = {*metric.dimensions, *([metric.time_column] if metric.time_column else [])}
    outside = sorted({c.column for c in clauses if c.column not in allowed})
    if outside:
        raise MetricRefused(
            400,
            f"The filters name {', '.join(outside)}, not a dimension of {metric.key}: filter "
            f"on {', '.join(sorted(allowed)) or 'nothing'}.",
        )
    return MetricQuery(
        dimensions=tuple(dimensions),
        grain=grain,
        start=start_date,
        end=end_date,
        filters=tuple(clauses),
    )


def metric_columns_read(metric: Metric, query: MetricQuery) -> list[str]:
    """Every column the evaluation reads: the measure's, the fixed filters', the
    dimensions asked for, the time column when used, the filters'."""
    names = [metric.column, metric.denominator_column]
    names += [clause.column for clause in parse_filter(metric.filters)]
    names += list(query.dimensions)
    if query.grain or query.start or query.end:
        names.append(metric.time_column)
    names += [clause.column for clause in query.filters]
    return [name for name in dict.fromkeys(names) if name]


# --- SQL -------------------------------------------------------------------------------


@dataclass
class CompiledMetric:
    sql: str
    params: list[Any]
    columns: list[str]  # result columns: ["period"]?, dimensions..., "value"


def _aggregate_sql(aggregation: str, column: str, quote) -> str:
    if aggregation == MetricAggregation.COUNT:
        return f"count({quote(column)})" if column else "count(*)"
    if aggregation == MetricAggregation.COUNT_DISTINCT:
        return f"count(DISTINCT {quote(column)})"
    return f"{MetricAggregation(aggregation).value}({quote(column)})"


def measure_sql(metric: Metric, connector: Connector) -> str:
    """The measure: one aggregate, or a ratio A / NULLIF(B, 0) computed in floating point
    (so that count / count does not truncate to an integer)."""
    quote = connector.quote_ident
    measure = _aggregate_sql(metric.aggregation, metric.column, quote)
    if not metric.is_ratio:
        return measure
    denominator = _aggregate_sql(metric.denominator_aggregation, metric.denominator_column, quote)
    double = sql_type("double", connector.dialect)
    return f"CAST({measure} AS {double}) / NULLIF(CAST({denominator} AS {double}), 0)"


def period_sql(column_sql: str, kind: str, grain: str, dialect: str = "postgresql") -> str:
    """The first day of the row's period, as a date. Timestamps with a time zone are cut
    in UTC whatever the session's time zone; dates and plain timestamps as they are.
    Weeks start on Monday on every engine. Written for the connector's `dialect` from one
    expression (sqlglot): Spark's timestamps are instants, cut in its sessions' UTC."""
    if grain not in MetricGrain.values:  # never text from outside
        raise ValueError(grain)
    return _period_template(kind, grain, dialect).replace(_COLUMN, column_sql)


_COLUMN = "__metric_time_column__"


@functools.cache
def _period_template(kind: str, grain: str, dialect: str) -> str:
    # Lazy: sqlglot (~7 MB) is kept out of the processes that load the URLs.
    import sqlglot

    if kind == "tz":
        value = f"{_COLUMN} AT TIME ZONE 'UTC'"
    else:
        value = f"CAST({_COLUMN} AS TIMESTAMP)"
    portable = f"CAST(date_trunc('{grain}', {value}) AS DATE)"
    return sqlglot.transpile(portable, read="postgres", write=sqlglot_dialect(dialect))[0]


def _bound(day: date, kind: str):
    """A date as the value compared with the time column (UTC midnight for timestamps)."""
    if kind == "tz":
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    if kind == "naive":
        return datetime(day.year, day.month, day.day)
    return day


def metric_sql(
    *,
    metric: Metric,
    query: MetricQuery,
    connector: Connector,
    types: dict[str, str],
    clauses: Sequence[Clause] = (),
    limit: int = MAX_GROUPS + 1,
) -> CompiledMetric:
    """The one SELECT evaluating the metric for `query` on the rows passing `clauses` (a
    read plan's: the grant's row filter, the metric's filters, the reader's filters) and
    the query's date range."""
    quote = connector.quote_ident
    select: list[str] = []
    columns: list[str] = []
    kind = time_kind(types.get(metric.time_column, "")) if metric.time_column else None
    if query.grain:
        period = period_sql(quote(metric.time_column), kind, query.grain, connector.dialect)
        select.append(f"{period} AS {quote('period')}")
        columns.append("period")
    for name in query.dimensions:
        select.append(quote(name))
        columns.append(name)
    groups = len(select)
    select.append(f"{measure_sql(metric, connector)} AS {quote('value')}")
    columns.append("value")

    where, params = compile_clauses(clauses, quote=quote, placeholder=lambda: PLACEHOLDER)
    conditions = [f"({where})"] if where else []
    if query.start:
        conditions.append(f"{quote(metric.time_column)} >= {PLACEHOLDER}")
        params.append(_bound(query.start, kind))
    if query.end:
        conditions.append(f"{quote(metric.time_column)} < {PLACEHOLDER}")
        params.append(_bound(query.end + timedelta(days=1), kind))

    sql = f"SELECT {', '.join(select)} FROM {connector.relation_sql()}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if groups:
        positions = ", ".join(str(i) for i in range(1, groups + 1))
        sql += f" GROUP BY {positions} ORDER BY {positions} LIMIT {int(limit)}"
    if connector.paramstyle == "%s":
        # psycopg reads % as the start of a placeholder when there are parameters.
        sql = sql.replace("%", "%%") if params else sql
    sql = sql.replace(PLACEHOLDER, connector.paramstyle)
    return CompiledMetric(sql=sql, params=params, columns=columns)


# --- evaluation ----------------------------------------------------------------------------


@dataclass
class MetricResult:
    metric: Metric
    query: MetricQuery
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool
    sql: str = ""
    params: list[Any] = field(default_factory=list)
    basis: str = ""  # how the reader has access: admin, domain_member, grant
    row_filter: tuple[Clause, ...] = ()


def _range_clauses(metric: Metric, query: MetricQuery) -> list[Clause]:
    """The date range as clauses, for the audit."""
    clauses = []
    if query.start:
        clauses.append(Clause(metric.time_column, ">=", query.start.isoformat()))
    if query.end:
        clauses.append(Clause(metric.time_column, "<=", query.end.isoformat()))
    return clauses


def metric_read_plan(
    *,
    metric: Metric,
    user,
    channel: str,
    query: MetricQuery,
    types: dict[str, str],
    shareable_only: bool = False,
) -> ReadPlan:
    """The read plan of an evaluation of `query` by `user`, or MetricRefused: 400 for a
    definition the port's columns (`types`) no longer fit, then the read plan's answers
    (403 without access to the rows or a column, 400 for a filter value that does not
    fit its column) and 403 for a column the reader's access masks. What metric_evaluate
    asks before it reads, and a sync of a metric's values at save."""
    errors = metric_definition_errors(metric, types)
    if errors:
        raise MetricRefused(
            400, f"{metric.key} no longer fits its port's columns: " + " ".join(errors.values())
        )
    product = metric.port.product
    try:
        plan = read_plan(
            user=user,
            product=product,
            channel=channel,
            port_slug=metric.port.slug,
            columns=metric_columns_read(metric, query),
            filter=[clause.as_dict() for clause in query.filters],
            limit=MAX_GROUPS,
            shareable_only=shareable_only,
        )
    except ReadRefused as exc:
        raise MetricRefused(exc.status, exc.message) from exc
    if plan.masked:
        raise MetricRefused(
            403,
            f"This reads column(s) your access masks: {', '.join(sorted(plan.masked))}. Ask "
            f"the {product.domain.name} team for a grant naming them.",
        )
    return plan


def metric_result_columns(query: MetricQuery) -> list[str]:
    """The columns of an evaluation's rows: the period (with a grain), the dimensions
    asked for, the value."""
    return [*(["period"] if query.grain else []), *query.dimensions, "value"]


def metric_evaluate(
    *,
    metric: Metric,
    user,
    channel: str,
    dimensions=None,
    grain=None,
    start=None,
    end=None,
    filters=None,
    client_address: str | None = None,
    detail: dict[str, Any] | None = None,
    shareable_only: bool = False,
) -> MetricResult:
    """Evaluate the metric for `user`: one read plan, one query on the port's source, one
    audit event. Raises MetricRefused: 400 for a bad query (naming the dimension, grain,
    date or filter at fault) or a definition the port's columns no longer fit (both
    checked first: a metric's definition and its port's columns are catalog metadata),
    then the read plan's answers: 403 without access to the product's rows, to a column
    read or to its unmasked values, 400 for a filter value that does not fit its column;
    404 when the port's table (or a column) is not in its source, 502 when the source
    cannot be read. `detail` goes into the audit event's (a sync's run, say);
    `shareable_only`: within what `user` may share (an embed's read, see read_plan)."""
    port = metric.port
    product = port.product
    query = metric_query_parse(
        metric=metric, dimensions=dimensions, grain=grain, start=start, end=end, filters=filters
    )
    types = port_column_types(port)
    plan = metric_read_plan(
        metric=metric,
        user=user,
        channel=channel,
        query=query,
        types=types,
        shareable_only=shareable_only,
    )
    query = replace(query, filters=tuple(plan.requested_filter))  # typed by the plan
    # The metric's own filters hold with the grant's row filter and the reader's (their
    # columns were checked as columns the metric reads).
    clauses = [*plan.decision.row_filter, *parse_filter(metric.filters), *query.filters]
    plan = replace(
        plan,
        clauses=clauses,
        detail={
            "metric": metric.key,
            "dimensions": list(query.dimensions),
            "grain": query.grain,
            **(detail or {}),
        },
    )
    compiled: list[CompiledMetric] = []

    def statement(connector: Connector) -> tuple[str, list[Any]]:
        compiled.append(
            metric_sql(
                metric=metric, query=query, connector=connector, types=types, clauses=clauses
            )
        )
        return compiled[0].sql, compiled[0].params

    try:
        rows = read_query(
            # The audit names the date range as clauses too (the SQL compares it in UTC).
            replace(plan, clauses=[*clauses, *_range_clauses(metric, query)]),
            statement=statement,
            fmt="metric",
            client_address=client_address,
            timeout_seconds=TIMEOUT_SECONDS,
        )
    except RelationMissing as exc:  # the audit has its detail, read by admins and owners
        detail = f": {exc.technical}" if shows_source_detail(user=user, product=product) else "."
        raise MetricRefused(
            404, f"The metric's port points at data its source does not have{detail}"
        ) from exc
    except ConnectorError as exc:
        message = source_error_message(user=user, product=product, exc=exc)
        raise MetricRefused(exc.status, message) from exc  # 502, or 403: SourceAccessRefused
    truncated = len(rows) > MAX_GROUPS
    columns = compiled[0].columns
    return MetricResult(
        metric=metric,
        query=query,
        columns=columns,
        rows=[dict(zip(columns, row, strict=True)) for row in rows[:MAX_GROUPS]],
        truncated=truncated,
        sql=compiled[0].sql,
        params=compiled[0].params,
        basis=plan.decision.basis,
        row_filter=plan.decision.row_filter,
    )
