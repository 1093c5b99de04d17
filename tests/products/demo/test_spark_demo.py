"""The demo on Spark (`DEMO_ENGINE=spark make run`): seeding with the Spark warehouse (on
the session's `spark_server`, never a second one) writes the demo tables there and points
the demo's table ports at a Spark source, and those ports read through the portal (the
data API, a check run, a metric) with the same numbers as on the DuckDB warehouse.

One test seeds twice, DuckDB first (its figures are the reference), then Spark in the same
database: the second seeding only writes the warehouse, moves the ports and runs checks.
"""

import json
from collections import Counter
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from products.choices import SourceKind
from products.definitions.services.metrics import metric_evaluate
from products.demo.catalog import SPARK_SCHEMA
from products.demo.seed import DemoSeedError, demo_seed
from products.demo.trust import checks_run_now
from products.models import Metric, OutputPort
from sharing.choices import Channel

pytestmark = [
    pytest.mark.spark,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_settings"),
]

SCALE = 0.05
API = "/api/v1/products/sales.orders/data/"


def figures() -> dict:
    """What the portal answers about sales.orders: a governed read (columns, a filter and
    a limit pushed down), a check run's results and the monthly revenue metric."""
    users = get_user_model().objects
    owner, admin = users.get(username="owner"), users.get(username="admin")
    client = Client()
    client.force_login(owner)
    response = client.get(
        API,
        {
            "format": "json",
            "columns": "order_id,status,net_amount",
            "filter": json.dumps([{"column": "status", "op": "=", "value": "returned"}]),
            "limit": "5000",
        },
    )
    assert response.status_code == 200, response.content[:500]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    rows = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    if len(rows) == 1 and isinstance(rows[0], list):  # a JSON array rather than lines
        rows = rows[0]
    read = sorted((row["order_id"], row["status"], Decimal(str(row["net_amount"]))) for row in rows)

    port = OutputPort.objects.get(product__domain__slug="sales", product__slug="orders")
    run = checks_run_now(port=port, admin=admin)
    checks = {
        result.quality_check.name: (result.outcome, result.failing_rows, result.row_count)
        for result in run.results.select_related("quality_check")
    }
    metric = metric_evaluate(
        metric=Metric.objects.get(key="sales.revenue"),
        user=owner,
        channel=Channel.WEB,
        grain="month",
    )
    revenue = {str(row["period"])[:7]: Decimal(str(row["value"])) for row in metric.rows}
    return {"read": read, "checks": checks, "revenue": revenue, "source": port.source.kind}


@pytest.mark.usefixtures("one_hour")  # both seeds as of the same hour
def test_the_demo_on_spark_reads_like_the_duckdb_demo(spark_server):
    demo_seed(warehouse="duckdb", rows_scale=SCALE)
    on_duckdb = figures()

    result = demo_seed(warehouse="spark", rows_scale=SCALE, spark_url=spark_server.url)
    on_spark = figures()

    assert result.warehouse_rebuilt and SPARK_SCHEMA in result.warehouse_location
    assert (on_duckdb["source"], on_spark["source"]) == (SourceKind.DUCKDB, SourceKind.SPARK)
    port = OutputPort.objects.select_related("source").get(product__slug="orders")
    assert (port.source.host, port.source.port, port.schema_name) == (
        "127.0.0.1",
        spark_server.port,
        SPARK_SCHEMA,
    )
    assert on_spark["read"] and on_spark["read"] == on_duckdb["read"]
    assert on_spark["checks"] == on_duckdb["checks"]
    # The planted duplicates are found on Spark as on DuckDB.
    assert Counter(outcome for outcome, _, _ in on_spark["checks"].values())["fail"] >= 1
    assert len(on_spark["revenue"]) >= 12 and on_spark["revenue"] == on_duckdb["revenue"]

    # Seeding again on the same server, from the command line, writes nothing to it.
    out = StringIO()
    call_command(
        "seed_demo",
        "--warehouse=spark",
        f"--spark-url={spark_server.url}",
        f"--rows-scale={SCALE}",
        stdout=out,
    )
    assert "warehouse (spark, already up to date)" in out.getvalue()


def test_the_spark_warehouse_needs_a_spark_connect_url():
    with pytest.raises(DemoSeedError, match="sc://"):
        demo_seed(warehouse="spark", spark_url="http://127.0.0.1:15002")
    with pytest.raises(CommandError, match="--spark-url sc://host:port"):
        call_command("seed_demo", "--warehouse=spark")
    with pytest.raises(CommandError, match="goes with --warehouse spark"):
        call_command("seed_demo", "--spark-url=sc://127.0.0.1:15002")
