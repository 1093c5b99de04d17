"""The syncs pages with Django's test client: the product's Syncs tab (empty states, the
list), the sync form (errors beside their field, nothing saved), the sync's page (loop
warning, guardrails, held runs with Approve / Decline, the history, rejected records and
their CSV), the runs block the page polls, and the destinations page; who sees and does
what: an outsider, a steward of another domain, a grantee whose grant is narrowed."""

from __future__ import annotations

import duckdb
import pytest
from django.urls import reverse

from sharing.models import Sync, SyncDestination, SyncRun
from sharing.syncs.services.runs import sync_run_execute, sync_run_request
from sharing.syncs.services.syncs import sync_create
from tests.sharing.syncs.test_api import (
    CRM_TABLE,
    crm_destination,
    crm_rows,
    crm_table_create,
    marketing_steward,
    narrowed_grantee,
)


@pytest.fixture
def crm_path(tmp_path):
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


def _urls(product, sync=None) -> dict:
    slugs = [product.domain.slug, product.slug]
    urls = {
        "tab": reverse("sharing:product-syncs", args=slugs),
        "new": reverse("sharing:sync-create", args=slugs),
    }
    if sync is not None:
        urls["detail"] = reverse("sharing:sync-detail", args=[*slugs, sync.pk])
        for name in ("edit", "run-now", "dry-run", "runs", "pause", "resume", "rejected-csv"):
            urls[name] = reverse(f"sharing:sync-{name}", args=[*slugs, sync.pk])
    return urls


def _sync(product, owner, crm, **fields) -> Sync:
    return sync_create(
        by=owner,
        product=product,
        destination=crm,
        name=fields.pop("name", "Orders to the CRM"),
        columns=fields.pop("columns", ["order_id", "country", "amount"]),
        key_columns=["order_id"],
        **fields,
    )


def _form(crm, **fields) -> dict:
    data = {
        "name": "Orders to the CRM",
        "port": "orders",
        "destination": str(crm.pk),
        "columns": ["order_id", "country", "amount"],
        "key_columns": ["order_id"],
        "mode": "upsert",
        "trigger": "manual",
        "cron": "",
        "timezone": "UTC",
        "max_changed_pct": "20",
        "max_removed_pct": "5",
        "hold_on_empty_source": "on",
        "max_count_move_pct": "50",
        "breaker_failures": "3",
        "column_limits": "",
    }
    data.update(fields)
    return data


def _executed(sync: Sync, by) -> SyncRun:
    run = sync_run_request(sync=sync, by=by)
    return sync_run_execute(run_id=run.pk)


# --- the Syncs tab ---------------------------------------------------------------------


def test_the_tab_is_in_the_product_header_and_says_what_to_do(client, pg_product, owner):
    client.force_login(owner)
    overview = client.get(pg_product.get_absolute_url())
    assert _urls(pg_product)["tab"] in overview.content.decode()
    page = client.get(_urls(pg_product)["tab"]).content.decode()
    assert "No destination you may send to" in page  # none registered yet
    assert _urls(pg_product)["new"] not in page


def test_the_tab_lists_syncs_with_their_last_run(client, pg_product, owner, crm):
    sync = _sync(pg_product, owner, crm)
    _executed(sync, owner)
    client.force_login(owner)
    page = client.get(_urls(pg_product)["tab"]).content.decode()
    assert "Orders to the CRM" in page
    assert "CRM orders" in page  # the destination
    assert "Succeeded" in page
    assert _urls(pg_product)["new"] in page


def test_an_outsider_is_asked_to_request_access(client, pg_product, owner, outsider, crm):
    _sync(pg_product, owner, crm)
    client.force_login(outsider)
    page = client.get(_urls(pg_product)["tab"]).content.decode()
    assert "Orders to the CRM" not in page
    assert "Request access" in page
    assert client.get(_urls(pg_product)["new"]).status_code == 403


# --- the form --------------------------------------------------------------------------


