"""The demo seeds glossary terms (with their history and links) and metrics that compute
on its warehouse; seeding again adds none."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from products.connectors import connector_for_port
from products.definitions.services.metrics import MetricRefused, metric_evaluate
from products.demo.definitions import METRICS, TERMS
from products.models import GlossaryTerm, Metric
from sharing.choices import Channel

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def demo_settings(settings, tmp_path):
    settings.DEMO_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield settings
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA IF EXISTS warehouse CASCADE")


def test_demo_terms_and_metrics():
    call_command("seed_demo", stdout=StringIO())
    assert GlossaryTerm.objects.count() == len(TERMS)
    assert Metric.objects.count() == len(METRICS)
    draft = GlossaryTerm.objects.get(name="Customer lifetime value")
    assert draft.status == "draft" and draft.columns.get().name == "lifetime_value"
    revenue_term = GlossaryTerm.objects.get(name="Net revenue")
    assert revenue_term.status == "approved" and revenue_term.versions.count() == 2
    assert {c.name for c in revenue_term.columns.all()} == {"net_amount", "net_revenue"}
    users = get_user_model().objects
    owner, analyst = users.get(username="owner"), users.get(username="analyst")
    metric = Metric.objects.get(key="sales.revenue")
    result = metric_evaluate(metric=metric, user=owner, channel=Channel.WEB, grain="month")
    with connector_for_port(metric.port) as connector:
        (total,) = connector.fetch(
            f"SELECT sum(net_amount) FROM {connector.relation_sql()} "
            "WHERE status NOT IN ('cancelled', 'returned')"
        )[0]
    assert len(result.rows) >= 12 and sum(row["value"] for row in result.rows) == total
    for spec in METRICS:  # every demo metric computes for its domain's team
        metric = Metric.objects.get(key=spec.key)
        admin = users.get(username="admin")
        assert metric_evaluate(metric=metric, user=admin, channel=Channel.WEB).rows
    with pytest.raises(MetricRefused) as refused:
        metric_evaluate(metric=Metric.objects.get(key="sales.revenue"), user=analyst, channel="web")
    assert refused.value.status == 403

    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "created: nothing" in out.getvalue()
    assert GlossaryTerm.objects.count() == len(TERMS)
