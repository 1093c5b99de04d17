"""Custom SQL checks: confined to their port, checked against an allow-list, and written
for their audience.

A custom check is one SELECT its owners write; `{table}` names the port's relation. The
SQL is parsed with sqlglot in the port's dialect and accepted only when

- it is exactly one SELECT (set operations of SELECTs included), without INTO or
  locking clauses;
- every relation it names, anywhere in the tree (FROM, JOIN, subqueries, CTE bodies,
  set operations), is the port's relation written as `{table}`, or a CTE defined at the
  top of the same query before the place that names it;
- every expression is built from an allow-list of node kinds, operators and functions
  (aggregates, comparison and logic, arithmetic and math, text, null handling, CASE,
  casts to plain types, date and time, window functions). Anything else, a function
  that reads files or settings, evaluates a string as SQL or reaches another server
  included, is refused by name, because it is not on the list. On Spark that covers
  `reflect`, `java_method` and `try_reflect` (they call Java methods on the server),
  `input_file_name`, and every way of reading files: a table function (`read_files`), a
  path in FROM (parquet.`/a/path`), a script (`TRANSFORM ... USING`);
- on Spark, it holds no `${`: Spark replaces `${name}`, `${env:NAME}` and `${system:name}`
  in a statement's text (strings included) with the server's settings and environment
  before it reads the statement.

What runs is what was checked: the statement sent to the source is generated from the
validated tree (comments dropped), never the text as typed, so no difference between
sqlglot's reading of the text and the database's (escapes, nested comments, Unicode
escapes) can smuggle in another query. It runs read-only with a time limit.

A check's result is seen by every reader of the product. The database's own error text
may quote a value (a failed cast quotes the text it could not convert), so readers get
a fixed sentence and the driver's text is kept in `details["technical_detail"]` for the
domain's members and admins. A check that reads a confidential or restricted column
keeps its figures for them as well (`details["figures_for_members"]`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb
import psycopg
import sqlglot
from sqlglot import exp

from products.choices import Classification, PortKind, SourceKind
from products.connectors.dialects import sqlglot_dialect
from products.connectors.spark import CANCELLED_CONDITION as SPARK_CANCELLED_CONDITION
from products.trust.services.check_details import SHAPE_MESSAGE

TABLE_PLACEHOLDER = "{table}"
# `{table}` becomes this identifier while the SQL is parsed. A query may not write it
# itself: the only relation of that name is the port's own.
PORT_RELATION = "__port_relation__"

SENSITIVE_CLASSIFICATIONS = (Classification.CONFIDENTIAL, Classification.RESTRICTED)


# Spark's variable substitution (spark.sql.variable.substitute, on by default), applied
# to the statement's text before it is parsed.
SPARK_SUBSTITUTION = "${"

# Nodes of a query's shape: clauses, references, literals, operators.
ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Select,
    exp.Union,
    exp.Intersect,
    exp.Except,
    exp.With,
    exp.CTE,
    exp.From,
    exp.Join,
    exp.Where,
    exp.Group,
    exp.Having,
    exp.Qualify,
    exp.Order,
    exp.Ordered,
    exp.Limit,
    exp.Offset,
    exp.Fetch,
    *((exp.LimitOptions,) if hasattr(exp, "LimitOptions") else ()),  # FETCH FIRST n ROWS ONLY
    exp.Distinct,
    exp.Subquery,
    exp.Table,
    exp.TableAlias,
    exp.Alias,
    exp.Column,
    exp.Identifier,
    exp.Star,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Var,
    exp.Interval,
    exp.DataType,
    exp.DataTypeParam,
    exp.Paren,
    exp.Tuple,
    exp.Window,
    exp.WindowSpec,
    exp.Filter,
    exp.WithinGroup,
    # comparison and logic
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Exists,
    exp.Any,
    exp.All,
    exp.Like,
    exp.ILike,
    exp.SimilarTo,
    exp.Escape,
    exp.RegexpLike,
    exp.RegexpILike,
    # arithmetic
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.DPipe,
)

# Functions, by sqlglot class (the class stands for every spelling of the function).
ALLOWED_FUNCTIONS: tuple[type[exp.Func], ...] = (
    # aggregates
    exp.Count,
    exp.CountIf,
    exp.Sum,
    exp.Avg,
    exp.Min,
    exp.Max,
    exp.Stddev,
    exp.StddevPop,
    exp.StddevSamp,
    exp.Variance,
    exp.VariancePop,
    exp.LogicalAnd,
    exp.LogicalOr,
    exp.PercentileCont,
    exp.PercentileDisc,
    exp.Median,
    exp.Mode,
    # math
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Ln,
    exp.Log,
    exp.Exp,
    exp.Pow,
    exp.Sqrt,
    exp.Greatest,
    exp.Least,
    exp.Sign,
    # text
    exp.Length,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Substring,
    exp.StrPosition,
    exp.Replace,
    exp.Concat,
    exp.ConcatWs,
    exp.Left,
    exp.Right,
    exp.Pad,
    exp.StartsWith,
    exp.SplitPart,
    exp.Reverse,
    # null handling, conditions, casts
    exp.Coalesce,
    exp.Nullif,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.TryCast,
    exp.Array,  # a list of values for ANY/ALL
    # date and time
    exp.DateTrunc,
    exp.TimestampTrunc,
    exp.Extract,
    exp.CurrentDate,
    exp.CurrentTimestamp,
    exp.CurrentTime,
    # windows
    exp.RowNumber,
    exp.Rank,
    exp.DenseRank,
    exp.Lag,
    exp.Lead,
    exp.FirstValue,
    exp.LastValue,
    # named in ALLOWED_FUNCTION_NAMES, which newer sqlglot reads as classes of their own
    *(
        getattr(exp, name)
        for name in ("Trunc", "PercentRank", "CumeDist", "Ntile", "IsNan")
        if hasattr(exp, name)
    ),
)

# Functions sqlglot knows only by name (exp.Anonymous), lower case.
ALLOWED_FUNCTION_NAMES = frozenset(
    {
        "age",
        "date_part",
        "now",
        "strpos",
        "regexp_matches",
        "char_length",
        "btrim",
        "trunc",
        "percent_rank",
        "cume_dist",
        "ntile",
        "mode",
        "count_if",
        "starts_with",
        "isnan",
        "isfinite",
    }
)

# Cast targets: plain scalar types. No reg* or oid types (they read the catalogue), no
# arrays, JSON, composite or user-defined types.
ALLOWED_CAST_TYPES = frozenset(
    {
        exp.DataType.Type.TINYINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.DECIMAL,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.TEXT,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.CHAR,
        exp.DataType.Type.BOOLEAN,
        exp.DataType.Type.DATE,
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPTZ,
        exp.DataType.Type.TIME,
        exp.DataType.Type.TIMETZ,
        exp.DataType.Type.INTERVAL,
    }
)

# Bare words the databases read as values of the session (who is connected, where), not
# as columns.
SQL_VALUE_WORDS = frozenset(
    {
        "user",
        "current_user",
        "current_role",
        "session_user",
        "system_user",
        "current_schema",
        "current_catalog",
        "current_database",
    }
)

# Table arguments other than the name and its alias (table functions, samples, time
# travel, hints...): none is needed to count failing rows.
TABLE_EXTRAS = tuple(key for key in exp.Table.arg_types if key not in ("this", "alias"))


class CustomSQLRefused(ValueError):
    """The custom SQL is not a single read-only query on the port; the message says why."""


@dataclass(frozen=True)
class CustomQuery:
    """A validated custom SQL check: its tree, with the port's relation as a placeholder."""

    tree: exp.Expression
    dialect: str

    def statement(self, *, relation_sql: str) -> str:
        """The SQL to run: generated from the validated tree (comments dropped), with
        the port's quoted relation where `{table}` was."""
        marker = exp.to_identifier(PORT_RELATION, quoted=True).sql(dialect=self.dialect)
        text = self.tree.sql(dialect=self.dialect, comments=False)
        if self.dialect == "spark" and SPARK_SUBSTITUTION in text:
            raise CustomSQLRefused(
                f"{SPARK_SUBSTITUTION}...}} is not allowed in a check on Spark: Spark replaces "
                "it with a setting or an environment variable of its server."
            )
        relations = len(_port_tables(self.tree))
        if text.count(marker) != relations:  # only the validated tables carry the marker
            raise CustomSQLRefused("The query names the port's relation outside a FROM clause.")
        return text.replace(marker, relation_sql)


