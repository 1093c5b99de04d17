"""Delta Sharing management: who may create shares, add tables and recipients (API and
pages, the same services), what is refused and why, tokens shown once and stored
hashed; and the Delta types the serving side writes."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from decimal import Decimal
from urllib.parse import unquote

import pyarrow as pa
import pytest
from django.urls import reverse
from django.utils import timezone

from products.choices import MembershipRole
from sharing.delta_sharing.parquet_parts import Conformer
from sharing.delta_sharing.protocol import delta_type_for_name
from sharing.delta_sharing.services import delta_share_create, delta_share_table_add
from sharing.models import DeltaRecipient, DeltaShare, DeltaShareTable
from tests.factories import PASSWORD, DomainFactory, MembershipFactory, parquet_product

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "email": ["a@x", "b@x", None, "d@x"],
    "amount": [10.5, 20.0, 30.25, 40.0],
}
API = "/api/v1/delta-shares/"


@pytest.fixture
def orders(domain, media_root):
    return parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="delta-manage/orders.parquet"
    )


@pytest.fixture
def other_product(media_root):
    """A product of another domain, which the Sales owner does not manage."""
    return parquet_product(
        media_root=media_root,
        domain=DomainFactory(name="Finance", slug="finance"),
        rows=ROWS,
        file_path="delta-manage/ledger.parquet",
        name="Ledger",
        slug="ledger",
    )


@pytest.fixture
def share(owner, orders):
    share = delta_share_create(by=owner, name="partners")
    delta_share_table_add(share=share, by=owner, product=orders)
    return share


def _login(api_client, user):
    api_client.force_authenticate(user)
    return api_client


# --- API: four ways ---------------------------------------------------------------------------


def test_anonymous_is_refused(api_client, share):
    assert api_client.get(API).status_code in (401, 403)
    assert api_client.post(API, {"name": "x"}, format="json").status_code in (401, 403)


def test_people_managing_no_domain_cannot_create_shares(api_client, outsider, member):
    for user in (outsider, member):
        response = _login(api_client, user).post(API, {"name": "mine"}, format="json")
        assert response.status_code == 403, user
        assert "owners, stewards and admins" in response.json()["detail"]
    assert not DeltaShare.objects.exists()


def test_an_owner_creates_a_share_adds_a_table_and_a_recipient(api_client, owner, orders):
    client = _login(api_client, owner)
    response = client.post(API, {"name": "Partners", "description": "For Acme."}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "partners"  # protocol names are case-insensitive

    response = client.post(
        API + "partners/tables/",
        {
            "product": "sales.orders",
            "schema": "eu",
            "columns": ["order_id", "country"],
            "row_filter": [{"column": "country", "op": "=", "value": "BE"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["address"] == "partners.eu.orders"
    assert response.json()["port"] == "orders"

    response = client.post(API + "partners/recipients/", {"name": "Acme"}, format="json")
    assert response.status_code == 201, response.json()
    assert response["Cache-Control"] == "no-store"
    profile = response.json()["profile"]
    assert profile["shareCredentialsVersion"] == 1
    assert profile["endpoint"] == "http://testserver/delta-sharing/"
    recipient = DeltaRecipient.objects.get()
    # The token is shown once and stored as its SHA-256 only.
    assert recipient.token_hash == hashlib.sha256(profile["bearerToken"].encode()).hexdigest()
    assert profile["bearerToken"] not in json.dumps(
        list(DeltaRecipient.objects.values()), default=str
    )
    assert len(profile["bearerToken"]) >= 43
    assert abs(recipient.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    detail = client.get(API + "partners/").json()
    assert [t["address"] for t in detail["tables"]] == ["partners.eu.orders"]
    assert [r["name"] for r in detail["recipients"]] == ["Acme"]
    assert "bearerToken" not in json.dumps(detail) and "token_hash" not in json.dumps(detail)

    response = client.post(API + f"partners/recipients/{recipient.pk}/revoke/")
    assert response.status_code == 200 and response.json()["active"] is False
    assert client.post(API + f"partners/recipients/{recipient.pk}/revoke/").status_code == 400


def test_a_table_of_a_product_you_do_not_manage_is_refused(api_client, owner, share, other_product):
    response = _login(api_client, owner).post(
        API + "partners/tables/", {"product": "finance.ledger"}, format="json"
    )
    assert response.status_code == 403
    assert "finance.ledger" in response.json()["detail"]
    assert share.tables.count() == 1


def test_someone_elses_share_is_not_found(api_client, steward, share):
    client = _login(api_client, steward)
    assert client.get(API + "partners/").status_code == 404
    response = client.post(API + "partners/recipients/", {"name": "x"}, format="json")
    assert response.status_code == 404
    assert client.get(API).json()["results"] == []


def test_admins_see_and_manage_every_share(api_client, admin_user, share):
    client = _login(api_client, admin_user)
    assert [s["name"] for s in client.get(API).json()["results"]] == ["partners"]
    response = client.post(API + "partners/recipients/", {"name": "Ops"}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"product": "sales.orders", "columns": ["nope"]}, "columns", "nope"),
        ({"product": "sales.orders", "row_filter": "not json"}, "row_filter", "not valid JSON"),
        (
            {"product": "sales.orders", "row_filter": [{"column": "ghost", "op": "=", "value": 1}]},
            "row_filter",
            "ghost",
        ),
        ({"product": "sales.orders", "port": "nope"}, "port", "nope"),
        ({"product": "sales.orders", "name": "has.dot"}, "name", "not a valid name"),
        ({"product": "sales.orders"}, "name", "already"),  # the share has default.orders
        ({"product": "nowhere.nothing"}, "product", "nowhere.nothing"),
        ({"product": "sales.orders", "colour": "red"}, "colour", "cannot be set"),
    ],
)
def test_bad_table_input_names_the_field(api_client, owner, share, body, field, words):
    response = _login(api_client, owner).post(API + "partners/tables/", body, format="json")
    assert response.status_code == 400, response.json()
    assert words in " ".join(response.json()[field])
    assert share.tables.count() == 1


@pytest.mark.parametrize(
    "expires_at, words",
    [
        (timezone.now() - timedelta(hours=1), "in the past"),
        (timezone.now() + timedelta(days=366), "At most 365 days"),
    ],
)
def test_recipient_expiry_is_bounded(api_client, owner, share, expires_at, words):
    response = _login(api_client, owner).post(
        API + "partners/recipients/",
        {"name": "Acme", "expires_at": expires_at.isoformat()},
        format="json",
    )
    assert response.status_code == 400
    assert words in " ".join(response.json()["expires_at"])
    assert not DeltaRecipient.objects.exists()


def test_a_table_the_creator_cannot_read_is_refused(api_client, admin_user, orders, db):
    marketer = MembershipFactory(
        domain=DomainFactory(name="Marketing", slug="marketing"), role=MembershipRole.OWNER
    ).user
    share = delta_share_create(by=marketer, name="campaigns")
    response = _login(api_client, admin_user).post(
        API + "campaigns/tables/", {"product": "sales.orders"}, format="json"
    )
    assert response.status_code == 400
    assert "cannot share this" in " ".join(response.json()["detail"])
    assert not share.tables.exists()


def test_the_share_list_has_a_constant_number_of_queries(
    api_client, admin_user, orders, django_assert_max_num_queries
):
    for index in range(5):
        share = delta_share_create(by=admin_user, name=f"share-{index}")
        delta_share_table_add(share=share, by=admin_user, product=orders)
    client = _login(api_client, admin_user)
    with django_assert_max_num_queries(4):
        response = client.get(API)
    assert response.json()["count"] == 5
    assert {s["table_count"] for s in response.json()["results"]} == {1}
    with django_assert_max_num_queries(6):
        assert len(client.get(API + "share-1/").json()["tables"]) == 1


def test_deleting_a_share_removes_its_tables_and_recipients(api_client, owner, share):
    client = _login(api_client, owner)
    client.post(API + "partners/recipients/", {"name": "Acme"}, format="json")
    assert client.delete(API + "partners/").status_code == 204
    assert not DeltaShare.objects.exists() and not DeltaRecipient.objects.exists()
    assert not DeltaShareTable.objects.exists()


# --- pages ------------------------------------------------------------------------------------


def test_the_page_lists_shares_and_creates_one(
    client, owner, orders, django_assert_max_num_queries
):
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("sharing:delta-share-list")
    page = client.get(url)
    assert page.status_code == 200
    assert b"No shares yet" in page.content and b'id="create-share"' in page.content
    response = client.post(url, {"name": "bad name!"})
    assert response.status_code == 400 and b"not a valid name" in response.content
    response = client.post(url, {"name": "partners", "description": "Acme"})
    assert response.status_code == 302
    assert response["Location"] == reverse("sharing:delta-share-detail", args=["partners"])
    for index in range(4):
        delta_share_create(by=owner, name=f"more-{index}")
    with django_assert_max_num_queries(8):
        page = client.get(url)
    assert page.content.count(b"delta-shares/more-") == 4


def test_people_who_cannot_share_are_told_who_can(client, outsider):
    client.login(username=outsider.username, password=PASSWORD)
    page = client.get(reverse("sharing:delta-share-list"))
    assert page.status_code == 200
    assert b"ask an owner of the product" in page.content
    assert b'id="create-share"' not in page.content
    assert client.post(reverse("sharing:delta-share-list"), {"name": "x"}).status_code == 403


def test_the_share_page_adds_tables_and_offers_the_profile_once(client, owner, orders, share):
    client.login(username=owner.username, password=PASSWORD)
    detail = reverse("sharing:delta-share-detail", args=["partners"])
    page = client.get(detail)
    assert page.status_code == 200
    assert b"partners.default.orders" in page.content
    port = orders.ports.get()

    response = client.post(
        reverse("sharing:delta-share-table-add", args=["partners"]),
        {
            "table-port": port.pk,
            "table-schema": "eu",
            "table-name": "belgium",
            "table-columns": "order_id, nope",
        },
    )
    assert response.status_code == 400 and b"nope" in response.content
    response = client.post(
        reverse("sharing:delta-share-table-add", args=["partners"]),
        {
            "table-port": port.pk,
            "table-schema": "eu",
            "table-name": "belgium",
            "table-columns": "order_id, country",
            "table-row_filter": '[{"column": "country", "op": "=", "value": "BE"}]',
        },
    )
    assert response.status_code == 302
    table = share.tables.get(name="belgium")
    assert table.columns == ["order_id", "country"] and table.row_filter[0]["value"] == "BE"

    create = reverse("sharing:delta-recipient-create", args=["partners"])
    too_far = (timezone.localdate() + timedelta(days=400)).isoformat()
    response = client.post(create, {"recipient-name": "Acme", "recipient-expires_on": too_far})
    assert response.status_code == 400 and b"At most 365 days" in response.content
    response = client.post(
        create,
        {
            "recipient-name": "Acme",
            "recipient-expires_on": (timezone.localdate() + timedelta(days=10)).isoformat(),
        },
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert b"the only time it is shown" in response.content
    href = response.content.decode().split('id="profile-download" href="', 1)[1].split('"', 1)[0]
    assert href.startswith("data:application/json;charset=utf-8,")
    profile = json.loads(unquote(href.split(",", 1)[1].replace("&amp;", "&")))
    recipient = DeltaRecipient.objects.get()
    assert recipient.token_hash == hashlib.sha256(profile["bearerToken"].encode()).hexdigest()
    assert profile["endpoint"] == "http://testserver/delta-sharing/"

    # Afterwards the share page never shows the token again, only its first characters.
    page = client.get(detail)
    assert profile["bearerToken"].encode() not in page.content
    assert recipient.token_hint.encode() in page.content
    response = client.post(
        reverse("sharing:delta-recipient-revoke", args=["partners", recipient.pk])
    )
    assert response.status_code == 302
    recipient.refresh_from_db()
    assert recipient.revoked_at is not None and recipient.revoked_by == owner


def test_someone_elses_share_page_is_not_found(client, steward, share):
    client.login(username=steward.username, password=PASSWORD)
    assert client.get(reverse("sharing:delta-share-detail", args=["partners"])).status_code == 404


# --- Delta types ------------------------------------------------------------------------------


def test_arrow_types_become_delta_types_and_what_has_none_becomes_text():
    values = {
        "small": pa.array([1], pa.int16()),
        "big": pa.array([2**40], pa.int64()),
        "unsigned": pa.array([2**63], pa.uint64()),
        "ratio": pa.array([0.5], pa.float32()),
        "price": pa.array([Decimal("1.25")], pa.decimal128(9, 2)),
        "day": pa.array([timezone.localdate()], pa.date32()),
        "at": pa.array([1_700_000_000_000_000_000], pa.timestamp("ns", tz="Europe/Brussels")),
        "naive": pa.array([1_700_000_000_000_000], pa.timestamp("us")),
        "flag": pa.array([True], pa.bool_()),
        "tags": pa.array([["a", "b"]], pa.list_(pa.string())),
        "code": pa.array(["x"]).dictionary_encode(),
        "id": pa.ExtensionArray.from_storage(
            pa.uuid(), pa.array([uuid.UUID(int=1).bytes], pa.binary(16))
        ),
        "wait": pa.array([pa.MonthDayNano([0, 1, 0])], pa.month_day_nano_interval()),
        "nested": pa.array([{"k": [1, 2]}], pa.struct([("k", pa.list_(pa.int64()))])),
    }
    batch = pa.RecordBatch.from_pydict(values)
    conformer = Conformer(batch.schema, {"price": "Unit price, EUR."})
    types = {f["name"]: f["type"] for f in conformer.delta_schema["fields"]}
    assert types == {
        "small": "short",
        "big": "long",
        "unsigned": "decimal(20,0)",
        "ratio": "float",
        "price": "decimal(9,2)",
        "day": "date",
        "at": "timestamp",
        "naive": "timestamp",
        "flag": "boolean",
        "tags": {"type": "array", "elementType": "string", "containsNull": True},
        "code": "string",
        "id": "string",
        "wait": "string",
        "nested": {
            "type": "struct",
            "fields": [
                {
                    "name": "k",
                    "type": {"type": "array", "elementType": "long", "containsNull": True},
                    "nullable": True,
                    "metadata": {},
                }
            ],
        },
    }
    assert conformer.delta_schema["fields"][4]["metadata"] == {"comment": "Unit price, EUR."}
    row = conformer.conform(batch).to_pylist()[0]
    assert row["unsigned"] == Decimal(2**63)
    assert row["id"] == "00000000-0000-0000-0000-000000000001"
    assert row["code"] == "x" and row["tags"] == ["a", "b"]
    # Delta timestamps are instants: UTC, a naive one taken as UTC.
    assert str(row["at"].tzinfo) == "UTC" and str(row["naive"].tzinfo) == "UTC"
    assert row["naive"].isoformat() == "2023-11-14T22:13:20+00:00"
    assert row["at"].isoformat() == "2023-11-14T22:13:20+00:00"
    assert "1" in row["wait"]


@pytest.mark.parametrize(
    "declared, delta",
    [
        ("numeric(12,2)", "decimal(12,2)"),
        ("DECIMAL(18,3)", "decimal(18,3)"),
        ("double precision", "double"),
        ("timestamp with time zone", "timestamp"),
        ("TIMESTAMP", "timestamp"),
        ("character varying(20)", "string"),
        ("BIGINT", "long"),
        ("smallint", "short"),
        ("jsonb", "string"),
        ("", "string"),
    ],
)
def test_declared_types_map_for_empty_tables(declared, delta):
    assert delta_type_for_name(declared) == delta


def test_the_share_page_takes_column_names_verbatim(client, owner, domain, media_root, share):
    """Names typed in the columns box are split on commas and line breaks; each is taken
    as written when the port has a column so named (a leading space is part of " c"),
    else without the spaces around it ("a, b" still means a and b)."""
    product = parquet_product(
        media_root=media_root,
        domain=domain,
        rows={"a": [1], "b": [2], " c": [3], "d ": [4]},
        file_path="delta-manage/spaced.parquet",
        name="Spaced",
        slug="spaced",
    )
    port = product.ports.get()
    client.login(username=owner.username, password=PASSWORD)
    add = reverse("sharing:delta-share-table-add", args=["partners"])

    def added(name: str, typed: str) -> list[str]:
        response = client.post(
            add, {"table-port": port.pk, "table-name": name, "table-columns": typed}
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        return share.tables.get(name=name).columns

    assert added("trimmed", "a, b") == ["a", "b"]
    assert added("verbatim", "a, c,d ") == ["a", " c", "d "]
    assert added("lines", " c\r\nd \n\na") == [" c", "d ", "a"]
    response = client.post(add, {"table-port": port.pk, "table-name": "x", "table-columns": "a,c"})
    assert response.status_code == 400 and b"Unknown column(s) of this port: c." in response.content
