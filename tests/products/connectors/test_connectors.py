"""The connector layer reads DuckDB tables, CSV and Parquet files, and PostgreSQL tables,
quoting identifiers and refusing paths outside storage."""

import duckdb
import pytest

from products.choices import FileFormat, PortKind, SourceKind
from products.connectors import Connector, ConnectorError, connector_for_port
from tests.factories import (
    DataSourceFactory,
    OutputPortFactory,
    metadata_db_connect,
    metadata_db_source,
)


def test_quote_ident_doubles_quotes():
    assert Connector.quote_ident('we"ird; DROP TABLE x') == '"we""ird; DROP TABLE x"'


def test_duckdb_table_columns_and_query(tmp_path, db):
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA sales")
        con.execute(
            "CREATE TABLE sales.orders (order_id BIGINT NOT NULL, amount DECIMAL(10,2), note TEXT)"
        )
        con.execute("INSERT INTO sales.orders VALUES (1, 9.99, 'a'), (2, NULL, 'b')")
    port = OutputPortFactory(
        source=DataSourceFactory(kind=SourceKind.DUCKDB, path=str(path)),
        schema_name="sales",
        table_name="orders",
    )
    with connector_for_port(port) as connector:
        columns = connector.describe()
        count = connector.fetch(
            f"SELECT count(*) FROM {connector.relation_sql()} WHERE order_id > ?", [0]
        )
    assert [(c.name, c.data_type, c.nullable) for c in columns] == [
        ("order_id", "BIGINT", False),
        ("amount", "DECIMAL(10,2)", True),
        ("note", "VARCHAR", True),
    ]
    assert count == [(2,)]


def test_csv_file_is_read_through_duckdb(media_root, db):
    (media_root / "csv").mkdir(exist_ok=True)
    (media_root / "csv" / "stock.csv").write_text("sku,qty,checked_at\nA-1,3,2026-01-02\n")
    port = OutputPortFactory(
        kind=PortKind.FILE, source=None, file_path="csv/stock.csv", file_format=FileFormat.CSV
    )
    with connector_for_port(port) as connector:
        names = [(c.name, c.data_type) for c in connector.describe()]
        rows = connector.fetch(f"SELECT sku, qty FROM {connector.relation_sql()}")
    assert names == [("sku", "VARCHAR"), ("qty", "BIGINT"), ("checked_at", "DATE")]
    assert rows == [("A-1", 3)]


def test_missing_file_and_missing_table_are_readable_errors(tmp_path, media_root, db):
    port = OutputPortFactory(
        kind=PortKind.FILE, source=None, file_path="nope.parquet", file_format="parquet"
    )
    with pytest.raises(ConnectorError, match="does not exist"):
        connector_for_port(port).describe()
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    port = OutputPortFactory(
        source=DataSourceFactory(kind=SourceKind.DUCKDB, path=str(path)), table_name="ghost"
    )
    with pytest.raises(ConnectorError, match="was not found"):
        connector_for_port(port).describe()


def test_file_path_outside_storage_is_refused(db):
    port = OutputPortFactory(
        kind=PortKind.FILE, source=None, file_path="../secrets.csv", file_format="csv"
    )
    with pytest.raises(ConnectorError, match="outside"):
        connector_for_port(port)


def test_postgres_connection_is_read_only(postgres):
    source = metadata_db_source()
    port = OutputPortFactory(source=source, schema_name="public", table_name="products_domain")
    with connector_for_port(port) as connector:
        assert [c.name for c in connector.describe()][:2] == ["id", "name"]
        with pytest.raises(ConnectorError, match="read-only"):
            connector.fetch("CREATE TABLE public.should_not_exist (id int)")


def test_arrow_reads_share_one_kept_connection_and_survive_its_loss(postgres, monkeypatch):
    """Arrow reads clone their connection from one kept per address (opening one from
    nothing costs ~50 ms); a read session ends with its read, and a kept connection the
    server has dropped (a restart) does not fail the next read."""
    import psycopg

    from products.connectors import postgres as pg_connector

    cfg = postgres.settings_dict
    source = metadata_db_source()
    port = OutputPortFactory(source=source, schema_name="public", table_name="products_domain")
    pg_connector.adbc_templates_close()

    def read() -> int:
        with connector_for_port(port) as connector:
            batches = connector.arrow_batches(
                "SELECT 1 AS one UNION ALL SELECT 2", [], batch_rows=10
            )
            return sum(batch.num_rows for batch in batches)

    assert read() == 2
    assert len(pg_connector._adbc_templates) == 1
    (template,) = [t for _, t in pg_connector._adbc_templates.values()]
    assert read() == 2
    assert [t for _, t in pg_connector._adbc_templates.values()] == [template]

    admin = psycopg.connect(
        host=cfg["HOST"] or "localhost", port=int(cfg["PORT"] or 5432),
        dbname=cfg["NAME"], user=cfg["USER"] or None, autocommit=True,
    )  # fmt: skip
    with admin:
        # No read left a session open in a transaction; the kept one is idle.
        states = admin.execute(
            "SELECT state FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            " AND application_name = %s",
            [cfg["NAME"], pg_connector.APPLICATION_NAME],
        ).fetchall()
        assert ("idle",) in states
        assert ("idle in transaction",) not in states
        # The server drops every other session, the kept one included.
        terminated = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            " AND application_name = %s",
            [cfg["NAME"], pg_connector.APPLICATION_NAME],
        ).fetchall()
        assert terminated
    assert read() == 2
    # After ADBC_TEMPLATE_MAX_AGE_SECONDS the kept one is renewed (new types are read).
    monkeypatch.setattr(pg_connector, "ADBC_TEMPLATE_MAX_AGE_SECONDS", -1)
    assert read() == 2
    assert [t for _, t in pg_connector._adbc_templates.values()] != [template]
    pg_connector.adbc_templates_close()
    assert pg_connector._adbc_templates == {}