def custom_sql_dialect(*, port) -> str:
    """The sqlglot dialect a port's custom SQL is written in."""
    if port.kind == PortKind.FILE:
        return "duckdb"
    source = port.source
    if source is not None and source.kind == SourceKind.DUCKDB:
        return "duckdb"
    if source is not None and source.kind == SourceKind.SPARK:
        return "spark"
    return "postgres"


def custom_sql_parse(sql: str, *, dialect: str = "postgres") -> CustomQuery:
    """Parse and check custom SQL (see the module's rules). Raises CustomSQLRefused with
    a message naming the construct it refuses."""
    dialect = sqlglot_dialect(dialect)
    text = (sql or "").strip().rstrip(";").strip()
    if not text:
        raise CustomSQLRefused("Write a SELECT that returns the number of failing rows.")
    if PORT_RELATION in text.lower():
        raise CustomSQLRefused(
            f"The name {PORT_RELATION} is reserved: write {TABLE_PLACEHOLDER} for the port's table."
        )
    placeholders = text.count(TABLE_PLACEHOLDER)
    marker = exp.to_identifier(PORT_RELATION, quoted=True).sql(dialect=dialect)
    try:
        statements = [
            s
            for s in sqlglot.parse(text.replace(TABLE_PLACEHOLDER, marker), read=dialect)
            if s is not None
        ]
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise CustomSQLRefused(f"The SQL does not parse: {first}") from exc
    except Exception as exc:  # sqlglot can fail in other ways on odd input
        raise CustomSQLRefused("The SQL does not parse.") from exc
    if len(statements) != 1:
        raise CustomSQLRefused("Write exactly one statement.")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        raise CustomSQLRefused(
            f"Only a SELECT query is allowed ({_construct(tree)} is not): checks never change data."
        )
    ctes = sql_ctes_check(tree)
    _check_nodes(tree, ctes=ctes)
    if not placeholders:
        raise CustomSQLRefused(
            f"Read the port's table through {TABLE_PLACEHOLDER}, e.g. "
            f"SELECT count(*) FROM {TABLE_PLACEHOLDER} WHERE amount < 0."
        )
    if len(_port_tables(tree)) != placeholders:
        raise CustomSQLRefused(
            f"Write {TABLE_PLACEHOLDER} only where a table goes (FROM or JOIN); "
            "give it an alias to name its columns."
        )
    query = CustomQuery(tree=tree, dialect=dialect)
    try:
        query.statement(relation_sql=marker)  # what runs can be written
    except CustomSQLRefused:
        raise
    except Exception as exc:
        raise CustomSQLRefused("The SQL cannot be written back for the source.") from exc
    return query


