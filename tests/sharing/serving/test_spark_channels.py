"""Every channel serves a port on Spark (the session's `spark_server`) as the access
decision allows: a grantee of the Belgian rows, whose grant masks the confidential email,
gets those rows and that mask (and only the narrowing each channel adds) in an XLSX from
the data API, Parquet and CSV downloads, a scheduled export's file, a share link's
download and a Delta Sharing query's Parquet file; and a federated query's own condition
is never evaluated on a row outside the grant, not even on a partition column (the
fence: an error there would tell that such rows exist).

The table holds the awkward values: NULLs, a decimal at its precision's limit, instants
in UTC, a column name with a space; and is partitioned, store 0 holding only a Dutch
row."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from products.choices import MembershipRole
from products.connectors import ConnectorError
from products.connectors.spark import SparkConnector, SparkEndpoint, spark_session_open
from sharing.choices import Channel, ExportStatus
from sharing.delta_sharing.services import (
    delta_recipient_create,
    delta_share_create,
    delta_share_table_add,
)
from sharing.exports.services.runs import (
    export_run_execute,
    export_run_request,
    export_schedule_create,
)
from sharing.federation.services.running import query_rows, query_start
from sharing.models import AccessEvent
from sharing.share_links.services import share_link_create
from tests.factories import (
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    SparkSourceFactory,
    UserFactory,
    columns_declare,
)
from tests.sharing.exports.helpers import read_back
from tests.sharing.readers import grant

pytestmark = [pytest.mark.spark, pytest.mark.django_db]

SCHEMA = "portal_channels"
TABLE = "orders"
ORDER_ID = "order id"
COLUMNS = {  # as the connector describes them; the partition column comes last
    ORDER_ID: "bigint",
    "country": "string",
    "email": "string",  # confidential: masked for the grantee
    "amount": "decimal(10,2)",
    "ordered_at": "timestamp_ltz",
    "store": "int",
}
SHARED = [ORDER_ID, "email", "amount", "ordered_at"]  # the columns most channels narrow to
API = "/api/v1/products/sales.orders/data/"
DOWNLOAD = "/products/sales/orders/download/"

# The Belgian rows (1, 3 and 4) as the grantee reads them.
JAN_2 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
FEB_1 = datetime(2024, 2, 1, tzinfo=UTC)
BELGIAN = {
    ORDER_ID: [1, 3, 4],
    "country": ["BE", "BE", "BE"],
    "email": ["****", None, "****"],  # NULL stays NULL under the mask
    "amount": [Decimal("12.50"), None, Decimal("99999999.99")],
    "ordered_at": [JAN_2, FEB_1, None],
    "store": [1, 2, 1],
}


@pytest.fixture(scope="module")
def spark_orders(spark_server) -> SparkEndpoint:
    """portal_channels.orders, partitioned by store, written once through a session of
    its own. Order 2 (NL) is alone in store 0; order 4's time is NULL."""
    endpoint = SparkEndpoint(host="127.0.0.1", port=spark_server.port)
    q = SparkConnector.quote_ident
    spark = spark_session_open(endpoint)
    try:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
        spark.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{TABLE}")
        spark.sql(
            f"CREATE TABLE {SCHEMA}.{TABLE} ({q(ORDER_ID)} BIGINT, country STRING, email STRING,"
            " amount DECIMAL(10,2), ordered_at TIMESTAMP, store INT) USING parquet"
            " PARTITIONED BY (store)"
        )
        spark.sql(
            f"INSERT INTO {SCHEMA}.{TABLE} VALUES "
            "(1, 'BE', 'a@x', 12.50, TIMESTAMP '2024-01-02 03:04:05 UTC', 1), "
            "(2, 'NL', 'b@x', 0.00, TIMESTAMP '2024-01-31 23:30:00 UTC', 0), "
            "(3, 'BE', NULL, NULL, TIMESTAMP '2024-02-01 00:00:00 UTC', 2), "
            "(4, 'BE', 'd@x', 99999999.99, NULL, 1), "
            "(5, 'FR', 'e@x', 7.25, TIMESTAMP '2024-03-01 12:00:00 UTC', 5)"
        )
    finally:
        spark.stop()
    return endpoint


