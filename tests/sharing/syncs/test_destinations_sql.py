"""Table destinations against the real databases: PostgreSQL (127.0.0.1:5432), MariaDB
(127.0.0.1:3306, database `test`) and DuckDB (a file in tmp_path). Each test creates its own
uniquely named table and drops it."""

import json
import os
import uuid
from urllib.parse import urlsplit

import duckdb
import psycopg
import pymysql
import pytest

from sharing.models import SyncDestination
from sharing.syncs.destinations import (
    DestinationError,
    DestinationUnavailable,
    OutgoingBatch,
    destination_relation,
    destination_writer,
)
from tests.conftest import require_service

PG_DATABASE = urlsplit(os.environ.get("DATABASE_URL", "postgres:///portal")).path.lstrip("/")
TABLE_SQL = (
    "CREATE TABLE {table} (lead_id VARCHAR(20) PRIMARY KEY, owner VARCHAR(40) NOT NULL, "
    "score INTEGER, CHECK (score >= 0))"
)


class PostgresTable:
    kind = "postgresql"

    def __init__(self):
        try:
            self.conn = psycopg.connect(
                host="127.0.0.1", dbname=PG_DATABASE, user="postgres", autocommit=True
            )
        except psycopg.Error as exc:
            require_service("PostgreSQL", str(exc))
        self.table = f"sync_dest_{uuid.uuid4().hex[:10]}"
        self.conn.execute(TABLE_SQL.format(table=self.table))

    def destination(self, **fields):
        values = dict(host="127.0.0.1", database=PG_DATABASE, username="postgres")
        values.update(fields)
        return SyncDestination(name="CRM table", kind=self.kind, table_name=self.table, **values)

    def rows(self):
        return self.conn.execute(
            f"SELECT lead_id, owner, score FROM {self.table} ORDER BY 1"
        ).fetchall()

    def drop(self):
        self.conn.execute(f"DROP TABLE IF EXISTS {self.table}")
        self.conn.close()


class MariaTable:
    kind = "mysql"

    def __init__(self):
        try:
            self.conn = pymysql.connect(
                host="127.0.0.1", user="root", database="test", autocommit=True
            )
        except pymysql.MySQLError as exc:
            require_service("MariaDB", str(exc))
        self.table = f"sync_dest_{uuid.uuid4().hex[:10]}"
        with self.conn.cursor() as cur:
            cur.execute(TABLE_SQL.format(table=self.table))

    def destination(self, **fields):
        values = dict(host="127.0.0.1", database="test", username="root")
        values.update(fields)
        return SyncDestination(name="CRM table", kind=self.kind, table_name=self.table, **values)

    def rows(self):
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT lead_id, owner, score FROM {self.table} ORDER BY 1")
            return [tuple(row) for row in cur.fetchall()]

    def drop(self):
        with self.conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.table}")
        self.conn.close()


class DuckTable:
    kind = "duckdb"

    def __init__(self, path):
        self.path = str(path / "crm.duckdb")
        self.table = "leads"
        with duckdb.connect(self.path) as conn:
            conn.execute(TABLE_SQL.format(table=self.table))

    def destination(self, **fields):
        values = dict(path=self.path)
        values.update(fields)
        return SyncDestination(name="CRM table", kind=self.kind, table_name=self.table, **values)

    def rows(self):
        with duckdb.connect(self.path) as conn:
            return conn.execute(
                f"SELECT lead_id, owner, score FROM {self.table} ORDER BY 1"
            ).fetchall()

    def drop(self):
        pass


@pytest.fixture(params=["postgresql", "mysql", "duckdb"])
def table(request, tmp_path):
    made = {"postgresql": PostgresTable, "mysql": MariaTable}.get(request.param)
    table = made() if made else DuckTable(tmp_path)
    yield table
    table.drop()


def batch(operation, records, run_id=5):
    keys = [json.dumps([record["lead_id"]]) for record in records]
    return OutgoingBatch(
        operation=operation,
        keys=keys,
        records=records,
        idempotency_keys=[f"{run_id}:{key}" for key in keys],
    )


def lead(lead_id, owner="ana", score=1):
    return {"lead_id": lead_id, "owner": owner, "score": score}


def writer_of(table, **fields):
    return destination_writer(table.destination(**fields), key_fields=["lead_id"], run_id=5)


def test_fields_and_check(table):
    with writer_of(table) as writer:
        writer.check()
        assert writer.fields() == ["lead_id", "owner", "score"]


