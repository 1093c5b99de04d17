"""A statement answered for a person through the one governed path of federated queries:
`query_start(channel="wire")` plans it (or refuses it) and records it, `query_batches`
runs it under its guardrails (timeout, cost budget, QUERY_MAX_ROWS) and writes the audit,
one event per product read, when its batches end. Nothing else here reads data.

The answer is read whole, in the worker thread that started it: the batches are consumed
to their end there, so the audit is written once, in that thread, whatever the client
does next (pg-mimic's simple protocol holds every row in memory anyway; QUERY_MAX_ROWS
bounds both). A refusal or a failure becomes the PostgreSQL error a client understands
(`pg_error_for_refusal`, `pg_error_for_failure`: the SQLSTATEs of docs/query.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.types as pat
from pg_mimic import PgError, ResultColumn
from pg_mimic import types as pg_types
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope
from sqlglot.schema import MappingSchema

from products.connectors import ConnectorError
from sharing.federation.refusals import QueryRefused
from sharing.federation.services.planning import QueryPlan, query_plan
from sharing.federation.services.running import (
    query_batches,
    query_error_message,
    query_error_status,
    query_start,
)
from sharing.federation.wire.catalog import TEXT, pg_type
from sharing.federation.wire.threads import django_call
from sharing.serving.arrow_values import python_columns

logger = logging.getLogger(__name__)

CHANNEL = "wire"  # the FederatedQuery's channel; the audit's is "query", as for every query
FORMAT = "pgwire"  # the audit event's format
DIALECT = "postgres"

# --- errors -----------------------------------------------------------------------------------

# Statements that would change something: refused (the portal only reads) as a read-only
# PostgreSQL server refuses them.
WRITES = frozenset(
    "INSERT UPDATE DELETE MERGE UPSERT REPLACE CREATE DROP ALTER TRUNCATE GRANT REVOKE "
    "COMMENT VACUUM ANALYZE REINDEX CLUSTER LOCK CALL DO REFRESH SECURITY IMPORT".split()
)
_FIRST_WORD = re.compile(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*([A-Za-z]+)", re.S)


def first_keyword(sql: str) -> str:
    match = _FIRST_WORD.match(sql or "")
    return match.group(1).upper() if match else ""


def pg_error_for_refusal(exc: QueryRefused, sql: str) -> PgError:
    """The PostgreSQL error of a refused query: its message, and the SQLSTATE a client
    reads the reason from (docs/query.md)."""
    message = str(exc)
    if exc.status == 403:
        code = "42501"  # insufficient_privilege
    elif exc.status == 404:
        code = "42P01"  # undefined_table
    elif exc.status == 429:
        code = "53400"  # configuration_limit_exceeded: the reader's query rate
    elif exc.status == 503:
        code = "53300"  # too_many_connections: the source's running queries
    elif first_keyword(sql) in WRITES:
        code = "25006"  # read_only_sql_transaction
    elif message.startswith(("Syntax error", "The SQL does not parse")):
        code = "42601"  # syntax_error
    elif message.startswith("Unknown column"):
        code = "42703"  # undefined_column
    elif message.startswith("This query would cost"):
        code = "54000"  # program_limit_exceeded: the cost budget
    else:
        code = "0A000"  # feature_not_supported: SQL the portal does not run
    return PgError(code, message)


def pg_error_for_failure(exc: ConnectorError) -> PgError:
    """The PostgreSQL error of a query that failed where it ran: 57014 past its time
    limit, the source's own SQLSTATE when the SQL was at fault (a failed cast...), XX000
    otherwise; the message without driver prefixes or addresses."""
    status = query_error_status(exc)
    message = query_error_message(exc)
    if status == 504:
        return PgError("57014", message)  # query_canceled
    if status == 400:
        sqlstate = str(getattr(exc.__cause__, "sqlstate", "") or "")
        return PgError(sqlstate if re.fullmatch(r"[0-9A-Z]{5}", sqlstate) else "22000", message)
    return PgError("XX000", message)


def internal_error() -> PgError:
    return PgError(
        "XX000",
        "The portal could not answer this statement (an internal error, logged by the "
        "portal's SQL endpoint).",
    )


# --- result columns ---------------------------------------------------------------------------


def arrow_oid(data_type: pa.DataType) -> int:
    """The PostgreSQL type OID a column of this Arrow type is sent as."""
    if isinstance(data_type, pa.BaseExtensionType):
        # ADBC's opaque PostgreSQL numeric (its values are read as exact Decimals).
        if getattr(data_type, "type_name", "") == "numeric":
            return pg_types.NUMERIC
        data_type = data_type.storage_type
    if pat.is_boolean(data_type):
        return pg_types.BOOL
    if pat.is_int8(data_type) or pat.is_int16(data_type) or pat.is_uint8(data_type):
        return pg_types.INT2
    if pat.is_int32(data_type) or pat.is_uint16(data_type):
        return pg_types.INT4
    if pat.is_int64(data_type) or pat.is_uint32(data_type):
        return pg_types.INT8
    if pat.is_integer(data_type) or pat.is_decimal(data_type):
        return pg_types.NUMERIC  # uint64 does not fit an int8
    if pat.is_float16(data_type) or pat.is_float32(data_type):
        return pg_types.FLOAT4
    if pat.is_float64(data_type):
        return pg_types.FLOAT8
    if pat.is_timestamp(data_type):
        return pg_types.TIMESTAMPTZ if data_type.tz else pg_types.TIMESTAMP
    if pat.is_date(data_type):
        return pg_types.DATE
    if pat.is_time(data_type):
        return pg_types.TIME
    if pat.is_binary(data_type) or pat.is_large_binary(data_type):
        return pg_types.BYTEA
    return pg_types.TEXT  # text, and what PostgreSQL has no plain type for (as its text)


def columns_of_schema(schema: pa.Schema) -> list[ResultColumn]:
    return [ResultColumn(f.name, arrow_oid(f.type)) for f in schema]


def _output_name(node: exp.Expression) -> str:
    name = node.alias_or_name
    return name if name and not isinstance(node.unalias(), exp.Literal) else "?column?"


def columns_of_plan(plan: QueryPlan) -> list[ResultColumn]:
    """The columns a planned query answers with, without running it: their names, and
    the declared type of a product's column selected as it is (a masked one is text, as
    its **** is); text for anything computed. For a statement described before its
    parameters are bound, and an answer without rows (whose batches carry no schema)."""
    markers = {}
    mapping = {}
    for item in plan.governed:
        declared = {c.name: c.data_type for c in item.plan.port.columns.all()}
        markers[item.reference.marker] = (item, declared)
        quoted = exp.to_identifier(item.reference.marker, quoted=True).sql(dialect=DIALECT)
        mapping[quoted] = {
            exp.to_identifier(name, quoted=True).sql(dialect=DIALECT): "TEXT"
            for name in item.plan.columns
        }
    try:
        tree = qualify(
            plan.parsed.tree.copy(),
            schema=MappingSchema(mapping, dialect=DIALECT),
            dialect=DIALECT,
            quote_identifiers=True,
            isolate_tables=False,
            validate_qualify_columns=False,
        )
        scope = build_scope(tree)
    except SqlglotError:
        tree, scope = plan.parsed.tree, None
    columns = []
    for select in getattr(tree, "selects", []):
        kind = TEXT
        inner = select.unalias()
        source = scope.sources.get(inner.table) if scope and isinstance(inner, exp.Column) else None
        if isinstance(source, exp.Table) and source.name in markers:
            item, declared = markers[source.name]
            if inner.name not in item.plan.masked and inner.name in declared:
                kind = pg_type(declared[inner.name])
        columns.append(ResultColumn(_output_name(select), kind.oid))
    return columns


# --- answers ----------------------------------------------------------------------------------


@dataclass
class Answer:
    """A statement's answer: its columns, its rows (per batch, the batch's columns as
    Python values), whether QUERY_MAX_ROWS cut it, and its query's id."""

    columns: list[ResultColumn]
    batches: list[list[list]] = field(default_factory=list)
    rows: int = 0
    truncated: bool = False
    query_id: str = ""

    def row_tuples(self) -> Iterator[tuple]:
        for columns in self.batches:
            yield from zip(*columns, strict=True)


