"""No endpoint lists or reveals what a user may not see, including by guessing ids.

The world: a draft product of the Vault domain (unpublished: invisible to people outside
the domain) with a port, columns, a check and its run and results, an incident, an SLO,
a schema refresh run, an access request, a grant and an audit event; beside it a
published product of the same domain, which everyone signed in may see.

An outsider (signed in, in no domain) then calls every route of the URLconf
(tests/urlwalk.py: a route added later is covered without changing this file):

- with the draft product's coordinates and every id of every object that belongs to it,
  under the draft product and under the published one: each answer equals the answer
  for coordinates and ids that do not exist (same status; a GET is a 404, as the
  documented rule says: "a hidden product is a 404, like a missing one"), for every
  method the route answers, and no body carries the draft's content;
- every list (routes without an object in their path, and with the ids of visible
  objects only), with and without filters that point at the draft: nothing of the
  draft appears.

And an anonymous client gets nothing but a sign-in redirect, 401, 403 or 404 from every
route except the few deliberately public ones (PUBLIC_ROUTES).

Django's admin is left out: every admin URL is behind its own staff check (an outsider
is sent to the admin sign-in, whatever the URL), checked once below.
"""

from __future__ import annotations

import itertools
import json
import logging
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import models
from django.test import Client
from django.utils import timezone

from products.choices import LifecycleStatus, MembershipRole, RunStatus
from products.models import DataProduct, Incident, SchemaRefreshRun
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from products.trust.services.slos import slo_create
from sharing.models import AccessEvent, AccessGrant, AccessRequest
from tests.factories import (
    DomainFactory,
    MembershipFactory,
    ProductFactory,
    UserFactory,
    parquet_product,
)
from tests.urlwalk import NOWHERE_UUID, Route, routes

MARKER = "quillfeather"  # in the draft's names and texts, never in a URL we send

# Routes anyone may call without signing in, and why.
PUBLIC_ROUTES = {
    "portal:login": "the sign-in page",
    "portal:logout": "signing out needs no account (POST only; it signs out whoever is in)",
    "api-token": "POST /api/v1/auth/token/ exchanges a username and password for a token",
    "api-schema": "the OpenAPI schema describes the API, no data (drf-spectacular's default)",
    "api-docs": "Swagger UI over that schema",
    "portal:client-wheel": "the notebook client's wheel, for pip (which cannot sign in); no data",
}

# Query strings tried on every list: filters that point at the draft product.
LIST_PROBES = ["", "?q=ledger", "?status=draft", "?domain=vault", "?product=vault.ledger"]

NOWHERE_INT = "987654321"


@pytest.fixture
def world(media_root, db):
    vault = DomainFactory(name="Vault", slug="vault")
    keeper = UserFactory(username="keeper")
    MembershipFactory(domain=vault, user=keeper, role=MembershipRole.OWNER)
    reader = UserFactory(username="reader")
    draft = parquet_product(
        media_root=media_root,
        domain=vault,
        rows={"entry_id": [1, 2, 3], "amount": [1.5, None, 3.0]},
        file_path="leaks/ledger.parquet",
        sensitive=("amount",),
        name="Quillfeather Ledger",
        slug="ledger",
        summary="Quillfeather entries, unpublished.",
        description="Every Quillfeather entry of the vault.",
        status=LifecycleStatus.DRAFT,
        owners=[keeper],
    )
    port = draft.ports.get()
    port.name = "Quillfeather entries"
    port.save(update_fields=["name"])
    port.columns.filter(name="amount").update(description="Quillfeather amount")
    check_create(
        port=port, by=keeper, name="Quillfeather amount set", kind="not_null", column="amount"
    )
    run = check_run_request(port=port, by=keeper)
    check_run_execute(run_id=run.pk)
    Incident.objects.get_or_create(
        product=draft,
        cause="check",
        cause_key="quillfeather",
        defaults={
            "port": port,
            "title": "Quillfeather amounts missing",
            "opened_at": timezone.now(),
        },
    )
    slo = slo_create(
        product=draft, by=keeper, kind="freshness", target_percent=95, threshold_hours=6
    )
    slo.description = "Quillfeather freshness"
    slo.save(update_fields=["description"])
    SchemaRefreshRun.objects.create(port=port, status=RunStatus.SUCCEEDED, requested_by=keeper)
    request = AccessRequest.objects.create(
        product=draft, requester=reader, purpose="Quillfeather audit", duration_days=30
    )
    grant = AccessGrant.objects.create(
        product=draft,
        user=reader,
        expires_at=timezone.now() + timedelta(days=30),
        reason="Quillfeather review",
        granted_by=keeper,
    )
    AccessEvent.objects.create(
        at=timezone.now(),
        action="read",
        user=reader,
        product=draft,
        product_key=draft.key,
        channel="api",
        grant=grant,
        request=request,
        detail={"note": "Quillfeather read"},
    )
    visible = ProductFactory(domain=vault, name="Open Book", slug="open-book", owners=[keeper])
    return draft, visible