def test_upsert_inserts_then_updates_and_a_resend_changes_nothing_more(table):
    with writer_of(table) as writer:
        first = writer.send(batch("upsert", [lead("a"), lead("b", score=2)]))
        assert first.acked == [0, 1] and first.rejected == {}
        changed = batch("upsert", [lead("b", owner="bo", score=7), lead("c")])
        assert writer.send(changed).acked == [0, 1]
        assert writer.send(changed).acked == [0, 1]  # a resend: idempotent
    assert table.rows() == [("a", "ana", 1), ("b", "bo", 7), ("c", "ana", 1)]


def test_insert_of_an_existing_key_is_rejected_and_leaves_the_row(table):
    with writer_of(table) as writer:
        writer.send(batch("upsert", [lead("a", owner="written-by-crm")]))
        outcome = writer.send(batch("insert", [lead("a"), lead("b")]))
    assert outcome.acked == [1] and outcome.rejected == {0: "already exists"}
    assert table.rows() == [("a", "written-by-crm", 1), ("b", "ana", 1)]


def test_update_of_a_missing_key_is_rejected_and_creates_nothing(table):
    with writer_of(table) as writer:
        writer.send(batch("upsert", [lead("a")]))
        outcome = writer.send(batch("update", [lead("a", score=9), lead("zz", score=3)]))
    assert outcome.acked == [0] and outcome.rejected == {1: "not found"}
    assert table.rows() == [("a", "ana", 9)]


def test_delete_removes_the_keys_and_acknowledges_keys_already_gone(table):
    with writer_of(table) as writer:
        writer.send(batch("upsert", [lead("a"), lead("b"), lead("c")]))
        outcome = writer.send(batch("delete", [{"lead_id": "a"}, {"lead_id": "gone"}]))
    assert outcome.acked == [0, 1]
    assert [row[0] for row in table.rows()] == ["b", "c"]


def test_records_the_database_refuses_are_rejected_and_the_others_written(table):
    records = [
        lead("ok-1"),
        lead("null-owner", owner=None),
        lead("bad-score", score="many"),
        lead("negative", score=-5),
        lead("ok-2", score=3),
    ]
    with writer_of(table) as writer:
        outcome = writer.send(batch("upsert", records))
    assert outcome.acked == [0, 4]
    assert set(outcome.rejected) == {1, 2, 3}
    assert "owner" in outcome.rejected[1].lower()  # the database's words name the column
    assert table.rows() == [("ok-1", "ana", 1), ("ok-2", "ana", 3)]


def test_a_missing_table_is_named(table):
    destination = table.destination()
    destination.table_name = "no_such_table"
    with destination_writer(destination, key_fields=["lead_id"], run_id=1) as writer:
        with pytest.raises(DestinationError, match=r"table \S*no_such_table does not exist"):
            writer.check()
        with pytest.raises(DestinationError, match="no_such_table"):
            writer.send(batch("upsert", [lead("a")]))


def test_a_key_field_the_table_lacks_or_without_a_unique_index_is_refused(table):
    with destination_writer(table.destination(), key_fields=["email"], run_id=1) as writer:
        with pytest.raises(DestinationError, match="no field 'email'"):
            writer.check()
    with destination_writer(table.destination(), key_fields=["owner"], run_id=1) as writer:
        with pytest.raises(DestinationError, match=r"no primary key or unique index on \(owner\)"):
            writer.check()


def test_a_postgresql_key_is_the_key_columns_of_a_unique_index():
    """INCLUDE columns are no part of a key (ON CONFLICT names the key columns alone), and
    an index with an expression is no key of its plain columns."""
    table = PostgresTable()
    try:
        table.conn.execute(f"CREATE UNIQUE INDEX ON {table.table} (owner) INCLUDE (score)")
        table.conn.execute(f"CREATE UNIQUE INDEX ON {table.table} (score, lower(owner))")
        with destination_writer(table.destination(), key_fields=["owner"], run_id=1) as writer:
            writer.check()
            writer.send(batch("upsert", [lead("a", owner="bo", score=1)]))
            writer.send(batch("upsert", [lead("b", owner="bo", score=2)]))
        assert table.rows() == [("b", "bo", 2)]
        with destination_writer(table.destination(), key_fields=["score"], run_id=1) as writer:
            with pytest.raises(DestinationError, match=r"no primary key or unique index"):
                writer.check()
    finally:
        table.drop()


