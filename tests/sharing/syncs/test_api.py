"""The syncs API: destinations (list, register, change, test) and syncs (create, dry run,
run, pause, resume, runs, approve a held run, rejected records as JSON and CSV), bad
input answered 400 naming the field, and who sees and does what (an outsider, a steward
of another domain, a grantee whose grant is narrowed), against a real PostgreSQL source
(tests/conftest.py's pg_product) and a real DuckDB destination table. Runs execute in
the test's process (sync_run_execute, the task's body); the notebook client's sync calls
run against a live server whose tasks run eagerly."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from knox.models import AuthToken

from portal_client import Portal, PortalPermissionError, PortalRequestError
from products.choices import MembershipRole
from sharing.access.services.grants import grant_create
from sharing.models import Sync, SyncDestination, SyncRun
from sharing.models.syncs import DestinationKind
from sharing.syncs.services.runs import sync_run_execute
from tests.factories import DomainFactory, MembershipFactory, UserFactory

BASE = "/api/v1"
PRODUCT_KEY = "sales.pg-orders"  # tests/conftest.py's pg_product: orders 1..4, email confidential
CRM_TABLE = "crm_orders"


# --- fixtures (their bodies are shared with tests/sharing/syncs/test_pages.py) ---------


def crm_rows(path) -> list[tuple]:
    with duckdb.connect(str(path)) as conn:
        return conn.execute(f"SELECT * FROM {CRM_TABLE} ORDER BY 1").fetchall()


def crm_table_create(tmp_path) -> Path:
    """A CRM's table in a DuckDB file, keyed by order_id, with a field of its own."""
    path = tmp_path / "crm.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            f"CREATE TABLE {CRM_TABLE} (order_id BIGINT PRIMARY KEY, country TEXT, "
            "email TEXT, amount DOUBLE, note TEXT)"
        )
    return path


def crm_destination(path: Path) -> SyncDestination:
    """The CRM table as a destination admins registered: every domain may use it."""
    return SyncDestination.objects.create(
        name="CRM orders", kind=DestinationKind.DUCKDB, path=str(path), table_name=CRM_TABLE
    )


def marketing_steward():
    """A steward of another domain (Marketing): no say over Sales."""
    user = UserFactory(username="marketing-steward")
    MembershipFactory(
        domain=DomainFactory(name="Marketing", slug="marketing"),
        user=user,
        role=MembershipRole.STEWARD,
    )
    return user


def narrowed_grantee(product, owner):
    """A grantee whose grant names order_id and country only, Belgian rows only."""
    user = UserFactory(username="narrowed")
    grant_create(
        product=product,
        by=owner,
        user=user,
        columns=["order_id", "country"],
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
        reason="Belgian orders for the CRM",
    )
    return user


@pytest.fixture
def crm_path(tmp_path) -> Path:
    return crm_table_create(tmp_path)


@pytest.fixture
def crm(crm_path, db) -> SyncDestination:
    return crm_destination(crm_path)


@pytest.fixture
def other_steward(db):
    return marketing_steward()


@pytest.fixture
def narrowed(pg_product, owner):
    return narrowed_grantee(pg_product, owner)


def sync_body(crm, **fields) -> dict:
    return {
        "product": PRODUCT_KEY,
        "destination": crm.pk,
        "name": "Orders to the CRM",
        "columns": ["order_id", "country", "amount"],
        "key_columns": ["order_id"],
        **fields,
    }


def create(api_client, user, crm, **fields):
    api_client.force_authenticate(user)
    return api_client.post(f"{BASE}/syncs/", sync_body(crm, **fields), format="json")


def created(api_client, user, crm, **fields) -> dict:
    response = create(api_client, user, crm, **fields)
    assert response.status_code == 201, response.json()
    return response.json()


def post_and_execute(api_client, path: str) -> dict:
    """POST an action that answers 202 with a run, run it as a worker would, and answer
    the run as the API shows it then."""
    response = api_client.post(path)
    assert response.status_code == 202, response.json()
    queued = response.json()
    assert queued["status"] == "queued"
    sync_run_execute(run_id=queued["id"])
    return api_client.get(queued["url"]).json()


# --- syncs -----------------------------------------------------------------------------


