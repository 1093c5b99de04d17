"""Fixtures shared by the sharing features (serving, share links...)."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from products.choices import Classification
from tests.factories import ColumnFactory, FilePortFactory, ProductFactory
from tests.sharing.readers import ROWS, SENSITIVE


@pytest.fixture
def orders(domain, media_root):
    path = media_root / "matrix" / "orders.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(ROWS), path)
    product = ProductFactory(domain=domain, name="Orders", slug="orders")
    port = FilePortFactory(
        product=product, name="Orders", slug="orders", file_path="matrix/orders.parquet"
    )
    for position, name in enumerate(ROWS):
        ColumnFactory(
            port=port,
            name=name,
            position=position,
            # The file's own types (filters are typed by them).
            data_type={"order_id": "BIGINT", "amount": "DOUBLE"}.get(name, "VARCHAR"),
            classification=SENSITIVE.get(name, Classification.INTERNAL),
        )
    return product
