"""Pages of scheduled exports: the Exports tab, the schedule form and its cron helper, a
schedule's page with "run now", progress and run history, downloads."""

from __future__ import annotations

import json

from django.urls import reverse

from portal.core.plotly_assets import PLOTLY_BUNDLE
from sharing.choices import Channel, ExportStatus
from sharing.exports.services.runs import (
    export_run_execute,
    export_run_request,
    export_schedule_create,
)
from sharing.models import AccessEvent, ExportRun, ExportSchedule
from tests.factories import PASSWORD
from tests.sharing.exports.helpers import grant


def _login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def _url(name: str, **kwargs) -> str:
    return reverse(
        f"sharing:{name}", kwargs={"domain_slug": "sales", "product_slug": "orders", **kwargs}
    )


def _schedule(product, by, **fields):
    return export_schedule_create(
        product=product, by=by, **{"name": "Nightly", "cron": "0 6 * * *", **fields}
    )


def test_the_tab_lists_schedules_in_constant_queries(
    client, orders, owner, django_assert_max_num_queries
):
    _login(client, owner)
    empty = client.get(_url("product-exports"))
    assert empty.status_code == 200
    assert b"No scheduled exports yet" in empty.content and b"New schedule" in empty.content
    schedules = [_schedule(orders, owner, name=f"Export {i}") for i in range(6)]
    for schedule in schedules[:3]:
        export_run_execute(run_id=export_run_request(schedule=schedule, by=owner).pk)
    with django_assert_max_num_queries(24):
        page = client.get(_url("product-exports"))
    html = page.content.decode()
    assert html.count('class="badge badge-export-succeeded"') == 3
    assert html.count("Not run yet") == 3
    assert 'aria-current="page">Exports</a>' in html


def test_someone_without_access_is_told_to_request_it(client, orders, outsider):
    _login(client, outsider)
    page = client.get(_url("product-exports")).content.decode()
    assert "cannot read this product's data yet" in page and "Request access" in page
    assert client.get(_url("export-schedule-create")).status_code == 403


def _form(**fields) -> dict:
    return {
        "name": "Finance daily",
        "port": "orders",
        "format": "parquet",
        "columns": ["order_id", "country", "email", "amount"],
        "cron": "0 6 * * 1-5",
        "timezone": "Europe/Paris",
        "retention_runs": "5",
        "enabled": "on",
        **fields,
    }


def test_the_form_creates_a_schedule(client, orders, owner):
    _login(client, owner)
    page = client.get(_url("export-schedule-create")).content.decode()
    assert 'data-cron-preset="0 6 * * 1-5"' in page and 'id="cron-preview"' in page
    response = client.post(_url("export-schedule-create"), _form(masked_columns=["email"]))
    schedule = ExportSchedule.objects.get()
    assert response.status_code == 302
    assert response["Location"] == _url("export-schedule-detail", schedule_id=schedule.pk)
    assert (schedule.format, schedule.timezone, schedule.columns, schedule.masked_columns) == (
        "parquet",
        "Europe/Paris",
        [],  # every column ticked: all of them
        ["email"],
    )
    detail = client.get(response["Location"]).content.decode()
    assert "Finance daily" in detail and "Run now" in detail and "No run yet" in detail


