"""The scheduled-exports API: schedules of a product (list, create), a schedule (detail,
change, end, run now, runs), a run (status, download), bad input answered 400 naming the
field, and downloads checked four ways against the requester's access, each audited."""

from __future__ import annotations

import hashlib

import pytest
from django.utils import timezone

from sharing.choices import Channel, ExportStatus
from sharing.exports.services.runs import export_run_execute, export_runs_prune
from sharing.models import AccessEvent, AccessGrant, ExportRun, ExportSchedule
from tests.sharing.exports.helpers import files_of, grant

BASE = "/api/v1"


def _create(api_client, user, **body):
    api_client.force_authenticate(user)
    body = {"name": "Nightly", "cron": "0 6 * * *", **body}
    return api_client.post(f"{BASE}/products/sales.orders/export-schedules/", body, format="json")


def _executed(run_id: int) -> ExportRun:
    return export_run_execute(run_id=run_id)


def test_create_list_change_and_end_a_schedule(api_client, orders, owner):
    response = _create(
        api_client,
        owner,
        format="parquet",
        timezone="Europe/Paris",
        columns=["order_id", "country"],
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
        retention_runs=3,
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["product"], body["port"], body["created_by"], body["format"]) == (
        "sales.orders",
        "orders",
        "owner",
        "parquet",
    )
    assert len(body["next_runs"]) == 3 and body["next_runs"][0].endswith(("+01:00", "+02:00"))
    url = f"{BASE}/export-schedules/{body['id']}/"
    assert body["url"].endswith(url)

    listed = api_client.get(f"{BASE}/products/sales.orders/export-schedules/").json()
    assert [item["id"] for item in listed["results"]] == [body["id"]]

    changed = api_client.patch(url, {"cron": "15 7 * * 1-5", "enabled": False}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["cron"], changed.json()["next_runs"]) == ("15 7 * * 1-5", [])

    assert api_client.delete(url).status_code == 204
    ended = api_client.get(url).json()
    assert ended["ended_at"] is not None and not ended["enabled"]
    refused = api_client.post(f"{url}run/")
    assert refused.status_code == 400 and "ended" in refused.json()["schedule"][0]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"cron": "61 * * * *"}, "cron", "minute field '61'"),
        ({"cron": "every day"}, "cron", "5 fields"),
        ({"cron": "0 6 32 * *"}, "cron", "day-of-month field '32'"),
        ({"timezone": "Europe/Atlantis"}, "timezone", "Unknown time zone"),
        ({"format": "pdf"}, "format", "valid choice"),
        ({"columns": ["secret"]}, "columns", "Unknown column"),
        ({"row_filter": "not json"}, "row_filter", "not valid JSON"),
        ({"retention_runs": 1000}, "retention_runs", "365"),
        ({"owner": "me"}, "owner", "cannot be set"),
    ],
)
def test_bad_input_answers_400_naming_the_field(api_client, orders, owner, body, field, words):
    response = _create(api_client, owner, **body)
    assert response.status_code == 400
    assert words in " ".join(response.json()[field]), response.json()
    assert not ExportSchedule.objects.exists()


def test_who_sees_and_changes_which_schedules(api_client, orders, owner, outsider, member):
    grant(orders, outsider)
    mine = _create(api_client, outsider, name="Mine").json()
    theirs = _create(api_client, owner, name="Theirs").json()

    api_client.force_authenticate(outsider)
    listed = api_client.get(f"{BASE}/products/sales.orders/export-schedules/").json()
    assert [item["name"] for item in listed["results"]] == ["Mine"]
    assert api_client.get(f"{BASE}/export-schedules/{theirs['id']}/").status_code == 404
    assert (
        api_client.patch(f"{BASE}/export-schedules/{mine['id']}/", {"name": "Renamed"}).json()[
            "name"
        ]
        == "Renamed"
    )

    api_client.force_authenticate(member)  # reads everything: sees every schedule
    listed = api_client.get(f"{BASE}/products/sales.orders/export-schedules/").json()
    assert sorted(item["name"] for item in listed["results"]) == ["Renamed", "Theirs"]
    response = api_client.patch(f"{BASE}/export-schedules/{mine['id']}/", {"name": "x"})
    assert response.status_code == 403  # a member, not a manager nor the creator

    api_client.force_authenticate(None)
    assert api_client.get(f"{BASE}/export-schedules/{mine['id']}/").status_code == 401


def test_an_outsider_cannot_schedule(api_client, orders, outsider):
    response = _create(api_client, outsider)
    assert response.status_code == 403 and "request access" in response.json()["detail"]


def test_list_queries_do_not_grow_with_schedules(
    api_client, orders, owner, django_assert_max_num_queries
):
    for index in range(8):
        assert _create(api_client, owner, name=f"Schedule {index}").status_code == 201
    with django_assert_max_num_queries(12):
        response = api_client.get(f"{BASE}/products/sales.orders/export-schedules/")
    assert response.json()["count"] == 8