def custom_sql_validate(sql: str, *, dialect: str = "postgres") -> None:
    """Refuse anything but one SELECT confined to `{table}` with allowed functions.
    Raises CustomSQLRefused with a reason."""
    custom_sql_parse(sql, dialect=dialect)


def custom_sql_statement(sql: str, *, relation_sql: str, dialect: str = "postgres") -> str:
    """The custom SQL, validated, as the statement to run on the port's relation."""
    return custom_sql_parse(sql, dialect=dialect).statement(relation_sql=relation_sql)


def custom_sql_columns_read(query: CustomQuery, *, columns: list[str]) -> set[str]:
    """The port's columns the query reads, from `columns` (the port's column names).
    Conservative: a `*` (other than count(*)), a whole-row reference or `t.*` reads
    every column; names are matched without regard to case."""
    by_lower: dict[str, set[str]] = {}
    for name in columns:
        by_lower.setdefault(name.lower(), set()).add(name)
    row_names = {PORT_RELATION.lower()}
    for node in query.tree.find_all(exp.TableAlias, exp.CTE):
        if node.alias_or_name:
            row_names.add(node.alias_or_name.lower())
    read: set[str] = set()
    for join in query.tree.find_all(exp.Join):
        if join.args.get("kind") == "NATURAL" or join.method == "NATURAL":
            return set(columns)  # compares every column the two sides share
        for identifier in join.args.get("using") or []:
            read |= by_lower.get(identifier.name.lower(), set())
    for node in query.tree.find_all(exp.Star, exp.Column):
        if isinstance(node, exp.Star):
            if not isinstance(node.parent, exp.Count | exp.Column):
                return set(columns)
            continue
        if isinstance(node.this, exp.Star):
            return set(columns)
        name = node.name.lower()
        if name in by_lower:
            read |= by_lower[name]
        elif name in row_names:  # a whole-row reference: t, or row_to_json-like use
            return set(columns)
    return read


def custom_sql_sensitive_columns(*, query: CustomQuery, port) -> list[str]:
    """The confidential or restricted columns of the port that the query reads."""
    classified = {column.name: column.classification for column in port.columns.all()}
    read = custom_sql_columns_read(query, columns=list(classified))
    return sorted(name for name in read if classified[name] in SENSITIVE_CLASSIFICATIONS)


