"""Fixtures of the trust tests (checks, monitors, SLOs, incidents, the trust score). The
`port` checks run on is here; modules with other data define their own; plain helpers are in
tests/products/trust/helpers.py."""

import pytest

from products.trust.services.checks import check_create
from tests.factories import ColumnFactory, FilePortFactory
from tests.products.trust.helpers import orders_parquet


@pytest.fixture
def port(product, media_root):
    """A Parquet file with 2 null emails in 5 rows (modules with other data override it)."""
    port = FilePortFactory(
        product=product,
        name="Orders file",
        slug="orders-file",
        file_path=orders_parquet(media_root, "orders.parquet", ["a@x", None, "c@x", None, "e@x"]),
    )
    ColumnFactory(port=port, name="order_id", data_type="BIGINT", position=0)
    ColumnFactory(port=port, name="email", data_type="VARCHAR", position=1)
    return port


@pytest.fixture
def not_null(port, owner):
    return check_create(port=port, by=owner, kind="not_null", column="email", name="Email set")
