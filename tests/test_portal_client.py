"""The notebook client (`portal_client`): configuration and request shaping on their own,
then reads against a real running portal (pytest-django's live_server)."""

import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from portal_client import (
    Portal,
    PortalConfigError,
    PortalError,
    filter_clauses,
)
from portal_client.client import _detail
from portal_client.errors import (
    PortalAuthError,
    PortalNotFound,
    PortalPermissionError,
    PortalRequestError,
    error_for_status,
)

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