def owned_objects(product: DataProduct) -> dict[str, set[int]]:
    """model label -> primary keys of its rows that belong to the product: found by
    following foreign keys (up to three hops) back to it, so objects of features added
    later count too."""
    owned = {"products.dataproduct": {product.pk}}
    for model in apps.get_models():
        for path in _paths_to_product(model, depth=3):
            pks = model._default_manager.filter(**{path: product}).values_list("pk", flat=True)
            owned.setdefault(model._meta.label_lower, set()).update(pks)
    return {label: pks for label, pks in owned.items() if pks}


def _paths_to_product(model, *, depth: int, seen=()) -> list[str]:
    if depth == 0 or model in seen:
        return []
    paths = []
    for field in model._meta.get_fields():
        if not isinstance(field, models.ForeignKey | models.OneToOneField):
            continue
        target = field.related_model
        if target is DataProduct:
            paths.append(field.name)
        else:
            paths.extend(
                f"{field.name}__{rest}"
                for rest in _paths_to_product(target, depth=depth - 1, seen=(*seen, model))
            )
    return paths


class Candidate(str):
    """A kwarg value, whether it points at something the outsider may not see, and
    whether that is the hidden product itself (rather than an object under it)."""

    secret: bool
    product: bool

    def __new__(cls, value, *, secret: bool, product: bool = False):
        obj = super().__new__(cls, value)
        obj.secret = secret
        obj.product = product
        return obj


def candidates(
    route: Route, draft, visible, ids, *, port, column_names
) -> list[dict[str, Candidate]]:
    """Every combination of values for the route's kwargs that the walk tries (`port`
    and `column_names`: the draft's port and its columns' names, read once per walk)."""
    names = list(route.kwargs)
    products = [
        {
            "domain_slug": Candidate("vault", secret=False),
            "product_slug": Candidate(p.slug, secret=p is draft, product=True),
        }
        for p in (draft, visible)
    ]
    pools: list[list[dict[str, Candidate]]] = []
    rest = [n for n in names if n not in ("domain_slug", "product_slug")]
    if "domain_slug" in names and "product_slug" in names:
        pools.append(products)
    elif "domain_slug" in names:  # a domain's own object (a glossary term...)
        domains = {draft.domain.slug, visible.domain.slug}
        pools.append([{"domain_slug": Candidate(slug, secret=False)} for slug in domains])
    elif "product_slug" in names:
        pools.append([{"product_slug": products[0]["product_slug"]}])
    for name in rest:
        if name == "pk" or name.endswith("_id") or name == "id":
            values = [Candidate(str(i), secret=True) for i in sorted(ids)]
        elif name.endswith("key"):
            values = [
                Candidate(draft.key, secret=True, product=True),
                Candidate(visible.key, secret=False, product=True),
            ]
        elif name.endswith("slug"):
            values = [Candidate(port.slug, secret=True), Candidate("vault", secret=False)]
        else:  # a column name, or a kwarg of a later feature: every identifier we have
            values = [
                Candidate(value, secret=True)
                for value in sorted({*column_names, port.slug, draft.key})
            ] + [Candidate(str(i), secret=True) for i in sorted(ids)]
        pools.append([{name: value} for value in values])
    combos = []
    for parts in itertools.product(*pools):
        combo: dict[str, Candidate] = {}
        for part in parts:
            combo.update(part)
        combos.append(combo)
    return combos


