"""`POST /api/v1/query/` and `/api/v1/query/explain/`, as a client would call them."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

QUERY = "/api/v1/query/"
EXPLAIN = "/api/v1/query/explain/"


@pytest.mark.django_db(transaction=True)
def test_json_answer(crm, orders, narrowed, client_as):
    response = client_as(narrowed).post(
        QUERY,
        {"sql": "SELECT o.country, count(*) AS n FROM sales.orders o GROUP BY 1"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["columns"] == ["country", "n"]
    assert body["rows"] == [["BE", 2]]  # the grant's row filter holds
    assert body["truncated"] is False and body["query_id"]
    detail = client_as(narrowed).get(f"{QUERY}{body['query_id']}/").json()
    assert detail["status"] == "succeeded" and detail["rows"] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_streamed_formats(crm, admin, client_as, fmt):
    response = client_as(admin).post(
        QUERY,
        {"sql": "SELECT customer_id, segment FROM crm.customers ORDER BY 1", "format": fmt},
        format="json",
    )
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert response["X-Query-Id"]
    if fmt == "csv":
        assert data.decode().splitlines()[:2] == ['"customer_id","segment"', '1,"retail"']
    elif fmt == "parquet":
        assert pq.read_table(io.BytesIO(data)).column("customer_id").to_pylist() == [1, 2, 3, 4]
    else:
        table = pa.ipc.open_stream(data).read_all()
        assert table.column("segment").to_pylist() == ["retail", "retail", "pro", "pro"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 400, "sql"),
        ({"sql": "SELECT 1 FROM crm.customers", "format": "xml"}, 400, "format"),
        ({"sql": "SELECT 1 FROM crm.customers", "limit": -1}, 400, "limit"),
        ({"sql": "SELEC * FROM crm.customers"}, 400, "line 1"),
        ({"sql": "SELECT * FROM crm.customers; SELECT 1"}, 400, "exactly one"),
        ({"sql": "UPDATE crm.customers SET email = NULL"}, 400, "UPDATE"),
        ({"sql": "SELECT * FROM crm.visits"}, 403, "crm.visits"),
        ({"sql": "SELECT * FROM crm.secret"}, 404, "crm.secret"),
        ({"sql": "SELECT * FROM pg_catalog.pg_authid"}, 404, "pg_catalog.pg_authid"),
        ({"sql": "SELECT segment FROM crm.customers WHERE email LIKE 'a%'"}, 403, "email"),
        (
            {"sql": "SELECT CAST(segment AS int) FROM crm.customers"},
            400,
            'invalid input syntax for type integer: "retail"',
        ),
    ],
)
def test_bad_input_gets_a_clear_answer(crm, narrowed, client_as, body, status, says):
    response = client_as(narrowed).post(QUERY, body, format="json")
    assert response.status_code == status, response.content
    assert says in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_anonymous_is_refused(crm, api_client):
    assert api_client.post(QUERY, {"sql": "SELECT 1"}, format="json").status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
def test_explain_shows_masks_filters_and_sql(crm, orders, narrowed, client_as):
    response = client_as(narrowed).post(
        EXPLAIN,
        {
            "sql": "SELECT o.order_id, o.email, c.segment FROM sales.orders o "
            "JOIN crm.customers c ON c.country = o.country WHERE c.segment = 'pro'"
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    plan = response.json()
    assert plan["engine"] == "federated"
    by_product = {p["product"]: p for p in plan["products"]}
    assert by_product["sales.orders"]["masked"] == ["email"]
    assert by_product["crm.customers"]["row_filter"]
    assert by_product["crm.customers"]["pushed_down"] == ["\"segment\" = 'pro'"]
    [statement] = plan["statements"]  # the Parquet file is read in the portal's DuckDB
    assert statement["products"] == ["crm.customers"]
    assert '"segment"' in statement["sql"] and "'pro'" in statement["sql"]
    assert statement["parameters"] == ["BE"]
    assert statement["estimated_rows"] is not None


@pytest.mark.django_db
def test_a_query_id_that_is_not_one_is_a_json_404(admin, client_as):
    for path in ("/api/v1/query/null,null/", "/api/v1/query/123/"):
        response = client_as(admin).get(path)
        assert response.status_code == 404 and response.json()["detail"]
    response = client_as(admin).post("/api/v1/query/nothing/cancel/")
    assert response.status_code == 404 and response.json()["detail"]