@pytest.fixture
def product(spark_orders, domain):
    source = SparkSourceFactory(host="127.0.0.1", port=spark_orders.port, domains=[domain])
    product = ProductFactory(domain=domain, name="Orders", slug="orders")
    port = OutputPortFactory(
        product=product, source=source, schema_name=SCHEMA, table_name=TABLE, slug="orders"
    )
    columns_declare(port, COLUMNS)
    return product


@pytest.fixture
def belgian(product):
    """A grantee of the Belgian rows, email masked (the grant does not name it), who may
    share what they read; an owner of another domain, so that they may create Delta
    shares."""
    user = UserFactory(username="belgian")
    marketing = DomainFactory(name="Marketing", slug="marketing")
    MembershipFactory(domain=marketing, user=user, role=MembershipRole.OWNER)
    grant(
        product,
        user,
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
        shareable=True,
    )
    return user


def _body(response) -> bytes:
    assert response.status_code == 200, (response.status_code, response.content[:500])
    return b"".join(response.streaming_content) if response.streaming else response.content


def _by_id(columns: dict[str, list]) -> dict[str, list]:
    """The columns' values in the order of their ids: Spark gives no order without ORDER
    BY."""
    order = sorted(range(len(columns[ORDER_ID])), key=lambda i: columns[ORDER_ID][i])
    return {name: [values[i] for i in order] for name, values in columns.items()}


# --- downloads ----------------------------------------------------------------------------


def test_the_data_api_serves_an_xlsx_within_the_grant_and_the_readers_filter(
    product, belgian, client_as
):
    response = client_as(belgian).get(
        API,
        {
            "format": "xlsx",
            "columns": ",".join(SHARED),
            "filter": json.dumps([{"column": ORDER_ID, "op": "<", "value": 4}]),
        },
    )
    sheet = openpyxl.load_workbook(io.BytesIO(_body(response)), read_only=True).active
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert header == tuple(SHARED)
    # Cells are typed: numbers, and instants in UTC without their zone (Excel has none).
    assert sorted(rows, key=lambda row: row[0]) == [
        (1, "****", 12.5, datetime(2024, 1, 2, 3, 4, 5)),
        (3, None, None, datetime(2024, 2, 1)),
    ]
    (event,) = AccessEvent.objects.filter(product=product, user=belgian)
    assert (event.channel, event.rows, event.detail["masked"]) == (Channel.API, 2, ["email"])


def test_the_parquet_and_csv_downloads_serve_every_row_the_grant_allows(product, belgian, client):
    client.force_login(belgian)
    parquet = pq.read_table(io.BytesIO(_body(client.get(DOWNLOAD, {"format": "parquet"}))))
    assert parquet.column_names == list(COLUMNS)
    assert parquet.schema.field("amount").type == pa.decimal128(10, 2)
    assert parquet.schema.field("ordered_at").type == pa.timestamp("us", tz="UTC")
    assert _by_id(parquet.to_pydict()) == BELGIAN

    text = _body(client.get(DOWNLOAD, {"format": "csv"})).decode()
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert header == list(COLUMNS)
    assert sorted(lines, key=lambda line: int(line[0])) == [
        ["1", "BE", "****", "12.50", "2024-01-02 03:04:05.000000Z", "1"],
        ["3", "BE", "", "", "2024-02-01 00:00:00.000000Z", "2"],
        ["4", "BE", "****", "99999999.99", "", "1"],
    ]
    events = AccessEvent.objects.filter(product=product, channel=Channel.DOWNLOAD)
    assert sorted(event.rows for event in events) == [3, 3]


# --- scheduled exports --------------------------------------------------------------------


def test_a_scheduled_export_writes_the_grants_rows_with_its_own_masks_and_filter(product, belgian):
    schedule = export_schedule_create(
        product=product,
        by=belgian,
        name="Belgian orders",
        cron="0 6 * * *",
        format="parquet",
        columns=SHARED,
        masked_columns=["amount"],
        row_filter=[{"column": ORDER_ID, "op": "!=", "value": 4}],
    )
    run = export_run_execute(run_id=export_run_request(schedule=schedule, by=belgian).pk)
    assert run.status == ExportStatus.SUCCEEDED, run.error
    assert run.rows == 2
    assert _by_id(read_back(run)) == {
        ORDER_ID: [1, 3],
        "email": ["****", None],
        "amount": ["****", None],  # masked by the schedule: text, NULL kept
        "ordered_at": [JAN_2, FEB_1],
    }
    written = run.detail["written"]
    assert written["masked"] == ["amount", "email"]
    assert written["row_filter"] == [
        {"column": "country", "op": "=", "value": "BE"},  # the grant's, always
        {"column": ORDER_ID, "op": "!=", "value": 4},
    ]