def public_values(route: Route, visible) -> dict[str, str] | None:
    """kwargs naming only things everyone signed in may see, or None when the route
    needs an object id (there is no visible one of those in this world)."""
    values = {}
    for name in route.kwargs:
        if name == "domain_slug":
            values[name] = visible.domain.slug
        elif name == "product_slug":
            values[name] = visible.slug
        elif name.endswith("key"):
            values[name] = visible.key
        elif name.endswith("slug"):
            values[name] = visible.domain.slug  # a domain; as a port slug, none
        else:
            return None
    return values


def nowhere(combo: dict[str, Candidate]) -> dict[str, str]:
    """The same combination with every secret value replaced by one that exists nowhere."""
    out = {}
    for name, value in combo.items():
        if not value.secret:
            out[name] = str(value)
        elif value.isdigit():
            out[name] = NOWHERE_INT
        elif "." in value:
            out[name] = "nowhere.nothing"
        else:
            out[name] = "nothing-here"
    return out


def call(client: Client, method: str, path: str, *, is_api: bool):
    if method == "get":
        return client.get(path)
    if method == "options":
        return client.options(path)
    body = json.dumps({}) if is_api else ""
    content_type = "application/json" if is_api else "application/x-www-form-urlencoded"
    return getattr(client, method)(path, body, content_type=content_type)


def text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def walked_routes() -> list[Route]:
    return [route for route in routes() if not route.is_admin]


@pytest.fixture
def quiet_request_log(caplog):
    """Every 404 and 401 of the walk (thousands) is logged by django.request as a warning:
    kept out of the log (and its handlers) for the walk; errors are still logged."""
    caplog.set_level(logging.ERROR, logger="django.request")
    caplog.set_level(logging.ERROR, logger="django.security")


@pytest.mark.django_db
def test_an_outsider_cannot_tell_hidden_objects_from_missing_ones(
    world, outsider, quiet_request_log, settings
):
    draft, visible = world
    # The walk sends thousands of requests from one address: a per-address rate limit
    # reached partway would answer 429 to whatever came next, hidden or missing alike,
    # and leave the rest of those routes compared on nothing.
    settings.SHARE_LINK_RATE_LIMIT = settings.EMBED_RATE_LIMIT = "1000000/min"
    settings.QUERY_RATE_LIMIT = "1000000/min"
    owned = owned_objects(draft)
    assert len(owned) >= 10, owned  # product, port, columns, check, run, results, incident...
    ids = {pk for pks in owned.values() for pk in pks if isinstance(pk, int)}
    port = draft.ports.get()
    column_names = list(port.columns.values_list("name", flat=True))
    client = Client()
    client.force_login(outsider)
    failures, tried = [], 0
    # The answer for coordinates that exist nowhere, by (method, path): many combinations
    # share one (every hidden id of a route becomes the same missing id). Asking again
    # would send the same request, about nothing that the walk can create, and get the
    # same answer; so each is asked once and every hidden request is compared with it.
    absent_status: dict[tuple[str, str], int] = {}
    for route in walked_routes():
        if not route.kwargs:
            continue
        methods = [*route.methods(), *(["options"] if route.is_api else [])]
        for combo in candidates(route, draft, visible, ids, port=port, column_names=column_names):
            if not any(value.secret for value in combo.values()):
                continue
            # "A hidden product is a 404, like a missing one"; an object hidden under a
            # visible product answers whatever a missing one does (403 on a page the
            # outsider may not use anyway, say).
            hidden_product = any(v.secret and v.product for v in combo.values())
            path, missing = route.path(combo), route.path(nowhere(combo))
            if path is None or missing is None:
                continue
            for method in methods:
                tried += 1
                hidden = call(client, method, path, is_api=route.is_api)
                if (method, missing) not in absent_status:
                    absent = call(client, method, missing, is_api=route.is_api)
                    absent_status[method, missing] = absent.status_code
                absent_code = absent_status[method, missing]
                where = f"{method.upper()} {path} ({route.name})"
                if hidden.status_code != absent_code:
                    failures.append(
                        f"{where}: {hidden.status_code}, but {absent_code} for {missing}"
                    )
                elif method == "get" and hidden_product and hidden.status_code != 404:
                    failures.append(f"{where}: {hidden.status_code}, not 404")
                if MARKER in text(hidden).lower():
                    failures.append(f"{where}: the body shows the draft's content")
    assert tried > 100, tried
    assert failures == [], "\n".join(failures)


