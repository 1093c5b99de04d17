"""The PostgreSQL wire-protocol server of federated queries, on pg-mimic (pinned: parts of
its private API are used below, and tests/sharing/federation/test_wire.py runs psql and
psycopg against it).

One asyncio task per connection; everything that touches Django or a source runs in a
worker thread (`asyncio.to_thread`, see threads.py). What a statement gets:

- a query (anything not listed below): the governed path of answers.py, the same as the
  HTTP API's (`query_start(channel="wire")` + `query_batches`), parameters bound as typed
  literals (parameters.py);
- what clients send around queries, answered here and reading nothing: BEGIN / COMMIT /
  ROLLBACK (pg-mimic's: a read-only session has nothing to commit), SET / RESET / SHOW,
  DEALLOCATE, DISCARD, SAVEPOINT, and table-less SELECTs of constants and session
  functions (`SELECT 1`, `version()`, `current_user`, `current_setting(...)`), evaluated
  only when every node is on an allow-list (no function of the data, no power of 10**9);
- catalog queries (pg_catalog, information_schema: psql's `\\dt`, `\\d`, DBeaver's and
  JDBC's metadata): answered by sqlglot's executor over rows of the tables the person
  sees (catalog.py), nothing else;
- DECLARE / FETCH / MOVE / CLOSE, COPY, LISTEN / NOTIFY, PREPARE / EXECUTE: refused with
  0A000 (feature_not_supported) and what to do instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import time
import weakref
from collections.abc import Callable

import sqlglot
from django.conf import settings
from pg_mimic import (
    AuthPlugin,
    PgError,
    PgServer,
    ResultColumn,
    Session,
    Statement,
    StaticStatement,
    messages,
)
from pg_mimic import types as pg_types
from pg_mimic.catalog import _as_statement
from pg_mimic.catalog_rewrite import rewrite_for_executor
from pg_mimic.middleware import (
    MiddlewareContext,
    asyncpg_typeinfo,
    resolve,
    set_show,
    static_select,
    transaction_control,
)
from pg_mimic.session import Portal
from sqlglot import exp

from sharing.federation.wire.answers import Answer, internal_error, wire_answer, wire_columns
from sharing.federation.wire.auth import wire_user_authenticate
from sharing.federation.wire.catalog import (
    EMPTY_CATALOG_TABLES,
    INFORMATION_SCHEMA,
    PG_CATALOG,
    information_schema_rows,
    pg_catalog_rows,
    wire_tables,
)
from sharing.federation.wire.parameters import placeholder_count, sql_with_parameters

logger = logging.getLogger(__name__)

SERVER_VERSION = "16.0 (data-product portal)"  # psycopg reads 160000 from it
VERSION_TEXT = "PostgreSQL 16.0 on the data-product portal's SQL endpoint (pg-mimic)"
AUTH_TIMEOUT_SECONDS = 30  # for the password, once asked
CATALOG_SECONDS = 5  # a session re-reads the tables it sees at most this often
DESCRIBED_SECONDS = 10  # an answer run to describe a statement serves its Bind this long

# The user each connection signed in as, from the password to the session (pg-mimic
# hands both the same stream, and nothing else).
_SIGNED_IN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# --- signing in ---------------------------------------------------------------------------------


class TokenPasswordAuth(AuthPlugin):
    """A cleartext password (only a digest of a token is stored, so md5 and SCRAM, which
    need the secret itself on the server, cannot work), checked as an API token of the
    user. A refusal is pg-mimic's FATAL 28P01 "password authentication failed"."""

    async def authenticate(self, stream, username, identity_provider) -> bool:
        stream.write(messages.make_authentication_cleartext_password())
        await stream.drain()
        try:
            tag, payload = await asyncio.wait_for(stream.read_message(), AUTH_TIMEOUT_SECONDS)
        except TimeoutError:
            return False
        if tag != messages.PASSWORD:
            return False
        token = payload.split(b"\x00", 1)[0].decode("utf-8", errors="replace")
        try:
            user = await asyncio.to_thread(wire_user_authenticate, username=username, token=token)
        except Exception:
            logger.exception("wire: checking the token of %r failed", username)
            user = None
        address = _peer_address(stream)
        if user is None:
            logger.warning("wire: sign-in refused for %r from %s", username, address)
            return False
        logger.info("wire: %s signed in from %s", username, address)
        _SIGNED_IN[stream] = user
        return True


def _peer_address(stream) -> str | None:
    peer = stream.writer.get_extra_info("peername")
    return peer[0] if isinstance(peer, tuple) and peer else None


