"""Fixtures of the serving tests."""

import pytest

from tests.sharing.serving.typed_tables import typed_product


@pytest.fixture
def readings(postgres, domain):
    """A product whose port is a committed PostgreSQL table of every awkward type
    (typed_tables), dropped afterwards."""
    with typed_product(postgres, domain) as product:
        yield product
