"""The notebook client (`portal_client`): configuration and request shaping on their own,
then reads against a real running portal (pytest-django's live_server)."""

import inspect
import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.utils import timezone
from knox.models import AuthToken

from portal_client import (
    Portal,
    PortalAuthError,
    PortalConfigError,
    PortalError,
    PortalLimitClamped,
    PortalNotFound,
    PortalPermissionError,
    PortalRequestError,
    filter_clauses,
)
from portal_client.client import _detail
from portal_client.errors import error_for_status
from sharing.models import AccessEvent, AccessGrant
from tests.factories import ProductFactory, parquet_product

# --- configuration and parsing (no server) ---------------------------------------------


def test_configuration_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("PORTAL_URL", "https://portal.example.com/api/v1/")
    monkeypatch.setenv("PORTAL_TOKEN", "t0ken")
    portal = Portal()
    assert portal.url == "https://portal.example.com"
    assert "t0ken" not in repr(portal)
    assert Portal(url="http://other:8000", token="x").url == "http://other:8000"


@pytest.mark.parametrize(
    "env, words",
    [
        ({"PORTAL_TOKEN": "t"}, "PORTAL_URL"),
        ({"PORTAL_URL": "https://portal.example.com"}, "PORTAL_TOKEN"),
        ({"PORTAL_URL": "portal.example.com", "PORTAL_TOKEN": "t"}, "http(s)"),
    ],
)
def test_missing_configuration_says_what_to_set(monkeypatch, env, words):
    monkeypatch.delenv("PORTAL_URL", raising=False)
    monkeypatch.delenv("PORTAL_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(PortalConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Portal()


def test_filters_as_tuples_or_dicts_become_the_api_clauses():
    clauses = filter_clauses(
        [
            ("country", "=", "BE"),
            ("country", "in", ("BE", "NL")),
            ("email", "is null"),
            {"column": "amount", "op": ">=", "value": Decimal("9.5")},
            ("day", ">", date(2026, 1, 2)),
            ("at", "<", datetime(2026, 1, 2, 3, 4)),
        ]
    )
    assert json.loads(json.dumps(clauses)) == [
        {"column": "country", "op": "=", "value": "BE"},
        {"column": "country", "op": "in", "value": ["BE", "NL"]},
        {"column": "email", "op": "is null"},
        {"column": "amount", "op": ">=", "value": "9.5"},
        {"column": "day", "op": ">", "value": "2026-01-02"},
        {"column": "at", "op": "<", "value": "2026-01-02T03:04:00"},
    ]


@pytest.mark.parametrize(
    "bad", [["country = BE"], [("country",)], [("country", "=")], [(1, "=", 2)]]
)
def test_malformed_filters_are_refused_before_any_request(bad):
    with pytest.raises(ValueError, match="Filter 1"):
        filter_clauses(bad)


def test_error_bodies_become_the_exception_for_their_status():
    detail = _detail(b'{"detail": "You have no access to this product\'s data."}')
    error = error_for_status(403, detail, what="reading sales.orders")
    assert isinstance(error, PortalPermissionError) and isinstance(error, PortalError)
    assert error.status == 403 and "no access" in str(error) and "sales.orders" in str(error)
    assert isinstance(error_for_status(401, "", what="x"), PortalAuthError)
    assert isinstance(error_for_status(404, "", what="x"), PortalNotFound)
    assert isinstance(error_for_status(400, "", what="x"), PortalRequestError)
    assert _detail(b'{"limit": ["Must be a number."]}') == "limit: Must be a number."
    assert _detail(b"<html>Bad gateway</html>") == "<html>Bad gateway</html>"


# --- against a running portal -------------------------------------------------------------

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "email": ["a@x", "b@x", None, "d@x"],
    "amount": [10.0, 20.0, 30.0, 40.0],
}
live = pytest.mark.django_db(transaction=True)


