"""A PostgreSQL table of every common type (numeric with and without a scale,
timestamptz, date, boolean, bigint, text) and NULLs, served as a product's port: what
test_read_types.py and test_formula_cells.py (beside this module) read through every
channel.

The table lives in a schema of its own in the test run's database (a source registered
on it, as tests/sharing/delta_sharing/test_recipient_reads.py does); `typed_product`
creates it and drops it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

from products.catalog.services.schema_refresh import schema_apply_columns
from products.connectors import connector_for_port
from products.models import DataProduct
from tests.factories import OutputPortFactory, ProductFactory, metadata_db_source

SCHEMA = "rt_types"
TABLE = "readings"
COLUMNS = ["id", "label", "amount", "ratio", "at", "day", "ok", "big"]
CREATE = (
    f"CREATE TABLE {SCHEMA}.{TABLE} (id bigint, label text, amount numeric(12,2), "
    "ratio numeric, at timestamptz, day date, ok boolean, big bigint)"
)
INSERT = (
    f"INSERT INTO {SCHEMA}.{TABLE} VALUES "
    "(1, 'Gent', 5.00, 1.5, '2026-03-01 10:00:00+00', '2026-03-05', true, 9007199254740993), "
    "(2, '=1+1', -12.50, 0.1, '2026-03-02 11:30:00.25+00', NULL, false, -1), "
    "(3, NULL, NULL, 12345678901234567.89, NULL, '2026-03-09', NULL, NULL)"
)
# What PostgreSQL holds, as Python values (id order).
EXPECTED = [
    {
        "id": 1,
        "label": "Gent",
        "amount": Decimal("5.00"),
        "ratio": Decimal("1.5"),
        "at": datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        "day": date(2026, 3, 5),
        "ok": True,
        "big": 9007199254740993,
    },
    {
        "id": 2,
        "label": "=1+1",
        "amount": Decimal("-12.50"),
        "ratio": Decimal("0.1"),
        "at": datetime(2026, 3, 2, 11, 30, 0, 250000, tzinfo=UTC),
        "day": None,
        "ok": False,
        "big": -1,
    },
    {
        "id": 3,
        "label": None,
        "amount": None,
        "ratio": Decimal("12345678901234567.89"),
        "at": None,
        "day": date(2026, 3, 9),
        "ok": None,
        "big": None,
    },
]


@contextmanager
def typed_product(
    postgres, domain, *, slug: str = "readings", extra_sql: tuple[str, ...] = ()
) -> Iterator[DataProduct]:
    """The product `<domain>.<slug>` serving the typed table; dropped afterwards."""
    with postgres.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SCHEMA}")
        cur.execute(CREATE)
        cur.execute(INSERT)
        for sql in extra_sql:
            cur.execute(sql)
    try:
        product = ProductFactory(domain=domain, name="Readings", slug=slug)
        port = OutputPortFactory(
            product=product,
            source=metadata_db_source(),
            schema_name=SCHEMA,
            table_name=TABLE,
            slug="readings",
        )
        with connector_for_port(port) as connector:
            schema_apply_columns(port=port, columns=connector.describe())
        yield product
    finally:
        with postgres.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