# --- what is answered here ----------------------------------------------------------------------

_UNSUPPORTED = [
    (
        re.compile(r"^\s*(DECLARE|FETCH|MOVE|CLOSE)\b", re.I),
        "Server-side cursors (DECLARE, FETCH, MOVE, CLOSE) are not supported by the portal's "
        "SQL endpoint: use an ordinary client-side cursor (an answer holds at most "
        "{max_rows} rows).",
    ),
    (
        re.compile(r"^\s*COPY\b", re.I),
        "COPY is not supported by the portal's SQL endpoint: run the SELECT and save its rows "
        "with your client (psql's --csv, \\o), or download them with the portal's data API.",
    ),
    (
        re.compile(r"^\s*(LISTEN|UNLISTEN|NOTIFY)\b", re.I),
        "LISTEN and NOTIFY are not supported by the portal's SQL endpoint: follow products' "
        "events with the portal's events API (Server-Sent Events, webhooks or NATS).",
    ),
    (
        re.compile(r"^\s*(PREPARE|EXECUTE)\b", re.I),
        "PREPARE and EXECUTE statements are not supported by the portal's SQL endpoint: use "
        "your driver's query parameters instead.",
    ),
]


async def refuse_unsupported(ctx: MiddlewareContext) -> Statement | None:
    for pattern, message in _UNSUPPORTED:
        if pattern.match(ctx.sql):
            raise PgError("0A000", message.format(max_rows=f"{settings.QUERY_MAX_ROWS:,}"))
    return None


_DEALLOCATE = re.compile(r"^\s*DEALLOCATE\s+(?:PREPARE\s+)?(ALL|\"[^\"]+\"|[\w$]+)\s*;?\s*$", re.I)
_DISCARD = re.compile(r"^\s*DISCARD\s+(ALL|PLANS|SEQUENCES|TEMP|TEMPORARY)\s*;?\s*$", re.I)


async def deallocate_discard(ctx: MiddlewareContext) -> Statement | None:
    """DEALLOCATE [ALL | name] (psycopg after a rollback once it prepared statements) and
    DISCARD (connection pools): forget the prepared statements."""
    deallocate = _DEALLOCATE.match(ctx.sql)
    discard = _DISCARD.match(ctx.sql)
    if not (deallocate or discard):
        return None
    statements = ctx.connection.statements

    def forget() -> None:
        if discard or deallocate.group(1).upper() == "ALL":
            statements.clear()
        else:
            statements.pop(deallocate.group(1).strip('"'), None)

    return StaticStatement("DISCARD" if discard else "DEALLOCATE", None, [], forget)


_SET_OTHER = re.compile(r"^\s*SET\b(?:\s+(?:SESSION|LOCAL))?\s+(.*?)\s*;?\s*$", re.I | re.S)
_TIME_ZONE = re.compile(r"^TIME\s+ZONE\s+(.+)$", re.I | re.S)
_RESET = re.compile(r"^\s*RESET\s+(ALL|[\w.]+)\s*;?\s*$", re.I)
_SHOW_OTHER = re.compile(r"^\s*SHOW\s+(.+?)\s*;?\s*$", re.I | re.S)
_SAVEPOINT = re.compile(r"^\s*(SAVEPOINT|RELEASE)\b", re.I)
_SETTINGS = {  # what SHOW and current_setting() say beyond pg-mimic's own
    "server_version_num": "160000",
    "transaction_isolation": "read committed",
    "transaction isolation level": "read committed",
    "transaction_read_only": "on",
    "default_transaction_read_only": "on",
    "datestyle": "ISO, MDY",
    "intervalstyle": "postgres",
    "integer_datetimes": "on",
    "max_identifier_length": "63",
    "lc_collate": "C.UTF-8",
    "lc_ctype": "C.UTF-8",
    "statement_timeout": "0",
}


def _label(name: str) -> str:
    """The column SHOW answers with (PostgreSQL's: SHOW TRANSACTION ISOLATION LEVEL is
    transaction_isolation)."""
    return "transaction_isolation" if name == "transaction isolation level" else name