@pytest.mark.django_db
def test_no_list_includes_a_hidden_product_or_its_objects(world, outsider, settings):
    draft, visible = world
    settings.SSE_MAX_SECONDS = 0  # the events stream answers its backlog, then ends
    client = Client()
    client.force_login(outsider)
    failures, tried = [], 0
    for route in walked_routes():
        if "get" not in route.methods():
            continue
        # Lists and pages of visible things: the catalog, a domain, the published
        # product's ports, checks, incidents, grants... (kwargs of visible objects only).
        values = public_values(route, visible)
        path = route.path(values) if values is not None else None
        if path is None:
            continue
        for probe in LIST_PROBES:
            tried += 1
            response = client.get(path + probe)
            body = text(response).lower()
            where = f"GET {path}{probe} ({route.name}): {response.status_code}"
            if MARKER in body:
                failures.append(f"{where}: shows the draft's content")
            if not probe and ("vault.ledger" in body or "/vault/ledger/" in body):
                failures.append(f"{where}: names the draft product")
    assert tried > 50, tried
    assert failures == [], "\n".join(failures)


@pytest.mark.django_db
def test_an_anonymous_client_is_sent_to_sign_in_everywhere_but_the_public_routes(world):
    _, visible = world
    client = Client()
    failures = []
    covered = set()
    for route in walked_routes():
        values = public_values(route, visible)
        if values is None:
            values = {name: NOWHERE_INT for name in route.kwargs}
        path = (
            route.path(values)
            or route.path({name: "nothing-here" for name in route.kwargs})
            or route.path({name: NOWHERE_UUID for name in route.kwargs})
        )
        assert path is not None, f"cannot build a path for {route.name}"
        for method in route.methods():
            response = call(client, method, path, is_api=route.is_api)
            status = response.status_code
            if route.name in PUBLIC_ROUTES:
                covered.add(route.name)
                continue
            signs_in = status == 302 and "/login/" in response.get("Location", "")
            # 404: nothing there for a stranger (a share link's or a Delta Sharing path's
            # unknown token, say), which reveals nothing either.
            if not (signs_in or status in (401, 403, 404, 405)):
                failures.append(f"{method.upper()} {path} ({route.name}): {status}, signed out")
    assert covered == set(PUBLIC_ROUTES), "a public route is gone: update PUBLIC_ROUTES"
    assert failures == [], "\n".join(failures)


@pytest.mark.django_db
def test_the_admin_sends_an_outsider_to_its_sign_in(world, outsider):
    draft, _ = world
    client = Client()
    client.force_login(outsider)
    for path in ("/admin/", f"/admin/products/dataproduct/{draft.pk}/change/"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], path
