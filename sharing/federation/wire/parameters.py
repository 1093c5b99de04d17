"""Bound parameters of the extended protocol (`cur.execute("... WHERE x = %s", [v])`):
each `$n` of the statement replaced by its value as a typed SQL literal, in the parsed
tree, before the statement goes the governed way (query_start takes SQL only).

Values are never pasted into the text: each becomes a sqlglot literal node (a string, a
number, a boolean, NULL, or a string cast to the parameter's declared type), and the
statement is written again from the tree, which quotes and escapes the value. Each
literal is parenthesised, so that a value stays a value wherever the placeholder stood
(`ORDER BY $1` does not become the positional `ORDER BY 1`, `x - $1` with -5 does not
become a comment). The statement's text then differs from the one sent (sqlglot writes
it), which is the text kept in the person's query history.

pg-mimic hands the values over as text (binary ones decoded to their text form), with the
type OIDs the client declared at Parse (None when it left the type to the server).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import sqlglot
from pg_mimic import PgError
from pg_mimic import types as pg_types
from sqlglot import exp

DIALECT = "postgres"

_INTEGER_OIDS = {pg_types.INT2, pg_types.INT4, pg_types.INT8, pg_types.OID}
_NUMBER_OIDS = {pg_types.FLOAT4, pg_types.FLOAT8, pg_types.NUMERIC}
_TEXT_OIDS = {
    None,
    pg_types.TEXT,
    pg_types.VARCHAR,
    pg_types.BPCHAR,
    pg_types.NAME,
    pg_types.CHAR,
    pg_types.UNKNOWN,
}
_CAST_TYPES = {  # declared types whose text PostgreSQL reads by casting
    pg_types.DATE: "date",
    pg_types.TIME: "time",
    pg_types.TIMESTAMP: "timestamp",
    pg_types.TIMESTAMPTZ: "timestamptz",
    pg_types.INTERVAL: "interval",
    pg_types.UUID: "uuid",
    pg_types.JSON: "json",
    pg_types.JSONB: "jsonb",
    pg_types.BYTEA: "bytea",
}
_TRUE = {"t", "true", "1", "yes", "y", "on"}
_FALSE = {"f", "false", "0", "no", "n", "off"}


def _placeholders(tree: exp.Expression) -> list[exp.Parameter]:
    return list(tree.find_all(exp.Parameter))


def _index(node: exp.Parameter) -> int:
    value = node.this
    text = value.this if isinstance(value, exp.Literal) else getattr(value, "name", "")
    if not str(text).isdigit():
        raise PgError("42601", f"syntax error at or near ${text}: parameters are $1, $2, ...")
    return int(text)


def _invalid(value: str, type_name: str) -> PgError:
    return PgError("22P02", f'invalid input syntax for type {type_name}: "{value[:100]}"')


def parameter_literal(value, oid: int | None) -> exp.Expression:
    """`value` (a parameter's text, or None for NULL) as a SQL literal of the type `oid`
    declares."""
    if value is None:
        return exp.Null()
    if isinstance(value, list):
        raise PgError("0A000", "Array parameters are not supported: write the values out.")
    text = str(value)
    if oid in _INTEGER_OIDS:
        try:
            return exp.Literal.number(int(text.strip()))
        except ValueError:
            raise _invalid(text, "integer") from None
    if oid in _NUMBER_OIDS:
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            raise _invalid(text, "numeric") from None
        if number.is_finite():
            return exp.Literal.number(format(number, "f"))
        return exp.Cast(this=exp.Literal.string(text.strip()), to=exp.DataType.build("double"))
    if oid == pg_types.BOOL:
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return exp.Boolean(this=word in _TRUE)
        raise _invalid(text, "boolean")
    if oid in _CAST_TYPES:
        return exp.Cast(
            this=exp.Literal.string(text),
            to=exp.DataType.build(_CAST_TYPES[oid], dialect=DIALECT),
        )
    return exp.Literal.string(text)  # text, unknown, and types read from their text


def placeholder_count(sql: str) -> int:
    """The highest `$n` of the statement (0 when it has none, or does not parse: the
    governed path then says what is wrong with it)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except Exception:  # sqlglot fails in several ways on odd input
        return 0
    return max((_index(n) for s in statements for n in _placeholders(s)), default=0)


def sql_with_parameters(sql: str, params: list, param_oids: list[int | None]) -> str:
    """The statement with each `$n` replaced by the n-th value as a typed literal. The
    statement unchanged when it has no placeholder and no value was bound. Raises PgError
    when the values do not match the placeholders or do not read as their type."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except Exception:
        statements = []
    if len(statements) != 1:  # the governed path refuses it in its own words
        if params:
            raise PgError("42601", "A statement with parameters must be one statement that parses.")
        return sql
    tree = statements[0]
    nodes = _placeholders(tree)
    needed = max((_index(n) for n in nodes), default=0)
    if needed != len(params):
        raise PgError(
            "08P01",
            f"bind message supplies {len(params)} parameters, but the statement requires {needed}",
        )
    if not nodes:
        return sql
    for node in nodes:
        index = _index(node)
        oid = param_oids[index - 1] if index - 1 < len(param_oids) else None
        node.replace(exp.Paren(this=parameter_literal(params[index - 1], oid)))
    return tree.sql(dialect=DIALECT)
