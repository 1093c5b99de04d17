"""A metric's values as a sync's source, against a real PostgreSQL source and destination:
the numbers sent are the metric's as its page computes them, under the creator's access
(row filter, masks), planned and diffed like a port's rows; bad input named at save;
the API, the form and the notebook client."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from knox.models import AuthToken

from portal_client import Portal, PortalRequestError
from products.definitions.services.metrics import MAX_GROUPS, metric_create, metric_evaluate
from sharing.access.services.grants import grant_create, grant_revoke
from sharing.choices import Channel
from sharing.models import AccessEvent, Sync, SyncRecordState
from sharing.models.syncs import SyncRunStatus, SyncStatus
from sharing.syncs.services.runs import sync_run_execute, sync_run_request
from sharing.syncs.services.syncs import sync_create, sync_update
from tests.factories import UserFactory
from tests.sharing.syncs.conftest import DEST_SCHEMA, Table, pg_destination, pg_info

BE_FILTER = [{"column": "country", "op": "=", "value": "BE"}]


@pytest.fixture
def pipeline(leads, owner):
    """The sum of the leads' bids by country (and lead): a metric of the Leads port."""
    return metric_create(
        by=owner,
        port=leads.ports.get(),
        key=f"{leads.domain.slug}.pipeline",
        name="Pipeline",
        aggregation="sum",
        column="bid",
        dimensions=["country", "lead_id"],
    )


@pytest.fixture
def pipeline_table(postgres) -> Table:
    table = Table(pg_info(postgres), DEST_SCHEMA, "pipeline by country")  # quoted name
    table.execute(f"CREATE SCHEMA IF NOT EXISTS {DEST_SCHEMA}")
    table.execute("DROP TABLE IF EXISTS {table}")
    table.execute('CREATE TABLE {table} ("Country" text PRIMARY KEY, total numeric(14,2))')
    return table


@pytest.fixture
def pipeline_destination(pipeline_table):
    return pg_destination(pipeline_table, "Pipeline table")


def metric_sync(leads, pipeline, destination, by, **fields) -> Sync:
    values = {
        "name": "Pipeline by country",
        "metric": pipeline.key,
        "metric_query": {"dimensions": ["country"]},
        "mapping": {"country": "Country", "value": "total"},
    }
    values.update(fields)
    return sync_create(by=by, product=leads, destination=destination, **values)


def run_now(sync, by):
    return sync_run_execute(run_id=sync_run_request(sync=sync, by=by).pk)


def test_a_metric_sync_sends_the_values_its_page_shows_then_only_what_changed(
    leads, pipeline, pipeline_destination, pipeline_table, source_table, owner
):
    sync = metric_sync(
        leads, pipeline, pipeline_destination, owner, guardrails={"max_changed_pct": 100}
    )
    # Left out, the columns are the values' own and the key is the dimensions.
    assert (sync.columns, sync.key_columns) == (["country", "value"], ["country"])
    assert sync.port == leads.ports.get()
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.SUCCEEDED, run.error
    assert (run.source_rows, run.added, run.changed) == (3, 3, 0)
    page = metric_evaluate(metric=pipeline, user=owner, channel=Channel.WEB, dimensions=["country"])
    expected = [(row["country"], row["value"]) for row in page.rows]
    assert pipeline_table.rows() == sorted(expected)
    assert pipeline_table.rows() == [
        ("BE", Decimal("90.00")),
        ("FR", Decimal("40.00")),
        ("NL", Decimal("20.00")),
    ]
    # One audit event of the evaluation, on the sync channel, naming the run.
    read = AccessEvent.objects.filter(channel=Channel.SYNC).latest("pk")
    assert (read.user, read.detail["metric"], read.detail["sync_run"]) == (
        owner,
        pipeline.key,
        run.pk,
    )

    source_table.execute("UPDATE {table} SET bid = 45.5 WHERE lead_id = 4")  # FR moves
    source_table.insert([(6, "f@x", "DE", 0.2, None)])  # a new country, a NULL sum
    second = run_now(sync, owner)
    assert second.status == SyncRunStatus.SUCCEEDED, second.error
    assert (second.added, second.changed, second.removed) == (1, 1, 0)
    assert pipeline_table.rows() == [
        ("BE", Decimal("90.00")),
        ("DE", None),
        ("FR", Decimal("45.50")),
        ("NL", Decimal("20.00")),
    ]
    third = run_now(sync, owner)
    assert (third.planned, third.added, third.changed) == (0, 0, 0)
    assert SyncRecordState.objects.filter(sync=sync).count() == 4