def test_both_engines_list_schemas_and_relations_for_the_table_browser(tmp_path, postgres):
    with metadata_db_connect() as conn:
        conn.execute('DROP SCHEMA IF EXISTS "browse me" CASCADE')
        conn.execute('CREATE SCHEMA "browse me"')
        conn.execute('CREATE TABLE "browse me"."Orders" (id int)')
        conn.execute('CREATE VIEW "browse me".recent AS SELECT 1 AS id')
    pg_port = OutputPortFactory(source=metadata_db_source(), schema_name="browse me")
    path = tmp_path / "browse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute('CREATE SCHEMA "browse me"')
        con.execute('CREATE TABLE "browse me"."Orders" (id int)')
        con.execute('CREATE VIEW "browse me".recent AS SELECT 1 AS id')
    duck_port = OutputPortFactory(
        source=DataSourceFactory(kind=SourceKind.DUCKDB, path=str(path)), schema_name="browse me"
    )
    for port in (pg_port, duck_port):
        with connector_for_port(port) as connector:
            assert "browse me" in connector.schemas()
            assert connector.relations("browse me") == ["Orders", "recent"]
            assert connector.relations("'; DROP SCHEMA x; --") == []
    with metadata_db_connect() as conn:
        conn.execute('DROP SCHEMA "browse me" CASCADE')


def test_postgres_says_a_key_is_unique_only_when_a_constraint_guarantees_it(postgres):
    """Only a valid unique index on NOT NULL columns, all of them within the key, neither
    partial nor on an expression: anything else may hold a repeated key."""
    with metadata_db_connect() as conn:
        conn.execute('DROP SCHEMA IF EXISTS "keys test" CASCADE')
        conn.execute('CREATE SCHEMA "keys test"')
        conn.execute(
            'CREATE TABLE "keys test"."Le""ads" (id bigint PRIMARY KEY, email text UNIQUE, '
            "region text NOT NULL, code int NOT NULL, shop int NOT NULL, day date NOT NULL, "
            "n int NOT NULL)"
        )
        conn.execute('CREATE UNIQUE INDEX ON "keys test"."Le""ads" (region) WHERE n > 0')
        conn.execute('CREATE UNIQUE INDEX ON "keys test"."Le""ads" ((code + 1))')
        conn.execute('CREATE UNIQUE INDEX ON "keys test"."Le""ads" (shop, day) INCLUDE (n)')
        conn.execute('CREATE VIEW "keys test".recent AS SELECT * FROM "keys test"."Le""ads"')
    source = metadata_db_source()
    table = OutputPortFactory(source=source, schema_name="keys test", table_name='Le"ads')
    view = OutputPortFactory(source=source, schema_name="keys test", table_name="recent")
    try:
        with connector_for_port(table) as connector:
            unique = connector.key_is_unique
            assert unique(["id"]) and unique(["email", "id"])  # the primary key, or more
            assert unique(["shop", "day"]) and unique(["day", "n", "shop"])
            assert not unique(["email"])  # unique, but rows with a NULL email may repeat
            assert not unique(["region"])  # unique only where n > 0
            assert not unique(["code"])  # code + 1 is unique: code is too, but not said
            assert not unique(["shop"]) and not unique(["n"])
        with connector_for_port(view) as connector:
            assert not connector.key_is_unique(["id"])  # a view guarantees nothing
    finally:
        with metadata_db_connect() as conn:
            conn.execute('DROP SCHEMA "keys test" CASCADE')


def test_duckdb_says_a_key_is_unique_only_when_a_constraint_guarantees_it(tmp_path, media_root, db):
    """A primary key, or a unique constraint on NOT NULL columns, within the key; a view
    or a file guarantees nothing."""
    path = tmp_path / "keys.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute('CREATE SCHEMA "keys test"')
        con.execute(
            'CREATE TABLE "keys test"."Le""ads" (id BIGINT PRIMARY KEY, email TEXT UNIQUE, '
            "shop INT NOT NULL, day DATE NOT NULL, n INT, UNIQUE (shop, day))"
        )
        con.execute('CREATE VIEW "keys test".recent AS SELECT * FROM "keys test"."Le""ads"')
    source = DataSourceFactory(kind=SourceKind.DUCKDB, path=str(path))
    table = OutputPortFactory(source=source, schema_name="keys test", table_name='Le"ads')
    view = OutputPortFactory(source=source, schema_name="keys test", table_name="recent")
    with connector_for_port(table) as connector:
        unique = connector.key_is_unique
        assert unique(["id"]) and unique(["email", "id"])
        assert unique(["shop", "day"]) and unique(["day", "n", "shop"])
        assert not unique(["email"])  # unique, but rows with a NULL email may repeat
        assert not unique(["shop"]) and not unique(["n"])
    with connector_for_port(view) as connector:
        assert not connector.key_is_unique(["id"])
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 1 AS id) TO '{media_root / 'leads.parquet'}' (FORMAT parquet)")
    port = OutputPortFactory(
        kind=PortKind.FILE, source=None, file_path="leads.parquet", file_format=FileFormat.PARQUET
    )
    with connector_for_port(port) as connector:
        assert not connector.key_is_unique(["id"])