async def settings_statements(ctx: MiddlewareContext) -> Statement | None:
    """What pg-mimic's SET/SHOW leaves to the session: `SET TIME ZONE 'UTC'`, dotted and
    multi-word names (`SET SESSION CHARACTERISTICS ...`, `SHOW TRANSACTION ISOLATION
    LEVEL`), RESET, SAVEPOINT and RELEASE: remembered or answered, never an error."""
    variables = ctx.connection.session_vars
    if _SAVEPOINT.match(ctx.sql):
        return StaticStatement(_SAVEPOINT.match(ctx.sql).group(1).upper(), None, [])
    reset = _RESET.match(ctx.sql)
    if reset:
        name = reset.group(1).lower()

        def forget() -> None:
            if name == "all":
                variables.clear()
            else:
                variables.pop(name, None)

        return StaticStatement("RESET", None, [], forget)
    setting = _SET_OTHER.match(ctx.sql)
    if setting:
        zone = _TIME_ZONE.match(setting.group(1))

        def remember() -> None:
            if zone:
                variables["timezone"] = zone.group(1).strip("'\" ")

        return StaticStatement("SET", None, [], remember)
    show = _SHOW_OTHER.match(ctx.sql)
    if show:
        name = " ".join(show.group(1).strip('"').lower().split())
        value = variables.get(name, _SETTINGS.get(name, ""))
        if name == "all":
            rows = [(key, val, "") for key, val in {**_SETTINGS, **variables}.items()]
            columns = [ResultColumn(n, pg_types.TEXT) for n in ("name", "setting", "description")]
            return StaticStatement("SHOW", columns, rows)
        return StaticStatement("SHOW", [ResultColumn(_label(name), pg_types.TEXT)], [(value,)])
    return None


async def known_settings(ctx: MiddlewareContext) -> Statement | None:
    """SHOW of the settings above, before pg-mimic's SET/SHOW (which says '' for them)."""
    show = _SHOW_OTHER.match(ctx.sql)
    if show:
        name = " ".join(show.group(1).strip('"').lower().split())
        if name in _SETTINGS and name not in ctx.connection.session_vars:
            value = _SETTINGS[name]
            return StaticStatement("SHOW", [ResultColumn(_label(name), pg_types.TEXT)], [(value,)])
    return None


# A table-less SELECT is evaluated here only when built from these: constants, casts,
# arithmetic without powers, and the session's own functions.
_CONSTANT_NODES = (
    exp.Select,
    exp.Alias,
    exp.Identifier,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Cast,
    exp.DataType,
    exp.DataTypeParam,
    exp.Paren,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.DPipe,
    exp.CurrentDatabase,
    exp.CurrentCatalog,
    exp.CurrentSchema,
    exp.CurrentUser,
    exp.SessionUser,
    exp.CurrentVersion,
    exp.Anonymous,
    exp.Dot,
)
_SESSION_FUNCTIONS = {"current_setting", "set_config", "pg_backend_pid", "version"}
_FUNCTION_NAMES = {  # PostgreSQL's name for the column of a function's value
    exp.CurrentDatabase: "current_database",
    exp.CurrentCatalog: "current_catalog",
    exp.CurrentSchema: "current_schema",
    exp.CurrentUser: "current_user",
    exp.SessionUser: "session_user",
    exp.CurrentVersion: "version",
}


def _function_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous):
        node = node.expression
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return _FUNCTION_NAMES.get(type(node))


def _constant_select(expr: exp.Select) -> bool:
    for node in expr.walk():
        if not isinstance(node, _CONSTANT_NODES):
            return False
        if isinstance(node, exp.Anonymous) and str(node.this).lower() not in _SESSION_FUNCTIONS:
            return False
        if isinstance(node, exp.Dot) and not (
            isinstance(node.this, exp.Identifier)
            and node.this.name.lower() == "pg_catalog"
            and isinstance(node.expression, exp.Anonymous)
        ):
            return False
    return not any(expr.args.get(key) for key in ("where", "group", "having", "order", "limit"))


async def session_select(ctx: MiddlewareContext) -> Statement | None:
    """`SELECT 1`, `SELECT version()`, `SELECT current_user, current_setting('x')`: each
    column named as PostgreSQL names it, version() saying PostgreSQL and the portal."""
    expr = ctx.select_without_tables()
    if expr is None or not _constant_select(expr):
        return None
    expr = expr.copy()
    for projection in list(expr.expressions):
        if isinstance(projection, exp.Alias):
            continue
        name = _function_name(
            projection.unalias() if isinstance(projection, exp.Cast) else projection
        )
        projection.replace(exp.alias_(projection.copy(), name or "?column?", quoted=True))
    for node in list(expr.find_all(exp.CurrentVersion, exp.Anonymous)):
        if _function_name(node) == "version":
            target = node.parent if isinstance(node.parent, exp.Dot) else node
            target.replace(exp.Literal.string(VERSION_TEXT))
    for node in list(expr.find_all(exp.Dot)):  # pg_catalog.current_setting(...) and such
        node.replace(node.expression)
    expr = _with_session_values(expr, ctx.connection)
    for node in list(expr.find_all(exp.Anonymous)):  # the settings pg-mimic does not know
        key = node.expressions[0] if node.expressions else None
        if str(node.this).lower() == "current_setting" and isinstance(key, exp.Literal):
            name = str(key.this).lower()
            if name in _SETTINGS and name not in ctx.connection.session_vars:
                node.replace(exp.Literal.string(_SETTINGS[name]))
    rewritten = MiddlewareContext(ctx.connection, expr.sql(dialect="postgres"), ctx.param_oids)
    return await static_select(rewritten)