def test_create_through_the_form(client, pg_product, owner, crm):
    client.force_login(owner)
    form = client.get(_urls(pg_product)["new"])
    assert form.status_code == 200
    content = form.content.decode()
    assert 'name="map__amount"' in content
    assert "note" in content  # the destination's fields, for the mapping's selects
    assert "Hold the run for approval when more than" in content  # guardrails explained

    response = client.post(_urls(pg_product)["new"], _form(crm, map__amount="amount"))
    sync = Sync.objects.get()
    assert response.status_code == 302
    assert response["Location"] == _urls(pg_product, sync)["detail"]
    assert sync.created_by == owner
    assert sync.columns == ["order_id", "country", "amount"]
    assert sync.mapping == {}  # a column mapped to its own name keeps it


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"key_columns": []}, "key_columns", "Name the key"),
        ({"map__amount": "nowhere"}, "map__amount", "Select a valid choice"),
        ({"map__amount": "country"}, "mapping", "country"),
        ({"trigger": "schedule", "cron": "0 25 * * *"}, "cron", "hour"),
        ({"column_limits": "[{oops"}, "column_limits", "not JSON"),
        ({"column_limits": '[{"column": "country", "max_sum": 3}]'}, "column_limits", "numeric"),
        ({"max_changed_pct": "-1"}, "max_changed_pct", "greater than or equal to 0"),
    ],
)
def test_form_errors_beside_their_field_nothing_saved(
    client,
    pg_product,
    owner,
    crm,
    fields,
    field,
    words,
):
    client.force_login(owner)
    response = client.post(_urls(pg_product)["new"], _form(crm, **fields))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert words.lower() in " ".join(errors[field]).lower()
    assert not Sync.objects.exists()


def test_a_narrowed_grantee_is_offered_only_the_granted_columns(
    client,
    pg_product,
    narrowed,
    crm,
):
    client.force_login(narrowed)
    form = client.get(_urls(pg_product)["new"]).context["form"]
    assert [value for value, _ in form.fields["columns"].choices] == ["order_id", "country"]
    response = client.post(_urls(pg_product)["new"], _form(crm))  # amount is not granted
    assert response.status_code == 400
    assert "columns" in response.context["form"].errors
    assert not Sync.objects.exists()


def test_edit_keeps_the_creator_and_refuses_others(
    client,
    pg_product,
    owner,
    crm,
    other_steward,
):
    sync = _sync(pg_product, owner, crm)
    urls = _urls(pg_product, sync)
    client.force_login(other_steward)
    assert client.get(urls["edit"]).status_code == 404  # not even seen
    client.force_login(owner)
    assert client.get(urls["edit"]).context["form"].initial["key_columns"] == ["order_id"]
    response = client.post(urls["edit"], _form(crm, name="Renamed", max_changed_pct="10"))
    assert response.status_code == 302
    sync.refresh_from_db()
    assert (sync.name, sync.max_changed_pct, sync.created_by) == ("Renamed", 10.0, owner)


# --- the sync's page -------------------------------------------------------------------


def test_the_page_shows_settings_guardrails_history_and_dry_run_plan(
    client,
    pg_product,
    owner,
    crm,
):
    sync = _sync(pg_product, owner, crm, mapping={"amount": "amount"})
    urls = _urls(pg_product, sync)
    client.force_login(owner)
    response = client.post(urls["dry-run"])
    assert response.status_code == 302
    sync_run_execute(run_id=SyncRun.objects.get(dry_run=True).pk)
    _executed(sync, owner)
    page = client.get(urls["detail"]).content.decode()
    assert "Insert or update" in page
    assert "more than <strong>20%</strong>" in page
    assert "Dry run" in page and "Run now" in page and "Pause" in page
    assert "Dry run planned" in page
    assert 'id="sync-runs"' in page
    assert 'hx-trigger="every 1s"' not in page  # nothing running: no polling


def test_a_queued_run_shows_progress_and_polls(client, pg_product, owner, crm):
    sync = _sync(pg_product, owner, crm)
    urls = _urls(pg_product, sync)
    client.force_login(owner)
    block = client.post(urls["run-now"], HTTP_HX_REQUEST="true")
    content = block.content.decode()
    assert "Run queued" in content
    assert 'hx-trigger="every 1s"' in content
    assert urls["runs"] in content
    sync_run_execute(run_id=SyncRun.objects.get().pk)
    done = client.get(urls["runs"]).content.decode()
    assert "Succeeded" in done
    assert "every 1s" not in done


def test_a_held_run_is_shown_with_its_reasons_and_approved(
    client,
    pg_product,
    owner,
    crm,
    crm_path,
):
    sync = _sync(
        pg_product, owner, crm, guardrails={"column_limits": [{"column": "amount", "max_sum": 50}]}
    )
    held = _executed(sync, owner)
    assert held.status == "held"
    urls = _urls(pg_product, sync)
    client.force_login(owner)
    page = client.get(urls["detail"]).content.decode()
    assert f"Run #{held.pk} is held for approval" in page
    assert "amount" in page
    assert "Approve and send exactly this plan" in page
    approve = reverse(
        "sharing:sync-run-approve", args=[pg_product.domain.slug, pg_product.slug, sync.pk, held.pk]
    )
    assert client.post(approve).status_code == 302
    sent = SyncRun.objects.get(approves=held)
    sync_run_execute(run_id=sent.pk)
    assert len(crm_rows(crm_path)) == 4
    assert f"Run #{held.pk} is held for approval" not in client.get(urls["detail"]).content.decode()


