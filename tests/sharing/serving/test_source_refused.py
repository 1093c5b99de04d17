"""A source that refuses the portal's own account (PostgreSQL's insufficient_privilege,
Spark's permission errors) is a 403 saying so, on the data API, the Data tab's download
and metrics: not an outage (502) and not a missing table (404). Members and admins see
the source's own words; a grantee a fixed message."""

from __future__ import annotations

import psycopg
import pytest
from knox.models import AuthToken

from products.models import Metric
from tests.conftest import pg_info
from tests.sharing.readers import grant

pytestmark = pytest.mark.django_db

ROLE = "portal_test_no_privileges"


@pytest.fixture
def refused_product(pg_product, postgres):
    """pg_product read through a role that may connect but not read serving_test.orders."""
    info = pg_info(postgres)
    with psycopg.connect(**info, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]).fetchone()
        if not exists:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN")
        conn.execute(f"REVOKE ALL ON SCHEMA serving_test FROM {ROLE}")
    source = pg_product.ports.get().source
    source.username = ROLE
    source.save()
    return pg_product


def test_a_source_refusing_the_portal_is_a_403_that_says_so(refused_product, owner, client):
    grantee = _grantee(refused_product)
    url = f"/api/v1/products/{refused_product.key}/data/?format=json"
    _, token = AuthToken.objects.create(grantee)
    answer = client.get(url, HTTP_AUTHORIZATION=f"Token {token}")
    assert answer.status_code == 403, answer.content
    assert "refused the portal's access" in answer.json()["detail"]
    assert "permission denied" not in answer.json()["detail"]  # the source's words: members'
    _, owner_token = AuthToken.objects.create(owner)
    answer = client.get(url, HTTP_AUTHORIZATION=f"Token {owner_token}")
    assert answer.status_code == 403
    assert "permission denied" in answer.json()["detail"]
    client.force_login(owner)
    download = client.get(
        f"/products/{refused_product.domain.slug}/{refused_product.slug}/download/"
    )
    assert download.status_code == 403


def test_a_metric_on_a_refusing_source_is_a_403(refused_product, owner, client):
    Metric.objects.create(
        key="sales.order-amount",
        name="Order amount",
        port=refused_product.ports.get(),
        aggregation="sum",
        column="amount",
    )
    client.force_login(owner)
    answer = client.get("/api/v1/metrics/sales.order-amount/values/")
    assert answer.status_code == 403, answer.content


def _grantee(product):
    from tests.factories import UserFactory

    user = UserFactory(username="grantee-refused")
    grant(product, user)
    return user