def test_a_grantees_metric_sync_reads_within_the_grant_and_stops_when_it_ends(
    leads, pipeline, pipeline_destination, pipeline_table, owner
):
    grantee = UserFactory(username="analyst")
    grant = grant_create(
        product=leads, by=owner, user=grantee, reason="BE pipeline", row_filter=BE_FILTER
    )
    sync = metric_sync(leads, pipeline, pipeline_destination, grantee)
    run = run_now(sync, grantee)
    assert run.status == SyncRunStatus.SUCCEEDED, run.error
    assert pipeline_table.rows() == [("BE", Decimal("90.00"))]  # the grant's rows only

    grant_revoke(grant=grant, by=owner, reason="project over")
    lost = run_now(sync, grantee)
    assert lost.status == SyncRunStatus.FAILED
    assert "analyst" in lost.error and pipeline.key in lost.error
    sync.refresh_from_db()
    assert sync.status == SyncStatus.PAUSED and sync.paused_reason.startswith("Access lost")
    assert pipeline_table.rows() == [("BE", Decimal("90.00"))]


def test_a_metric_over_a_masked_column_cannot_be_synced_by_a_grantee(
    leads, pipeline_destination, owner
):
    emails = metric_create(
        by=owner,
        port=leads.ports.get(),
        key=f"{leads.domain.slug}.contacts",
        name="Contacts",
        aggregation="count_distinct",
        column="email",
        dimensions=["country"],
    )
    grantee = UserFactory(username="analyst")
    grant_create(product=leads, by=owner, user=grantee, reason="counts")  # email masked
    with pytest.raises(ValidationError) as refused:
        metric_sync(leads, emails, pipeline_destination, grantee)
    assert "email" in refused.value.message_dict["metric"][0]
    assert not Sync.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"metric": "sales.nothing"}, "metric", "no metric 'sales.nothing'"),
        ({"metric_query": {"dimensions": ["email"]}}, "metric_query", "no dimension email"),
        ({"metric_query": {"grain": "month"}}, "metric_query", "no time column"),
        ({"metric_query": {"dimensions": ["country"], "top": 3}}, "metric_query", "top"),
        ({"metric_query": {"dimensions": 5}}, "metric_query", "a list of dimension names"),
        ({"metric_query": {"dimensions": ["country"], "grain": 3}}, "metric_query", "grain"),
        ({"metric_query": {"dimensions": ["country"], "filters": 3}}, "metric_query", "filter"),
        ({"metric_query": [1]}, "metric_query", "An object like"),
        ({"metric_query": {}}, "metric_query", "grain or dimension"),
        ({"columns": ["country", "bid"]}, "columns", "bid: not a column"),
        ({"key_columns": ["lead_id"]}, "columns", "lead_id: not a column"),
        ({"columns": ["value"], "key_columns": ["country"]}, "key_columns", "not among"),
        ({"port_slug": "other"}, "port_slug", "name a port or a metric"),
        ({"mapping": {"country": "Nope"}}, "mapping", "no field(s) 'Nope'"),
    ],
)
def test_bad_metric_sync_input_is_named_and_nothing_saved(
    leads, pipeline, pipeline_destination, owner, fields, field, words
):
    with pytest.raises(ValidationError) as refused:
        metric_sync(leads, pipeline, pipeline_destination, owner, **fields)
    assert words in " ".join(refused.value.message_dict[field])
    assert not Sync.objects.exists()


def test_a_metric_with_more_groups_than_one_evaluation_holds_is_refused_not_sent_in_part(
    leads, pipeline, pipeline_destination, pipeline_table, source_table, owner
):
    source_table.execute(
        "INSERT INTO {table} SELECT g, NULL, 'BE', 0, 1 FROM generate_series(10, %s) g",
        [10 + MAX_GROUPS],
    )
    sync = metric_sync(
        leads,
        pipeline,
        pipeline_destination,
        owner,
        metric_query={"dimensions": ["country", "lead_id"]},
        mapping={"country": "Country", "value": "total"},
        columns=["country", "value"],
        key_columns=["country"],
    )
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.FAILED
    assert f"more than {MAX_GROUPS:,} groups" in run.error
    assert pipeline_table.rows() == []


