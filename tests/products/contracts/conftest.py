"""Fixtures of the contract tests. Plain helpers (ODCS YAML, a documented product, the
standard's examples) are in tests/products/contracts/helpers.py."""

import pytest

from tests.factories import OutputPortFactory


@pytest.fixture
def product(product):
    """The shared Orders product with one output port, "Order lines", for a contract to
    describe."""
    OutputPortFactory(product=product, name="Order lines", slug="order-lines")
    return product