def _names_catalog(table: exp.Table, schema: str) -> bool:
    if (table.db or "").lower() == schema:
        return True
    return schema == "pg_catalog" and not table.db and table.name.lower().startswith("pg_")


async def catalog_queries(ctx: MiddlewareContext) -> Statement | None:
    """SELECTs of pg_catalog or information_schema, over the tables the person sees."""
    expr = ctx.expression
    if not isinstance(expr, exp.Query):
        return None
    tables = list(expr.find_all(exp.Table))
    for schema in ("information_schema", "pg_catalog"):
        if any(_names_catalog(t, schema) for t in tables):
            return CatalogStatement(ctx.connection.session, ctx.sql, ctx.param_oids, schema)
    return None


_SESSION_VALUES = {
    exp.CurrentDatabase: "database",
    exp.CurrentCatalog: "database",
    exp.CurrentSchema: "schema",
    exp.CurrentUser: "username",
    exp.SessionUser: "username",
}


def _with_session_values(expr: exp.Expression, connection) -> exp.Expression:
    """Catalog SQL with the session functions it uses as values (JDBC's metadata
    queries name current_database() and current_schemas(true)[1])."""
    values = {
        "database": connection.database,
        "schema": "public",
        "username": connection.username,
    }
    for node in list(expr.find_all(exp.Bracket)):
        inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
        if _function_name(inner) == "current_schemas" or isinstance(inner, exp.CurrentSchemas):
            node.replace(exp.Literal.string("pg_catalog"))  # the first schema searched
    for kind, value in _SESSION_VALUES.items():
        for node in list(expr.find_all(kind)):
            target = node.parent if isinstance(node.parent, exp.Dot) else node
            target.replace(exp.Literal.string(values[value]))
    for node in list(expr.find_all(exp.Replace)):  # replace() of those values
        parts = [node.this, node.expression, node.args.get("replacement")]
        if all(isinstance(part, exp.Literal) and part.is_string for part in parts):
            text, old, new = (part.this for part in parts)
            node.replace(exp.Literal.string(text.replace(old, new)))
    for node in list(expr.find_all(exp.Window)):
        # JDBC's getColumns numbers columns with row_number() OVER (... ORDER BY
        # a.attnum), which the executor cannot run: no column is ever dropped here, so
        # attnum is that number already.
        order = node.args.get("order")
        keys = [o.this for o in order.expressions] if order else []
        if (
            isinstance(node.this, exp.RowNumber)
            and len(keys) == 1
            and isinstance(keys[0], exp.Column)
            and keys[0].name == "attnum"
        ):
            node.replace(keys[0].copy())
    return expr


def _without_empty_left_joins(expr: exp.Expression) -> exp.Expression:
    """LEFT JOINs of always-empty catalog tables dropped, their columns NULL: what they
    amount to, in a form the executor runs (pg-mimic's rewrite would otherwise turn a
    whole derived table joining pg_attrdef, JDBC's getColumns, into NULL)."""
    for join in list(expr.find_all(exp.Join)):
        table = join.this
        if (join.side or "").upper() != "LEFT" or not isinstance(table, exp.Table):
            continue
        if table.name.lower() not in EMPTY_CATALOG_TABLES:
            continue
        alias = table.alias_or_name
        select = join.parent
        join.pop()
        for column in list(select.find_all(exp.Column)):
            if column.table == alias:
                projected = column.parent is select  # keeps its name: `d.description`
                column.replace(exp.alias_(exp.null(), column.name) if projected else exp.null())
    for node in list(expr.find_all(exp.Nullif)):  # not in the executor's functions
        value, other = node.this, node.expression
        node.replace(
            exp.Case(
                ifs=[exp.If(this=exp.EQ(this=value.copy(), expression=other), true=exp.null())],
                default=value,
            )
        )
    return expr


