"""A sync's key on PostgreSQL (sharing.syncs.planning.key_sql) is the text Python's key_text
writes of the same values, whatever the key columns' types: integer and uuid columns are
written without to_json (their text needs no escape), text columns with it (quotes,
backslashes, newlines, control characters, non-ASCII), NULL as null. The type is read
from the source as it is now, not from the catalog: a column declared bigint that has
become text is still escaped."""

from __future__ import annotations

import json
import uuid

import pytest

from products.connectors import connector_for_port
from sharing.syncs.planning import key_sql, key_text
from tests.factories import OutputPortFactory, ProductFactory, columns_declare
from tests.sharing.syncs.conftest import SOURCE_SCHEMA, Table, pg_info, pg_source

ROWS = [
    (1, -32768, uuid.UUID("00000000-0000-0000-0000-000000000000"), 'a "quoted" \\ text'),
    (-9223372036854775808, 32767, uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff"), "line\nbreak"),
    (9223372036854775807, 0, None, "tab\tand \x01 control"),
    (None, None, uuid.UUID("12345678-1234-5678-1234-567812345678"), "é ü 漢字 😀"),
    (42, 7, None, None),
]


@pytest.fixture
def keyed_port(postgres, domain):
    table = Table(pg_info(postgres), SOURCE_SCHEMA, "Keyed Rows")
    table.execute(f"CREATE SCHEMA IF NOT EXISTS {SOURCE_SCHEMA}")
    table.execute("DROP TABLE IF EXISTS {table}")
    table.execute('CREATE TABLE {table} ("Big Id" bigint, small smallint, u uuid, code text)')
    table.insert(ROWS)
    product = ProductFactory(domain=domain, name="Keyed", slug="keyed")
    port = OutputPortFactory(
        product=product,
        source=pg_source(table.info),
        schema_name=SOURCE_SCHEMA,
        table_name="Keyed Rows",
        slug="keyed",
    )
    columns_declare(port, {"Big Id": "bigint", "small": "smallint", "u": "uuid", "code": "text"})
    return port, table


@pytest.mark.parametrize(
    "columns",
    [["Big Id"], ["u"], ["code"], ["Big Id", "small", "u", "code"], ["code", "Big Id"]],
)
def test_the_key_in_sql_is_the_key_in_python(keyed_port, columns):
    port, _ = keyed_port
    with connector_for_port(port) as connector:
        names = ", ".join(connector.quote_ident(c) for c in columns)
        rows = connector.fetch(
            f"SELECT {key_sql(connector, columns)}, {names} FROM {connector.relation_sql()}"
        )
    assert len(rows) == len(ROWS)
    # Both spellings are exercised: to_json for the text column only.
    with connector_for_port(port) as connector:
        for column in columns:
            assert ("to_json" in key_sql(connector, [column])) == (column == "code")
    for key, *values in rows:
        assert key == key_text(values)
        assert json.loads(key) == [None if v is None else str(v) for v in values]


def test_a_column_whose_type_changed_to_text_is_escaped(keyed_port):
    """Declared bigint in the catalog, text in the source now: the key is still valid JSON."""
    port, table = keyed_port
    table.execute('ALTER TABLE {table} ALTER COLUMN "Big Id" TYPE text')
    table.execute("""UPDATE {table} SET "Big Id" = 'say "hi"' WHERE small = 7""")
    with connector_for_port(port) as connector:
        rows = connector.fetch(
            f'SELECT {key_sql(connector, ["Big Id"])}, "Big Id" FROM {connector.relation_sql()}'
        )
    assert ('["say \\"hi\\""]', 'say "hi"') in rows
    with connector_for_port(port) as connector:
        assert "to_json" in key_sql(connector, ["Big Id"])
    assert all(key == key_text([value]) for key, value in rows)