# --- share links --------------------------------------------------------------------------


def test_a_share_links_public_download_stays_within_its_creators_grant(product, belgian, client):
    _, token = share_link_create(
        by=belgian,
        product=product,
        format="csv",
        columns=SHARED,
        # The same instant as order 1's, written at +01:00: bound as an instant, so
        # order 1 is kept (and order 4, whose time is NULL, is not).
        row_filter=[{"column": "ordered_at", "op": ">=", "value": "2024-01-02T04:04:05+01:00"}],
    )
    text = _body(client.get(f"/s/{token}/download")).decode()  # anonymous
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert header == SHARED
    assert sorted(lines) == [
        ["1", "****", "12.50", "2024-01-02 03:04:05.000000Z"],
        ["3", "", "", "2024-02-01 00:00:00.000000Z"],
    ]
    (event,) = AccessEvent.objects.filter(product=product, channel=Channel.SHARE_LINK)
    assert (event.user, event.rows, event.detail["masked"]) == (belgian, 2, ["email"])


# --- Delta Sharing ------------------------------------------------------------------------


def test_a_delta_sharing_query_serves_the_grants_rows_in_parquet_at_a_stable_version(
    product, belgian, admin_user, client
):
    share = delta_share_create(by=belgian, name="partners")
    delta_share_table_add(share=share, by=admin_user, product=product, columns=SHARED)
    _, token = delta_recipient_create(share=share, by=belgian, name="Acme")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    table = "/delta-sharing/shares/partners/schemas/default/tables/orders"

    response = client.post(f"{table}/query", data="{}", content_type="application/json", **bearer)
    assert response.status_code == 200, response.content[:500]
    assert response["delta-table-version"] == "0"
    _, metadata, *files = [json.loads(line) for line in response.content.splitlines()]
    fields = json.loads(metadata["metaData"]["schemaString"])["fields"]
    assert [(field["name"], field["type"]) for field in fields] == [
        (ORDER_ID, "long"),
        ("email", "string"),
        ("amount", "decimal(10,2)"),
        ("ordered_at", "timestamp"),
    ]
    parts = [
        pq.read_table(io.BytesIO(_body(client.get(urlsplit(line["file"]["url"]).path))))
        for line in files
    ]
    served = pa.concat_tables(parts).to_pydict()
    assert _by_id(served) == {name: BELGIAN[name] for name in SHARED}

    # The version is the data's fingerprint on Spark (a scan of the rows): the same data,
    # the same version, and the files written for it are reused.
    version = client.get(f"{table}/version", **bearer)
    assert (version.status_code, version["delta-table-version"]) == (200, "0")
    again = client.post(f"{table}/query", data="{}", content_type="application/json", **bearer)
    assert again["delta-table-version"] == "0"
    events = AccessEvent.objects.filter(product=product, channel=Channel.DELTA_SHARING)
    assert [
        (event.user, event.rows, event.detail["delta_sharing"]["cached"])
        for event in events.order_by("pk")
    ] == [(belgian, 3, False), (belgian, 3, True)]


# --- the fence of federated queries -------------------------------------------------------


def test_a_federated_condition_is_never_evaluated_outside_the_grant_on_spark(
    product, belgian, admin_user
):
    """10 / store fails on store 0, which holds only a Dutch row. Spark prunes partitions
    by a condition on the partition column before it reads a row: unless the grant's
    relation is fenced, the query's condition is evaluated on store 0 and its error tells
    the Belgian grantee that a store 0 exists. (The fence was `rand() >= 0` once, which
    Spark 4 folds to true: this test failed then.)"""
    sql = 'SELECT count(*) AS n, sum("order id") AS ids FROM sales.orders WHERE 10 / store > 1'
    answer = query_rows(query_start(user=belgian, sql=sql))
    assert answer["engine"] == "spark"
    assert answer["rows"] == [[3, 8]]  # orders 1, 3 and 4
    # The probe is real: whoever reads every row gets the error.
    with pytest.raises(ConnectorError) as failed:
        query_rows(query_start(user=admin_user, sql=sql))
    assert "DIVIDE_BY_ZERO" in failed.value.technical
