"""Bad input is a 4xx, never a 5xx, and is refused before any view or query runs.

- The guard in front of every route (portal.input_guard), swept over every route of the
  URL walk (tests/urlwalk.py: a route added later is covered without touching this
  file): a NUL byte in the path, in a query parameter, in a form field, and over-long
  parameters answer 400 (414 for an over-long address) with a message, without a single
  database query.
- JSON bounded in size and depth (portal.core.safe_json): deep (10,000 levels) and large
  (3 MB) JSON posted to every API write operation of the OpenAPI schema, as a JSON body
  and as form fields, and sent as the data API's `filter`, metric filters, share links,
  exports, the token endpoint and Delta Sharing's query: 400 with a message.
- Filter values that do not fit their column's type: 400 naming the column, the type
  and the value, on a DuckDB (Parquet) port and a PostgreSQL port; values that fit are
  bound as the column's type and read.
- A source that cannot be read: its driver's error is shown to the domain's members and
  admins, a fixed message to a grantee.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.core.safe_json import JSONRefused, loads_limited, nesting_depth
from products.definitions.services.metrics import metric_create
from sharing.access.filters import Clause, FilterError, clauses_typed, parse_filter
from sharing.access.services.common import clean_row_filter
from sharing.delta_sharing.services import (
    delta_recipient_create,
    delta_share_create,
    delta_share_table_add,
)
from sharing.models import AccessGrant
from tests.factories import parquet_product
from tests.urlwalk import Route, routes

DEPTH = 10_000
DEEP = "[" * DEPTH + "]" * DEPTH
DEEP_OBJECT = '{"a":' * DEPTH + "1" + "}" * DEPTH
LARGE = json.dumps([{"column": "country", "op": "=", "value": "x" * 1000}] * 3000)  # ~3 MB
LONG = "a" * 5000  # longer than one query parameter may be (4,096)

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "amount": [10.5, 20.0, 30.0, 40.0],
    "day": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)],
    "paid": [True, False, True, True],
}
API = "/api/v1/products/sales.orders/data/"


@pytest.fixture
def orders(domain, media_root):
    return parquet_product(
        media_root=media_root,
        domain=domain,
        rows=ROWS,
        file_path="guard/orders.parquet",
        sensitive=(),
    )


def _grant(product, user, **fields) -> AccessGrant:
    return AccessGrant.objects.create(
        product=product, user=user, expires_at=timezone.now() + timedelta(days=30), **fields
    )


# --- the guard, on every route ---------------------------------------------------------------


def _values(route: Route, product) -> dict[str, str] | None:
    """A value fitting each kwarg of the route (the product's own names where they fit)."""
    values = {}
    for name, regex in route.kwargs.items():
        preferred = {
            "domain_slug": product.domain.slug,
            "product_slug": product.slug,
        }.get(name)
        pool = [preferred] if preferred else []
        if name.endswith("key"):
            pool.append(product.key)
        pool += ["orders", "1", "x", "a1b2c3", "00000000-0000-0000-0000-000000000000"]
        fitting = [value for value in pool if re.fullmatch(regex, value)]
        if not fitting:
            return None
        values[name] = fitting[0]
    return values


def _walk(product) -> list[tuple[Route, str]]:
    walked = []
    for route in routes():
        values = _values(route, product)
        if values is None:
            continue
        path = route.path(values)
        if path is not None:
            walked.append((route, path))
    return walked


def _refusal_message(response, path: str) -> str:
    if path.startswith(("/api/", "/delta-sharing/")):
        assert response["Content-Type"].startswith("application/json"), path
        return response.json()["detail"]
    assert response["Content-Type"].startswith("text/html"), path
    return response.content.decode()


def _assert_refused_before_any_query(client, method: str, path: str, status: int, words: str, **kw):
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(path, **kw)
    assert response.status_code == status, (path, response.status_code)
    assert words in _refusal_message(response, path), path
    # Not even the session is read: the guard answers before every other step.
    assert len(queries) == 0, (path, [q["sql"] for q in queries])


@pytest.mark.django_db
def test_every_route_refuses_nul_bytes_and_long_parameters_before_any_query(client, orders, owner):
    client.force_login(owner)
    walked = _walk(orders)
    assert len(walked) > 100  # the walk reaches (nearly) every route
    for route, path in walked:
        # A NUL in a query parameter's value and in its name.
        _assert_refused_before_any_query(client, "get", path + "?q=a%00b", 400, "NUL")
        _assert_refused_before_any_query(client, "get", path + "?a%00b=1", 400, "NUL")
        # A NUL in the path: inside a kwarg's value, or at the end of a fixed path.
        if route.kwargs:
            name, value = next(iter(_values(route, orders).items()))
            nul_path = route.path({**_values(route, orders)}).replace(value, value + "%00", 1)
        else:
            nul_path = path + "%00"
        _assert_refused_before_any_query(client, "get", nul_path, 400, "NUL")
        # One parameter longer than 4,096 characters.
        _assert_refused_before_any_query(client, "get", path + "?filter=" + LONG, 400, "4,096")
        for method in set(route.methods()) & {"post", "put", "patch"}:
            _assert_refused_before_any_query(
                client,
                method,
                path,
                400,
                "NUL",
                data="note=a%00b",
                content_type="application/x-www-form-urlencoded",
            )


@pytest.mark.django_db
def test_over_long_addresses_are_414_and_pages_answer_a_plain_page(client, owner):
    client.force_login(owner)
    _assert_refused_before_any_query(client, "get", "/products/" + "a" * 3000 + "/", 414, "2,048")
    query = "&".join(f"p{i}=" + "b" * 3000 for i in range(25))  # 75 KB in all
    _assert_refused_before_any_query(client, "get", "/api/v1/products/?" + query, 414, "65,536")
    response = client.get("/search/?q=%00")
    assert response.status_code == 400 and b"<h1>Bad request</h1>" in response.content


@pytest.mark.django_db
def test_delta_sharing_refusals_speak_the_protocol(client):
    response = client.get("/delta-sharing/shares?maxResults=%00")
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "MALFORMED_REQUEST" and "NUL" in body["message"]


@pytest.mark.django_db
def test_a_nul_inside_a_json_string_is_400(client, owner, orders):
    client.force_login(owner)
    response = client.post(
        "/api/v1/products/", {"name": "a\x00b", "domain": "sales"}, content_type="application/json"
    )
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


# --- JSON limits ------------------------------------------------------------------------


def test_the_loader_measures_depth_without_recursion_and_ignores_brackets_in_strings():
    assert nesting_depth('{"a": "[[[[[[", "b": [[1]]}') == 3
    assert nesting_depth('["\\"[[[["]') == 1
    assert nesting_depth(DEEP) == DEPTH
    for text in (DEEP, DEEP_OBJECT, "[" * 100_000):
        with pytest.raises(JSONRefused, match="levels deep; at most 32"):
            loads_limited(text)
    with pytest.raises(JSONRefused, match="larger than"):
        loads_limited(LARGE)
    with pytest.raises(JSONRefused, match="NUL"):
        loads_limited('{"a\\u0000": 1}')
    with pytest.raises(JSONRefused, match="not a JSON value"):
        loads_limited("[NaN]")
    with pytest.raises(JSONRefused, match="not read"):
        loads_limited("1" * 5000)  # more digits than Python converts
    assert loads_limited('[{"a": ["[{"]}]') == [{"a": ["[{"]}]
    assert loads_limited(b'{"k": [1, 2]}') == {"k": [1, 2]}


def _schema_writes(api_client) -> list[tuple[str, str, dict]]:
    schema = api_client.get("/api/v1/schema/", {"format": "json"}).json()
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            body = (operation.get("requestBody") or {}).get("content", {})
            if method in ("post", "put", "patch") and "application/json" in body:
                found.append((path, method, body))
    return found


def _concrete(path: str, product) -> tuple[str, bool]:
    """The schema path with its parameters filled; whether every object named exists."""
    values = {"product_key": product.key, "slug": "orders", "port_slug": "orders"}
    if path.startswith("/api/v1/products/"):
        values["key"] = product.key
    exists = all(name in values for name in re.findall(r"{(\w+)}", path))
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), "1"), path), exists