def custom_sql_failing_rows(rows: list[tuple]) -> int:
    """The number of failing rows a custom query answered: one row of one whole number,
    0 or more (NULL, as sum() gives on an empty table, counts as 0). Raises
    CustomSQLRefused with SHAPE_MESSAGE otherwise; the message never quotes the value."""
    if len(rows) != 1 or len(rows[0]) != 1:
        raise CustomSQLRefused(SHAPE_MESSAGE)
    value: Any = rows[0][0]
    if value is None:
        return 0
    if isinstance(value, bool):
        raise CustomSQLRefused(SHAPE_MESSAGE)
    if isinstance(value, Decimal | float):
        if not math.isfinite(value) or value != int(value):
            raise CustomSQLRefused(SHAPE_MESSAGE)
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise CustomSQLRefused(SHAPE_MESSAGE)
    return value


def custom_sql_shape(rows: list[tuple]) -> str:
    """The shape of a custom query's answer, in words, without its values (for the
    domain's members, when the shape is wrong)."""
    if len(rows) != 1:
        return f"The query returned {len(rows)} rows."
    types = ", ".join(type(value).__name__ for value in rows[0])
    return f"The query returned one row of {len(rows[0])} value(s) of type {types or '-'}."


def custom_sql_timed_out(error: BaseException) -> bool:
    """Whether a connector error is the statement's time limit (not a failure)."""
    cause = error.__cause__
    if isinstance(cause, psycopg.errors.QueryCanceled | duckdb.InterruptException):
        return True
    # Spark: the connector interrupts the statement on the server at its time limit.
    condition = getattr(cause, "getCondition", None) or getattr(cause, "getErrorClass", None)
    try:
        return bool(condition) and condition() == SPARK_CANCELLED_CONDITION
    except Exception:  # noqa: BLE001 - an exception that cannot say
        return False


# --- the rules ---------------------------------------------------------------------------


CONSTRUCT_WORDS = {
    "bytestring": "an E'...' escape string",
    "rawstring": "a $$-quoted string",
    "unicodestring": "a U&'...' Unicode escape string",
    "bitwiseand": "the & operator",
    "lateral": "a LATERAL join",
    "values": "a VALUES list",
    "into": "SELECT ... INTO",
    "lock": "a locking clause (FOR UPDATE/SHARE)",
    "dot": "a schema-qualified name or field access",
    "parameter": "a query parameter",
    "placeholder": "a query parameter",
    "collate": "COLLATE",
    "bracket": "a subscript",
}


def _construct(node: exp.Expression) -> str:
    if isinstance(node, exp.Func):
        return f"the function {_function_name(node)}()"
    return CONSTRUCT_WORDS.get(node.key, f"the {node.key.upper()} construct")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _relation_name(table: exp.Table) -> str:
    parts = [table.args.get(key) for key in ("catalog", "db")]
    names = [part.name for part in parts if isinstance(part, exp.Expression) and part.name]
    this = table.this
    if isinstance(this, exp.Identifier):
        names.append(this.name)
    elif isinstance(this, exp.Expression):
        names.append(this.sql())
    else:
        names.append(table.sql() or "?")
    return ".".join(names)


def _port_tables(tree: exp.Expression) -> list[exp.Table]:
    return [
        table
        for table in tree.find_all(exp.Table)
        if isinstance(table.this, exp.Identifier) and table.this.name == PORT_RELATION
    ]


def sql_ctes_check(
    tree: exp.Expression,
    *,
    place: str = "in a check",
    error: type[Exception] = CustomSQLRefused,
    reserved: tuple[str, ...] = (PORT_RELATION,),
) -> list[exp.CTE]:
    """CTEs may sit only at the top of the query, not recursive, named once each and
    never with a `reserved` name. Returns them in order. Shared with query federation."""
    with_ = tree.args.get("with_") or tree.args.get("with")
    for node in tree.find_all(exp.With):
        if node is not with_:
            raise error(
                "Put every WITH at the top of the query (a WITH inside a subquery is not allowed)."
            )
    if with_ is None:
        return []
    if with_.args.get("recursive"):
        raise error(f"WITH RECURSIVE is not allowed {place}.")
    ctes = list(with_.expressions)
    seen: set[str] = set()
    for cte in ctes:
        name = cte.alias
        if not name:
            raise error("Give every WITH query a name.")
        if name.lower() in reserved or name.lower() in seen:
            raise error(f"The WITH query {name!r} hides another relation: give it its own name.")
        seen.add(name.lower())
    return ctes


