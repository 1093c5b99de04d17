"""Delta Sharing with the real `delta-sharing` client (in its own process and virtualenv,
as a recipient runs it) against a running portal (pytest-django's live server, on
PostgreSQL): what a recipient reads, what it may not, versions, signed file URLs and
the audit."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core import signing
from django.utils import timezone

from products.catalog.services.schema_refresh import schema_apply_columns
from products.choices import MembershipRole
from products.connectors import connector_for_port
from products.models import DomainMembership
from sharing.choices import AuditAction, Channel
from sharing.delta_sharing.services import (
    delta_recipient_revoke,
    delta_share_create,
    delta_share_table_add,
)
from sharing.models import AccessEvent, AccessGrant, DeltaRecipient
from tests.conftest import wait_for
from tests.factories import (
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
    metadata_db_source,
)
from tests.sharing.delta_sharing.recipient import ROWS, Recipient, fetch

pytestmark = pytest.mark.django_db(transaction=True)

WAREHOUSE = "ds_warehouse"


@pytest.fixture
def share(owner, orders):
    share = delta_share_create(by=owner, name="partners", description="For our partners.")
    delta_share_table_add(share=share, by=owner, product=orders)
    return share


@pytest.fixture
def recipient(share, owner, live_server, tmp_path, client_python):
    return Recipient(
        share=share, by=owner, live_server=live_server, tmp_path=tmp_path, python=client_python
    )


def _records(result: dict) -> list[dict]:
    return [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]


def _source_records(rows: dict) -> list[dict]:
    names = list(rows)
    return [dict(zip(names, values, strict=True)) for values in zip(*rows.values(), strict=True)]


# --- reading --------------------------------------------------------------------------------


def test_the_client_lists_and_reads_a_parquet_port(recipient, orders, owner):
    listed, loaded = recipient.run(
        {"op": "list_all_tables"}, {"op": "load", "table": "partners.default.orders"}
    )
    assert listed == {"result": ["partners.default.orders"]}
    result = loaded["result"]
    # The owner is on the product's team: every column, unmasked, every row.
    assert result["columns"] == list(ROWS)
    assert _records(result) == _source_records(ROWS)
    assert result["dtypes"]["order_id"] == "int64" and result["dtypes"]["amount"] == "float64"

    (event,) = AccessEvent.objects.filter(channel=Channel.DELTA_SHARING)
    assert (event.action, event.user, event.product, event.rows) == (
        AuditAction.READ,
        owner,
        orders,
        4,
    )
    assert event.bytes > 0
    assert event.detail["delta_sharing"]["recipient"] == recipient.model.pk
    assert event.detail["delta_sharing"]["table"] == "partners.default.orders"
    assert event.detail["format"] == "parquet"


def test_each_query_is_one_read_and_files_are_reused_until_the_data_changes(
    recipient, orders, media_root
):
    first, second = recipient.run(
        {"op": "load", "table": "partners.default.orders"},
        {"op": "load", "table": "partners.default.orders"},
    )
    assert first["result"]["rows"] == second["result"]["rows"]
    events = list(AccessEvent.objects.filter(channel=Channel.DELTA_SHARING).order_by("pk"))
    # One event per query (the client's file fetches are not reads of their own).
    assert [e.detail["delta_sharing"]["cached"] for e in events] == [True, True]
    # (the metadata request before each query materialised the files: both queries reused
    # them; their version is the same)
    assert {e.detail["delta_sharing"]["version"] for e in events} == {0}


def test_a_postgresql_table_reads_like_the_source(
    postgres, owner, domain, live_server, tmp_path, client_python
):
    with postgres.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {WAREHOUSE} CASCADE")
        cur.execute(f"CREATE SCHEMA {WAREHOUSE}")
        cur.execute(
            f"CREATE TABLE {WAREHOUSE}.shipments (id bigint, city text, weight numeric(10,2), "
            "shipped_at timestamptz, due date, fragile boolean, parcels integer)"
        )
        cur.execute(
            f"INSERT INTO {WAREHOUSE}.shipments VALUES "
            "(1, 'Gent', 12.50, '2026-03-01 10:00:00+00', '2026-03-05', true, 2), "
            "(2, 'Lyon', NULL, '2026-03-02 11:30:00+00', NULL, false, NULL), "
            "(3, NULL, 0.75, NULL, '2026-03-09', NULL, 1)"
        )
    try:
        source = metadata_db_source()
        product = ProductFactory(domain=domain, name="Shipments", slug="shipments")
        port = OutputPortFactory(
            product=product, source=source, schema_name=WAREHOUSE, table_name="shipments"
        )
        with connector_for_port(port) as connector:
            schema_apply_columns(port=port, columns=connector.describe())
        share = delta_share_create(by=owner, name="logistics")
        delta_share_table_add(share=share, by=owner, product=product, schema="ops")
        recipient = Recipient(
            share=share, by=owner, live_server=live_server, tmp_path=tmp_path, python=client_python
        )
        metadata, loaded = recipient.run(
            {"op": "metadata", "table": "logistics.ops.shipments"},
            {"op": "load", "table": "logistics.ops.shipments"},
        )
        types = {f["name"]: f["type"] for f in metadata["result"]["schema"]["fields"]}
        assert types == {
            "id": "long",
            "city": "string",
            "weight": "decimal(10,2)",
            "shipped_at": "timestamp",
            "due": "date",
            "fragile": "boolean",
            "parcels": "integer",
        }
        rows = sorted(_records(loaded["result"]), key=lambda r: r["id"])
        assert rows == [
            {
                "id": 1,
                "city": "Gent",
                "weight": "12.50",
                "shipped_at": "2026-03-01T10:00:00+00:00",
                "due": "2026-03-05",
                "fragile": True,
                "parcels": 2,
            },
            {
                "id": 2,
                "city": "Lyon",
                "weight": None,
                "shipped_at": "2026-03-02T11:30:00+00:00",
                "due": None,
                "fragile": False,
                "parcels": None,
            },
            {
                "id": 3,
                "city": None,
                "weight": "0.75",
                "shipped_at": None,
                "due": "2026-03-09",
                "fragile": None,
                "parcels": 1,
            },
        ]
        # The same values PostgreSQL holds.
        with postgres.cursor() as cur:
            cur.execute(f"SELECT id, weight, due FROM {WAREHOUSE}.shipments ORDER BY id")
            assert [(r["id"], r["weight"], r["due"]) for r in rows] == [
                (i, None if w is None else str(w), None if d is None else d.isoformat())
                for i, w, d in cur.fetchall()
            ]
        assert isinstance(Decimal(rows[0]["weight"]), Decimal)

        # New rows: the version moves (PostgreSQL publishes its row counters within about
        # a second of the commit) and the next read has them.
        (before,) = recipient.run({"op": "version", "table": "logistics.ops.shipments"})
        with postgres.cursor() as cur:
            cur.execute(f"INSERT INTO {WAREHOUSE}.shipments (id, city) VALUES (4, 'Porto')")
        postgres.close()  # the backend exits: its counters are published
        wait_for(
            lambda: (
                recipient.one({"op": "version", "table": "logistics.ops.shipments"})["result"]
                > before["result"]
            ),
            timeout=20,
            interval=0.5,
            message="the version did not change after an insert",
        )
        assert sorted(r[0] for r in recipient.load("logistics.ops.shipments")["rows"]) == [
            1,
            2,
            3,
            4,
        ]
    finally:
        with postgres.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {WAREHOUSE} CASCADE")


def test_the_tables_columns_row_filter_and_limit_apply(
    share, owner, orders, live_server, tmp_path, client_python
):
    delta_share_table_add(
        share=share,
        by=owner,
        product=orders,
        schema="eu",
        name="belgium",
        columns=["order_id", "country"],
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
    )
    recipient = Recipient(
        share=share, by=owner, live_server=live_server, tmp_path=tmp_path, python=client_python
    )
    listed, loaded, limited = recipient.run(
        {"op": "list_all_tables"},
        {"op": "load", "table": "partners.eu.belgium"},
        {"op": "load", "table": "partners.default.orders", "limit": 2},
    )
    assert listed["result"] == ["partners.default.orders", "partners.eu.belgium"]
    assert loaded["result"]["columns"] == ["order_id", "country"]
    assert loaded["result"]["rows"] == [[1, "BE"], [3, "BE"]]
    assert len(limited["result"]["rows"]) == 2
    belgium, limit = AccessEvent.objects.filter(channel=Channel.DELTA_SHARING).order_by("pk")
    assert belgium.columns == ["order_id", "country"]
    assert belgium.row_filter == [{"column": "country", "op": "=", "value": "BE"}]
    assert (belgium.rows, limit.rows, limit.detail["limit"]) == (2, 2, 2)


def test_a_table_with_no_rows_reads_as_an_empty_frame(
    share, owner, orders, live_server, tmp_path, client_python
):
    delta_share_table_add(
        share=share,
        by=owner,
        product=orders,
        name="nowhere",
        columns=["order_id", "country"],
        row_filter=[{"column": "country", "op": "=", "value": "XX"}],
    )
    recipient = Recipient(
        share=share, by=owner, live_server=live_server, tmp_path=tmp_path, python=client_python
    )
    result = recipient.load("partners.default.nowhere")
    assert (result["columns"], result["rows"]) == (["order_id", "country"], [])
    (event,) = AccessEvent.objects.filter(channel=Channel.DELTA_SHARING)
    assert event.rows == 0


@pytest.fixture
def marketing_owner(db):
    """Owns another domain: creates shares, but reads Sales products only by grant."""
    user = UserFactory(username="marketer")
    MembershipFactory(
        domain=DomainFactory(name="Marketing", slug="marketing"),
        user=user,
        role=MembershipRole.OWNER,
    )
    return user


def test_a_creator_with_a_grant_shares_only_what_the_grant_allows(
    orders, marketing_owner, admin_user, live_server, tmp_path, client_python
):
    AccessGrant.objects.create(
        product=orders,
        user=marketing_owner,
        row_filter=[{"column": "country", "op": "in", "value": ["BE", "NL"]}],
        expires_at=timezone.now() + timedelta(days=30),
        shareable=True,  # sharing needs the share right, as for share links
    )
    share = delta_share_create(by=marketing_owner, name="campaigns")
    # An admin adds the Sales product to the marketer's share; the marketer's grant rules.
    delta_share_table_add(share=share, by=admin_user, product=orders)
    recipient = Recipient(
        share=share,
        by=marketing_owner,
        live_server=live_server,
        tmp_path=tmp_path,
        python=client_python,
    )
    metadata, loaded = recipient.run(
        {"op": "metadata", "table": "campaigns.default.orders"},
        {"op": "load", "table": "campaigns.default.orders"},
    )
    assert _records(loaded["result"]) == [
        {"order_id": 1, "country": "BE", "email": "****", "amount": 10.5},
        {"order_id": 2, "country": "NL", "email": "****", "amount": 20.0},
        {"order_id": 3, "country": "BE", "email": None, "amount": 30.25},
    ]
    types = {f["name"]: f["type"] for f in metadata["result"]["schema"]["fields"]}
    assert types["email"] == "string"
    (event,) = AccessEvent.objects.filter(channel=Channel.DELTA_SHARING)
    assert event.detail["masked"] == ["email"] and event.user == marketing_owner


def test_when_the_creator_loses_access_queries_are_refused_and_audited(
    recipient, owner, orders, domain
):
    assert len(recipient.load()["rows"]) == 4
    DomainMembership.objects.filter(user=owner, domain=domain).delete()
    answer = recipient.one({"op": "load", "table": "partners.default.orders"})
    assert answer["status"] == 403, answer
    query = "/shares/partners/schemas/default/tables/orders/query"
    status, _, body = recipient.http("POST", query, {})
    assert status == 403
    assert json.loads(body)["errorCode"] == "PERMISSION_DENIED"
    assert "may not share this product's data" in json.loads(body)["message"]
    refused = AccessEvent.objects.filter(action=AuditAction.READ_DENIED)
    assert refused.count() == 1  # the client stopped at the metadata; the raw query
    event = refused.get()
    assert (event.channel, event.user, event.product) == (Channel.DELTA_SHARING, owner, orders)
    assert event.detail["delta_sharing"]["recipient"] == recipient.model.pk


def test_a_shared_table_whose_file_is_gone_is_a_404_not_a_server_error(
    recipient, orders, media_root
):
    (media_root / "delta" / "orders.parquet").unlink()
    for path in ("version", "metadata", "query"):
        method = "POST" if path == "query" else "GET"
        status, _, body = recipient.http(
            method, f"/shares/partners/schemas/default/tables/orders/{path}", {}
        )
        assert status == 404, (path, body)
        error = json.loads(body)
        assert error["errorCode"] == "RESOURCE_DOES_NOT_EXIST"
        assert "orders.parquet does not exist" in error["message"]


# --- tokens ---------------------------------------------------------------------------------


def test_revoked_expired_and_unknown_tokens_get_the_same_401(
    share, owner, recipient, live_server, tmp_path, client_python
):
    assert recipient.one({"op": "list_shares"}) == {"result": ["partners"]}
    expired = Recipient(
        share=share, by=owner, live_server=live_server, tmp_path=tmp_path, python=client_python
    )
    DeltaRecipient.objects.filter(pk=expired.model.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    delta_recipient_revoke(recipient=recipient.model, by=owner)

    for holder in (recipient, expired):
        answer = holder.one({"op": "load", "table": "partners.default.orders"})
        assert answer["status"] == 401, answer
    bodies = {
        recipient.http("GET", "/shares")[2],
        expired.http("GET", "/shares")[2],
        recipient.http("GET", "/shares", token="made-up-token")[2],
        recipient.http("GET", "/shares", token="")[2],
    }
    assert len(bodies) == 1
    assert json.loads(bodies.pop())["errorCode"] == "UNAUTHENTICATED"
    assert not AccessEvent.objects.filter(channel=Channel.DELTA_SHARING).exists()


def test_the_token_is_stored_hashed(recipient):
    stored = DeltaRecipient.objects.get(pk=recipient.model.pk)
    assert stored.token_hash == hashlib.sha256(recipient.token.encode()).hexdigest()
    assert recipient.token not in json.dumps(list(DeltaRecipient.objects.values()), default=str)


# --- protocol -------------------------------------------------------------------------------


def test_protocol_listings_pages_and_errors(recipient, share, owner, orders):
    delta_share_table_add(share=share, by=owner, product=orders, schema="eu", name="copy")
    status, headers, body = recipient.http("GET", "/shares/PARTNERS/all-tables?maxResults=1")
    page = json.loads(body)
    assert status == 200 and [t["name"] for t in page["items"]] == ["orders"]
    status, _, body = recipient.http(
        "GET", f"/shares/partners/all-tables?maxResults=1&pageToken={page['nextPageToken']}"
    )
    assert [t["name"] for t in json.loads(body)["items"]] == ["copy"]
    assert "nextPageToken" not in json.loads(body)
    status, _, body = recipient.http("GET", "/shares/partners/schemas")
    assert [s["name"] for s in json.loads(body)["items"]] == ["default", "eu"]
    status, _, body = recipient.http("GET", "/shares/partners/schemas/eu/tables")
    assert [t["name"] for t in json.loads(body)["items"]] == ["copy"]

    for path, code in [
        ("/shares/other", "RESOURCE_DOES_NOT_EXIST"),
        ("/shares/partners/schemas/nope/tables", "RESOURCE_DOES_NOT_EXIST"),
        ("/shares/partners/schemas/default/tables/nope/metadata", "RESOURCE_DOES_NOT_EXIST"),
        ("/shares/partners/schemas/default/tables/orders/changes", "RESOURCE_DOES_NOT_EXIST"),
        ("/shares/partners/all-tables?pageToken=forged", "INVALID_PARAMETER_VALUE"),
        ("/shares/partners/all-tables?maxResults=-1", "INVALID_PARAMETER_VALUE"),
    ]:
        status, headers, body = recipient.http("GET", path)
        assert status in (400, 404), path
        assert json.loads(body)["errorCode"] == code, path
        assert headers["Content-Type"] == "application/json"

    query = "/shares/partners/schemas/default/tables/orders/query"
    for body_sent, words in [
        ({"limitHint": -3}, "limitHint"),
        ({"version": 12}, "Version 12"),
        ({"timestamp": "2026-01-01 00:00:00"}, "timestamp"),
    ]:
        status, _, body = recipient.http("POST", query, body_sent)
        assert status == 400 and words in json.loads(body)["message"], body_sent


def test_version_metadata_and_query_shapes(recipient, media_root):
    table = "/shares/partners/schemas/default/tables/orders"
    status, headers, body = recipient.http("GET", table + "/version")
    assert status == 200 and headers["delta-table-version"] == "0" and body == b""
    status, headers, _ = recipient.http("HEAD", table)
    assert status == 200 and headers["delta-table-version"] == "0"

    status, headers, body = recipient.http("POST", table + "/query", {})
    assert status == 200
    assert headers["Content-Type"].startswith("application/x-ndjson")
    protocol, metadata, *files = [json.loads(line) for line in body.decode().splitlines()]
    assert protocol == {"protocol": {"minReaderVersion": 1}}
    schema = json.loads(metadata["metaData"]["schemaString"])
    assert [f["name"] for f in schema["fields"]] == list(ROWS)
    assert metadata["metaData"]["format"] == {"provider": "parquet"}
    (file,) = files
    assert json.loads(file["file"]["stats"]) == {"numRecords": 4}
    assert file["file"]["expirationTimestamp"] > time.time() * 1000

    # The data changes: a new version, new files.
    pq.write_table(
        pa.table({**ROWS, "amount": [1.0, 2.0, 3.0, 4.0]}), media_root / "delta/orders.parquet"
    )
    status, headers, _ = recipient.http("GET", table + "/version")
    assert headers["delta-table-version"] == "1"
    assert [row[3] for row in recipient.load()["rows"]] == [1.0, 2.0, 3.0, 4.0]


def _query_file_url(recipient) -> str:
    status, _, body = recipient.http(
        "POST", "/shares/partners/schemas/default/tables/orders/query", {}
    )
    assert status == 200
    return json.loads(body.decode().splitlines()[2])["file"]["url"]


def test_file_urls_are_signed_short_lived_and_serve_ranges(recipient, monkeypatch):
    url = _query_file_url(recipient)
    # No bearer token: the signature is the authorisation.
    status, headers, data = fetch(urllib.request.Request(url))
    assert status == 200 and int(headers["Content-Length"]) == len(data)
    assert pq.read_table(pa.BufferReader(data)).column("order_id").to_pylist() == [1, 2, 3, 4]
    status, headers, _ = fetch(urllib.request.Request(url, method="HEAD"))
    assert status == 200 and int(headers["Content-Length"]) == len(data)
    assert headers["Accept-Ranges"] == "bytes"
    status, headers, tail = fetch(urllib.request.Request(url, headers={"Range": "bytes=-8"}))
    assert status == 206 and tail == data[-8:] and tail.endswith(b"PAR1")
    assert headers["Content-Range"] == f"bytes {len(data) - 8}-{len(data) - 1}/{len(data)}"
    status, _, _ = fetch(urllib.request.Request(url, headers={"Range": f"bytes={len(data)}-"}))
    assert status == 416

    token = url.rstrip("/").rsplit("/", 1)[1]
    tampered = url.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    status, _, body = fetch(urllib.request.Request(tampered))
    assert status == 403 and json.loads(body)["errorCode"] == "PERMISSION_DENIED"

    # A URL signed 16 minutes ago has expired (URLs live 5 minutes).
    payload = signing.loads(token, salt="sharing.delta_sharing.file")
    sixteen_minutes_ago = time.time() - 16 * 60
    with monkeypatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: sixteen_minutes_ago)
        old = signing.dumps(payload, salt="sharing.delta_sharing.file")
    status, _, body = fetch(urllib.request.Request(url.replace(token, old)))
    assert status == 403 and "expired" in json.loads(body)["message"]

    # A snapshot pruned from the cache: gone.
    gone = signing.dumps({**payload, "f": "part-00099.parquet"}, salt="sharing.delta_sharing.file")
    status, _, body = fetch(urllib.request.Request(url.replace(token, gone)))
    assert status == 404


def test_profile_file_shape(recipient):
    profile = recipient.profile
    assert set(profile) == {"shareCredentialsVersion", "endpoint", "bearerToken", "expirationTime"}
    assert profile["shareCredentialsVersion"] == 1
    assert profile["endpoint"].endswith("/delta-sharing/")
    expires = datetime.fromisoformat(profile["expirationTime"].replace("Z", "+00:00"))
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert date.today() < expires.date()
