"""Who reads what, on every data path: the API in each format, the Data tab's preview and
the download, for every kind of reader. Each case checks the status, the exact columns and
rows served, masking, and that the audit holds exactly one event per read served (none
for a refused read)."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from sharing.models import AccessEvent, AccessGrant
from tests.factories import (
    ColumnFactory,
    ProductFactory,
)
from tests.sharing.readers import (
    ALL,
    API,
    DOWNLOAD,
    NARROW_COLUMNS,
    NARROW_FILTER,
    PAGE,
    ROWS,
    make_reader,
)
from tests.sharing.readers import SERVING_ROWS as PG_ROWS

PATHS = ["api-csv", "api-json", "api-parquet", "api-arrow", "preview", "download-csv",
         "download-parquet"]  # fmt: skip
READERS = ["admin", "owner", "member", "full_grant", "narrow_grant", "no_grant", "expired",
           "revoked", "anonymous"]  # fmt: skip


def rows_of(source: dict, columns: list[str], *, where=None, masked=()) -> list[dict]:
    """The rows a reader should get: `columns` of the rows passing `where`, masked
    values `****` (a null stays null)."""
    out = []
    for index in range(len(source["order_id"])):
        row = {name: source[name][index] for name in source}
        if where and not where(row):
            continue
        out.append(
            {
                name: ("****" if name in masked and row[name] is not None else row[name])
                for name in columns
            }
        )
    return out


EXPECTED = {
    "admin": rows_of(ROWS, ALL),
    "owner": rows_of(ROWS, ALL),
    "member": rows_of(ROWS, ALL),
    "full_grant": rows_of(ROWS, ALL, masked={"email", "iban"}),
    "narrow_grant": rows_of(ROWS, NARROW_COLUMNS, where=lambda r: r["country"] == "BE"),
}
DENIED_REASON = {
    "no_grant": "no access",
    "expired": "expired",
    "revoked": "revoked",
}


def table_rows(fmt: str, body: bytes) -> tuple[list[str], list[dict]]:
    if fmt == "csv":
        options = pa_csv.ConvertOptions(strings_can_be_null=True)
        table = pa_csv.read_csv(io.BytesIO(body), convert_options=options)
    elif fmt == "parquet":
        table = pq.read_table(io.BytesIO(body))
    elif fmt == "arrow":
        table = pa.ipc.open_stream(body).read_all()
    else:
        rows = json.loads(body)
        return (list(rows[0]) if rows else []), rows
    return table.column_names, table.to_pylist()


def read(client, path: str, headers: dict | None = None, **params):
    """GET a data path; returns (response, columns, rows) with the rows parsed from the
    body (streamed files) or the page's preview table."""
    kind, _, fmt = path.partition("-")
    url = {"api": API, "preview": PAGE, "download": DOWNLOAD}[kind]
    if fmt:
        params.setdefault("format", fmt)
    response = client.get(url, params, **(headers or {}))
    if response.status_code != 200:
        return response, None, None
    if kind == "preview":
        if "columns" not in response.context:
            return response, None, None
        columns = [column["name"] for column in response.context["columns"]]
        return (
            response,
            columns,
            [dict(zip(columns, row, strict=True)) for row in response.context["rows"]],
        )
    columns, rows = table_rows(fmt, b"".join(response.streaming_content))
    return response, columns, rows


def signed_in(client, user):
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", READERS)
def test_authorization_matrix(client, orders, path, kind):
    user = make_reader(kind, orders)
    response, columns, rows = read(signed_in(client, user), path)

    if kind in EXPECTED:
        assert response.status_code == 200
        expected = EXPECTED[kind]
        assert columns == list(expected[0])
        assert rows == expected
        event = AccessEvent.objects.get()
        assert event.user == user
        assert event.rows == len(expected)
        assert event.columns == columns
        assert (
            event.channel
            == {"api": "api", "preview": "preview", "download": "download"}[path.partition("-")[0]]
        )
        assert event.client_address == "127.0.0.1"
        if path != "preview":
            ext = {"arrow": "arrows"}.get(path.partition("-")[2], path.partition("-")[2])
            assert response["Content-Disposition"] == f'attachment; filename="sales.orders.{ext}"'
        return

    assert not AccessEvent.objects.exists()
    if kind == "anonymous":
        if path.startswith("api"):
            assert response.status_code == 401
        else:  # pages send the visitor to sign in first
            assert response.status_code == 302
            assert response["Location"].startswith("/login/")
        return
    reason = DENIED_REASON[kind]
    if path.startswith("api"):
        assert response.status_code == 403
        assert reason in response.json()["detail"]
    elif path == "preview":
        assert response.status_code == 200
        html = response.content.decode()
        assert reason in html
        assert f"{orders.get_absolute_url()}access/#request-access" in html
        assert "<table" not in html
    else:
        assert response.status_code == 403
        assert reason in response.content.decode()