@pytest.fixture
def orders(domain, media_root):
    """sales.orders: a Parquet port, its email column confidential."""
    product = parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="client/orders.parquet"
    )
    return product


def _token(user) -> str:
    return AuthToken.objects.create(user)[1]


def _portal(live_server, user) -> Portal:
    return Portal(url=live_server.url, token=_token(user))


def _rows(frame: pd.DataFrame) -> dict[str, list]:
    """Column -> values, a missing value as None (pandas' string dtype says NaN)."""
    return {name: [None if pd.isna(v) else v for v in frame[name]] for name in frame.columns}


def _grant(product, user, **fields):
    return AccessGrant.objects.create(
        product=product, user=user, expires_at=timezone.now() + timedelta(days=30), **fields
    )


@live
def test_a_member_reads_the_whole_product_into_pandas(live_server, orders, member):
    frame = _portal(live_server, member).read("sales.orders")
    assert list(frame.columns) == list(ROWS)
    assert _rows(frame) == ROWS
    assert frame["order_id"].dtype == "int64" and frame["amount"].dtype == "float64"
    assert pd.api.types.is_string_dtype(frame["country"])
    # read() returns once the response has ended, so the read is already on record.
    event = AccessEvent.objects.get(action="read")
    assert (event.user, event.channel, event.rows) == (member, "notebook", 4)


@live
def test_columns_and_filters_are_applied_by_the_portal(live_server, orders, member):
    frame = _portal(live_server, member).read(
        "sales.orders",
        columns=["order_id", "country"],
        filters=[("amount", ">=", 20), {"column": "country", "op": "in", "value": ["BE", "NL"]}],
    )
    assert frame.to_dict("list") == {"order_id": [2, 3], "country": ["NL", "BE"]}
    assert _portal(live_server, member).read("sales.orders", limit=1)["order_id"].tolist() == [1]
    empty = _portal(live_server, member).read("sales.orders", filters=[("country", "=", "XX")])
    assert len(empty) == 0 and list(empty.columns) == list(ROWS)


@live
def test_a_grantee_reads_their_rows_with_sensitive_columns_masked(live_server, orders, outsider):
    _grant(orders, outsider, row_filter=[{"column": "country", "op": "=", "value": "BE"}])
    frame = _portal(live_server, outsider).read("sales.orders")
    assert frame["order_id"].tolist() == [1, 3]
    assert _rows(frame)["email"] == ["****", None]


@live
def test_a_narrowed_grant_refuses_columns_outside_it(live_server, orders, outsider):
    _grant(orders, outsider, columns=["order_id", "email"])
    portal = _portal(live_server, outsider)
    assert _rows(portal.read("sales.orders")) == {
        "order_id": [1, 2, 3, 4],
        "email": ["a@x", "b@x", None, "d@x"],  # named by the grant: not masked
    }
    with pytest.raises(PortalPermissionError, match="amount") as refused:
        portal.read("sales.orders", columns=["amount"])
    assert refused.value.status == 403
    with pytest.raises(PortalPermissionError, match="country"):
        portal.read("sales.orders", filters=[("country", "=", "BE")])


@live
def test_a_bad_token_is_an_auth_error(live_server, orders):
    portal = Portal(url=live_server.url, token="not-a-token")
    with pytest.raises(PortalAuthError) as refused:
        portal.read("sales.orders")
    assert refused.value.status == 401 and "PORTAL_TOKEN" in str(refused.value)
    with pytest.raises(PortalAuthError):
        portal.products()


@live
def test_without_a_grant_the_reason_is_in_the_error(live_server, orders, outsider):
    portal = _portal(live_server, outsider)
    with pytest.raises(PortalPermissionError) as refused:
        portal.read("sales.orders")
    assert refused.value.status == 403
    assert "no access" in refused.value.detail and "no access" in str(refused.value)