def test_create_dry_run_run_and_the_history(api_client, pg_product, owner, crm, crm_path):
    sync = created(api_client, owner, crm, mapping={"amount": "amount"})
    assert sync["product"] == PRODUCT_KEY
    assert sync["guardrails"]["max_changed_pct"] == 20.0
    assert sync["guardrails"]["hold_on_empty_source"] is True
    assert sync["loop_warning"] == ""

    plan = post_and_execute(api_client, f"{BASE}/syncs/{sync['id']}/dry-run/")
    assert plan["status"] == "planned" and plan["dry_run"] is True
    assert (plan["added"], plan["changed"], plan["removed"]) == (4, 0, 0)
    assert len(plan["plan_sample"]["added"]) == 4
    assert crm_rows(crm_path) == []  # a dry run sends nothing

    run = post_and_execute(api_client, f"{BASE}/syncs/{sync['id']}/run/")
    assert run["status"] == "succeeded", run["error"]
    assert (run["planned"], run["added"], run["rejected"]) == (4, 4, 0)
    assert run["source_rows"] == 4
    assert run["duration"] is not None and run["duration"] >= 0
    assert [row[:4] for row in crm_rows(crm_path)] == [
        (1, "BE", None, 10.0),
        (2, "NL", None, 20.0),
        (3, "BE", None, 30.0),
        (4, "FR", None, 40.0),
    ]

    again = post_and_execute(api_client, f"{BASE}/syncs/{sync['id']}/run/")
    assert again["status"] == "succeeded"
    assert (again["planned"], again["added"], again["changed"]) == (0, 0, 0)

    history = api_client.get(sync["runs_url"]).json()
    assert history["count"] == 3
    assert [r["id"] for r in history["results"]] == [again["id"], run["id"], plan["id"]]
    first = history["results"][1]
    for field in (
        "planned",
        "added",
        "changed",
        "removed",
        "rejected",
        "skipped",
        "source_rows",
        "duration",
        "records_per_second",
        "held_reasons",
        "plan_sample",
    ):
        assert field in first

    listed = api_client.get(f"{BASE}/syncs/", {"product": PRODUCT_KEY}).json()
    assert [s["id"] for s in listed["results"]] == [sync["id"]]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"columns": ["order_id", "nope"]}, "columns", "nope"),
        ({"key_columns": ["email"]}, "key_columns", "email"),
        ({"mapping": {"amount": "lead_score"}}, "mapping", "lead_score"),
        ({"trigger": "schedule", "cron": "61 * * * *"}, "cron", "minute"),
        ({"trigger": "schedule", "cron": "0 6 * * *", "timezone": "Mars/Olympus"}, "timezone", ""),
        ({"mode": "sideways"}, "mode", ""),
        ({"guardrails": {"max_changed_pct": -5}}, "max_changed_pct", "percent"),
        (
            {"guardrails": {"column_limits": [{"column": "country", "max_sum": 5}]}},
            "column_limits",
            "numeric",
        ),
        ({"port": "nope"}, "port", "nope"),
        ({"colour": "blue"}, "colour", ""),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_saves_nothing(
    api_client, pg_product, owner, crm, fields, field, words
):
    response = create(api_client, owner, crm, **fields)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert field in body, body
    assert words.lower() in " ".join(body[field]).lower()
    assert not Sync.objects.exists()


def test_a_destination_of_another_domain_is_refused_naming_it(api_client, pg_product, owner, crm):
    crm.domain = DomainFactory(name="Finance", slug="finance")
    crm.save()
    response = create(api_client, owner, crm)
    assert response.status_code == 400
    assert "destination" in response.json()


def test_an_outsider_neither_creates_nor_sees_nor_runs(
    api_client, pg_product, owner, outsider, crm
):
    sync = created(api_client, owner, crm)
    response = create(api_client, outsider, crm)
    assert response.status_code == 403
    assert "access" in response.json()["detail"]
    assert api_client.get(f"{BASE}/syncs/").json()["results"] == []
    for method, tail in (
        ("get", ""),
        ("get", "runs/"),
        ("post", "run/"),
        ("post", "dry-run/"),
        ("post", "pause/"),
        ("patch", ""),
        ("delete", ""),
    ):
        answer = getattr(api_client, method)(f"{BASE}/syncs/{sync['id']}/{tail}")
        assert answer.status_code == 404, (method, tail)
        assert "sync" in answer.json()["detail"]  # the API's JSON 404, leaking nothing
    assert not SyncRun.objects.exists()


def test_a_steward_of_another_domain_sees_no_sales_sync(
    api_client, pg_product, owner, other_steward, crm
):
    sync = created(api_client, owner, crm)
    api_client.force_authenticate(other_steward)
    assert api_client.get(f"{BASE}/syncs/{sync['id']}/").status_code == 404
    assert api_client.get(f"{BASE}/syncs/").json()["count"] == 0
    refused = api_client.post(
        f"{BASE}/destinations/",
        {
            "name": "Sales CRM",
            "kind": "duckdb",
            "path": "/tmp/x.duckdb",
            "table_name": "t",
            "domain": "sales",
        },
        format="json",
    )
    assert refused.status_code == 403