def _catalog_answer(
    *, connection, sql: str, params: list, param_oids: list, schema: str, tables
) -> Statement:
    """In a worker thread (sqlglot's executor is pure Python): a catalog statement with
    its parameters bound, answered from the catalog rows of `tables`."""
    try:
        expr = sqlglot.parse_one(sql_with_parameters(sql, params, param_oids), read="postgres")
    except sqlglot.errors.SqlglotError as exc:
        raise PgError("42601", f"The catalog query does not parse: {exc}") from exc
    expr = _with_session_values(expr, connection)
    database, username = connection.database, connection.username
    if schema == "information_schema":
        rows = information_schema_rows(tables, database=database, username=username)
        statement = _as_statement(expr, INFORMATION_SCHEMA, rows)
    else:
        rows = pg_catalog_rows(tables, database=database, username=username)
        rewritten = rewrite_for_executor(connection, _without_empty_left_joins(expr))
        statement = _as_statement(rewritten, PG_CATALOG, rows)
    return statement or StaticStatement("SELECT", None, [])


class CatalogStatement(Statement):
    """A catalog query, answered once its parameters are bound (JDBC binds the schema
    and table patterns of its metadata queries)."""

    def __init__(self, session: WireSession, sql: str, param_oids: list, schema: str) -> None:
        self.session = session
        self.text = sql
        self.sql = "SELECT"  # the CommandComplete tag (see GovernedStatement)
        self.param_oids = param_oids
        self.schema = schema
        self._bound: CatalogPortal | None = None
        self._described: Statement | None = None

    async def answer(self, params: list) -> Statement:
        tables = await self.session.tables()
        return await asyncio.to_thread(
            _catalog_answer,
            connection=self.session.connection,
            sql=self.text,
            params=params,
            param_oids=self.param_oids,
            schema=self.schema,
            tables=tables,
        )

    async def describe(self) -> list[ResultColumn] | None:
        if self._bound is not None:
            return await self._bound.describe()
        count = max(placeholder_count(self.text), len(self.param_oids))
        answered = await self.answer([None] * count)
        if not count:
            self._described = answered
        return await answered.describe()

    def bind(self, params: list) -> Portal:
        described, self._described = self._described, None
        self._bound = CatalogPortal(self, params, described if not params else None)
        return self._bound


class CatalogPortal(Portal):
    def __init__(self, statement: CatalogStatement, params: list, answered=None) -> None:
        self.statement = statement
        self.params = params
        self.answered: Statement | None = answered
        self._portal: Portal | None = None

    async def describe(self) -> list[ResultColumn] | None:
        if self.answered is None:
            self.answered = await self.statement.answer(self.params)
        return await self.answered.describe()

    async def execute(self, max_rows: int) -> tuple[list[tuple], bool]:
        await self.describe()
        if self._portal is None:
            self._portal = self.answered.bind([])
        return await self._portal.execute(max_rows)


MIDDLEWARE = (
    refuse_unsupported,
    deallocate_discard,
    transaction_control,
    known_settings,
    set_show,
    settings_statements,
    session_select,
    asyncpg_typeinfo,
    catalog_queries,
)


# --- queries ------------------------------------------------------------------------------------


def _answer(*, user, sql: str, params: list, param_oids: list, client_address) -> Answer:
    """In a worker thread: the parameters bound, the governed answer."""
    return wire_answer(
        user=user,
        sql=sql_with_parameters(sql, params, param_oids),
        client_address=client_address,
    )


def _columns(*, user, sql: str, param_oids: list) -> list[ResultColumn]:
    """In a worker thread: a statement's columns before its parameters are bound."""
    count = max(placeholder_count(sql), len(param_oids))
    return wire_columns(user=user, sql=sql_with_parameters(sql, [None] * count, param_oids))