def test_loop_warning_is_prominent(client, pg_product, owner, crm):
    sync = _sync(pg_product, owner, crm)
    Sync.objects.filter(pk=sync.pk).update(
        loop_warning="CRM orders is the table of port Orders of this product."
    )
    client.force_login(owner)
    page = client.get(_urls(pg_product, sync)["detail"]).content.decode()
    assert "Feedback loop" in page
    assert "It will not run until per-column limits are set" in page


def test_rejected_records_listed_and_downloaded(
    client,
    pg_product,
    owner,
    crm,
    crm_path,
):
    with duckdb.connect(str(crm_path)) as conn:
        conn.execute(f"INSERT INTO {CRM_TABLE} VALUES (3, 'BE', NULL, 1, 'app')")
    sync = _sync(pg_product, owner, crm, mode="insert")
    _executed(sync, owner)
    urls = _urls(pg_product, sync)
    client.force_login(owner)
    page = client.get(urls["detail"]).content.decode()
    assert "Rejected records" in page and "[&quot;3&quot;]" in page
    download = client.get(urls["rejected-csv"])
    assert download["Content-Type"].startswith("text/csv")
    assert '""3""' in b"".join(download.streaming_content).decode()


def test_pause_and_resume_buttons(client, pg_product, owner, crm):
    sync = _sync(pg_product, owner, crm)
    urls = _urls(pg_product, sync)
    client.force_login(owner)
    client.post(urls["pause"])
    sync.refresh_from_db()
    assert sync.status == "paused"
    assert "Resume" in client.get(urls["detail"]).content.decode()
    client.post(urls["resume"])
    sync.refresh_from_db()
    assert sync.status == "active"


def test_others_cannot_see_or_act_on_a_sync(
    client,
    pg_product,
    owner,
    outsider,
    other_steward,
    crm,
):
    sync = _sync(pg_product, owner, crm)
    urls = _urls(pg_product, sync)
    for person in (outsider, other_steward):
        client.force_login(person)
        assert client.get(urls["detail"]).status_code == 404
        for name in ("run-now", "dry-run", "pause"):
            assert client.post(urls[name]).status_code == 404
        assert client.get(urls["rejected-csv"]).status_code == 404
    assert not SyncRun.objects.exists()


# --- destinations ----------------------------------------------------------------------


def test_destinations_page_for_admins_and_domain_owners_only(
    client,
    db,
    admin_user,
    owner,
    outsider,
    crm,
    tmp_path,
):
    url = reverse("sharing:sync-destinations")
    client.force_login(outsider)
    assert client.get(url).status_code == 403
    client.force_login(owner)
    page = client.get(url).content.decode()
    assert "never the secret itself" in page
    assert "CRM orders" not in page  # registered by admins for every domain: not hers
    client.force_login(admin_user)
    page = client.get(url).content.decode()
    assert "CRM orders" in page and "Test connection" in page
    tested = client.post(
        reverse("sharing:sync-destination-test", args=[crm.pk]), HTTP_HX_REQUEST="true"
    )
    assert CRM_TABLE in tested.content.decode()


def test_register_a_destination_errors_beside_fields(client, db, owner, domain, tmp_path):
    client.force_login(owner)
    url = reverse("sharing:sync-destination-create")
    form = client.get(url).context["form"]
    assert [value for value, _ in form.fields["domain"].choices] == ["sales"]  # hers only
    bad = client.post(
        url,
        {
            "name": "CRM",
            "kind": "http",
            "domain": "sales",
            "url": "https://crm.example.com/in",
            "secret_env": "s3cr3t value",
            "batch_size": "500",
        },
    )
    assert bad.status_code == 400
    assert "secret_env" in bad.context["form"].errors
    assert not SyncDestination.objects.exists()
    table = client.post(
        url,
        {
            "name": "CRM",
            "kind": "duckdb",
            "domain": "sales",
            "path": str(tmp_path / "c.duckdb"),
            "table_name": "accounts",
            "batch_size": "500",
        },
    )
    assert table.status_code == 400  # table destinations: admins only
    assert "Only admins" in " ".join(table.context["form"].errors["kind"])
    good = client.post(
        url,
        {
            "name": "CRM",
            "kind": "http",
            "domain": "sales",
            "url": "https://crm.example.com/in",
            "secret_env": "SYNC_SECRET_CRM_TOKEN",
            "batch_size": "500",
        },
    )
    assert good.status_code == 302
    assert SyncDestination.objects.get().domain == domain
