"""CSRF protection on every form and every write: each route of the URLconf that takes a
write (POST, PUT, PATCH, DELETE) is called by a signed-in browser session without the
CSRF token and refused with 403 before its view runs; with the token, the same call is
not refused for CSRF (whatever the view then answers). Routes come from
tests/urlwalk.py, so a route added later is covered too. And every template form that
posts carries `{% csrf_token %}`."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.urlwalk import NOWHERE_UUID, WRITE_METHODS, routes

# Writes that need no CSRF token, and why. (API views that do not authenticate by session
# at all, such as bearer-token protocols, are recognised by their authentication classes.)
NO_SESSION_WRITES = {
    "api-token": "takes a username and password, not a session; answers the caller only",
}


def takes_session(route) -> bool:
    """Whether the view acts for the signed-in session: every Django view; a DRF view
    only with SessionAuthentication among its authentication classes."""
    from rest_framework.authentication import SessionAuthentication

    classes = getattr(route.view_class, "authentication_classes", None)
    if classes is None:
        return True
    return any(issubclass(cls, SessionAuthentication) for cls in classes)


def exempt_without_session(route) -> bool:
    """A plain Django view marked csrf_exempt (DRF views are all marked so; for them the
    authentication classes decide, see takes_session)."""
    return getattr(route.callback, "csrf_exempt", False) and not hasattr(route.callback, "cls")


def media_types(route) -> list[str]:
    """What the API view parses: a body in one of these reaches the CSRF check."""
    parsers = getattr(route.view_class, "parser_classes", None) or []
    return [parser.media_type for parser in parsers] or ["application/json"]


NOWHERE = {"int": "987654321", "other": "nothing-here"}


def fill(route) -> str | None:
    """A path for the route with values that name nothing: the CSRF check runs before
    the view, so no object is needed, and a call that passes it changes nothing."""
    values = {}
    for name, regex in route.kwargs.items():
        # Any value the kwarg accepts; a choice of words (the admin's app labels) by its
        # own words.
        tries = [
            NOWHERE["int"],
            NOWHERE["other"],
            "nowhere.nothing",
            NOWHERE_UUID,
            *re.findall(r"\w+", regex),
        ]
        values[name] = next((value for value in tries if re.fullmatch(regex, value)), "")
    return route.path(values)


def is_csrf_refusal(response) -> bool:
    if response.status_code != 403:
        return False
    body = response.content.decode(errors="replace")
    # Django's CSRF failure page, or DRF's answer for a session without the token.
    return "CSRF verification failed" in body or "CSRF Failed" in body


def write_routes():
    return [
        (route, method)
        for route in routes()
        for method in route.methods()
        if method in WRITE_METHODS and route.name not in NO_SESSION_WRITES and takes_session(route)
    ]


@pytest.mark.django_db
def test_every_write_is_refused_without_the_csrf_token(admin_user):
    checked = []
    failures = []
    for route, method in write_routes():
        path = fill(route)
        assert path is not None, f"cannot build a path for {route.name}"
        # A fresh client per call: a write that signs out must not disturb the next.
        client = Client(enforce_csrf_checks=True)
        client.force_login(admin_user)
        client.get("/my/access/")  # a page with forms sets the csrftoken cookie
        token = client.cookies[settings.CSRF_COOKIE_NAME].value
        send = getattr(client, method)
        for kind in media_types(route) if route.is_api else ["multipart/form-data"]:
            body = "{}" if "json" in kind else ""
            args = () if kind == "multipart/form-data" else (body,)
            options = {} if kind == "multipart/form-data" else {"content_type": kind}
            without = send(path, *args, **options)
            if without.status_code != 415:  # a body the view parses reaches the check
                break
        where = f"{method.upper()} {path} ({route.name})"
        if without.status_code == 405:  # the view takes no such write
            continue
        with_token = (
            None if route.is_admin else send(path, *args, **options, HTTP_X_CSRFTOKEN=token)
        )
        if exempt_without_session(route):
            # A csrf_exempt view (a bearer-token protocol) must give a session nothing.
            if without.status_code not in (401, 403, 404):
                failures.append(f"{where}: csrf_exempt, yet {without.status_code} for a session")
            checked.append(where)
            continue
        if not is_csrf_refusal(without):
            failures.append(f"{where}: {without.status_code} without a CSRF token")
        # The admin's writes are Django's own; with the token they would run for real.
        if not route.is_admin and is_csrf_refusal(with_token):
            failures.append(f"{where}: refused for CSRF even with the token")
        checked.append(where)
    assert len(checked) > 40, checked
    assert failures == [], "\n".join(failures)


@pytest.mark.django_db
def test_the_token_endpoint_takes_no_session_and_needs_no_csrf_token(outsider):
    client = Client(enforce_csrf_checks=True)
    client.force_login(outsider)
    response = client.post(
        "/api/v1/auth/token/",
        {"username": "outsider", "password": "correct-horse-battery"},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["token"]


def test_every_posting_form_in_the_templates_carries_the_csrf_token():
    forms = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)
    missing = []
    count = 0
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        for form in forms.findall(template.read_text()):
            opening = form[: form.index(">") + 1]
            if not re.search(r'method\s*=\s*"?post', opening, re.I):
                continue
            count += 1
            if "{% csrf_token %}" not in form:
                missing.append(f"{template}: {opening}")
    assert count > 10
    assert missing == [], "\n".join(missing)