def test_changing_what_a_metric_sync_asks_chooses_its_columns_again(
    leads, pipeline, pipeline_destination, owner
):
    sync = metric_sync(leads, pipeline, pipeline_destination, owner)
    with pytest.raises(ValidationError) as refused:  # lead_id is no field of the table
        sync_update(sync=sync, by=owner, metric_query={"dimensions": ["country", "lead_id"]})
    assert "lead_id" in " ".join(refused.value.message_dict["mapping"])
    sync.refresh_from_db()
    assert sync.metric_query["dimensions"] == ["country"]
    # Back to the port's rows: a port sync names its columns.
    with pytest.raises(ValidationError) as refused:
        sync_update(sync=sync, by=owner, metric="")
    assert "Choose the columns" in refused.value.message_dict["columns"][0]


def test_the_api_creates_a_metric_sync_and_names_bad_fields(
    leads, pipeline, pipeline_destination, owner, client_as
):
    api = client_as(owner)
    body = {
        "product": leads.key,
        "destination": pipeline_destination.pk,
        "name": "Pipeline",
        "metric": pipeline.key,
        "metric_query": {"dimensions": ["country"]},
        "mapping": {"country": "Country", "value": "total"},
    }
    created = api.post("/api/v1/syncs/", body, format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["metric"], data["port"], data["columns"], data["key_columns"]) == (
        pipeline.key,
        "leads",
        ["country", "value"],
        ["country"],
    )
    assert data["metric_query"] == {"dimensions": ["country"], "grain": None, "filters": []}
    bad = api.post(
        "/api/v1/syncs/", {**body, "metric_query": {"dimensions": ["nope"]}}, format="json"
    )
    assert bad.status_code == 400
    assert "no dimension nope" in bad.json()["metric_query"][0]


def test_the_form_takes_a_metric_as_its_source_from_the_metric_page(
    leads, pipeline, pipeline_destination, owner, client
):
    client.force_login(owner)
    page = client.get(reverse("definitions:metric-detail", args=[pipeline.key]))
    new = reverse("sharing:sync-create", args=[leads.domain.slug, leads.slug])
    assert f"{new}?source=metric%3A{pipeline.key}" in page.content.decode()
    form = client.get(f"{new}?source=metric:{pipeline.key}&dimension=country")
    assert form.status_code == 200
    assert f'value="metric:{pipeline.key}" selected' in form.content.decode()
    data = {
        "name": "Pipeline by country",
        "port": f"metric:{pipeline.key}",
        "metric_dimensions": ["country"],
        "metric_grain": "",
        "destination": str(pipeline_destination.pk),
        "map__country": "Country",
        "map__value": "total",
        "mode": "upsert",
        "trigger": "manual",
        "timezone": "UTC",
        "max_changed_pct": "20",
        "max_removed_pct": "5",
        "hold_on_empty_source": "on",
        "max_count_move_pct": "50",
        "breaker_failures": "3",
    }
    bad = client.post(new, {**data, "metric_dimensions": ["lead_id", "country"]})
    assert bad.status_code == 400
    assert "lead_id" in bad.content.decode() and not Sync.objects.exists()
    saved = client.post(new, data)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    sync = Sync.objects.get()
    assert (sync.metric, sync.columns, sync.mapping) == (
        pipeline,
        ["country", "value"],
        {"country": "Country", "value": "total"},
    )
    detail = client.get(saved["Location"])
    assert "the values of the metric" in detail.content.decode()
    tab = client.get(reverse("sharing:product-syncs", args=[leads.domain.slug, leads.slug]))
    assert "values of the metric Pipeline" in tab.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_notebook_client_syncs_a_metrics_values(
    live_server, leads, pipeline, pipeline_destination, pipeline_table, owner, eager_tasks
):
    portal = Portal(url=live_server.url, token=AuthToken.objects.create(owner)[1])
    with pytest.raises(PortalRequestError) as bad:
        portal.sync_create(
            leads.key,
            destination=pipeline_destination.pk,
            name="Bad",
            metric=pipeline.key,
            dimensions=["email"],
        )
    assert "no dimension email" in str(bad.value)
    sync = portal.sync_create(
        leads.key,
        destination=pipeline_destination.pk,
        name="Pipeline by country",
        metric=pipeline.key,
        dimensions=["country"],
        mapping={"country": "Country", "value": "total"},
    )
    plan = portal.sync_dry_run(sync["id"])
    assert (plan["status"], plan["added"]) == ("planned", 3)
    assert {"Country": "BE", "total": 90.0} in plan["plan_sample"]["added"]
    assert pipeline_table.rows() == []  # a dry run sends nothing
    run = portal.sync_run(sync["id"])
    assert run["status"] == "succeeded", run["error"]
    assert len(pipeline_table.rows()) == 3