def test_a_narrowed_grantee_syncs_only_what_the_grant_allows(
    api_client, pg_product, narrowed, crm, crm_path
):
    outside = create(api_client, narrowed, crm, columns=["order_id", "country", "amount"])
    assert outside.status_code == 400
    assert "amount" in " ".join(outside.json()["columns"])

    sync = created(api_client, narrowed, crm, columns=["order_id", "country"])
    run = post_and_execute(api_client, f"{BASE}/syncs/{sync['id']}/run/")
    assert run["status"] == "succeeded", run["error"]
    assert [row[:2] for row in crm_rows(crm_path)] == [(1, "BE"), (3, "BE")]  # the row filter


def test_pause_and_resume(api_client, pg_product, owner, crm):
    sync = created(api_client, owner, crm)
    paused = api_client.post(
        f"{BASE}/syncs/{sync['id']}/pause/", {"reason": "CRM migration"}, format="json"
    )
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    assert "CRM migration" in paused.json()["paused_reason"]
    refused = api_client.post(f"{BASE}/syncs/{sync['id']}/run/")
    assert refused.status_code == 400
    assert "paused" in " ".join(refused.json()["sync"])
    resumed = api_client.post(f"{BASE}/syncs/{sync['id']}/resume/")
    assert resumed.json()["status"] == "active"


def test_a_held_run_is_approved_and_sends_exactly_its_plan(
    api_client, pg_product, owner, outsider, crm, crm_path
):
    sync = created(
        api_client,
        owner,
        crm,
        guardrails={"column_limits": [{"column": "amount", "max_sum": 50}]},
    )
    held = post_and_execute(api_client, f"{BASE}/syncs/{sync['id']}/run/")
    assert held["status"] == "held"
    (reason,) = held["held_reasons"]
    assert reason["guardrail"] == "column_limits"
    assert "amount" in reason["message"]
    assert crm_rows(crm_path) == []

    api_client.force_authenticate(outsider)
    approve_url = f"{BASE}/syncs/{sync['id']}/runs/{held['id']}/approve/"
    assert api_client.post(approve_url).status_code == 404

    api_client.force_authenticate(owner)
    sent = post_and_execute(api_client, approve_url)
    assert sent["status"] == "succeeded", sent["error"]
    assert sent["trigger"] == "approval"
    assert sent["approves"] == held["id"]
    assert sent["added"] == 4
    assert len(crm_rows(crm_path)) == 4
    missing = api_client.post(f"{BASE}/syncs/{sync['id']}/runs/999999/approve/")
    assert missing.status_code == 404


def test_a_held_run_declined_sends_nothing(api_client, pg_product, owner, crm, crm_path):
    sync = created(
        api_client, owner, crm, guardrails={"column_limits": [{"column": "amount", "max_sum": 1}]}
    )
    held = post_and_execute(api_client, f"{BASE}/syncs/{sync['id']}/run/")
    declined = api_client.post(
        f"{BASE}/syncs/{sync['id']}/runs/{held['id']}/decline/", {"reason": "no"}, format="json"
    )
    assert declined.status_code == 200
    assert declined.json()["status"] == "cancelled"
    assert crm_rows(crm_path) == []


def test_rejected_records_as_a_page_and_as_csv(api_client, pg_product, owner, crm, crm_path):
    with duckdb.connect(str(crm_path)) as conn:  # the application wrote order 2 itself
        conn.execute(f"INSERT INTO {CRM_TABLE} VALUES (2, 'NL', NULL, 99, 'app')")
    sync = created(api_client, owner, crm, mode="insert")
    run = post_and_execute(api_client, f"{BASE}/syncs/{sync['id']}/run/")
    assert (run["added"], run["rejected"]) == (3, 1)

    url = f"{BASE}/syncs/{sync['id']}/runs/{run['id']}/rejected-records/"
    page = api_client.get(url).json()
    assert page["count"] == 1
    (record,) = page["results"]
    assert record["key"] == '["2"]'  # the key's values as canonical JSON text
    assert "exist" in record["reason"]

    for response in (
        api_client.get(url, {"format": "csv"}),
        api_client.get(url, HTTP_ACCEPT="text/csv"),
    ):
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        lines = b"".join(response.streaming_content).decode().splitlines()
        assert len(lines) == 2  # a header and the rejected record
        assert '""2""' in lines[1]  # ["2"], quoted as CSV quotes
    assert crm_rows(crm_path)[1][4] == "app"  # the application's own row is untouched