class GovernedPortal(Portal):
    """A statement bound to its parameters: run (the governed way, in a worker thread)
    the first time its columns or rows are asked for, then read row by row."""

    def __init__(self, statement: GovernedStatement, params: list) -> None:
        self.statement = statement
        self.params = params
        self.answer: Answer | None = None
        self.answered_at = 0.0
        self._rows = None

    async def start(self) -> list[ResultColumn]:
        if self.answer is None:
            session = self.statement.session
            self.answer = await asyncio.to_thread(
                _answer,
                user=session.user,
                sql=self.statement.text,
                params=self.params,
                param_oids=self.statement.param_oids,
                client_address=session.client_address,
            )
            self.answered_at = time.monotonic()
            if self.answer.truncated:
                session.warn(
                    f"The answer holds its first {self.answer.rows:,} rows only (the portal's "
                    "QUERY_MAX_ROWS): filter or aggregate the query, or read the products "
                    f"with a scheduled export. Query {self.answer.query_id}."
                )
        return self.answer.columns

    async def execute(self, max_rows: int) -> tuple[list[tuple], bool]:
        await self.start()
        if self._rows is None:
            self._rows = self.answer.row_tuples()
        if max_rows <= 0:
            return list(self._rows), False
        rows = []
        for row in self._rows:
            rows.append(row)
            if len(rows) >= max_rows:
                return rows, True
        return rows, False


class GovernedStatement(Statement):
    """A query, as parsed (Parse, or one statement of a simple query). pg-mimic asks for
    its columns before the rows: after Bind (extended protocol: the bound portal runs),
    or before any Bind (a simple query, or a Describe of the statement: without
    parameters it runs, and the next Bind takes that answer; with parameters it is only
    planned, with NULLs for them)."""

    def __init__(self, session: WireSession, sql: str, param_oids: list) -> None:
        self.session = session
        self.text = sql
        # pg-mimic writes the CommandComplete tag from `sql`'s first word: a query is a
        # SELECT whether it starts with WITH, a parenthesis or a comment.
        self.sql = "SELECT"
        self.param_oids = param_oids
        self._bound: GovernedPortal | None = None
        self._described: GovernedPortal | None = None

    async def describe(self) -> list[ResultColumn] | None:
        if self._bound is not None:
            return await self._bound.start()
        if self.param_oids or placeholder_count(self.text):
            return await asyncio.to_thread(
                _columns, user=self.session.user, sql=self.text, param_oids=self.param_oids
            )
        portal = GovernedPortal(self, [])
        columns = await portal.start()
        self._described = portal
        return columns

    def bind(self, params: list) -> Portal:
        described, self._described = self._described, None
        fresh = described and time.monotonic() - described.answered_at < DESCRIBED_SECONDS
        portal = described if fresh and not params else GovernedPortal(self, params)
        self._bound = portal
        return portal


class WireSession(Session):
    """One signed-in connection."""

    middleware = ()  # prepare() walks MIDDLEWARE itself

    def __init__(self) -> None:
        self.user = None
        self.client_address: str | None = None
        self._tables = None
        self._tables_at = 0.0

    @property
    def connection(self):
        return self._connection

    async def init(self, connection) -> None:
        await super().init(connection)
        self.user = _SIGNED_IN.pop(connection.stream)
        self.client_address = _peer_address(connection.stream)

    async def tables(self):
        """The tables this person sees (re-read every CATALOG_SECONDS at most)."""
        if self._tables is None or time.monotonic() - self._tables_at > CATALOG_SECONDS:
            self._tables = await asyncio.to_thread(wire_tables, user=self.user)
            self._tables_at = time.monotonic()
        return self._tables

    def warn(self, message: str) -> None:
        self._connection.stream.write(
            messages.make_notice_response(
                {"S": "WARNING", "V": "WARNING", "C": "01000", "M": message}
            )
        )

    async def prepare(self, sql: str, param_oids: list) -> Statement:
        try:
            statement = await resolve(self._connection, sql, param_oids, MIDDLEWARE)
        except PgError:
            raise
        except Exception as exc:
            logger.exception("wire: answering %r failed", sql[:200])
            raise internal_error() from exc
        if statement is not None:
            logger.debug("wire: answered here: %s", " ".join(sql.split())[:2000])
            return statement
        logger.debug("wire: a query: %s", " ".join(sql.split())[:2000])
        return GovernedStatement(self, sql, param_oids)


# --- the server ---------------------------------------------------------------------------------


async def wire_serve(
    *, host: str, port: int, started: Callable[[list], None] | None = None
) -> None:
    """Serve on host:port until SIGTERM or SIGINT, then stop listening, drop the
    connections and return (queries still running in worker threads finish, with their
    audit, before the process exits)."""
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # pg-mimic parses SET, SHOW...
    server = PgServer(
        session_factory=WireSession,
        auth_plugin_factory=lambda username: TokenPasswordAuth(),
        server_version=SERVER_VERSION,
    )
    await server.start_server(host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    serving = asyncio.create_task(server.serve_forever())
    if started is not None:
        started(server.sockets() or [])
    await stop.wait()
    server.close()
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 10)