@pytest.mark.django_db
def test_deep_and_large_json_to_every_api_write_is_400_never_5xx(api_client, orders, admin_user):
    api_client.force_authenticate(admin_user)
    writes = _schema_writes(api_client)
    assert len(writes) > 40
    refused = 0
    for path, method, _content in writes:
        url, exists = _concrete(path, orders)
        bodies = [
            (DEEP, "application/json", "levels deep"),
            (DEEP_OBJECT, "application/json", "levels deep"),
            (LARGE, "application/json", "larger than"),
            # DRF reads a JSONField of a form as JSON text: the same limits apply.
            ("row_filter=" + DEEP + "&filters=" + DEEP + "&params=" + DEEP,
             "application/x-www-form-urlencoded", "levels deep"),
        ]  # fmt: skip
        for body, content_type, words in bodies:
            response = getattr(api_client, method)(url, body, content_type=content_type)
            assert response.status_code < 500, (method, url, content_type, response.status_code)
            assert response.status_code >= 400, (method, url, content_type)
            if response.status_code == 400:
                # Refused for its body, saying why (not a field error on a half-read body).
                assert words in str(response.json()), (method, url, response.json())
                refused += 1
            else:
                # Refused before the body is read: an object of the path that does not
                # exist here, or a state that takes no body (no retirement proposed...).
                assert response.status_code in (404, 409) or not exists, (method, url)
    print(f"{refused} of {len(writes) * 4} requests refused for their body")
    assert refused > 100