def test_a_field_the_table_lacks_is_a_destination_error(table):
    with writer_of(table) as writer:
        with pytest.raises(DestinationError, match="email"):
            writer.send(batch("upsert", [{**lead("a"), "email": "a@example.com"}]))


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_an_unreachable_server_is_unavailable(kind):
    destination = SyncDestination(
        name="CRM", kind=kind, host="127.0.0.1", port=1, database="crm", table_name="leads"
    )
    with destination_writer(destination, key_fields=["lead_id"], run_id=1) as writer:
        with pytest.raises(DestinationUnavailable, match="could not be reached"):
            writer.check()


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_a_missing_password_variable_is_named(kind, monkeypatch):
    monkeypatch.delenv("SYNC_SECRET_CRM_DB_PASSWORD", raising=False)
    destination = SyncDestination(
        name="CRM",
        kind=kind,
        host="127.0.0.1",
        database="crm",
        table_name="leads",
        secret_env="SYNC_SECRET_CRM_DB_PASSWORD",
    )
    with destination_writer(destination, key_fields=["lead_id"], run_id=1) as writer:
        with pytest.raises(DestinationError, match="variable SYNC_SECRET_CRM_DB_PASSWORD named by"):
            writer.check()


def test_the_password_comes_from_the_environment(monkeypatch):
    table = PostgresTable()
    try:
        # trust authentication accepts any password: this shows the variable is read and used
        monkeypatch.setenv("SYNC_SECRET_CRM_DB_PASSWORD", "from-the-environment")
        with writer_of(table, secret_env="SYNC_SECRET_CRM_DB_PASSWORD") as writer:
            writer.check()
            assert writer.send(batch("upsert", [lead("a")])).acked == [0]
    finally:
        table.drop()


def test_batches_larger_than_the_writers_are_split(tmp_path):
    table = DuckTable(tmp_path)
    with writer_of(table) as writer:
        writer.batch_size = 3
        outcome = writer.send(batch("upsert", [lead(f"k{n}", score=n) for n in range(8)]))
    assert outcome.acked == list(range(8))
    assert len(table.rows()) == 8


def test_relations_for_loop_detection():
    assert destination_relation(
        SyncDestination(kind="postgresql", host="DB.internal", database="crm", table_name="leads")
    ) == ("postgresql", "db.internal:5432/crm", "public", "leads")
    assert destination_relation(
        SyncDestination(kind="mysql", host="maria", port=3307, database="crm", table_name="leads")
    ) == ("mysql", "maria:3307/crm", "crm", "leads")
    assert destination_relation(
        SyncDestination(kind="duckdb", path="/data/crm.duckdb", table_name="leads")
    ) == ("duckdb", "/data/crm.duckdb", "main", "leads")
    assert destination_relation(SyncDestination(kind="http", url="https://crm.example.com")) is None
    assert destination_relation(SyncDestination(kind="nats", subject="crm.leads")) is None


def test_json_booleans_and_timestamps_reach_their_column_types_on_postgresql():
    table = PostgresTable()
    try:
        table.conn.execute(
            f"ALTER TABLE {table.table} ADD COLUMN tags jsonb, ADD COLUMN active boolean, "
            "ADD COLUMN seen_at timestamptz, ADD COLUMN amount numeric(10, 2)"
        )
        values = {"tags": {"tier": ["gold"]}, "active": True, "amount": 12.5}
        record = {**lead("a"), **values, "seen_at": "2026-12-01T10:00:00Z"}
        with writer_of(table) as writer:
            assert writer.send(batch("upsert", [record])).acked == [0]  # COPY
            record = {**record, "active": False, "tags": ["x"], "score": "nine"}
            outcome = writer.send(batch("upsert", [record, lead("b")]))  # one by one
        assert outcome.acked == [1] and "integer" in outcome.rejected[0]
        row = table.conn.execute(
            f"SELECT tags, active, seen_at::text, amount::text FROM {table.table} "
            "WHERE lead_id = 'a'"
        ).fetchone()
        assert row[:2] == ({"tier": ["gold"]}, True)
        assert row[2].startswith("2026-12-01") and row[3] == "12.50"
    finally:
        table.drop()


def test_a_batch_refused_as_a_whole_is_written_one_by_one_with_the_same_values():
    table = PostgresTable()
    try:
        table.conn.execute(f"ALTER TABLE {table.table} ADD COLUMN active boolean")
        records = [{**lead("a"), "active": True}, {**lead("b"), "active": None, "owner": None}]
        with writer_of(table) as writer:
            outcome = writer.send(batch("upsert", records))
        assert outcome.acked == [0] and "owner" in outcome.rejected[1]
        assert table.conn.execute(f"SELECT active FROM {table.table}").fetchall() == [(True,)]
    finally:
        table.drop()