@django_call
def wire_answer(*, user, sql: str, client_address: str | None) -> Answer:
    """Run `sql` for `user` the governed way and read its answer whole. Raises PgError."""
    try:
        running = query_start(user=user, sql=sql, channel=CHANNEL, client_address=client_address)
        columns: list[ResultColumn] | None = None
        batches = []
        stream = query_batches(running, fmt=FORMAT)
        try:
            for batch in stream:
                if columns is None:
                    columns = columns_of_schema(batch.schema)
                if batch.num_rows:
                    batches.append(python_columns(batch))
        finally:
            stream.close()  # here, in this thread: the audit is written whatever happened
        if columns is None:
            columns = columns_of_plan(running.plan)
        return Answer(
            columns=columns,
            batches=batches,
            rows=running.rows,
            truncated=running.truncated,
            query_id=running.id,
        )
    except QueryRefused as exc:
        raise pg_error_for_refusal(exc, sql) from exc
    except ConnectorError as exc:
        raise pg_error_for_failure(exc) from exc
    except PgError:
        raise
    except Exception as exc:
        logger.exception("wire: the statement of %s failed", getattr(user, "pk", None))
        raise internal_error() from exc


@django_call
def wire_columns(*, user, sql: str) -> list[ResultColumn]:
    """The columns `sql` would answer with, planned for `user` and not run (nothing is
    read, recorded or audited). Raises PgError when the query would be refused."""
    try:
        return columns_of_plan(query_plan(user=user, sql=sql))
    except QueryRefused as exc:
        raise pg_error_for_refusal(exc, sql) from exc
    except Exception as exc:
        logger.exception("wire: describing a statement of %s failed", getattr(user, "pk", None))
        raise internal_error() from exc