def test_a_bad_cron_is_a_400_beside_its_field(client, orders, owner):
    _login(client, owner)
    response = client.post(_url("export-schedule-create"), _form(cron="0 6 * * 8"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "The day-of-week field &#x27;8&#x27; is not valid" in html
    assert not ExportSchedule.objects.exists()
    response = client.post(_url("export-schedule-create"), _form(row_filter="[{"))
    assert response.status_code == 400 and "not valid JSON" in response.content.decode()


def test_the_cron_helper_shows_the_next_three_runs_or_the_error(client, owner):
    _login(client, owner)
    url = reverse("sharing:export-cron-preview")
    response = client.get(url, {"cron": "30 7 * * *", "timezone": "Asia/Tokyo"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<time") == 3 and "07:30" in html and "+09:00" in html
    response = client.get(url, {"cron": "30 7 * *", "timezone": "UTC"})
    assert response.status_code == 400 and "5 fields" in response.content.decode()
    response = client.get(url, {"cron": "30 7 * * *", "timezone": "Nowhere"})
    assert response.status_code == 400 and "Unknown time zone" in response.content.decode()


def test_run_now_polls_then_shows_the_run_with_its_file(client, orders, owner):
    schedule = _schedule(orders, owner, format="csv")
    _login(client, owner)
    response = client.post(_url("export-run-now", schedule_id=schedule.pk), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in html and "Export queued" in html
    assert 'data-export-state="queued"' in html and "disabled" in html

    run = ExportRun.objects.get()
    export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    html = client.get(_url("export-runs", schedule_id=schedule.pk)).content.decode()
    assert "every 1s" not in html  # finished: no more polling
    assert 'data-export-state="succeeded"' in html
    assert f"{run.sha256[:12]}…" in html and f"{run.bytes}\xa0bytes" in html
    download = _url("export-run-download", run_id=run.pk)
    assert download in html

    response = client.get(download)
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].replace('"', "") == "order_id,country,email,amount" and len(lines) == 7
    assert AccessEvent.objects.filter(
        channel=Channel.EXPORT, user=owner, detail__export_run=run.pk, detail__file__isnull=False
    ).exists()


def test_held_and_failed_runs_say_why(client, orders, owner, outsider):
    access = grant(orders, outsider)
    schedule = _schedule(orders, outsider)
    access.delete()
    run = export_run_execute(run_id=export_run_request(schedule=schedule, by=outsider).pk)
    assert run.status == ExportStatus.FAILED
    _login(client, owner)  # the domain's owner sees every schedule
    html = client.get(_url("export-schedule-detail", schedule_id=schedule.pk)).content.decode()
    assert "badge-export-failed" in html and "no access to this product" in html


def test_other_people_cannot_see_or_change_a_schedule(client, orders, owner, outsider, member):
    schedule = _schedule(orders, owner)
    run = export_run_execute(run_id=export_run_request(schedule=schedule, by=owner).pk)
    grant(orders, outsider)
    _login(client, outsider)
    assert client.get(_url("export-schedule-detail", schedule_id=schedule.pk)).status_code == 404
    assert client.get(_url("export-run-download", run_id=run.pk)).status_code == 404
    client.logout()
    _login(client, member)  # sees it (reads everything), may download, may not change it
    html = client.get(_url("export-schedule-detail", schedule_id=schedule.pk)).content.decode()
    assert "Download" in html and "End schedule" not in html
    assert client.get(_url("export-schedule-edit", schedule_id=schedule.pk)).status_code == 403
    assert client.post(_url("export-schedule-end", schedule_id=schedule.pk)).status_code == 403


def test_edit_and_end(client, orders, owner):
    schedule = _schedule(orders, owner)
    _login(client, owner)
    page = client.get(_url("export-schedule-edit", schedule_id=schedule.pk)).content.decode()
    assert 'value="0 6 * * *"' in page
    response = client.post(
        _url("export-schedule-edit", schedule_id=schedule.pk),
        _form(name="Renamed", cron="5 4 * * *"),
    )
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.name, schedule.cron) == ("Renamed", "5 4 * * *")
    response = client.post(_url("export-schedule-end", schedule_id=schedule.pk), follow=True)
    html = response.content.decode()
    assert "badge-export-ended" in html and "Run now" not in html


def test_the_schedule_page_charts_sizes_and_durations_from_two_runs(client, orders, owner):
    schedule = _schedule(orders, owner, timezone="America/New_York")
    _login(client, owner)
    url = _url("export-schedule-detail", schedule_id=schedule.pk)
    export_run_execute(run_id=export_run_request(schedule=schedule, by=owner).pk)
    assert "export-runs-chart-data" not in client.get(url).content.decode()  # one run
    export_run_execute(run_id=export_run_request(schedule=schedule, by=owner).pk)
    html = client.get(url).content.decode()
    assert 'id="export-runs-chart-data"' in html and PLOTLY_BUNDLE in html
    figure = json.loads(
        html.split('id="export-runs-chart-data" type="application/json">')[1].split("</script>")[0]
    )
    sizes, durations = figure["data"]
    assert len(sizes["x"]) == len(durations["y"]) == 2
    runs = ExportRun.objects.order_by("pk")
    assert sizes["customdata"] == [[run.pk, 6] for run in runs]
    assert figure["layout"]["xaxis"]["title"]["text"] == "America/New_York"


def test_a_filter_value_of_the_wrong_type_keeps_the_form_and_says_why_beside_it(
    client, orders, owner
):
    _login(client, owner)
    page = client.get(_url("export-schedule-create")).content.decode()
    builder = json.loads(
        page.split('data-filter-builder="', 1)[1].split('"', 1)[0].replace("&quot;", '"')
    )
    assert {c["name"]: c["kind"] for c in builder["columns"]} == {
        "order_id": "number",
        "country": "text",
        "email": "text",
        "amount": "number",
    }
    typed = json.dumps(
        [
            {"column": "country", "op": "=", "value": "BE"},
            {"column": "amount", "op": ">=", "value": "lots"},
        ]
    )
    response = client.post(
        _url("export-schedule-create"),
        _form(columns=["order_id", "country"], row_filter=typed, name="Belgian orders"),
    )
    assert response.status_code == 400 and not ExportSchedule.objects.exists()
    html = response.content.decode()
    field = html[html.index('id="id_row_filter"') :]
    field = field[: field.index("</div>")]
    assert "The filter on amount needs a number (DOUBLE); &#x27;lots&#x27; is not one." in field
    assert "&quot;lots&quot;" in field  # the filter as entered
    assert 'value="Belgian orders"' in html
    assert 'name="columns" value="email" id="id_columns_2">' in html  # still unticked
    assert 'name="columns" value="country" id="id_columns_1" checked>' in html


def test_the_schedule_page_says_its_filter_in_words(client, orders, owner):
    _login(client, owner)
    schedule = _schedule(
        orders,
        owner,
        row_filter=[
            {"column": "country", "op": "in", "value": ["BE", "NL"]},
            {"column": "amount", "op": ">=", "value": 10},
            {"column": "amount", "op": "<=", "value": 50},
        ],
    )
    html = client.get(_url("export-schedule-detail", schedule_id=schedule.pk)).content.decode()
    assert (
        "only where <strong>country is BE or NL</strong> and "
        "<strong>amount is between 10 and 50</strong>"
    ) in html