# --- bad input and injection attempts ------------------------------------------------


@pytest.fixture
def narrow(client, orders):
    """Signed in as a grantee reading order_id, country and email of Belgian orders."""
    user = make_reader("narrow_grant", orders)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "value",
    ["BE' OR '1'='1", "BE'; DROP TABLE sharing_accessevent; --", 'BE" OR "1"="1', "%"],
)
def test_injection_in_filter_values_is_a_plain_value(narrow, value):
    clause = [{"column": "country", "op": "=", "value": value}]
    response, columns, rows = read(narrow, "api-json", filter=json.dumps(clause))
    assert response.status_code == 200
    assert rows == []  # no country equals that text; the grant's filter still holds
    event = AccessEvent.objects.get()  # the audit table is still there
    assert {"column": "country", "op": "=", "value": value} in event.row_filter


def test_injection_in_an_in_list_is_plain_values(narrow):
    clause = [{"column": "country", "op": "in", "value": ["NL') OR ('1'='1", "BE"]}]
    response, _, rows = read(narrow, "api-json", filter=json.dumps(clause))
    assert response.status_code == 200
    assert [row["order_id"] for row in rows] == [1, 3]


@pytest.mark.parametrize(
    "columns",
    [
        "order_id; DROP TABLE sharing_accessevent",
        'order_id" FROM x --',
        "order_id,(SELECT 1)",
        "*",
    ],
)
def test_injection_in_column_names_is_refused(narrow, columns):
    response, _, _ = read(narrow, "api-csv", columns=columns)
    assert response.status_code == 400
    assert "Unknown column(s)" in response.json()["detail"]
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize(
    "clause, words",
    [
        ({"column": "country\" = 'BE' OR 1=1 --", "op": "=", "value": "x"}, "unknown column"),
        ({"column": "country", "op": "= 'BE' OR 1=1 --", "value": "x"}, "is not one of"),
        ({"column": "country", "op": "LIKE", "value": "%"}, "is not one of"),
        ({"column": "country", "op": "=", "value": {"$ne": 1}}, "takes one value"),
        ({"column": "country", "op": "in", "value": "BE"}, "takes a list"),
        ({"op": "=", "value": "BE"}, "needs a column name"),
    ],
)
def test_malformed_or_hostile_filters_are_refused_saying_why(narrow, clause, words):
    response, _, _ = read(narrow, "api-csv", filter=json.dumps([clause]))
    assert response.status_code == 400
    assert words in response.json()["detail"]
    assert not AccessEvent.objects.exists()


def test_filter_that_is_not_json_says_so(narrow):
    response, _, _ = read(narrow, "api-csv", filter="country = 'BE'")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


@pytest.mark.parametrize("port", ["orders' OR '1'='1", "../orders", "orders;--"])
def test_injection_in_port_is_an_unknown_port(narrow, port):
    response, _, _ = read(narrow, "api-csv", port=port)
    assert response.status_code == 404
    assert "no output port" in response.json()["detail"]
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize("fmt", ["csv;DROP TABLE x", "xml", "../../etc/passwd", "CSV "])
def test_unknown_format_is_refused(narrow, fmt):
    response = narrow.get(API, {"format": fmt})
    assert response.status_code == 400
    assert "Unknown format" in response.json()["detail"]
    response = narrow.get(DOWNLOAD, {"format": fmt})
    assert response.status_code == 400
    assert not AccessEvent.objects.exists()


def test_unknown_column_is_400_naming_it(narrow):
    response, _, _ = read(narrow, "api-csv", columns="order_id,colour")
    assert response.status_code == 400
    assert "colour" in response.json()["detail"]


def test_columns_and_filters_outside_the_grant_are_403(narrow):
    response, _, _ = read(narrow, "api-csv", columns="order_id,amount")
    assert response.status_code == 403
    assert "amount" in response.json()["detail"]
    clause = [{"column": "amount", "op": ">", "value": 1}]
    response, _, _ = read(narrow, "api-csv", filter=json.dumps(clause))
    assert response.status_code == 403
    assert "amount" in response.json()["detail"]
    assert not AccessEvent.objects.exists()


def test_filter_on_a_masked_column_is_403(client, orders):
    client.force_login(make_reader("full_grant", orders))
    clause = [{"column": "iban", "op": "=", "value": "BE01"}]
    response, _, _ = read(client, "api-csv", filter=json.dumps(clause))
    assert response.status_code == 403
    assert "masked" in response.json()["detail"]