# --- destinations ----------------------------------------------------------------------


def test_destinations_listed_registered_tested_and_changed(
    api_client, db, admin_user, outsider, crm, tmp_path
):
    api_client.force_authenticate(outsider)
    assert [d["name"] for d in api_client.get(f"{BASE}/destinations/").json()["results"]] == [
        "CRM orders"
    ]  # registered for every domain: usable by all
    assert api_client.post(f"{BASE}/destinations/{crm.pk}/test/").status_code == 403
    refused = api_client.post(
        f"{BASE}/destinations/",
        {"name": "Mine", "kind": "duckdb", "path": str(tmp_path / "m.duckdb"), "table_name": "t"},
        format="json",
    )
    assert refused.status_code == 403

    api_client.force_authenticate(admin_user)
    tested = api_client.post(f"{BASE}/destinations/{crm.pk}/test/")
    assert tested.status_code == 200
    assert tested.json()["ok"] is True
    assert CRM_TABLE in tested.json()["message"]

    secret = api_client.post(
        f"{BASE}/destinations/",
        {
            "name": "Leaky",
            "kind": "http",
            "url": "https://crm.example.com/in",
            "auth_header": "Authorization",
            "secret_env": "Bearer abc123",
        },
        format="json",
    )
    assert secret.status_code == 400
    assert "never the secret" in " ".join(secret.json()["secret_env"])

    made = api_client.post(
        f"{BASE}/destinations/",
        {
            "name": "Missing table",
            "kind": "duckdb",
            "path": str(tmp_path / "m.duckdb"),
            "table_name": "nowhere",
            "domain": "",
        },
        format="json",
    )
    assert made.status_code == 201, made.json()
    broken = api_client.post(f"{BASE}/destinations/{made.json()['id']}/test/")
    assert broken.status_code == 400
    assert broken.json()["ok"] is False
    assert "nowhere" in broken.json()["message"]

    changed = api_client.patch(
        f"{BASE}/destinations/{made.json()['id']}/", {"table_name": CRM_TABLE}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["table_name"] == CRM_TABLE
    assert api_client.delete(f"{BASE}/destinations/{made.json()['id']}/").status_code == 204


def test_a_destination_in_use_is_not_removed(api_client, pg_product, owner, admin_user, crm):
    created(api_client, owner, crm)
    api_client.force_authenticate(admin_user)
    response = api_client.delete(f"{BASE}/destinations/{crm.pk}/")
    assert response.status_code == 400
    assert SyncDestination.objects.filter(pk=crm.pk).exists()


# --- the notebook client ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_notebook_client_creates_dry_runs_runs_approves_and_pauses(
    live_server, pg_product, owner, outsider, crm, crm_path, eager_tasks
):
    portal = Portal(url=live_server.url, token=AuthToken.objects.create(owner)[1])
    with pytest.raises(PortalRequestError) as bad:
        portal.sync_create(
            PRODUCT_KEY,
            destination=crm.pk,
            name="Bad",
            columns=["order_id"],
            key_columns=["order_id"],
            mapping={"order_id": "nowhere"},
        )
    assert "nowhere" in str(bad.value)

    sync = portal.sync_create(
        PRODUCT_KEY,
        destination=crm.pk,
        name="Orders to the CRM",
        columns=["order_id", "amount"],
        key_columns=["order_id"],
        guardrails={"column_limits": [{"column": "amount", "max_sum": 50}]},
    )
    plan = portal.sync_dry_run(sync["id"])
    assert plan["status"] == "planned"
    assert plan["added"] == 4
    assert len(plan["plan_sample"]["added"]) == 4

    held = portal.sync_run(sync["id"])
    assert held["status"] == "held"
    assert crm_rows(crm_path) == []

    stranger = Portal(url=live_server.url, token=AuthToken.objects.create(outsider)[1])
    with pytest.raises(PortalPermissionError):
        stranger.sync_create(
            PRODUCT_KEY,
            destination=crm.pk,
            name="Mine",
            columns=["order_id"],
            key_columns=["order_id"],
        )
    sent = portal.sync_approve(sync["id"], held["id"], wait=True)
    assert sent["status"] == "succeeded"
    assert len(crm_rows(crm_path)) == 4

    assert [run["id"] for run in portal.sync_runs(sync["id"])] == [
        sent["id"],
        held["id"],
        plan["id"],
    ]
    assert portal.sync_pause(sync["id"], reason="CRM migration")["status"] == "paused"
    assert portal.sync_resume(sync["id"])["status"] == "active"
    assert [s["id"] for s in portal.syncs(product=PRODUCT_KEY)] == [sync["id"]]
