"""The trust API: checks, check runs, incidents, SLOs and the trust score of a product,
each endpoint anonymous (401), signed in without permission (404 for a product they may
not see, 403 for a write), and with permission; failing-row samples only for people who
may read rows; bad input answered 400 on its field; list query counts pinned."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from products.choices import CheckRunStatus, IncidentCause, IncidentStatus, LifecycleStatus
from products.models import Check, CheckRun, Incident, ServiceLevelObjective
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from products.trust.services.evidence import trust_after_check_run
from products.trust.services.incidents import incident_open
from products.trust.services.slos import slo_create
from products.trust.services.trust_score import trust_score_compute
from tests.conftest import wait_for
from tests.factories import FilePortFactory, ProductFactory, UserFactory
from tests.products.trust.helpers import orders_parquet

pytestmark = pytest.mark.django_db

API = "/api/v1/products/sales.orders"
DRAFT_API = "/api/v1/products/sales.returns"


@pytest.fixture
def draft(domain):
    return ProductFactory(
        domain=domain, name="Returns", slug="returns", status=LifecycleStatus.DRAFT
    )


@pytest.fixture
def draft_port(draft, media_root, owner):
    port = FilePortFactory(
        product=draft, slug="returns-file", file_path=orders_parquet(media_root, "r.parquet", ["x"])
    )
    check_create(port=port, by=owner, kind="row_count", params={"min": 1})
    return port


def _finished_run(port, owner) -> CheckRun:
    """A run as a worker leaves it: executed, incidents and trust score updated."""
    run = check_run_request(port=port, by=owner)  # no worker: the task is enqueued on commit
    run = check_run_execute(run_id=run.pk)
    trust_after_check_run(run=run)
    return run


def _check_incident(product, port, check) -> Incident:
    incident, _ = incident_open(
        product=product,
        port=port,
        cause=IncidentCause.CHECK,
        cause_key=f"check:{check.pk}",
        title=f"Check '{check.name}' failing",
        body="2 null rows of 5.",
    )
    return incident


# --- who may do what ---------------------------------------------------------------------


def test_every_endpoint_is_401_for_anonymous(api_client, product, port, not_null, owner):
    run = _finished_run(port, owner)
    incident = Incident.objects.get()
    slo = slo_create(product=product, by=owner, kind="quality", target_percent=90)
    reads = [
        f"{API}/checks/",
        f"{API}/checks/{not_null.pk}/",
        f"{API}/check-runs/",
        f"{API}/check-runs/{run.pk}/",
        f"{API}/incidents/",
        f"{API}/incidents/{incident.pk}/",
        f"{API}/slos/",
        f"{API}/slos/{slo.pk}/",
        f"{API}/trust/",
    ]
    for url in reads:
        assert api_client.get(url).status_code == 401, url
    writes = [
        f"{API}/checks/",
        f"{API}/check-runs/",
        f"{API}/incidents/{incident.pk}/acknowledge/",
        f"{API}/incidents/{incident.pk}/comment/",
        f"{API}/incidents/{incident.pk}/resolve/",
        f"{API}/slos/",
    ]
    for url in writes:
        assert api_client.post(url, {}, format="json").status_code == 401, url
    assert api_client.delete(f"{API}/checks/{not_null.pk}/").status_code == 401


def test_a_product_one_may_not_see_is_404_everywhere(client_as, draft_port, outsider, member):
    client = client_as(outsider)
    for url in ("checks/", "check-runs/", "incidents/", "slos/", "trust/"):
        response = client.get(f"{DRAFT_API}/{url}")
        assert response.status_code == 404, url
        assert "sales.returns" in response.json()["detail"]
    # Writes too: 404 (it does not exist for them), not 403 (it exists but is refused).
    assert client.post(f"{DRAFT_API}/checks/", {"kind": "unique"}, format="json").status_code == 404
    assert client.post(f"{DRAFT_API}/check-runs/", {}, format="json").status_code == 404
    check = draft_port.checks.get()
    assert client.delete(f"{DRAFT_API}/checks/{check.pk}/").status_code == 404
    # A member of the domain sees the draft's trust evidence.
    member_client = client_as(member)
    for url in ("checks/", "check-runs/", "incidents/", "slos/", "trust/"):
        assert member_client.get(f"{DRAFT_API}/{url}").status_code == 200, url


def test_outsiders_read_but_do_not_write(client_as, product, port, not_null, outsider, owner):
    run = _finished_run(port, owner)
    incident = Incident.objects.get()
    slo = slo_create(product=product, by=owner, kind="quality", target_percent=90)
    client = client_as(outsider)
    for url in ("checks/", f"checks/{not_null.pk}/", "check-runs/", f"check-runs/{run.pk}/"):
        assert client.get(f"{API}/{url}").status_code == 200, url
    refused = [
        client.post(f"{API}/checks/", {"kind": "unique", "column": "order_id"}, format="json"),
        client.patch(f"{API}/checks/{not_null.pk}/", {"enabled": False}, format="json"),
        client.delete(f"{API}/checks/{not_null.pk}/"),
        client.post(f"{API}/check-runs/", {}, format="json"),
        client.post(f"{API}/incidents/{incident.pk}/acknowledge/", {}, format="json"),
        client.post(f"{API}/incidents/{incident.pk}/comment/", {"body": "hi"}, format="json"),
        client.post(f"{API}/incidents/{incident.pk}/resolve/", {"note": "fixed"}, format="json"),
        client.post(f"{API}/slos/", {"kind": "freshness", "target_percent": 9}, format="json"),
        client.patch(f"{API}/slos/{slo.pk}/", {"target_percent": 50}, format="json"),
        client.delete(f"{API}/slos/{slo.pk}/"),
    ]
    assert [response.status_code for response in refused] == [403] * len(refused)
    # Refused before the body is read: a bad body is still a 403, not a 400.
    bad = client.post(f"{API}/checks/", {"kind": "nonsense"}, format="json")
    assert bad.status_code == 403
    assert Check.objects.count() == 1 and CheckRun.objects.count() == 1
    assert ServiceLevelObjective.objects.get().target_percent == 90
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.OPEN


def test_domain_members_read_but_do_not_write(client_as, port, not_null, member):
    client = client_as(member)
    assert client.get(f"{API}/checks/").status_code == 200
    response = client.post(f"{API}/check-runs/", {}, format="json")
    assert response.status_code == 403
    assert "owners and stewards" in response.json()["detail"]


# --- checks ------------------------------------------------------------------------------


def test_owner_creates_reads_updates_and_deletes_a_check(client_as, port, owner, outsider):
    client = client_as(owner)
    response = client.post(
        f"{API}/checks/",
        {
            "kind": "accepted_values",
            "column": "email",
            "params": {"values": ["a@x", "c@x"]},
            "tolerance_percent": 0.5,
            "severity": "warn",
            "schedule": "0 6 * * *",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Location"] == body["url"]
    assert body["url"].endswith(f"{API}/checks/{body['id']}/")
    assert body["name"] == "Accepted values email"  # made from the kind and column
    assert body["port"] == "orders-file"  # the product's only port
    assert body["params"] == {"values": ["a@x", "c@x"]}
    assert body["tolerance_percent"] == 0.5
    assert body["severity"] == "warn"
    assert body["effective_schedule"] == "0 6 * * *"
    assert len(body["next_runs"]) == 3 and all("T06:00:00" in t for t in body["next_runs"])
    assert body["enabled"] is True and body["latest_result"] is None

    # Anyone who may see the product reads it.
    detail = client_as(outsider).get(body["url"])
    assert detail.status_code == 200 and detail.json()["name"] == "Accepted values email"

    client = client_as(owner)
    patched = client.patch(
        body["url"], {"schedule": "", "tolerance_percent": 2, "enabled": False}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["schedule"] == ""
    assert patched.json()["effective_schedule"] == "0 * * * *"  # the product's default
    assert patched.json()["next_runs"] == []  # disabled checks do not run
    assert Check.objects.get().tolerance_percent == 2

    assert client.delete(body["url"]).status_code == 204
    assert not Check.objects.exists()
    assert client.get(body["url"]).status_code == 404


def test_steward_and_admin_write_checks(client_as, port, steward, admin_user):
    for user, kind in ((steward, "unique"), (admin_user, "not_null")):
        response = client_as(user).post(
            f"{API}/checks/", {"kind": kind, "column": "order_id"}, format="json"
        )
        assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "not_null", "column": "email", "tolerance_percent": -1}, "tolerance_percent"),
        ({"kind": "not_null", "column": "email", "tolerance_percent": 100.5}, "tolerance_percent"),
        ({"kind": "not_null", "column": "email", "schedule": "every day"}, "schedule"),
        ({"kind": "not_null", "column": "email", "schedule": "61 * * * *"}, "schedule"),
        ({"kind": "custom_sql", "params": {"sql": "DELETE FROM {table}"}}, "params"),
        (
            {"kind": "custom_sql", "params": {"sql": "SELECT 1; DROP TABLE orders"}},
            "params",
        ),
        ({"kind": "not_null"}, "column"),
        ({"kind": "range", "column": "order_id", "params": {}}, "params"),
        ({"kind": "row_count", "params": {"min": 10, "max": 1}}, "params"),
        ({"kind": "freshness", "column": "email", "params": {"max_age_hours": 0}}, "params"),
        ({"kind": "sometimes"}, "kind"),
        ({"kind": "unique", "column": "order_id", "severity": "fatal"}, "severity"),
        ({"kind": "unique", "column": "order_id", "secret": 1}, "secret"),
        ({"kind": "unique", "column": "order_id", "port": "nope"}, "port"),
        ({"kind": "unique", "column": "order_id", "params": "x"}, "params"),
    ],
)
def test_bad_check_is_400_on_its_field(client_as, port, owner, body, field):
    response = client_as(owner).post(f"{API}/checks/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Check.objects.exists()


def test_custom_sql_that_only_reads_is_accepted(client_as, port, owner):
    sql = "SELECT count(*) FROM {table} WHERE email IS NULL"
    response = client_as(owner).post(
        f"{API}/checks/", {"kind": "custom_sql", "params": {"sql": sql}}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["params"] == {"sql": sql}


def test_duplicate_check_name_and_bad_patch_are_400(client_as, port, not_null, owner):
    client = client_as(owner)
    again = client.post(
        f"{API}/checks/", {"kind": "unique", "column": "email", "name": "Email set"}, format="json"
    )
    assert again.status_code == 400 and "name" in again.json()
    url = f"{API}/checks/{not_null.pk}/"
    assert (
        "tolerance_percent" in client.patch(url, {"tolerance_percent": 101}, format="json").json()
    )
    assert "schedule" in client.patch(url, {"schedule": "* * *"}, format="json").json()
    assert "port" in client.patch(url, {"port": "elsewhere"}, format="json").json()
    assert Check.objects.get().tolerance_percent == 0


def test_a_product_with_several_ports_needs_the_port_named(client_as, product, port, owner):
    FilePortFactory(product=product, name="Archive", slug="archive", file_path="x.parquet")
    client = client_as(owner)
    response = client.post(
        f"{API}/checks/", {"kind": "row_count", "params": {"min": 1}}, format="json"
    )
    assert response.status_code == 400
    assert "archive" in response.json()["port"][0] and "orders-file" in response.json()["port"][0]
    named = client.post(
        f"{API}/checks/",
        {"kind": "row_count", "params": {"min": 1}, "port": "archive"},
        format="json",
    )
    assert named.status_code == 201 and named.json()["port"] == "archive"


def test_unknown_check_is_404(client_as, port, not_null, owner, domain):
    client = client_as(owner)
    other = ProductFactory(domain=domain, slug="other")
    other_port = FilePortFactory(product=other, file_path="o.parquet")
    foreign = check_create(port=other_port, by=owner, kind="row_count", params={"min": 1})
    for pk in (foreign.pk, 999999, "abc"):
        assert client.get(f"{API}/checks/{pk}/").status_code == 404, pk
        assert client.delete(f"{API}/checks/{pk}/").status_code == 404, pk
    assert Check.objects.filter(pk=foreign.pk).exists()


def test_check_list_shows_each_checks_latest_result(client_as, port, not_null, owner, outsider):
    _finished_run(port, owner)
    [check] = client_as(outsider).get(f"{API}/checks/").json()["results"]
    latest = check["latest_result"]
    assert latest["outcome"] == "fail"
    assert latest["observed_value"] == 2.0
    assert latest["failing_rows"] == 2
    assert latest["row_count"] == 5
    assert latest["failing_percent"] == pytest.approx(40.0)
    assert latest["threshold"] == "no failing rows"
    assert "2 null rows of 5" in latest["message"]
    assert "sample" not in latest  # samples are a run's, not the list's


def test_check_list_queries_do_not_grow_with_checks(
    client_as, port, owner, outsider, django_assert_max_num_queries
):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"{API}/checks/")
            assert response.status_code == 200
        return len(captured)

    client = client_as(outsider)
    check_create(port=port, by=owner, kind="not_null", column="email")
    _finished_run(port, owner)
    client = client_as(outsider)
    small = count()
    for n in range(12):
        check_create(
            port=port, by=owner, kind="range", column="order_id", params={"min": n}, name=f"r{n}"
        )
    _finished_run(port, owner)
    client = client_as(outsider)
    with django_assert_max_num_queries(7):
        response = client.get(f"{API}/checks/")
    assert response.json()["count"] == 13
    assert count() == small


# --- check runs --------------------------------------------------------------------------


def test_owner_runs_checks_now_and_polls_the_run(client_as, port, not_null, owner, member):
    client = client_as(owner)
    response = client.post(f"{API}/check-runs/", {}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == body["url"]
    assert body["url"].endswith(f"{API}/check-runs/{body['id']}/")
    assert body["status"] == "queued" and body["is_finished"] is False
    assert body["port"] == "orders-file" and body["requested_by"] == "owner"

    # Asking again while it is queued returns the same run.
    again = client.post(f"{API}/check-runs/", {"port": "orders-file"}, format="json")
    assert again.status_code == 202 and again.json()["id"] == body["id"]

    check_run_execute(run_id=body["id"])  # what the worker does
    polled = client.get(body["url"]).json()
    assert polled["status"] == "done" and polled["is_finished"] is True
    assert (polled["passed"], polled["failed"], polled["errored"]) == (0, 1, 0)
    assert polled["row_count"] == 5
    [result] = polled["results"]
    assert result["check_id"] == not_null.pk and result["check_name"] == "Email set"
    assert result["kind"] == "not_null" and result["column"] == "email"
    assert result["outcome"] == "fail" and result["severity"] == "error"
    assert result["observed_value"] == 2.0
    assert result["failing_rows"] == 2
    assert result["failing_percent"] == pytest.approx(40.0)
    assert result["threshold"] == "no failing rows"
    assert result["message"] == "2 null rows of 5 (40%)."
    # The owner is in the domain: the failing rows are shown.
    assert sorted(row["order_id"] for row in result["sample"]) == [2, 4]
    assert all(row["email"] is None for row in result["sample"])


def test_failing_rows_are_shown_to_members_and_hidden_from_outsiders(
    client_as, port, not_null, owner, member, outsider, admin_user
):
    run = _finished_run(port, owner)
    url = f"{API}/check-runs/{run.pk}/"
    for user in (member, admin_user):
        [result] = client_as(user).get(url).json()["results"]
        assert len(result["sample"]) == 2, user.username
    [result] = client_as(outsider).get(url).json()["results"]
    assert result["sample"] is None
    assert result["failing_rows"] == 2  # the counts are metadata, for everyone
    assert "null@" not in str(result)


def test_run_request_bad_input(client_as, product, port, not_null, owner):
    client = client_as(owner)
    assert "checks" in client.post(f"{API}/check-runs/", {"checks": [999999]}, format="json").json()
    assert "port" in client.post(f"{API}/check-runs/", {"port": "nope"}, format="json").json()
    assert "other" in client.post(f"{API}/check-runs/", {"other": 1}, format="json").json()
    # A port without enabled checks has nothing to run.
    FilePortFactory(product=product, slug="empty", file_path="e.parquet")
    response = client.post(f"{API}/check-runs/", {"port": "empty"}, format="json")
    assert response.status_code == 400 and "no enabled check" in response.json()["port"][0]
    # Left out, the port is the only one with checks.
    response = client.post(f"{API}/check-runs/", {"checks": [not_null.pk]}, format="json")
    assert response.status_code == 202 and response.json()["port"] == "orders-file"
    assert CheckRun.objects.get().check_ids == [not_null.pk]


def test_a_failed_runs_reason_is_for_editors(client_as, product, owner, outsider):
    port = FilePortFactory(product=product, slug="gone", file_path="missing/nowhere.parquet")
    check_create(port=port, by=owner, kind="row_count", params={"min": 1})
    run = _finished_run(port, owner)
    assert run.status == CheckRunStatus.ERROR and run.error
    url = f"{API}/check-runs/{run.pk}/"
    assert client_as(owner).get(url).json()["error"] == run.error
    hidden = client_as(outsider).get(url).json()
    assert hidden["status"] == "error"
    assert hidden["error"] == "The run failed. The product's owners and stewards can see why."


def test_unknown_run_is_404(client_as, port, draft_port, owner, outsider):
    client = client_as(outsider)
    draft_run = _finished_run(draft_port, owner)
    client = client_as(outsider)
    for pk in (draft_run.pk, 999999, "x"):
        assert client.get(f"{API}/check-runs/{pk}/").status_code == 404, pk


def test_run_list_queries_do_not_grow_with_runs(
    client_as, port, not_null, owner, outsider, django_assert_max_num_queries
):
    _finished_run(port, owner)
    client = client_as(outsider)
    with CaptureQueriesContext(connection) as small:
        client.get(f"{API}/check-runs/")
    for _ in range(8):
        _finished_run(port, owner)
    client = client_as(outsider)
    # The product (3), who the user is in its domain (2), the count and the page.
    with django_assert_max_num_queries(7):
        response = client.get(f"{API}/check-runs/")
    assert response.json()["count"] == 9
    assert [run["id"] for run in response.json()["results"]] == sorted(
        (run["id"] for run in response.json()["results"]), reverse=True
    )
    with CaptureQueriesContext(connection) as large:
        client.get(f"{API}/check-runs/")
    assert len(large) == len(small)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_checks_requested_through_the_api(
    celery_worker, client_as, port, not_null, owner
):
    client = client_as(owner)
    response = client.post(f"{API}/check-runs/", {}, format="json")
    assert response.status_code == 202
    url = response["Location"]
    finished = wait_for(
        lambda: (body := client.get(url).json())["is_finished"] and body,
        timeout=60,
        message="the worker did not finish the check run",
    )
    assert finished["status"] == "done", finished
    assert finished["results"][0]["failing_rows"] == 2
    # The worker went on to open the incident and score the product.
    incidents = wait_for(lambda: client.get(f"{API}/incidents/?status=open").json()["results"])
    assert incidents[0]["cause"] == "check" and incidents[0]["port"] == "orders-file"
    # Scoring follows the incident in the same worker: wait for it too (not a race).
    assert wait_for(lambda: client.get(f"{API}/trust/").json()["score"] is not None)


# --- incidents ---------------------------------------------------------------------------


def test_incident_list_filters_by_status(client_as, product, port, not_null, owner, outsider):
    open_one = _check_incident(product, port, not_null)
    resolved, _ = incident_open(
        product=product, cause=IncidentCause.SLO, cause_key="slo:1", title="SLO missed"
    )
    Incident.objects.filter(pk=resolved.pk).update(status=IncidentStatus.RESOLVED)
    client = client_as(outsider)

    def ids(query: str = "") -> list[int]:
        response = client.get(f"{API}/incidents/{query}")
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [resolved.pk, open_one.pk]  # newest first
    assert ids("?status=open") == [open_one.pk]
    assert ids("?status=unresolved") == [open_one.pk]
    assert ids("?status=resolved") == [resolved.pk]
    assert ids("?status=acknowledged") == []
    response = client.get(f"{API}/incidents/?status=burning")
    assert response.status_code == 400 and "status" in response.json()


def test_incident_detail_has_its_timeline(client_as, product, port, not_null, outsider):
    incident = _check_incident(product, port, not_null)
    body = client_as(outsider).get(f"{API}/incidents/{incident.pk}/").json()
    assert body["title"] == "Check 'Email set' failing"
    assert body["cause"] == "check" and body["status"] == "open" and body["port"] == "orders-file"
    assert [(e["kind"], e["author"], e["body"]) for e in body["events"]] == [
        ("opened", None, "2 null rows of 5.")
    ]


def test_owner_acknowledges_comments_on_and_resolves_an_incident(
    client_as, product, port, not_null, owner
):
    incident = _check_incident(product, port, not_null)
    url = f"{API}/incidents/{incident.pk}"
    client = client_as(owner)

    response = client.post(f"{url}/acknowledge/", {"note": "Looking"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "acknowledged"
    assert response.json()["acknowledged_by"] == "owner"

    response = client.post(f"{url}/comment/", {"body": "Upstream job failed."}, format="json")
    assert response.status_code == 201
    assert response.json()["events"][-1]["kind"] == "comment"
    assert response.json()["events"][-1]["body"] == "Upstream job failed."

    assert "body" in client.post(f"{url}/comment/", {"body": "  "}, format="json").json()
    no_note = client.post(f"{url}/resolve/", {"note": ""}, format="json")
    assert no_note.status_code == 400 and "note" in no_note.json()
    assert "note" in client.post(f"{url}/resolve/", {}, format="json").json()

    response = client.post(f"{url}/resolve/", {"note": "Reloaded the file."}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "resolved" and body["resolution_note"] == "Reloaded the file."
    assert [e["kind"] for e in body["events"]] == ["opened", "acknowledged", "comment", "resolved"]
    again = client.post(f"{url}/resolve/", {"note": "Again"}, format="json")
    assert again.status_code == 400 and "status" in again.json()
    assert client.post(f"{url}/acknowledge/", {}, format="json").status_code == 400


def test_unknown_incident_is_404(client_as, product, port, not_null, draft, owner):
    hidden, _ = incident_open(
        product=draft, cause=IncidentCause.SLO, cause_key="slo:77", title="Hidden"
    )
    client = client_as(owner)
    for pk in (hidden.pk, 999999):
        assert client.get(f"{API}/incidents/{pk}/").status_code == 404
        assert client.post(f"{API}/incidents/{pk}/resolve/", {"note": "x"}).status_code == 404


def test_incident_list_queries_do_not_grow(
    client_as, product, outsider, django_assert_max_num_queries
):
    def make(n: int) -> None:
        for i in range(n):
            incident, _ = incident_open(
                product=product,
                cause=IncidentCause.SLO,
                cause_key=f"slo:{product.pk}:{i}:{Incident.objects.count()}",
                title=f"Incident {i}",
            )
            Incident.objects.filter(pk=incident.pk).update(
                status=IncidentStatus.ACKNOWLEDGED, acknowledged_by=UserFactory()
            )

    make(1)
    client = client_as(outsider)
    with CaptureQueriesContext(connection) as small:
        client.get(f"{API}/incidents/")
    make(10)
    with django_assert_max_num_queries(7):
        response = client.get(f"{API}/incidents/")
    assert response.json()["count"] == 11
    assert len(small) == 7


# --- SLOs --------------------------------------------------------------------------------


def test_slos_with_attainment_and_error_budget(client_as, product, port, not_null, owner, outsider):
    _finished_run(port, owner)  # one failing check evaluation in the windows
    check_create(port=port, by=owner, kind="row_count", params={"min": 1})
    _finished_run(port, owner)  # one more failing, one passing: 1 of 3 good
    response = client_as(owner).post(
        f"{API}/slos/",
        {"kind": "quality", "target_percent": 50, "description": "Half the checks pass"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response["Location"] == response.json()["url"]

    [slo] = client_as(outsider).get(f"{API}/slos/").json()
    assert slo["kind"] == "quality" and slo["target_percent"] == 50
    assert slo["description"] == "Half the checks pass"
    for window, days in (("attainment_7d", 7), ("attainment_30d", 30)):
        attainment = slo[window]
        assert attainment["window_days"] == days
        assert (attainment["good"], attainment["total"]) == (1, 3)
        assert attainment["attainment_percent"] == pytest.approx(33.3333, abs=0.001)
        assert attainment["met"] is False
        assert attainment["error_budget_remaining_percent"] == 0.0
        assert attainment["budget_spent_percent"] == pytest.approx(133.33, abs=0.01)


def test_slo_without_data_and_changes(client_as, product, owner, steward):
    client = client_as(owner)
    created = client.post(
        f"{API}/slos/",
        {"kind": "freshness", "target_percent": 99, "threshold_hours": 24},
        format="json",
    ).json()
    assert created["threshold_hours"] == 24
    assert created["attainment_7d"]["attainment_percent"] is None
    assert created["attainment_7d"]["met"] is None
    assert created["attainment_30d"]["error_budget_remaining_percent"] == 100.0

    patched = client_as(steward).patch(
        created["url"], {"target_percent": 95, "threshold_hours": 12}, format="json"
    )
    assert patched.status_code == 200
    assert (patched.json()["target_percent"], patched.json()["threshold_hours"]) == (95, 12)
    assert client.get(created["url"]).json()["target_percent"] == 95
    assert client.delete(created["url"]).status_code == 204
    assert client.get(f"{API}/slos/").json() == []
    assert client.get(created["url"]).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "quality", "target_percent": 0}, "target_percent"),
        ({"kind": "quality", "target_percent": 101}, "target_percent"),
        ({"kind": "freshness", "target_percent": 99}, "threshold_hours"),
        ({"kind": "freshness", "target_percent": 99, "threshold_hours": -2}, "threshold_hours"),
        ({"kind": "uptime", "target_percent": 99}, "kind"),
        ({"kind": "quality"}, "target_percent"),
        ({"kind": "quality", "target_percent": 99, "window": 7}, "window"),
    ],
)
def test_bad_slo_is_400_on_its_field(client_as, product, owner, body, field):
    response = client_as(owner).post(f"{API}/slos/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_one_slo_per_kind(client_as, product, owner):
    client = client_as(owner)
    body = {"kind": "availability", "target_percent": 99}
    assert client.post(f"{API}/slos/", body, format="json").status_code == 201
    again = client.post(f"{API}/slos/", body, format="json")
    assert again.status_code == 400 and "kind" in again.json()


def test_slo_list_queries_are_bounded(
    client_as, product, owner, outsider, django_assert_max_num_queries
):
    for kind in ("freshness", "availability", "quality"):
        slo_create(product=product, by=owner, kind=kind, target_percent=90, threshold_hours=6)
    client = client_as(outsider)
    # At most one SLO per kind: the product, one query per SLO, the session and user.
    with django_assert_max_num_queries(10):
        assert len(client.get(f"{API}/slos/").json()) == 3


# --- trust score -------------------------------------------------------------------------


def test_trust_before_any_score(client_as, product, outsider):
    body = client_as(outsider).get(f"{API}/trust/").json()
    assert body["product"] == "sales.orders"
    assert body["score"] is None and body["computed_at"] is None and body["history"] == []
    assert [c["name"] for c in body["components"]] == [
        "quality",
        "reliability",
        "documentation",
        "support",
    ]
    assert all(c["score"] is None for c in body["components"])


def test_trust_score_components_evidence_and_history(
    client_as, product, port, not_null, owner, outsider
):
    trust_score_compute(product=product)
    _finished_run(port, owner)  # a failing check: an incident opens, the score drops
    body = client_as(outsider).get(f"{API}/trust/").json()
    latest = product.trust_scores.order_by("-computed_at").first()
    assert body["score"] == latest.score
    assert 0 <= body["score"] <= 100
    components = {c["name"]: c for c in body["components"]}
    assert components["quality"]["score"] == 0.0
    assert components["quality"]["evidence"]["checks"][0]["name"] == "Email set"
    assert components["quality"]["evidence_url"].endswith(f"{API}/checks/")
    assert components["quality"]["page_url"].endswith("/products/sales/orders/quality/#checks")
    assert components["reliability"]["evidence_url"].endswith(f"{API}/slos/")
    assert components["support"]["evidence_url"].endswith(f"{API}/incidents/")
    assert components["support"]["evidence"]["incidents"][0]["title"].startswith("Check")
    assert components["documentation"]["evidence_url"].endswith(f"{API}/")
    assert body["evidence"]["formula"]["weights"]["quality"] == 0.35
    assert len(body["history"]) == 2
    assert body["history"][0]["computed_at"] < body["history"][1]["computed_at"]
    assert body["history"][-1]["score"] == body["score"]
    assert body["how_computed_url"].endswith("/trust-score/")


def test_the_schema_documents_the_trust_endpoints(tmp_path):
    import yaml
    from django.core.management import call_command

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    paths = yaml.safe_load(path.read_text())["paths"]
    prefix = "/api/v1/products/{product_key}"
    for suffix, methods in {
        "/checks/": {"get", "post"},
        "/checks/{id}/": {"get", "patch", "delete"},
        "/check-runs/": {"get", "post"},
        "/check-runs/{id}/": {"get"},
        "/incidents/": {"get"},
        "/incidents/{id}/": {"get"},
        "/incidents/{id}/acknowledge/": {"post"},
        "/incidents/{id}/comment/": {"post"},
        "/incidents/{id}/resolve/": {"post"},
        "/slos/": {"get", "post"},
        "/slos/{id}/": {"get", "patch", "delete"},
        "/trust/": {"get"},
    }.items():
        assert methods <= set(paths[prefix + suffix]), suffix
    assert "202" in paths[prefix + "/check-runs/"]["post"]["responses"]
    trust = paths[prefix + "/trust/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert trust["schema"] == {"$ref": "#/components/schemas/Trust"}  # one object, not a list