@pytest.mark.parametrize("limit", ["ten", "1.5", "1e3", "0x10"])
def test_non_integer_limit_is_400(narrow, limit):
    response = narrow.get(API, {"limit": limit})
    assert response.status_code == 400
    assert "integer" in response.json()["detail"]


def test_negative_limit_is_400(narrow):
    response = narrow.get(API, {"limit": "-1"})
    assert response.status_code == 400


def test_limit_above_the_maximum_is_clamped_and_said_in_a_header(narrow):
    from sharing.serving.reads import MAX_ROWS

    response, _, rows = read(narrow, "api-json", limit=str(MAX_ROWS * 10))
    assert response.status_code == 200
    assert response["X-Limit-Clamped"] == str(MAX_ROWS)
    assert len(rows) == 2
    response, _, rows = read(narrow, "api-json", limit="1")
    assert "X-Limit-Clamped" not in response
    assert [row["order_id"] for row in rows] == [1]


def test_columns_filter_and_limit_narrow_the_read(client, orders):
    client.force_login(make_reader("member", orders))
    clause = [
        {"column": "amount", "op": ">=", "value": 20},
        {"column": "email", "op": "is not null"},
    ]
    response, columns, rows = read(
        client, "api-arrow", columns="amount, order_id", filter=json.dumps(clause), limit="5"
    )
    assert response.status_code == 200
    assert columns == ["amount", "order_id"]
    assert rows == [{"amount": 20.0, "order_id": 2}, {"amount": 40.0, "order_id": 4}]


# --- revocation and expiry, the very next request ----------------------------------------


def test_revocation_takes_effect_on_the_next_request(client, orders):
    user = make_reader("full_grant", orders)
    client.force_login(user)
    assert read(client, "api-csv")[0].status_code == 200
    AccessGrant.objects.filter(user=user).update(revoked_at=timezone.now())
    response, _, _ = read(client, "api-csv")
    assert response.status_code == 403
    assert "revoked" in response.json()["detail"]
    assert read(client, "download-csv")[0].status_code == 403
    assert "revoked" in read(client, "preview")[0].content.decode()
    assert AccessEvent.objects.count() == 1  # the one read served before


def test_expiry_takes_effect_on_the_next_request(client, orders):
    user = make_reader("narrow_grant", orders)
    client.force_login(user)
    assert read(client, "download-parquet")[0].status_code == 200
    AccessGrant.objects.filter(user=user).update(expires_at=timezone.now())
    response, _, _ = read(client, "api-parquet")
    assert response.status_code == 403
    assert "expired" in response.json()["detail"]
    assert AccessEvent.objects.count() == 1


# --- who and how: products one may not see, tokens, channels, addresses ------------------


def test_a_product_one_may_not_see_is_404_like_a_missing_one(client, orders, domain):
    from products.choices import LifecycleStatus

    ProductFactory(domain=domain, slug="secret", status=LifecycleStatus.DRAFT)
    client.force_login(make_reader("no_grant", orders))
    hidden = client.get("/api/v1/products/sales.secret/data/")
    missing = client.get("/api/v1/products/sales.nothing/data/")
    assert hidden.status_code == missing.status_code == 404
    assert client.get("/products/sales/secret/data/").status_code == 404
    assert client.get("/products/sales/secret/download/").status_code == 404