def _cte_matches(table: exp.Table, cte: exp.CTE) -> bool:
    """Whether the database resolves `table` to `cte`, the same way in PostgreSQL and
    DuckDB: quoted names exactly, unquoted ones without regard to case. Mixed quoting
    does not match (refused rather than guessed)."""
    ref, name = table.this, cte.args["alias"].this
    if not isinstance(ref, exp.Identifier) or not isinstance(name, exp.Identifier):
        return False
    if ref.quoted != name.quoted:
        return False
    return ref.name == name.name if ref.quoted else ref.name.lower() == name.name.lower()


def _check_table(table: exp.Table, *, visible_ctes: list[exp.CTE]) -> None:
    extras = [key for key in TABLE_EXTRAS if table.args.get(key)]
    name = _relation_name(table)
    if not isinstance(table.this, exp.Identifier):
        what = (
            f"The table function {_function_name(table.this)}()"
            if isinstance(table.this, exp.Func)
            else f"The relation {name}"
        )
        raise CustomSQLRefused(
            f"{what} is not the port's table: a check may only read {TABLE_PLACEHOLDER}."
        )
    qualified = table.args.get("db") or table.args.get("catalog")
    if table.this.name == PORT_RELATION and table.this.quoted and not qualified and not extras:
        return
    if not qualified and not extras and any(_cte_matches(table, c) for c in visible_ctes):
        return
    if extras and not qualified and table.this.name == PORT_RELATION:
        raise CustomSQLRefused(
            f"{TABLE_PLACEHOLDER} is read as it is: {', '.join(extras)} is not allowed on it."
        )
    raise CustomSQLRefused(
        f"The relation {name} is not the port's table: a check may only read "
        f"{TABLE_PLACEHOLDER} (and WITH queries defined before it)."
    )


def sql_node_check(
    node: exp.Expression, *, place: str = "in a check", error: type[Exception] = CustomSQLRefused
) -> None:
    """Refuse a node outside the allow-list, with a message naming it (`place` says where:
    "in a check", "in a query"). Shared with query federation (sharing.federation)."""
    if isinstance(node, exp.Func) and not isinstance(node, ALLOWED_NODES):
        if (
            isinstance(node, exp.Anonymous)
            and _function_name(node) not in ALLOWED_FUNCTION_NAMES
            or not isinstance(node, exp.Anonymous)
            and not isinstance(node, ALLOWED_FUNCTIONS)
        ):
            raise error(
                f"The function {_function_name(node)}() is not allowed {place}: use "
                "aggregate, comparison, arithmetic, text, date or window functions."
            )
        if isinstance(node, exp.Cast | exp.TryCast):
            _check_cast(node, place=place, error=error)
        return
    if not isinstance(node, ALLOWED_NODES):
        raise error(f"{_capital(_construct(node))} is not allowed {place}.")
    if isinstance(node, exp.Column):
        word = node.this
        if (
            isinstance(word, exp.Identifier)
            and not word.quoted
            and not node.table
            and word.name.lower() in SQL_VALUE_WORDS
        ):
            raise error(
                f"{word.name} is not allowed {place}: it reads the server's session, not "
                f'the data (quote it, "{word.name}", for a column of that name).'
            )
        if node.args.get("db") or node.args.get("catalog"):
            raise error(
                f"The column reference {node.sql()} names a schema: name a column by its "
                "table's alias (t.column)."
            )
    if isinstance(node, exp.Literal | exp.Identifier) and not isinstance(node.this, str):
        raise error(f"{_capital(_construct(node))} is not allowed {place}.")


def _check_node(node: exp.Expression) -> None:
    sql_node_check(node)


def _check_cast(
    node: exp.Cast | exp.TryCast,
    *,
    place: str = "in a check",
    error: type[Exception] = CustomSQLRefused,
) -> None:
    target = node.args.get("to")
    kind = target.this if isinstance(target, exp.DataType) else None
    if kind not in ALLOWED_CAST_TYPES or (
        isinstance(target, exp.DataType) and target.args.get("nested")
    ):
        shown = target.sql() if isinstance(target, exp.Expression) else "?"
        raise error(
            f"A cast to {shown} is not allowed {place}: cast to a number, text, boolean, "
            "date, time, timestamp or interval."
        )


def _check_nodes(tree: exp.Expression, *, ctes: list[exp.CTE]) -> None:
    """Every node allowed; every relation the port's, or a CTE visible where it is named
    (a CTE sees the CTEs before it, the main query sees them all)."""
    scope_of: dict[int, list[exp.CTE]] = {}
    for index, cte in enumerate(ctes):
        for table in cte.find_all(exp.Table):
            scope_of.setdefault(id(table), ctes[:index])
    for node in tree.walk():
        if isinstance(node, exp.Table):
            _check_table(node, visible_ctes=scope_of.get(id(node), ctes))
        _check_node(node)
