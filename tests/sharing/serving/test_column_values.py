"""A column's few distinct values for the row-filter builder (GET .../column-values/):
read through read_plan like any read, so each kind of reader gets what their access
allows, masked columns offer nothing, and the read is audited."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sharing.models import AccessEvent
from sharing.serving.column_values import FEW_VALUES
from tests.factories import ColumnFactory, FilePortFactory
from tests.sharing.readers import make_reader

VALUES = "/products/sales/orders/column-values/"


def test_anonymous_is_sent_to_sign_in(client, orders):
    response = client.get(VALUES, {"column": "country"})
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("kind", ["outsider", "expired", "revoked"])
def test_without_access_no_values(client, orders, kind):
    client.force_login(make_reader(kind, orders))
    response = client.get(VALUES, {"column": "country"})
    assert response.status_code == 403
    assert "BE" not in response.content.decode()
    assert not AccessEvent.objects.filter(action="read").exists()


def test_owner_gets_every_value_sorted_and_the_read_is_audited(client, orders):
    client.force_login(make_reader("owner", orders))
    response = client.get(VALUES, {"column": "country"})
    assert response.status_code == 200 and response.json() == {"values": ["BE", "FR", "NL"]}
    assert client.get(VALUES, {"column": "email"}).json() == {"values": ["a@x", "b@x", "d@x"]}
    assert client.get(VALUES, {"column": "amount", "port": "orders"}).json() == {
        "values": [10.0, 20.0, 30.0, 40.0]
    }
    event = AccessEvent.objects.filter(action="read").order_by("at").first()
    assert event.columns == ["country"] and event.detail["format"] == "distinct values"


def test_a_narrow_grant_gets_only_its_rows_and_columns(client, orders):
    client.force_login(make_reader("narrow_grant", orders))  # country = BE; 3 columns
    assert client.get(VALUES, {"column": "country"}).json() == {"values": ["BE"]}
    assert client.get(VALUES, {"column": "order_id"}).json() == {"values": [1, 3]}
    outside = client.get(VALUES, {"column": "iban"})
    assert outside.status_code == 403 and "BE01" not in outside.content.decode()


def test_masked_columns_offer_no_values(client, orders):
    client.force_login(make_reader("full_grant", orders))  # email and iban masked
    assert client.get(VALUES, {"column": "email"}).json() == {"values": None}
    assert client.get(VALUES, {"column": "country"}).json() == {"values": ["BE", "FR", "NL"]}


def test_unknown_column_or_port(client, orders):
    client.force_login(make_reader("owner", orders))
    response = client.get(VALUES, {"column": "nope"})
    assert response.status_code == 400 and "Unknown column" in response.json()["error"]
    assert client.get(VALUES, {"column": "country", "port": "nope"}).status_code == 404


def test_many_values_are_not_offered(client, orders, media_root):
    path = media_root / "matrix" / "customers.parquet"
    pq.write_table(
        pa.table({"customer": [f"c{n:03}" for n in range(FEW_VALUES + 1)], "tier": ["a"] * 31}),
        path,
    )
    port = FilePortFactory(
        product=orders, name="Customers", slug="customers", file_path="matrix/customers.parquet"
    )
    ColumnFactory(port=port, name="customer", position=0, data_type="VARCHAR")
    ColumnFactory(port=port, name="tier", position=1, data_type="VARCHAR")
    client.force_login(make_reader("owner", orders))
    assert client.get(VALUES, {"column": "customer"}).json() == {"values": None}
    assert client.get(VALUES, {"column": "tier"}).json() == {"values": ["a"]}