def test_token_auth_and_the_notebook_channel(orders, api_client):
    from knox.models import AuthToken

    user = make_reader("narrow_grant", orders)
    _, token = AuthToken.objects.create(user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api_client.get(API, {"format": "arrow"}, HTTP_X_PORTAL_CLIENT="notebook")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apache.arrow.stream"
    _, rows = table_rows("arrow", b"".join(response.streaming_content))
    assert rows == EXPECTED["narrow_grant"]
    assert AccessEvent.objects.get().channel == "notebook"
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert api_client.get(API).status_code == 401


def test_the_audit_records_the_peer_not_a_forwarded_address(narrow):
    read(narrow, "api-csv")
    read(
        narrow,
        "api-json",
        headers={"HTTP_X_FORWARDED_FOR": "203.0.113.9", "REMOTE_ADDR": "10.1.2.3"},
    )
    addresses = list(AccessEvent.objects.order_by("pk").values_list("client_address", flat=True))
    assert addresses == ["127.0.0.1", "10.1.2.3"]


def test_each_read_served_is_one_audit_event(narrow):
    for path in PATHS:
        read(narrow, path)
    read(narrow, "api-csv", columns="amount")  # refused
    read(narrow, "api-csv", format="xml")  # refused
    events = AccessEvent.objects.order_by("pk")
    assert [event.channel for event in events] == ["api"] * 4 + ["preview"] + ["download"] * 2
    assert [event.rows for event in events] == [2] * 7
    assert all(event.row_filter == NARROW_FILTER for event in events)


# --- PostgreSQL: the same rules pushed down to a table ----------------------------------


PG_READERS = ["admin", "full_grant", "narrow_grant", "no_grant", "anonymous"]


@pytest.fixture
def pg_orders(pg_product):
    """The rows of the shared pg_product (tests/conftest.py), in a PostgreSQL table."""
    return pg_product, PG_ROWS


@pytest.mark.parametrize("fmt", ["csv", "arrow"])
@pytest.mark.parametrize("kind", PG_READERS)
def test_postgres_matrix(client, pg_orders, kind, fmt):
    product, source = pg_orders
    user = make_reader(kind, product)
    response = signed_in(client, user).get(f"/api/v1/products/{product.key}/data/", {"format": fmt})
    if kind in ("no_grant", "anonymous"):
        assert response.status_code == (401 if kind == "anonymous" else 403)
        assert not AccessEvent.objects.exists()
        return
    assert response.status_code == 200
    columns, rows = table_rows(fmt, b"".join(response.streaming_content))
    expected = {
        "admin": rows_of(source, list(source)),
        "full_grant": rows_of(source, list(source), masked={"email"}),
        "narrow_grant": rows_of(source, NARROW_COLUMNS, where=lambda r: r["country"] == "BE"),
    }[kind]
    assert columns == list(expected[0])
    assert rows == expected
    assert AccessEvent.objects.get().rows == len(expected)


def test_postgres_injection_in_values_is_a_plain_value(client, pg_orders):
    product, _ = pg_orders
    client.force_login(make_reader("admin", product))
    clause = [{"column": "country", "op": "=", "value": "BE'; DROP TABLE serving_test.orders; --"}]
    url = f"/api/v1/products/{product.key}/data/"
    response = client.get(url, {"filter": json.dumps(clause)})
    assert response.status_code == 200
    assert table_rows("csv", b"".join(response.streaming_content))[1] == []
    response = client.get(url, {"format": "arrow"})
    _, rows = table_rows("arrow", b"".join(response.streaming_content))
    assert len(rows) == 4  # the table is still there, whole


# --- a port pointing at what its source does not have: 404, not a server error ----------


@pytest.mark.parametrize("fmt", ["csv", "arrow", "json"])
def test_a_port_moved_to_a_missing_table_answers_404_naming_it(client, pg_orders, fmt):
    # Found by the API fuzz: an editor's PATCH moved the port to a table that does not
    # exist, and every read answered 502 as if the source were down.
    product, _ = pg_orders
    client.force_login(make_reader("owner", product))
    moved = client.patch(
        f"/api/v1/products/{product.key}/ports/orders/",
        {"table_name": "orders_moved"},  # in its own schema: the metadata's is refused
        content_type="application/json",
    )
    assert moved.status_code == 200
    response = client.get(f"/api/v1/products/{product.key}/data/", {"format": fmt})
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "orders_moved" in detail and "owners and stewards" in detail
    page = client.get(f"/products/{product.domain.slug}/{product.slug}/download/")
    assert page.status_code == 404


@pytest.mark.parametrize("fmt", ["csv", "arrow"])
def test_a_known_column_missing_from_the_table_answers_404(client, pg_orders, fmt):
    product, _ = pg_orders
    port = product.ports.get()
    ColumnFactory(port=port, name="discount", position=9)
    client.force_login(make_reader("admin", product))
    response = client.get(
        f"/api/v1/products/{product.key}/data/", {"format": fmt, "columns": "discount"}
    )
    assert response.status_code == 404
    assert "discount" in response.json()["detail"]


def test_a_file_port_whose_file_is_gone_answers_404(client, orders, media_root):
    (media_root / "matrix" / "orders.parquet").unlink()
    client.force_login(make_reader("admin", orders))
    response = client.get(API, {"format": "csv"})
    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"]


def test_a_source_that_cannot_be_reached_is_still_a_502(client, pg_orders):
    product, _ = pg_orders
    source = product.ports.get().source
    source.port = 1  # nothing listens there
    source.save()
    client.force_login(make_reader("admin", product))
    response = client.get(f"/api/v1/products/{product.key}/data/")
    assert response.status_code == 502
    assert "Cannot connect" in response.json()["detail"]
