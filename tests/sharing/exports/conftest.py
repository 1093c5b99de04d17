"""Fixtures of the export tests. Plain helpers are in tests/sharing/exports/helpers.py."""

import pytest

from tests.sharing.exports.helpers import orders_product


@pytest.fixture
def orders(domain, media_root):
    """The exports' Orders product: a Parquet port with known rows (helpers.orders_product),
    instead of the serving tests' matrix of the same name."""
    return orders_product(domain=domain, media_root=media_root)