@pytest.mark.django_db
def test_the_token_endpoint_refuses_deep_and_large_json(api_client):
    for body, words in ((DEEP, "levels deep"), (LARGE, "larger than")):
        response = api_client.post("/api/v1/auth/token/", body, content_type="application/json")
        assert response.status_code == 400 and words in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "words"),
    [(DEEP, "levels deep"), (DEEP_OBJECT, "levels deep"), ("[" * 3000, "levels deep")],
)
def test_a_deep_filter_on_the_data_api_is_400(client, orders, owner, value, words):
    client.force_login(owner)
    # Long parameters are refused by the guard (4,096 characters), so the filter's own
    # limit is met by a body-sized filter through the service, and a short deep one here.
    short = "[" * 40 + "]" * 40
    response = client.get(API, {"filter": short})
    assert response.status_code == 400 and "levels deep" in response.json()["detail"]
    with pytest.raises(FilterError, match=words):
        parse_filter(value)
    with pytest.raises(FilterError, match="larger than"):
        parse_filter(LARGE)


@pytest.fixture
def metric(orders, owner):
    return metric_create(
        by=owner,
        port=orders.ports.get(),
        key="sales.revenue",
        name="Revenue",
        aggregation="sum",
        column="amount",
        dimensions=["country", "order_id"],
        time_column="day",
    )