def test_run_now_answers_202_then_the_run_and_its_history(api_client, orders, owner):
    schedule = _create(api_client, owner, format="csv").json()
    response = api_client.post(f"{BASE}/export-schedules/{schedule['id']}/run/")
    assert response.status_code == 202
    queued = response.json()
    assert (queued["status"], queued["trigger"], queued["download_url"]) == (
        "queued",
        "manual",
        None,
    )
    _executed(queued["id"])
    run = api_client.get(f"{BASE}/export-runs/{queued['id']}/").json()
    assert run["status"] == "succeeded" and run["rows"] == 6 and run["attempts"] == 1
    assert run["download_url"].endswith(f"/export-runs/{queued['id']}/download/")
    assert run["file_name"].endswith(f"-run{queued['id']}.csv")
    assert run["duration_seconds"] >= 0 and len(run["sha256"]) == 64
    history = api_client.get(f"{BASE}/export-schedules/{schedule['id']}/runs/").json()
    assert [item["id"] for item in history["results"]] == [queued["id"]]


# --- downloads, four ways ----------------------------------------------------------------


@pytest.fixture
def grantee_run(orders, outsider):
    """A run of a schedule created by a grantee (every column, email unmasked by name,
    no row filter), executed."""
    access = grant(orders, outsider, columns=["order_id", "country", "email", "amount"])
    from sharing.exports.services.runs import export_run_request, export_schedule_create

    schedule = export_schedule_create(
        product=orders, by=outsider, name="Grantee's", cron="0 6 * * *", format="csv"
    )
    run = _executed(export_run_request(schedule=schedule, by=outsider).pk)
    assert run.status == ExportStatus.SUCCEEDED, run.error
    return run, access


def _download(api_client, user, run):
    api_client.force_authenticate(user)
    return api_client.get(f"{BASE}/export-runs/{run.pk}/download/")


def test_download_anonymous_is_401(api_client, grantee_run):
    run, _ = grantee_run
    assert _download(api_client, None, run).status_code == 401


def test_download_without_permission_is_404(api_client, grantee_run):
    from tests.factories import UserFactory

    run, _ = grantee_run
    stranger = UserFactory(username="stranger")
    grant(run.schedule.product, stranger)  # may read the product, not see this schedule
    assert _download(api_client, stranger, run).status_code == 404


@pytest.mark.parametrize("run_id", ["0.5", "-1", "x"])
def test_a_malformed_run_id_is_the_api_json_404(api_client, owner, run_id):
    # Found by the API fuzz: `0.5` matched no route and got the HTML page for unknown URLs.
    api_client.force_authenticate(owner)
    for path in (f"{BASE}/export-runs/{run_id}/", f"{BASE}/export-runs/{run_id}/download/"):
        response = api_client.get(path)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "There is no such export run."}


def test_download_with_permission_serves_the_file_and_audits_it(
    api_client, grantee_run, outsider, member
):
    run, _ = grantee_run
    for user in (outsider, member):  # its creator, and a member reading everything
        response = _download(api_client, user, run)
        assert response.status_code == 200
        data = b"".join(response.streaming_content)
        assert hashlib.sha256(data).hexdigest() == run.sha256 and len(data) == run.bytes
        assert response["Content-Type"].startswith("text/csv")
        assert f'filename="{run.file_name.rsplit("/", 1)[1]}"' in response["Content-Disposition"]
        assert response["Repr-Digest"].startswith("sha-256=:")
    events = AccessEvent.objects.filter(channel=Channel.EXPORT, detail__export_run=run.pk)
    downloads = events.exclude(detail__has_key="port")  # the run's own read has the port
    assert sorted(event.user.username for event in downloads) == ["member", "outsider"]
    assert {(event.rows, event.bytes) for event in downloads} == {(6, run.bytes)}


def test_download_with_narrowed_permission_is_403_saying_why(api_client, grantee_run, outsider):
    run, access = grantee_run
    now = timezone.now()
    access.revoked_at = now
    access.save()
    narrowed = grant(run.schedule.product, outsider, columns=["order_id", "country"])
    response = _download(api_client, outsider, run)
    assert response.status_code == 403
    assert "email, amount" in response.json()["detail"]

    narrowed.revoked_at = now
    narrowed.save()
    grant(run.schedule.product, outsider)  # every column, but email masked now
    response = _download(api_client, outsider, run)
    assert response.status_code == 403 and "masks" in response.json()["detail"]

    AccessGrant.objects.filter(user=outsider).update(revoked_at=now)
    grant(
        run.schedule.product,
        outsider,
        columns=["order_id", "country", "email", "amount"],
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
    )
    response = _download(api_client, outsider, run)
    assert response.status_code == 403 and "row filter" in response.json()["detail"]


def test_a_pruned_file_is_gone(api_client, grantee_run, outsider):
    run, _ = grantee_run
    ExportSchedule.objects.filter(pk=run.schedule_id).update(retention_runs=1)
    later = _executed(ExportRun.objects.create(schedule=run.schedule).pk)
    assert export_runs_prune() == 0  # pruned as the later run finished
    assert [path.name for path in files_of(run.schedule_id)] == [later.file_name.rsplit("/")[-1]]
    response = _download(api_client, outsider, run)
    assert response.status_code == 410 and "retention" in response.json()["detail"]