def test_a_mariadb_table_and_fields_named_with_percent_are_written():
    """PyMySQL reads each `%` of a statement with parameters as a placeholder's start:
    a table `rates %s` with a field `label%s` once failed every batch."""
    try:
        conn = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
    except pymysql.MySQLError as exc:
        require_service("MariaDB", str(exc))
    name = f"rates %s {uuid.uuid4().hex[:6]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{name}` (id bigint PRIMARY KEY, `label%s` text, `rate %b` int)")
    try:
        destination = SyncDestination(
            name="Rates",
            kind="mysql",
            host="127.0.0.1",
            database="test",
            username="root",
            table_name=name,
        )
        records = [{"id": 1, "label%s": "a", "rate %b": 2}, {"id": 2, "label%s": "b", "rate %b": 3}]
        outgoing = OutgoingBatch(
            operation="upsert", keys=["[1]", "[2]"], records=records, idempotency_keys=["1", "2"]
        )
        with destination_writer(destination, key_fields=["id"], run_id=5) as writer:
            assert writer.fields() == ["id", "label%s", "rate %b"]
            assert writer.send(outgoing).acked == [0, 1]
            update = OutgoingBatch(
                operation="update",
                keys=["[2]"],
                records=[{"id": 2, "label%s": "c", "rate %b": 4}],
                idempotency_keys=["3"],
            )
            assert writer.send(update).acked == [0]
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, `label%s`, `rate %b` FROM `{name}` ORDER BY id")
            assert [tuple(row) for row in cur.fetchall()] == [(1, "a", 2), (2, "c", 4)]
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `{name}`")
        conn.close()


def test_a_timestamp_without_an_offset_is_utc_whatever_the_postgresql_role_defaults_to():
    """A Spark key's text ('2026-12-01 10:00:00', the session's UTC) and naive values are
    read as UTC, not in the zone the destination's role or server defaults to."""
    table = PostgresTable()
    role = f"sync_tokyo_{uuid.uuid4().hex[:8]}"
    name = f"sync_seen_{uuid.uuid4().hex[:10]}"
    try:
        table.conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
        table.conn.execute(f"ALTER ROLE {role} SET TimeZone = 'Asia/Tokyo'")
        table.conn.execute(f"CREATE TABLE {name} (seen_at timestamptz PRIMARY KEY, note text)")
        destination = SyncDestination(
            name="Seen",
            kind="postgresql",
            host="127.0.0.1",
            database=PG_DATABASE,
            username=role,
            table_name=name,
        )
        records = [
            {"seen_at": "2026-12-01 10:00:00", "note": "naive"},
            {"seen_at": "2026-12-01 11:00:00", "note": "kept"},
        ]
        keys = [json.dumps([record["seen_at"]]) for record in records]
        with destination_writer(destination, key_fields=["seen_at"], run_id=5) as writer:
            assert writer.send(OutgoingBatch("upsert", keys, records, keys)).acked == [0, 1]
            removed = OutgoingBatch(
                "delete", keys[:1], [{"seen_at": "2026-12-01 10:00:00"}], keys[:1]
            )
            assert writer.send(removed).acked == [0]
        stored = table.conn.execute(
            f"SELECT (seen_at AT TIME ZONE 'UTC')::text, note FROM {name}"
        ).fetchall()
        assert stored == [("2026-12-01 11:00:00", "kept")]
    finally:
        table.conn.execute(f"DROP TABLE IF EXISTS {name}")
        table.conn.execute(f"DROP ROLE IF EXISTS {role}")
        table.drop()