@pytest.mark.django_db
def test_deep_metric_filters_are_400(client, metric, owner):
    client.force_login(owner)
    deep = "[" * 40 + "]" * 40
    response = client.get(f"/api/v1/metrics/{metric.key}/values/", {"filters": deep})
    assert response.status_code == 400 and "levels deep" in response.json()["detail"]
    response = client.post(
        "/api/v1/metrics/",
        {"port": "x", "key": "sales.y", "filters": json.loads("[" * 30 + "]" * 30)},
        content_type="application/json",
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_share_links_and_exports_refuse_deep_filters_on_their_pages(client, orders, owner):
    client.force_login(owner)
    pages = {
        "/products/sales/orders/share/": {
            "format": "csv",
            "expires_in_days": "7",
            "columns": ["order_id", "country"],
        },
        "/products/sales/orders/exports/new/": {
            "name": "Daily",
            "port": "orders",
            "format": "csv",
            "cron": "0 6 * * *",
            "timezone": "UTC",
            "retention_runs": "5",
        },
    }
    for page, fields in pages.items():
        for value in (DEEP, "[" * 40 + "]" * 40):
            response = client.post(page, {**fields, "row_filter": value})
            assert response.status_code == 400, (page, response.status_code)
            assert "levels deep; at most 32" in response.content.decode(), page


@pytest.mark.django_db
def test_delta_sharing_query_refuses_deep_and_large_bodies(client, orders, owner):
    share = delta_share_create(by=owner, name="partners")
    delta_share_table_add(share=share, by=owner, product=orders)
    _, token = delta_recipient_create(share=share, by=owner, name="Acme")
    url = "/delta-sharing/shares/partners/schemas/default/tables/orders/query"
    for body, words in ((DEEP, "levels deep"), (LARGE, "larger than")):
        response = client.post(
            url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert response.status_code == 400, response.content[:300]
        answer = response.json()
        assert answer["errorCode"] == "MALFORMED_REQUEST" and words in answer["message"]


# --- filter values of the column's type --------------------------------------------------


def test_values_are_converted_to_the_columns_type_or_refused_naming_it():
    types = {
        "order_id": "bigint",
        "price": "numeric(12,2)",
        "ratio": "DOUBLE",
        "paid": "boolean",
        "day": "date",
        "at": "timestamp with time zone",
        "name": "VARCHAR",
        "blob": "bytea",
    }
    typed = clauses_typed(
        parse_filter(
            [
                {"column": "order_id", "op": "in", "value": ["2", 3, 4.0]},
                {"column": "price", "op": ">=", "value": "12.50"},
                {"column": "ratio", "op": "<", "value": "0.5"},
                {"column": "paid", "op": "=", "value": "TRUE"},
                {"column": "day", "op": "=", "value": "2024-01-02"},
                {"column": "at", "op": ">", "value": "2024-01-02T10:00:00+01:00"},
                {"column": "name", "op": "=", "value": 7},
                {"column": "blob", "op": "=", "value": "kept"},
            ]
        ),
        types,
    )
    values = [clause.value for clause in typed]
    assert values[0] == (2, 3, 4) and all(type(v) is int for v in values[0])
    assert str(values[1]) == "12.50" and values[2] == 0.5 and values[3] is True
    assert values[4] == date(2024, 1, 2) and values[5].utcoffset() == timedelta(hours=1)
    assert values[6] == "7" and values[7] == "kept"
    # Typed clauses are still JSON (audit events, stored filters).
    assert json.loads(json.dumps([clause.as_dict() for clause in typed]))[1]["value"] == 12.5
    refusals = [
        ("order_id", "=", "abc", "needs a whole number (bigint); 'abc' is not one."),
        ("order_id", "=", 1.5, "needs a whole number (bigint); 1.5 is not one."),
        ("order_id", "=", True, "needs a whole number (bigint); true is not one."),
        ("order_id", "in", [1, "x"], "needs a whole number (bigint); 'x' is not one."),
        ("price", "=", "12,5", "needs a number (numeric(12,2)); '12,5' is not one."),
        ("price", "=", "1e999", "numeric(12,2)"),
        ("paid", "=", "yes", "needs true or false (boolean); 'yes' is not one."),
        ("day", "=", "2024-13-01", "needs a date written YYYY-MM-DD (date)"),
        ("at", "=", "yesterday", "(timestamp with time zone); 'yesterday' is not one."),
        ("order_id", "=", "9" * 30, "from -9,223,372,036,854,775,808"),
    ]
    for column, op, value, words in refusals:
        with pytest.raises(FilterError) as caught:
            clauses_typed([Clause(column, op, tuple(value) if op == "in" else value)], types)
        assert f"The filter on {column} needs" in str(caught.value)
        assert words in str(caught.value), str(caught.value)


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["duckdb", "postgresql"])
def test_a_filter_value_of_the_wrong_type_is_400_naming_column_type_and_value(
    client, request, engine, owner
):
    if engine == "duckdb":
        product = request.getfixturevalue("orders")
        bigint = "BIGINT"
    else:
        product = request.getfixturevalue("pg_product")
        bigint = "bigint"
    client.force_login(owner)
    url = f"/api/v1/products/{product.key}/data/"
    bad = [{"column": "order_id", "op": "=", "value": "abc"}]
    for fmt in ("csv", "json", "arrow"):
        response = client.get(url, {"filter": json.dumps(bad), "format": fmt})
        assert response.status_code == 400, response.content[:300]
        assert response.json()["detail"] == (
            f"The filter on order_id needs a whole number ({bigint}); 'abc' is not one."
        )
    # A value of the right type written as text is bound as the column's type.
    good = [
        {"column": "order_id", "op": "in", "value": ["2", 3]},
        {"column": "amount", "op": ">", "value": "15"},
    ]
    response = client.get(url, {"filter": json.dumps(good), "format": "json"})
    assert response.status_code == 200, response.content[:300]
    rows = json.loads(b"".join(response.streaming_content))
    assert sorted(row["order_id"] for row in rows) == [2, 3]


@pytest.mark.django_db
def test_dates_and_booleans_filter_a_duckdb_port(client, orders, owner):
    client.force_login(owner)
    clauses = [
        {"column": "day", "op": ">=", "value": "2024-01-02"},
        {"column": "paid", "op": "=", "value": True},
    ]
    response = client.get(API, {"filter": json.dumps(clauses), "format": "json"})
    assert response.status_code == 200
    rows = json.loads(b"".join(response.streaming_content))
    assert sorted(row["order_id"] for row in rows) == [3, 4]
    bad = [{"column": "day", "op": "=", "value": "not a day"}]
    response = client.get(API, {"filter": json.dumps(bad)})
    assert response.status_code == 400
    assert "The filter on day needs a date written YYYY-MM-DD (DATE)" in response.json()["detail"]


@pytest.mark.django_db
def test_saved_filters_are_checked_against_the_columns_types(client, orders, owner, metric):
    with pytest.raises(ValidationError, match="The filter on order_id needs a whole number"):
        clean_row_filter(
            product=orders, row_filter=[{"column": "order_id", "op": "=", "value": "x"}]
        )
    client.force_login(owner)
    for url, body in [
        (
            "/api/v1/products/sales.orders/grants/",
            {"username": owner.username, "reason": "r",
             "row_filter": [{"column": "order_id", "op": "=", "value": "x"}]},
        ),
        (
            "/api/v1/share-links/",
            {"product": "sales.orders", "row_filter": [{"column": "day", "op": "=", "value": "x"}]},
        ),
        (
            "/api/v1/products/sales.orders/export-schedules/",
            {"name": "n", "format": "csv", "cron": "0 6 * * *",
             "row_filter": [{"column": "paid", "op": "=", "value": "x"}]},
        ),
    ]:  # fmt: skip
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (url, response.content[:300])
        assert "needs" in json.dumps(response.json()), (url, response.json())
    bad = json.dumps([{"column": "order_id", "op": "=", "value": "x"}])
    response = client.get(f"/api/v1/metrics/{metric.key}/values/", {"filters": bad})
    assert response.status_code == 400
    assert "The filter on order_id needs a whole number (BIGINT)" in response.json()["detail"]


# --- a source that cannot be read ---------------------------------------------------------


@pytest.mark.django_db
def test_a_502_shows_the_driver_error_to_members_only(client, pg_product, owner, outsider):
    source = pg_product.ports.get().source
    source.port = 1  # nothing listens there
    source.save()
    _grant(pg_product, outsider)
    url = f"/api/v1/products/{pg_product.key}/data/"
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 502
    assert "Cannot connect" in response.json()["detail"]
    client.force_login(outsider)
    response = client.get(url)
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert detail.startswith("The data source could not be read. Try again later")
    for secret in ("Cannot connect", "127.0.0.1", "localhost", ":1", source.database):
        assert secret not in detail
    page = client.get(f"/products/sales/{pg_product.slug}/data/")
    assert page.status_code == 200
    assert b"Try again later" in page.content and b"Cannot connect" not in page.content
