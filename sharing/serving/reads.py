"""Serving a product's rows: one plan (access decision, columns, filter, limit) and one
streaming query per read, for every channel; one audit event per read served.

    plan = read_plan(user=..., product=..., columns=..., filter=..., limit=..., channel=...)
    for chunk in read_stream(plan, fmt="csv", client_address=...): ...

Columns, filter and limit become a single SELECT pushed down to the source; masking is a
CASE expression in that SELECT. Results stream in batches: memory stays bounded.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.core import json_values
from products.catalog.selectors import port_for
from products.catalog.services.ports import port_location_check
from products.connectors import Connector, ConnectorError, connector_for_port
from products.connectors.dialects import sql_type
from products.connectors.postgres import PostgresConnector
from products.models import DataProduct, OutputPort
from sharing.access.decision import AccessDecision, access_decide
from sharing.access.filters import (
    Clause,
    FilterError,
    clauses_typed,
    columns_as_written,
    compile_clauses,
    parse_filter,
    unknown_columns,
)
from sharing.choices import XLSX_MAX_ROWS, AuditAction, DataFormat
from sharing.models import AccessEvent, AccessGrant
from sharing.serving.refusals import ReadRefused

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

PREVIEW_ROWS = 100
MAX_ROWS = 10_000_000  # one read; larger reads are scheduled exports
BATCH_ROWS = 100_000
# Parquet row groups: batches are gathered to at least this many rows before one is
# written (the source's batches are smaller), so row groups hold 128,000 to about 230,000
# rows while memory stays bounded: a row group is held once before it is encoded, and
# larger ones cost more memory than they save in size (bench/exports.py).
PARQUET_ROW_GROUP_ROWS = 128_000
# Dictionary pages stop growing at this size: a column with many distinct values (ids,
# emails, amounts) falls back to plain encoding early instead of building a dictionary
# it cannot use (smaller files, tens of MB less memory); few-valued columns keep theirs.
PARQUET_DICTIONARY_PAGE_BYTES = 64 * 1024
CHUNK_BYTES = 1 << 20
MASK = "****"

CONTENT_TYPES = {
    DataFormat.CSV: "text/csv; charset=utf-8",
    DataFormat.JSON: "application/json",
    DataFormat.PARQUET: "application/vnd.apache.parquet",
    DataFormat.ARROW: "application/vnd.apache.arrow.stream",
    DataFormat.JSONL: "application/x-ndjson",
    DataFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
EXTENSIONS = {
    DataFormat.CSV: "csv",
    DataFormat.JSON: "json",
    DataFormat.PARQUET: "parquet",
    DataFormat.ARROW: "arrows",
    DataFormat.JSONL: "jsonl",
    DataFormat.XLSX: "xlsx",
}


@dataclass
class ReadPlan:
    user: Any
    product: DataProduct
    port: OutputPort
    channel: str
    decision: AccessDecision
    columns: list[str]
    masked: set[str]
    clauses: list[Clause]  # the grant's row filter and the reader's, all must hold
    requested_filter: list[Clause]
    limit: int
    limit_clamped: bool = False
    detail: dict = field(default_factory=dict)
    # CSV only, the opt-in of exports and share links: a text cell starting with = + - @,
    # a tab or a carriage return gets a `'` in front, so a spreadsheet shows it instead of
    # running it. Off by default: values are served as they are.
    neutralise_formulas: bool = False


def _port_for(
    product: DataProduct, port_slug: str | None, ports: Sequence[OutputPort] | None = None
) -> OutputPort:
    port = port_for(product=product, slug=port_slug, ports=ports)
    if port is None:
        raise ReadRefused(
            404,
            f"This product has no output port {port_slug!r}."
            if port_slug
            else "This product has no output port to read.",
        )
    return port


def read_plan(
    *,
    user,
    product: DataProduct,
    channel: str,
    port_slug: str | None = None,
    columns: list[str] | None = None,
    filter: str | list | None = None,  # noqa: A002 - the API parameter's name
    limit: int | None = None,
    max_rows: int = MAX_ROWS,
    shareable_only: bool = False,
    ports: Sequence[OutputPort] | None = None,
) -> ReadPlan:
    """Decide and shape one read. Raises ReadRefused: 403 when access is denied or the
    reader asks for columns outside their access, 400 for unknown columns or a malformed
    filter, 404 for an unknown port. `shareable_only`: within what `user` may share (a
    share link's read, with its creator as `user`; see access_decide). `ports`: the
    product's ports already loaded in name order, with their columns (a federated query
    planning several reads at once)."""
    decision = access_decide(user=user, product=product, shareable_only=shareable_only)
    if not decision.allowed:
        raise ReadRefused(403, decision.reason)
    port = _port_for(product, port_slug, ports)
    try:  # the port's location, checked again at every read (see port_connector)
        port_location_check(port=port)
    except ValidationError as exc:
        raise ReadRefused(
            403,
            "This port names a table or file its domain may not serve: its owners must "
            "move it before it can be read.",
        ) from exc
    if ports is not None:  # prefetched with the ports
        ordered = sorted(port.columns.all(), key=lambda column: (column.position, column.name))
        types = {column.name: column.data_type for column in ordered}
    else:
        types = dict(port.columns.order_by("position", "name").values_list("name", "data_type"))
    known = list(types)
    if not known:
        raise ReadRefused(404, "This port's schema is not known yet: refresh it first.")
    allowed = [name for name in known if decision.allows_column(name)]

    columns = columns_as_written(columns or (), known)  # blank entries name nothing
    if columns:
        unknown = [name for name in columns if name not in known]
        if unknown:
            raise ReadRefused(400, f"Unknown column(s): {', '.join(unknown)}.")
        outside = [name for name in columns if name not in allowed]
        if outside:
            raise ReadRefused(
                403, f"Your access does not include the column(s): {', '.join(outside)}."
            )
        selected = list(dict.fromkeys(columns))
    else:
        selected = allowed

    try:
        requested = parse_filter(filter)
        requested = clauses_typed(requested, types)
    except FilterError as exc:
        raise ReadRefused(400, str(exc)) from exc
    unknown = unknown_columns(requested, known)
    if unknown:
        raise ReadRefused(400, f"The filter names unknown column(s): {', '.join(unknown)}.")
    outside = sorted({c.column for c in requested if c.column not in allowed})
    if outside:
        raise ReadRefused(
            403, f"You cannot filter on column(s) outside your access: {', '.join(outside)}."
        )
    masked_filtered = sorted({c.column for c in requested if c.column in decision.masked})
    if masked_filtered:
        raise ReadRefused(
            403, f"You cannot filter on masked column(s): {', '.join(masked_filtered)}."
        )

    clamped = False
    if limit is None:
        limit = max_rows
    elif limit < 0:
        raise ReadRefused(400, "The limit must be 0 or more.")
    elif limit > max_rows:
        limit, clamped = max_rows, True
    return ReadPlan(
        user=user,
        product=product,
        port=port,
        channel=channel,
        decision=decision,
        columns=selected,
        masked={name for name in selected if name in decision.masked},
        clauses=[*decision.row_filter, *requested],
        requested_filter=requested,
        limit=limit,
        limit_clamped=clamped,
    )


def served_value_sql(plan: ReadPlan, connector: Connector, name: str) -> str:
    """A selected column as the plan serves it: masked (as text, NULL kept) where the
    plan masks it."""
    return _served_value_sql(plan, name, quote=connector.quote_ident, dialect=connector.dialect)


def _served_value_sql(plan: ReadPlan, name: str, *, quote, dialect: str) -> str:
    column = quote(name)
    if name not in plan.masked:
        return column
    text = sql_type("text", dialect)
    return f"CAST(CASE WHEN {column} IS NULL THEN NULL ELSE '{MASK}' END AS {text})"


def _fence(sql: str, where: str, *, quote, dialect: str) -> str:
    """`sql` filtered by `where` in a relation no condition written around it crosses
    (see governed_select_sql). PostgreSQL and DuckDB keep an `OFFSET 0` in place; Spark's
    optimizer drops it, but never moves a condition below (nor merges one with) a filter
    that is not deterministic, which `spark_partition_id() >= 0` makes this one (true of
    every row). Not `rand() >= 0`: Spark 4 folds that to true (OptimizeRand), and a
    condition on a partition column then prunes partitions outside `where`."""
    if dialect == "spark":
        fenced = f"{sql} WHERE ({where}) AND spark_partition_id() >= 0"
    else:
        fenced = f"{sql} WHERE {where} OFFSET 0"
    return f"SELECT * FROM ({fenced}) AS {quote('governed')}"


def governed_select_sql(
    plan: ReadPlan,
    *,
    quote: Callable[[str], str],
    dialect: str,
    relation: str,
    placeholder: Callable[[], str],
    columns: Sequence[str] | None = None,
    predicates: Sequence[str] = (),
    fenced: bool = False,
) -> tuple[str, list[Any]]:
    """The governed relation of a plan, without a limit: its columns (`columns`, a subset
    of the plan's, or all of them) served as the plan serves them, its clauses as the
    WHERE, and `predicates` (SQL of someone else over the same columns) applied after.

    `fenced`: the caller's SQL will be written around this relation (a federated query).
    When the plan has row clauses, the relation is then fenced (`OFFSET 0`, which neither
    PostgreSQL nor DuckDB lets a condition cross; a filter that is not deterministic on
    Spark, see _fence): no expression of the caller is ever
    evaluated on a row outside the clauses (where its error, a failed cast or a division
    by zero, would tell that such a row exists), and `predicates` filter outside it."""
    names = plan.columns if columns is None else columns
    expressions = [
        f"{_served_value_sql(plan, name, quote=quote, dialect=dialect)} AS {quote(name)}"
        if name in plan.masked
        else quote(name)
        for name in names
    ] or ["1 AS " + quote("__row__")]
    where, params = compile_clauses(plan.clauses, quote=quote, placeholder=placeholder)
    sql = f"SELECT {', '.join(expressions)} FROM {relation}"
    conditions = [f"({predicate})" for predicate in predicates]
    if where and fenced:
        sql = _fence(sql, where, quote=quote, dialect=dialect)
    elif where:
        conditions.insert(0, f"({where})")
    if conditions:
        sql += f" WHERE {' AND '.join(conditions)}"
    return sql, params


def select_sql(plan: ReadPlan, connector: Connector, *, placeholder) -> tuple[str, list[Any]]:
    """The one SELECT serving the plan. `placeholder(i)` gives the i-th (1-based) bound
    parameter's marker for the driver that will run it."""
    counter = iter(range(1, 1_000_000))
    sql, params = governed_select_sql(
        plan,
        quote=connector.quote_ident,
        dialect=connector.dialect,
        relation=connector.relation_sql(),
        placeholder=lambda: placeholder(next(counter)),
    )
    return f"{sql}{connector.limit_sql(plan.limit)}", params


class _Sink(io.RawIOBase):
    """A write-only file that keeps what is written until it is drained."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        return len(data)

    def drain(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _batches(plan: ReadPlan, connector: Connector) -> Iterator[pa.RecordBatch]:
    sql, params = select_sql(plan, connector, placeholder=connector.arrow_placeholder)
    yield from connector.arrow_batches(sql, params, batch_rows=BATCH_ROWS)


@dataclass
class Served:
    """What a stream has served so far (for its audit event; a caller passing its own,
    such as a scheduled export, reads the rows from it)."""

    rows: int = 0


_Served = Served


def rows_to_serve(plan: ReadPlan, connector: Connector, *, at_most: int) -> int:
    """How many rows the plan serves, counted at the source and capped at `at_most` + 1
    (enough to tell "too many" without counting everything)."""
    capped = replace(plan, limit=min(plan.limit, at_most + 1))
    sql, params = select_sql(capped, connector, placeholder=lambda i: connector.paramstyle)
    return int(connector.fetch(f"SELECT count(*) FROM ({sql}) AS served", params)[0][0])


def format_check(plan: ReadPlan, connector: Connector, fmt: str) -> None:
    """Refuse, before anything is written, a read the format cannot hold: an unknown
    format, or more rows than an XLSX sheet takes."""
    if fmt not in DataFormat.values:
        raise ReadRefused(
            400, f"Unknown format {fmt!r}: use one of {', '.join(DataFormat.values)}."
        )
    if fmt == DataFormat.XLSX:
        rows = rows_to_serve(plan, connector, at_most=XLSX_MAX_ROWS)
        if rows > XLSX_MAX_ROWS:
            raise ReadRefused(
                400,
                f"More than {XLSX_MAX_ROWS:,} rows: an XLSX sheet holds at most 1,048,576 "
                "rows with its header. Narrow the columns' rows with a filter, or choose "
                "CSV, Parquet or JSON lines.",
            )


def _xlsx_cell(sheet, row: int, column: int, value, formats: dict) -> None:
    """One cell, written by its type, never through XlsxWriter's `write()`: text is
    always a text cell (a value such as "=1+1" or "http://..." is not turned into a live
    formula or link), numbers numbers, booleans booleans, dates and times dates."""
    if value is None:
        return
    if isinstance(value, str):
        sheet.write_string(row, column, value)
    elif isinstance(value, bool):
        sheet.write_boolean(row, column, value)
    elif isinstance(value, int | float | Decimal):
        number = float(value)
        if math.isfinite(number):
            sheet.write_number(row, column, number)
        else:  # a cell cannot hold NaN or infinity: their JSON text
            sheet.write_string(row, column, json_values.non_finite_as_text(number))
    elif isinstance(value, datetime):
        sheet.write_datetime(row, column, value, formats["datetime"])
    elif isinstance(value, date):
        sheet.write_datetime(row, column, value, formats["date"])
    elif isinstance(value, time):
        sheet.write_datetime(row, column, value, formats["time"])
    else:
        text = json_values.data_value(value)
        sheet.write_string(row, column, text if isinstance(text, str) else str(text))


def _encode_xlsx(plan: ReadPlan, connector: Connector, counter: _Served) -> Iterator[bytes]:
    """XLSX through XlsxWriter's constant-memory mode: rows go to a temporary file, row by
    row, and the finished workbook is streamed from it."""
    # Here, not at the top: a Celery worker imports this module for exports and holds
    # what it imports idle (xlsxwriter ~10 MB, pyarrow ~40 MB) until a read needs it.
    import xlsxwriter

    # Lazy: this module imports pyarrow.
    from sharing.serving.arrow_values import python_columns

    with tempfile.TemporaryDirectory(prefix="portal-xlsx-") as folder:
        path = Path(folder) / "data.xlsx"
        workbook = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "remove_timezone": True,
                "default_date_format": "yyyy-mm-dd hh:mm:ss",
                "tmpdir": folder,
                # Belt and braces: cells are written by type (_xlsx_cell), never parsed.
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        sheet = workbook.add_worksheet(plan.product.slug[:31] or "data")
        bold = workbook.add_format({"bold": True})
        formats = {
            "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
            "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
            "time": workbook.add_format({"num_format": "hh:mm:ss"}),
        }
        for index, name in enumerate(plan.columns):
            sheet.write_string(0, index, name, bold)
        row_number = 0
        for batch in _batches(plan, connector):
            for values in zip(*python_columns(batch), strict=True):
                row_number += 1
                if row_number > XLSX_MAX_ROWS:
                    workbook.close()
                    raise ReadRefused(400, f"More than {XLSX_MAX_ROWS:,} rows for an XLSX sheet.")
                for index, value in enumerate(values):
                    _xlsx_cell(sheet, row_number, index, value, formats)
            counter.rows += batch.num_rows
        workbook.close()
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk


def _write_row_group(writer: pq.ParquetWriter, batches: list[pa.RecordBatch]) -> None:
    import pyarrow as pa  # lazily, as in _encode_xlsx: only when a read needs it

    table = pa.Table.from_batches(batches)
    writer.write_table(table, row_group_size=max(table.num_rows, 1))


def _json_rows(batch: pa.RecordBatch) -> Iterator[str]:
    # Lazy: this module imports pyarrow.
    from sharing.serving.arrow_values import (
        python_columns,  # pyarrow: see sharing.serving.arrow_values
    )

    names = batch.schema.names
    for values in zip(*python_columns(batch), strict=True):
        yield json_values.dumps(
            dict(zip(names, values, strict=True)),
            default=json_values.data_value,
            ensure_ascii=False,
        )


def _encode(
    plan: ReadPlan,
    connector: Connector,
    fmt: str,
    counter: _Served,
    *,
    neutralise: bool = False,
) -> Iterator[bytes]:
    if fmt == DataFormat.XLSX:
        yield from _encode_xlsx(plan, connector, counter)
        return
    neutralise = neutralise and fmt == DataFormat.CSV
    if fmt == DataFormat.CSV and isinstance(connector, PostgresConnector) and not neutralise:
        sql, params = select_sql(plan, connector, placeholder=lambda i: "%s")
        yield from connector.copy_csv(sql, params, chunk_bytes=CHUNK_BYTES)
        counter.rows = connector.last_rowcount
        return
    declared = dict(plan.port.columns.values_list("name", "data_type"))
    yield from encode_batches(
        _batches(plan, connector),
        fmt,
        counter=counter,
        neutralise=neutralise,
        empty_columns=[
            (name, "" if name in plan.masked else declared.get(name, "")) for name in plan.columns
        ],
    )


def encode_batches(
    batches: Iterator[pa.RecordBatch],
    fmt: str,
    *,
    counter: Served | None = None,
    neutralise: bool = False,
    empty_columns: Sequence[tuple[str, str]] = (),
) -> Iterator[bytes]:
    """Arrow batches as the bytes of a CSV, JSON, JSON lines, Parquet or Arrow stream
    (every read's encoding, and a federated query's). `empty_columns`: (name, declared
    type, "" for text) of a read without rows, whose file still has its columns."""
    counter = counter if counter is not None else Served()
    # Lazily, as in _encode_xlsx: only when a read needs them.
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    # Lazy: this module imports pyarrow.
    from sharing.serving.arrow_values import (
        arrow_decimals,
        declared_arrow_type,
        neutralise_formula,
        neutralise_formulas,
        text_numerics,
    )

    sink = _Sink()
    writer = None
    first = True
    pending: list[pa.RecordBatch] = []  # Parquet: batches of the next row group
    pending_rows = 0
    if fmt == DataFormat.JSON:
        # Buffered, not yielded: the first chunk then comes from the source, so a source
        # that cannot be read answers an error status instead of a truncated 200.
        sink.write(b"[")
    for batch in batches:
        counter.rows += batch.num_rows
        if fmt == DataFormat.CSV:
            if neutralise:  # text cells only: numbers (numerics too) are never prefixed
                batch = neutralise_formulas(batch)
            batch = text_numerics(batch)
            if writer is None:
                writer = pa_csv.CSVWriter(sink, batch.schema)
            writer.write_batch(batch)
        elif fmt == DataFormat.PARQUET:
            batch = arrow_decimals(batch)
            if writer is None:
                writer = pq.ParquetWriter(
                    sink,
                    batch.schema,
                    compression="zstd",
                    dictionary_pagesize_limit=PARQUET_DICTIONARY_PAGE_BYTES,
                )
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= PARQUET_ROW_GROUP_ROWS:
                _write_row_group(writer, pending)
                pending, pending_rows = [], 0
        elif fmt == DataFormat.ARROW:
            batch = arrow_decimals(batch)
            if writer is None:
                writer = pa.ipc.new_stream(sink, batch.schema)
            writer.write_batch(batch)
        elif fmt == DataFormat.JSONL:
            sink.write("".join(row + "\n" for row in _json_rows(batch)).encode())
        elif fmt == DataFormat.JSON:
            if batch.num_rows:
                text = ",".join(_json_rows(batch))
                sink.write((text if first else "," + text).encode())
                first = False
        data = sink.drain()
        if data:
            yield data
    if writer is None and fmt not in (DataFormat.JSON, DataFormat.JSONL):
        # No rows at all: still a valid, empty file with the right columns, typed as the
        # port declares them (masked columns are text).
        schema = pa.schema(
            [
                pa.field(
                    name,
                    pa.string()
                    if not data_type or fmt == DataFormat.CSV
                    else declared_arrow_type(data_type),
                )
                for name, data_type in empty_columns
            ]
        )
        if fmt == DataFormat.CSV:
            if neutralise:
                schema = pa.schema(
                    [pa.field(neutralise_formula(n), pa.string()) for n, _ in empty_columns]
                )
            writer = pa_csv.CSVWriter(sink, schema)
        elif fmt == DataFormat.PARQUET:
            writer = pq.ParquetWriter(sink, schema)
        else:
            writer = pa.ipc.new_stream(sink, schema)
    if pending:
        _write_row_group(writer, pending)
    if writer is not None:
        writer.close()
    if fmt == DataFormat.JSON:
        sink.write(b"]")
    data = sink.drain()
    if data:
        yield data


def read_stream(
    plan: ReadPlan,
    *,
    fmt: str,
    client_address: str | None = None,
    served: Served | None = None,
    audit_detail: dict | None = None,
) -> Iterator[bytes]:
    """Stream the plan's rows in `fmt`; write one audit event when the stream ends
    (complete, failed or abandoned by the client), with the rows and bytes served.
    `served` receives the row count as it grows; `audit_detail` is added to the event's
    detail (a scheduled export names its run). CSV cells are neutralised when the plan
    says so (`ReadPlan.neutralise_formulas`)."""
    counter = served if served is not None else Served()
    sent = 0
    error = ""
    try:
        with connector_for_port(plan.port) as connector:
            format_check(plan, connector, fmt)
            for chunk in _encode(
                plan, connector, fmt, counter, neutralise=plan.neutralise_formulas
            ):
                sent += len(chunk)
                yield chunk
    except (ConnectorError, ReadRefused) as exc:
        error = getattr(exc, "technical", str(exc))  # the audit: admins and domain owners
        raise
    finally:
        audit_read(
            plan,
            rows=counter.rows,
            nbytes=sent,
            client_address=client_address,
            fmt=fmt,
            error=error,
            extra=audit_detail,
        )


def read_rows(plan: ReadPlan, *, client_address: str | None = None) -> tuple[list[str], list]:
    """The plan's rows as Python values (the page preview): small reads only."""
    # Lazy: this module imports pyarrow.
    from sharing.serving.arrow_values import (
        python_columns,  # pyarrow: see sharing.serving.arrow_values
    )

    rows: list = []
    error = ""
    try:
        with connector_for_port(plan.port) as connector:
            for batch in _batches(plan, connector):
                rows.extend(zip(*python_columns(batch), strict=True))
    except ConnectorError as exc:
        error = exc.technical  # the audit: admins and domain owners
        raise
    finally:
        audit_read(
            plan,
            rows=len(rows),
            nbytes=None,
            client_address=client_address,
            fmt="rows",
            error=error,
        )
    return plan.columns, rows


def read_query(
    plan: ReadPlan,
    *,
    statement: Callable[[Connector], tuple[str, Sequence[Any]]],
    fmt: str,
    client_address: str | None = None,
    timeout_seconds: float | None = None,
) -> list[tuple]:
    """The rows of one statement a caller writes from the plan for the port's source (a
    metric's aggregate over the plan's columns and clauses): `statement(connector)` gives
    its SQL and bound parameters. One audit event, as for every read: the rows served
    (at most the plan's limit), and the source's error when it failed. Raises
    ConnectorError (RelationMissing when the port's table is not in its source)."""
    rows: list[tuple] = []
    error = ""
    try:
        with connector_for_port(plan.port) as connector:
            sql, params = statement(connector)
            rows = connector.fetch(sql, params, timeout_seconds=timeout_seconds)
    except ConnectorError as exc:
        error = exc.technical  # the audit: admins and domain owners
        raise
    finally:
        audit_read(
            plan,
            rows=min(len(rows), plan.limit),
            nbytes=None,
            client_address=client_address,
            fmt=fmt,
            error=error,
        )
    return rows


def audit_read(
    plan: ReadPlan,
    *,
    rows: int,
    nbytes: int | None,
    client_address,
    fmt: str,
    error: str = "",
    extra: dict | None = None,
) -> AccessEvent:
    now = timezone.now()
    grant = plan.decision.grant
    if grant is not None:
        AccessGrant.objects.filter(pk=grant.pk).update(last_used_at=now)
    detail = {
        "format": fmt,
        "port": plan.port.slug,
        "basis": plan.decision.basis,
        "limit": plan.limit,
    }
    detail.update(plan.detail)  # what the channel adds (a share link's id...)
    if plan.masked:
        detail["masked"] = sorted(plan.masked)
    detail.update(plan.detail)  # what the caller adds (a recipient, a metric's key...)
    if error:
        detail["error"] = error[:500]
    if extra:
        detail.update(extra)
    return AccessEvent.objects.create(
        at=now,
        action=AuditAction.READ,
        user=plan.user if getattr(plan.user, "is_authenticated", False) else None,
        product=plan.product,
        product_key=plan.product.key,
        channel=plan.channel,
        columns=plan.columns,
        row_filter=[clause.as_dict() for clause in plan.clauses],
        rows=rows,
        bytes=nbytes,
        client_address=client_address or None,
        grant=grant,
        detail=detail,
    )