@live
def test_revoking_a_grant_refuses_the_very_next_read(live_server, orders, outsider):
    grant = _grant(orders, outsider)
    portal = _portal(live_server, outsider)
    assert len(portal.read("sales.orders")) == 4
    grant.revoked_at = timezone.now()
    grant.save()
    with pytest.raises(PortalPermissionError, match="revoked"):
        portal.read("sales.orders")


@live
def test_unknown_products_and_ports_are_not_found(live_server, orders, member):
    portal = _portal(live_server, member)
    with pytest.raises(PortalNotFound) as refused:
        portal.read("sales.nope")
    assert refused.value.status == 404
    with pytest.raises(PortalNotFound):
        portal.read("sales.orders", port="nope")


@live
def test_bad_requests_say_what_to_fix(live_server, orders, member):
    portal = _portal(live_server, member)
    with pytest.raises(PortalRequestError, match="nope") as refused:
        portal.read("sales.orders", columns=["order_id", "nope"])
    assert refused.value.status == 400 and "nope" in refused.value.detail
    with pytest.raises(PortalRequestError, match="LIKE"):
        portal.read("sales.orders", filters=[("country", "LIKE", "B%")])
    with pytest.raises(PortalRequestError, match="ghost"):
        portal.read("sales.orders", filters=[("ghost", "=", 1)])


@live
def test_injection_in_a_filter_value_is_a_plain_value(live_server, orders, member):
    frame = _portal(live_server, member).read(
        "sales.orders", filters=[("country", "=", "BE' OR '1'='1")]
    )
    assert len(frame) == 0


@live
def test_a_limit_above_the_maximum_warns(live_server, orders, member):
    with pytest.warns(PortalLimitClamped, match="at most"):
        frame = _portal(live_server, member).read("sales.orders", limit=10**12)
    assert len(frame) == 4


@live
def test_products_follows_the_pages(live_server, orders, member, monkeypatch):
    for n in range(4):
        ProductFactory(domain=orders.domain, name=f"Extra {n}", slug=f"extra-{n}")
    portal = _portal(live_server, member)
    monkeypatch.setattr(Portal, "page_size", 2)
    products = portal.products(domain="sales")
    assert sorted(p["key"] for p in products) == [
        "sales.extra-0",
        "sales.extra-1",
        "sales.extra-2",
        "sales.extra-3",
        "sales.orders",
    ]
    assert [p["key"] for p in portal.products(q="orders")] == ["sales.orders"]


@live
def test_configured_from_the_environment_only(live_server, orders, member, monkeypatch):
    monkeypatch.setenv("PORTAL_URL", live_server.url)
    monkeypatch.setenv("PORTAL_TOKEN", _token(member))
    assert len(Portal().read("sales.orders", columns=["order_id"])) == 4
    # A token, never a password: nothing in the client takes one.
    assert not any("password" in name for name in inspect.signature(Portal).parameters)


@live
def test_decimals_read_through_duckdb_arrive_as_numbers(live_server, domain, media_root, member):
    """The embedded default's path (DuckDB over a file, the demo's DECIMAL(12,2)): a
    decimal column is an Arrow decimal on the wire and float64 in pandas, not `object`;
    `decimals="decimal"` keeps exact values."""
    import pyarrow as pa

    parquet_product(
        media_root=media_root,
        domain=domain,
        rows={
            "line_id": [1, 2, 3],
            "net_amount": pa.array(
                [Decimal("12.50"), None, Decimal("-0.05")], type=pa.decimal128(12, 2)
            ),
        },
        file_path="client/decimal-lines.parquet",
        name="Lines",
        slug="lines",
    )
    portal = _portal(live_server, member)
    assert portal.read_arrow("sales.lines").schema.field("net_amount").type == pa.decimal128(12, 2)
    frame = portal.read("sales.lines").sort_values("line_id")
    assert str(frame["net_amount"].dtype) == "float64"
    assert frame["net_amount"].sum() == pytest.approx(12.45)
    exact = portal.read("sales.lines", decimals="decimal").sort_values("line_id")
    assert exact["net_amount"].tolist()[0] == Decimal("12.50")
