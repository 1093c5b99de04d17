"""Fixtures of the portal-wide tests."""

import pytest

from tests.factories import UserFactory


@pytest.fixture
def user(db):
    """A person who signs in (the sign-in limit tests)."""
    return UserFactory(username="dana")