def test_timestamps_reach_mariadb_as_utc_instants_whatever_the_server_defaults_to():
    """A PostgreSQL timestamptz arrives as ISO 8601 text with an offset, which MySQL
    refuses: the writer gives DATETIME and TIMESTAMP columns the UTC instant. Text without
    an offset (a Spark key) is UTC too, not the server's zone. A timestamp key already
    there is found as such (insert mode rejects it)."""
    table = MariaTable()
    with table.conn.cursor() as cur:
        cur.execute(
            f"ALTER TABLE {table.table} ADD COLUMN seen_at TIMESTAMP(6) NULL, "
            "ADD COLUMN local_at DATETIME NULL, ADD COLUMN since DATETIME(6) NULL UNIQUE"
        )
        cur.execute("SELECT @@global.time_zone")
        (server_zone,) = cur.fetchone()
        cur.execute("SET GLOBAL time_zone = '+09:00'")  # what new sessions default to
    try:
        records = [
            {
                **lead("a"),
                "seen_at": "2026-12-01T10:00:00.5+02:00",
                "local_at": "2026-12-01 10:00:00",
                "since": "2026-03-29T01:30:00+00:00",
            },
            {**lead("b"), "seen_at": "not a time", "since": None},
        ]
        with writer_of(table) as writer:
            outcome = writer.send(batch("upsert", records))
        assert outcome.acked == [0] and "not a time" in outcome.rejected[1]
        with table.conn.cursor() as cur:
            cur.execute(
                f"SELECT UNIX_TIMESTAMP(seen_at), CAST(local_at AS CHAR), CAST(since AS CHAR) "
                f"FROM {table.table}"
            )
            seen, local, since = cur.fetchone()
        assert float(seen) == 1796112000.5  # 2026-12-01 08:00:00.5 UTC
        assert (local, since) == ("2026-12-01 10:00:00", "2026-03-29 01:30:00.000000")
        again = {**lead("c"), "since": "2026-03-29T03:30:00+02:00"}  # the same instant
        with destination_writer(table.destination(), key_fields=["since"], run_id=6) as writer:
            outcome = writer.send(batch("insert", [again]))
        assert outcome.acked == [] and outcome.rejected == {0: "already exists"}
    finally:
        with table.conn.cursor() as cur:
            cur.execute("SET GLOBAL time_zone = %s", [server_zone])
        table.drop()


def test_a_timestamp_with_an_offset_is_its_utc_time_in_a_duckdb_timestamp(tmp_path):
    """DuckDB reads ISO 8601 text with an offset into a TIMESTAMP column by dropping the
    offset (the wall time, a wrong instant): the writer gives it the UTC time. A
    TIMESTAMPTZ column keeps the instant by itself."""
    table = DuckTable(tmp_path)
    with duckdb.connect(table.path) as conn:
        conn.execute(
            f"ALTER TABLE {table.table} ADD COLUMN seen_at TIMESTAMP; "
            f"ALTER TABLE {table.table} ADD COLUMN zoned_at TIMESTAMPTZ"
        )
    seen = "2026-12-01T10:00:00.5+02:00"
    refused = {**lead("b", owner=None), "seen_at": seen}
    with writer_of(table) as writer:
        staged = writer.send(batch("upsert", [{**lead("a"), "seen_at": seen, "zoned_at": seen}]))
        one_by_one = writer.send(batch("upsert", [refused, {**lead("c"), "seen_at": seen}]))
    assert staged.acked == [0] and one_by_one.acked == [1]
    with duckdb.connect(table.path) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        rows = conn.execute(
            f"SELECT lead_id, CAST(seen_at AS VARCHAR), CAST(zoned_at AS VARCHAR) "
            f"FROM {table.table} ORDER BY 1"
        ).fetchall()
    assert rows == [
        ("a", "2026-12-01 08:00:00.5", "2026-12-01 08:00:00.5+00"),
        ("c", "2026-12-01 08:00:00.5", None),
    ]


def test_a_timestamp_with_an_offset_is_its_utc_time_in_a_postgresql_timestamp():
    """PostgreSQL reads text with an offset into a timestamp without time zone by ignoring
    the offset: the writer gives it the UTC time, staged (COPY) and record by record."""
    table = PostgresTable()
    try:
        table.conn.execute(
            f"ALTER TABLE {table.table} ADD COLUMN seen_at timestamp, "
            "ADD COLUMN zoned_at timestamptz"
        )
        seen = "2026-12-01T10:00:00.5+02:00"
        refused = {**lead("b"), "score": -1}  # the table's CHECK refuses it
        with writer_of(table) as writer:
            record = {**lead("a"), "seen_at": seen, "zoned_at": seen}
            staged = writer.send(batch("upsert", [record]))
            one_by_one = writer.send(batch("upsert", [refused, {**lead("c"), "seen_at": seen}]))
        assert staged.acked == [0] and one_by_one.acked == [1]
        rows = table.conn.execute(
            f"SELECT lead_id, seen_at::text, (zoned_at AT TIME ZONE 'UTC')::text "
            f"FROM {table.table} ORDER BY 1"
        ).fetchall()
        assert rows == [
            ("a", "2026-12-01 08:00:00.5", "2026-12-01 08:00:00.5"),
            ("c", "2026-12-01 08:00:00.5", None),
        ]
    finally:
        table.drop()
