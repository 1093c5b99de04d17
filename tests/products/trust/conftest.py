"""Fixtures of the trust tests (checks, monitors, SLOs, incidents, the trust score). Each
module defines the `port` its checks run on; plain helpers are in
tests/products/trust/helpers.py."""

import pytest

from products.trust.services.checks import check_create


@pytest.fixture
def not_null(port, owner):
    return check_create(port=port, by=owner, kind="not_null", column="email", name="Email set")
