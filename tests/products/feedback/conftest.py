"""Fixtures of the feedback tests (threads, announcements, follows, the response objective).
Plain helpers are in tests/products/feedback/helpers.py; `eager_tasks` and
`fast_passwords` are shared, in tests/conftest.py."""

import pytest


@pytest.fixture
def product(product, steward):
    """The shared Orders product, with a steward in its domain (told of new threads)."""
    return product
