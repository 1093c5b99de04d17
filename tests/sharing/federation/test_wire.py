"""The PostgreSQL wire endpoint (`manage.py sql_server`), as psql and psycopg use it: one
server for the session, on the test database, signing in with API tokens; queries go the
governed way of the HTTP API (the same rows, masks and refusals, one audit event each).

The server runs with QUERY_MAX_ROWS=3: crm.customers' four rows are cut to three."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from portal.api.tokens import api_token_create
from products.choices import LifecycleStatus
from sharing.models import AccessEvent, FederatedQuery
from tests.conftest import ROOT, require_service, subprocess_env, wait_for
from tests.factories import (
    ColumnFactory,
    DomainFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
)
from tests.portal.test_worker_imports import URLS_LOADED, _python
from tests.processes import free_port, port_open

MAX_ROWS = 3
PSQL = shutil.which("psql") or "/usr/bin/psql"


@pytest.fixture(scope="session")
def wire_port(django_db_setup, django_db_blocker, media_root, tmp_path_factory):
    """`manage.py sql_server` on a free port, for the whole session; stopped with SIGTERM
    at the end, which it must survive cleanly."""
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "the SQL endpoint's process needs a shared test database")
    with django_db_blocker.unblock():
        env = subprocess_env(media_root)
    port = free_port()
    env.update(QUERY_MAX_ROWS=str(MAX_ROWS), PORTAL_SQL_HOST="127.0.0.1")
    log_path = tmp_path_factory.mktemp("wire") / "sql_server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sql_server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"sql_server exited early:\n{log_path.read_text()}")
        return port_open(port)

    wait_for(listening, timeout=60, interval=0.2, message=log_path.read_text)
    yield port
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        code = None
    log.close()
    output = log_path.read_text()
    assert code == 0 and "SQL endpoint stopped." in output, output[-3000:]
    assert "Traceback" not in output, output[-5000:]


def token_for(user) -> str:
    _, token = api_token_create(user=user, name="psql", lifetime=timedelta(days=1))
    return token


def connect(port: int, user, token: str | None = None, **options) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        user=user if isinstance(user, str) else user.username,
        password=token if token is not None else token_for(user),
        dbname="portal",
        connect_timeout=10,
        **options,
    )


def psql(port: int, user, token: str, *commands: str) -> subprocess.CompletedProcess:
    args = [PSQL, "-X", "-h", "127.0.0.1", "-p", str(port), "-U", user.username, "-d", "portal"]
    for command in commands:
        args += ["-c", command]
    env = {**os.environ, "PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


# --- signing in -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_api_token_signs_in_as_its_user(wire_port, narrowed):
    with connect(wire_port, narrowed, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("narrowed",)
        assert conn.info.server_version >= 160000


@pytest.mark.django_db(transaction=True)
def test_a_wrong_token_an_unknown_user_and_someone_elses_token_are_refused(wire_port, narrowed):
    token = token_for(narrowed)
    other = UserFactory(username="other")
    attempts = [
        ("narrowed", "0" * 64),  # no such token
        ("narrowed", token[:-1] + ("0" if token[-1] != "0" else "1")),  # almost the token
        ("nobody", token),  # no such user
        ("other", token),  # the token of someone else
    ]
    for username, password in attempts:
        with pytest.raises(psycopg.OperationalError) as refused:
            connect(wire_port, username, password)
        assert "password authentication failed" in str(refused.value), (username, refused.value)
    answer = psql(wire_port, other, token, "SELECT 1")
    assert answer.returncode != 0
    assert 'password authentication failed for user "other"' in answer.stderr


@pytest.mark.django_db(transaction=True)
def test_an_expired_token_or_an_inactive_user_is_refused(wire_port, narrowed):
    from knox.models import AuthToken

    token = token_for(narrowed)
    with connect(wire_port, "narrowed", token, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    AuthToken.objects.filter(user=narrowed).update(expiry=timezone.now() - timedelta(seconds=1))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(wire_port, "narrowed", token)
    fresh = token_for(narrowed)
    narrowed.is_active = False
    narrowed.save(update_fields=["is_active"])
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(wire_port, "narrowed", fresh)


# --- governed rows ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_rows_are_governed_as_in_the_api(wire_port, narrowed):
    """A narrowed grantee: only the rows of the grant's filter, the confidential column
    masked (a NULL stays NULL), from a PostgreSQL source and from a Parquet file."""
    with connect(wire_port, narrowed, autocommit=True) as conn:
        customers = conn.execute(
            "SELECT customer_id, country, email FROM crm.customers ORDER BY customer_id"
        ).fetchall()
        assert customers == [(1, "BE", "****"), (3, "BE", None)]
        orders = conn.execute("SELECT order_id, country FROM sales.orders ORDER BY 1").fetchall()
        assert orders == [(1, "BE"), (3, "BE")]
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            conn.execute("SELECT * FROM crm.visits")
        assert "crm.visits" in str(refused.value)
        with pytest.raises(psycopg.errors.UndefinedTable) as unknown:
            conn.execute("SELECT * FROM crm.secret")
        assert "crm.secret" in str(unknown.value)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="email"):
            conn.execute("SELECT segment FROM crm.customers WHERE email LIKE 'a%'")


@pytest.mark.django_db(transaction=True)
def test_each_query_is_recorded_as_wire_and_audited_once(wire_port, narrowed):
    with connect(wire_port, narrowed, autocommit=True) as conn:
        conn.execute("SELECT country, count(*) FROM crm.customers GROUP BY 1").fetchall()
    query = FederatedQuery.objects.get(user=narrowed)
    assert query.channel == "wire" and query.status == "succeeded" and query.rows == 1
    events = AccessEvent.objects.filter(user=narrowed, detail__query_id=str(query.pk))
    assert [(e.channel, e.product_key) for e in events] == [("query", "crm.customers")]
    assert events.get().client_address == "127.0.0.1"


@pytest.mark.django_db(transaction=True)
def test_the_answer_is_cut_at_query_max_rows_with_a_warning(wire_port, crm, admin):
    token = token_for(admin)
    answer = psql(wire_port, admin, token, "SELECT customer_id FROM crm.customers ORDER BY 1")
    assert answer.returncode == 0, answer.stderr
    assert "(3 rows)" in answer.stdout
    assert "WARNING:" in answer.stderr and "first 3 rows" in answer.stderr
    assert FederatedQuery.objects.get(user=admin).truncated is True


# --- what psql shows --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_psql_lists_the_products_one_sees_and_describes_them(wire_port, narrowed):
    hidden = ProductFactory(
        domain=DomainFactory(name="Finance", slug="finance"),
        slug="ledger",
        status=LifecycleStatus.DRAFT,
    )
    ColumnFactory(port=OutputPortFactory(product=hidden, slug="ledger"), name="amount")
    token = token_for(narrowed)
    listed = psql(wire_port, narrowed, token, "\\dt")
    assert listed.returncode == 0, listed.stderr
    names = {
        tuple(cell.strip() for cell in line.split("|")[:2])
        for line in listed.stdout.splitlines()
        if line.count("|") >= 3
    }
    assert {("crm", "customers"), ("crm", "visits"), ("sales", "orders")} <= names, listed.stdout
    assert ("finance", "ledger") not in names and "ledger" not in listed.stdout
    described = psql(wire_port, narrowed, token, "\\d crm.customers")
    assert described.returncode == 0, described.stderr
    assert 'Table "crm.customers"' in described.stdout
    lines = {line.split("|")[0].strip(): line for line in described.stdout.splitlines()}
    assert "bigint" in lines["customer_id"] and "text" in lines["email"], described.stdout
    missing = psql(wire_port, narrowed, token, "\\d finance.ledger")
    assert "Did not find any relation" in missing.stderr


@pytest.mark.django_db(transaction=True)
def test_information_schema_lists_the_same_tables(wire_port, narrowed):
    with connect(wire_port, narrowed, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        assert tables == [("crm", "customers"), ("crm", "visits"), ("sales", "orders")]
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            ["crm", "visits"],
        ).fetchall()
        assert columns == [("customer_id", "bigint"), ("pages", "integer")]
    assert not FederatedQuery.objects.exists()  # the catalog reads no data


# --- parameters, sessions, refusals -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_bound_parameters_are_values(wire_port, crm, admin):
    with connect(wire_port, admin, autocommit=True) as conn:
        belgian = "SELECT customer_id FROM crm.customers WHERE country = %s ORDER BY 1"
        assert conn.execute(belgian, ["BE"]).fetchall() == [(1,), (3,)]
        assert conn.execute(belgian, ["BE' OR '1'='1"]).fetchall() == []
        assert conn.execute(
            "SELECT segment FROM crm.customers WHERE customer_id = %s", [2]
        ).fetchall() == [("retail",)]
        ordered = conn.execute(
            "SELECT customer_id FROM crm.customers WHERE customer_id < %s ORDER BY %s",
            [3, 1],  # a value, not the first column: rows in the source's order
        ).fetchall()
        assert sorted(ordered) == [(1,), (2,)]
    sent = FederatedQuery.objects.filter(user=admin).order_by("started_at", "pk").first()
    assert "'BE'" in sent.sql and "%s" not in sent.sql and "$1" not in sent.sql


@pytest.mark.django_db(transaction=True)
def test_a_write_and_unsupported_statements_are_refused(wire_port, crm, admin):
    with connect(wire_port, admin, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="DELETE"):
            conn.execute("DELETE FROM crm.customers WHERE customer_id = %s", [1])
        for statement in ("COPY (SELECT 1) TO STDOUT", "LISTEN portal", "PREPARE p AS SELECT 1"):
            with pytest.raises(psycopg.errors.FeatureNotSupported):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="cursor"):
            with conn.cursor("named") as cursor:
                cursor.execute("SELECT * FROM crm.customers")
        with pytest.raises(psycopg.errors.SyntaxError, match="line 1"):
            conn.execute("SELEC * FROM crm.customers")
        assert conn.execute("SELECT count(*) FROM crm.customers").fetchone() == (4,)
    refused = FederatedQuery.objects.get(user=admin, sql__startswith="DELETE")
    assert refused.status == "refused" and refused.channel == "wire"
    with psycopg.connect(
        host=connection.settings_dict["HOST"] or "localhost",
        port=connection.settings_dict["PORT"] or 5432,
        user=connection.settings_dict["USER"] or None,
        dbname=connection.settings_dict["NAME"],
    ) as source:
        assert source.execute("SELECT count(*) FROM federation_test.customers").fetchone() == (4,)


@pytest.mark.django_db(transaction=True)
def test_what_clients_send_around_queries_is_answered(wire_port, crm, admin):
    """psycopg in a transaction (BEGIN, COMMIT, ROLLBACK, DEALLOCATE ALL after a rollback
    once statements were prepared), and the settings tools read and write."""
    with connect(wire_port, admin) as conn:
        assert conn.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 16")
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET application_name = 'metabase'")
        assert conn.execute("SHOW application_name").fetchone() == ("metabase",)
        assert conn.execute("SHOW TRANSACTION ISOLATION LEVEL").fetchone() == ("read committed",)
        assert conn.execute("SELECT 1 AS x, current_database()").fetchone() == (1, "portal")
        for _ in range(6):  # psycopg prepares a statement run five times
            conn.execute("SELECT count(*) FROM crm.customers WHERE segment = %s", ["pro"])
        conn.rollback()  # then psycopg sends DEALLOCATE ALL
        assert conn.execute("SELECT count(*) FROM crm.customers").fetchone() == (4,)
        conn.commit()
        conn.execute("DISCARD ALL")
    assert FederatedQuery.objects.filter(user=admin).count() == 7  # the queries only


# --- the process --------------------------------------------------------------------------------


def test_loading_the_urls_does_not_load_the_wire_server():
    printed = _python(URLS_LOADED, "pg_mimic", "sharing.federation.wire.server")
    assert json.loads(printed.strip().splitlines()[-1]) == []


# --- parameters and errors, without a server ----------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["BE", "a'b", "x' OR '1'='1", "back\\slash'", "$$dollar$$", "é -- not a comment", "/* c */"],
)
def test_a_text_parameter_stays_one_string_literal(value):
    import sqlglot
    from sqlglot import exp

    from sharing.federation.wire.parameters import sql_with_parameters

    sql = sql_with_parameters("SELECT a FROM d.p WHERE b = $1", [value], [None])
    tree = sqlglot.parse_one(sql, read="postgres")
    literals = [node.this for node in tree.find_all(exp.Literal)]
    assert literals == [value], sql
    assert isinstance(tree.args["where"].this, exp.EQ), sql


def test_parameters_are_typed_by_their_declared_type_and_never_positions():
    from pg_mimic import PgError
    from pg_mimic import types as pg_types

    from sharing.federation.wire.parameters import sql_with_parameters

    sql = sql_with_parameters(
        "SELECT a FROM d.p WHERE n > $1 AND f = $2 AND t < $3 ORDER BY $4 LIMIT $5",
        ["-5", "true", "2024-01-02", "1", "10"],
        [pg_types.INT8, pg_types.BOOL, pg_types.DATE, pg_types.INT2, pg_types.INT8],
    )
    assert sql == (
        "SELECT a FROM d.p WHERE n > (-5) AND f = (TRUE) AND t < (CAST('2024-01-02' AS DATE)) "
        "ORDER BY (1) LIMIT (10)"
    )
    with pytest.raises(PgError) as mismatch:
        sql_with_parameters("SELECT a FROM d.p WHERE n = $1", [], [])
    assert mismatch.value.sqlstate == "08P01"
    with pytest.raises(PgError) as not_a_number:
        sql_with_parameters("SELECT a FROM d.p WHERE n = $1", ["1; DROP"], [pg_types.INT4])
    assert not_a_number.value.sqlstate == "22P02"
    assert sql_with_parameters("SELECT '$1' FROM d.p", [], []) == "SELECT '$1' FROM d.p"


@pytest.mark.parametrize(
    ("status", "message", "sql", "sqlstate"),
    [
        (403, "Your access to crm.customers does not include email.", "SELECT", "42501"),
        (404, "Unknown product crm.secret", "SELECT", "42P01"),
        (429, "You started more than 120 queries", "SELECT", "53400"),
        (503, "4 queries are already running on this source", "SELECT", "53300"),
        (400, "Only a SELECT query is allowed (DELETE is not)", " delete from x", "25006"),
        (400, "Syntax error at line 1, column 7", "SELEC", "42601"),
        (400, "Unknown column nope", "SELECT", "42703"),
        (400, "This query would cost the source about 9", "SELECT", "54000"),
        (400, "The table function read_csv() is not allowed", "SELECT", "0A000"),
    ],
)
def test_a_refusal_has_a_fitting_sqlstate(status, message, sql, sqlstate):
    from sharing.federation.refusals import QueryRefused
    from sharing.federation.wire.answers import pg_error_for_refusal

    error = pg_error_for_refusal(QueryRefused(message, status=status), sql)
    assert (error.sqlstate, error.message) == (sqlstate, message)
