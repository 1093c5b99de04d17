"""The sync engine against a real PostgreSQL source and a real PostgreSQL destination
table: what is sent, what the state keeps, guardrails, holds and approvals, failures."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from portal.models import Event
from products.choices import IncidentCause, IncidentStatus
from products.models import Incident
from products.trust.selectors import trust_header_context
from products.trust.services.incidents import products_with_open_incidents
from products.trust.services.trust_score import trust_score_compute
from sharing.access.services.grants import grant_create, grant_revoke
from sharing.models import AccessEvent, SyncPlannedChange, SyncRecordState, SyncRejectedRecord
from sharing.models.syncs import SyncRunStatus, SyncStatus
from sharing.syncs.selectors import sync_run_chart_rows, sync_runs_held_for
from sharing.syncs.services.runs import (
    rejected_records_csv,
    sync_run_approve,
    sync_run_decline,
    sync_run_execute,
    sync_run_request,
)
from sharing.syncs.services.syncs import sync_create, sync_resume, sync_update
from tests.factories import DomainFactory, UserFactory
from tests.sharing.syncs.conftest import LEADS, plan_tables

COLUMNS = ["lead_id", "email", "country", "score", "bid"]


def run_now(sync, by, **kwargs):
    return sync_run_execute(run_id=sync_run_request(sync=sync, by=by, **kwargs).pk)


def make_sync(leads, crm, by, **kwargs):
    fields = {
        "product": leads,
        "destination": crm,
        "name": "Leads to CRM",
        "columns": COLUMNS,
        "key_columns": ["lead_id"],
    }
    fields.update(kwargs)
    return sync_create(by=by, **fields)


def crm_rows(crm_table, columns="lead_id, email, country, score, bid"):
    return crm_table.rows(columns)


def state_keys(sync) -> set[str]:
    return set(SyncRecordState.objects.filter(sync=sync).values_list("key", flat=True))


def test_first_run_sends_all_and_the_second_exactly_the_changes(
    leads, crm, crm_table, source_table, owner
):
    sync = make_sync(leads, crm, owner, guardrails={"max_changed_pct": 50})
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.SUCCEEDED, run.error
    assert (run.source_rows, run.planned, run.added, run.changed) == (5, 5, 5, 0)
    assert [row[0] for row in crm_rows(crm_table)] == [1, 2, 3, 4, 5]
    assert crm_rows(crm_table)[0][1] == "a@x"  # the owner's access: unmasked
    assert state_keys(sync) == {f'["{i}"]' for i in range(1, 6)}

    # The CRM's own column is not the sync's: it survives updates.
    crm_table.execute("UPDATE {table} SET note = 'called' WHERE lead_id = 2")
    source_table.execute("UPDATE {table} SET score = 0.8 WHERE lead_id = 2")
    source_table.insert([(6, "f@x", "NL", 0.2, 5)])
    second = run_now(sync, owner)
    assert second.status == SyncRunStatus.SUCCEEDED, second.error
    assert (second.planned, second.added, second.changed, second.removed) == (2, 1, 1, 0)
    assert crm_table.rows("lead_id, score, note", "1")[1] == (2, 0.8, "called")
    assert len(crm_rows(crm_table)) == 6
    third = run_now(sync, owner)
    assert (third.planned, third.added, third.changed) == (0, 0, 0)
    # Each run's read is audited once, on the sync channel, as the creator.
    reads = AccessEvent.objects.filter(product=leads, channel="sync")
    assert reads.count() == 3 and {event.user_id for event in reads} == {owner.pk}


def test_a_narrowed_grant_sends_only_its_rows_with_masked_columns_masked(
    leads, crm, crm_table, owner
):
    grantee = UserFactory(username="analyst")
    grant_create(
        product=leads,
        by=owner,
        user=grantee,
        reason="scores BE leads",
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
    )
    sync = make_sync(leads, crm, grantee)
    run = run_now(sync, grantee)
    assert run.status == SyncRunStatus.SUCCEEDED, run.error
    rows = crm_rows(crm_table)
    assert [row[0] for row in rows] == [1, 3, 5]  # BE only
    assert [row[1] for row in rows] == ["****", None, "****"]  # email masked (null stays)


def test_revoking_access_fails_the_next_run_and_pauses_the_sync(leads, crm, crm_table, owner):
    grantee = UserFactory(username="analyst")
    grant = grant_create(product=leads, by=owner, user=grantee, reason="scores leads")
    sync = make_sync(leads, crm, grantee)
    assert run_now(sync, grantee).status == SyncRunStatus.SUCCEEDED
    grant_revoke(grant=grant, by=owner, reason="left the team")
    # The run re-decides the creator's access.
    queued = sync_run_request(sync=sync, by=grantee)
    run = sync_run_execute(run_id=queued.pk)
    assert run.status == SyncRunStatus.FAILED
    assert "analyst" in run.error and "cannot read" in run.error
    sync.refresh_from_db()
    assert sync.status == SyncStatus.PAUSED and "Access lost" in sync.paused_reason
    incident = Incident.objects.get(cause_key=f"sync:{sync.pk}")
    assert incident.cause == IncidentCause.SYNC and incident.status == IncidentStatus.OPEN
    # A consumer's sync failing is not the product's incident for everyone.
    assert trust_header_context(product=leads)["open_incidents"] == []
    with pytest.raises(ValidationError, match="paused"):
        sync_run_request(sync=sync, by=grantee)


def test_mirror_deletes_only_what_this_sync_sent(leads, crm, crm_table, source_table, owner):
    crm_table.insert([(99, "own@crm", "BE", 1.0, 1.0, "the app's own row")])
    sync = make_sync(leads, crm, owner, mode="mirror")
    assert run_now(sync, owner).status == SyncRunStatus.SUCCEEDED
    source_table.execute("DELETE FROM {table} WHERE lead_id = 4")
    sync_update(sync=sync, by=owner, guardrails={"max_removed_pct": 50})
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.SUCCEEDED, run.error
    assert run.removed == 1
    assert [row[0] for row in crm_rows(crm_table)] == [1, 2, 3, 5, 99]
    assert '["4"]' not in state_keys(sync)


def test_upsert_never_deletes(leads, crm, crm_table, source_table, owner):
    sync = make_sync(leads, crm, owner)
    run_now(sync, owner)
    source_table.execute("DELETE FROM {table} WHERE lead_id = 4")
    run = run_now(sync, owner)
    assert (run.removed, run.skipped) == (0, 1)
    assert len(crm_rows(crm_table)) == 5


def test_a_zero_row_source_holds_the_run(leads, crm, crm_table, source_table, owner):
    sync = make_sync(leads, crm, owner, mode="mirror")
    run_now(sync, owner)
    source_table.execute("DELETE FROM {table}")
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.HELD
    assert {r["guardrail"] for r in run.held_reasons} >= {"hold_on_empty_source"}
    assert len(crm_rows(crm_table)) == 5  # nothing deleted
    assert list(sync_runs_held_for(user=owner)) == [run]


def test_a_large_change_holds_and_approval_sends_exactly_the_held_plan(
    leads, crm, crm_table, source_table, owner
):
    sync = make_sync(leads, crm, owner)
    run_now(sync, owner)
    source_table.execute("UPDATE {table} SET score = score + 1 WHERE lead_id IN (1, 2)")
    held = run_now(sync, owner)
    assert held.status == SyncRunStatus.HELD
    assert held.held_reasons[0]["guardrail"] == "max_changed_pct"
    event = Event.objects.get(type="portal.sync_run.held")
    assert event.data["guardrails"] == ["max_changed_pct"] and event.data["run_id"] == held.pk
    assert "40%" in held.held_reasons[0]["message"]
    assert SyncPlannedChange.objects.filter(run=held).count() == 2
    assert crm_table.rows("score", "lead_id")[0] == (0.5,)  # nothing sent yet
    # The source moves on after the hold: approving sends the plan that was held.
    source_table.execute("UPDATE {table} SET score = 9 WHERE lead_id = 1")
    other = UserFactory(username="someone")
    with pytest.raises(PermissionDenied):
        sync_run_approve(run=held, by=other)
    approval = sync_run_approve(run=held, by=owner)
    assert approval.approves_id == held.pk and approval.trigger == "approval"
    sent = sync_run_execute(run_id=approval.pk)
    assert sent.status == SyncRunStatus.SUCCEEDED, sent.error
    assert (sent.changed, sent.added) == (2, 0)
    assert crm_table.rows("lead_id, score", "1")[:2] == [(1, 1.5), (2, 1.7)]
    assert list(sync_runs_held_for(user=owner)) == []
    with pytest.raises(ValidationError):
        sync_run_approve(run=held, by=owner)
    # The incident the hold opened is resolved by the succeeded run.
    assert Incident.objects.get(cause_key=f"sync:{sync.pk}").status == IncidentStatus.RESOLVED


def test_declining_a_held_run_cancels_it(leads, crm, source_table, owner):
    sync = make_sync(leads, crm, owner)
    run_now(sync, owner)
    source_table.execute("UPDATE {table} SET score = score + 1")
    held = run_now(sync, owner)
    declined = sync_run_decline(run=held, by=owner, reason="a bad load")
    assert declined.status == SyncRunStatus.CANCELLED and "a bad load" in declined.error
    assert not SyncPlannedChange.objects.filter(run=held).exists()


def test_a_column_limit_holds_with_the_offending_records(
    leads, crm, crm_table, source_table, owner
):
    sync = make_sync(
        leads,
        crm,
        owner,
        guardrails={
            "max_changed_pct": 100,
            "column_limits": [{"column": "bid", "max_change_pct": 10}],
        },
    )
    run_now(sync, owner)
    assert SyncRecordState.objects.get(sync=sync, key='["2"]').limited_values == {"bid": 20.0}
    source_table.execute("UPDATE {table} SET bid = bid * 1.05 WHERE lead_id = 1")
    source_table.execute("UPDATE {table} SET bid = bid * 3 WHERE lead_id = 2")
    held = run_now(sync, owner)
    assert held.status == SyncRunStatus.HELD
    (reason,) = held.held_reasons
    assert reason["guardrail"] == "column_limits" and reason["column"] == "bid"
    assert reason["records"] == [
        {"key": '["2"]', "before": 20.0, "after": 60.0, "change_pct": 200.0}
    ]


def test_a_column_sum_cap_holds(leads, crm, owner):
    sync = make_sync(
        leads, crm, owner, guardrails={"column_limits": [{"column": "bid", "max_sum": 100}]}
    )
    held = run_now(sync, owner)  # 10+20+30+40+50 = 150 > 100
    assert held.status == SyncRunStatus.HELD
    assert "150" in held.held_reasons[0]["message"]
    # The product's incident tells every reader that the sync is held, not the sum of a
    # column they may not read: that is in its detail (the domain's members) and the page.
    incident = Incident.objects.get(cause_key=f"sync:{sync.pk}")
    opened = incident.events.get(kind="opened")
    assert "150" not in incident.title and "150" not in opened.body
    assert "150" in incident.detail


def test_the_breaker_pauses_after_k_failures_and_resume_clears_it(leads, crm, owner):
    sync = make_sync(leads, crm, owner, guardrails={"breaker_failures": 2})
    crm.port = 1  # nothing listens there any more
    crm.save()
    first = run_now(sync, owner)
    assert first.status == SyncRunStatus.FAILED and "CRM leads" in first.error
    sync.refresh_from_db()
    assert (sync.status, sync.consecutive_failures) == (SyncStatus.ACTIVE, 1)
    run_now(sync, owner)
    sync.refresh_from_db()
    assert sync.status == SyncStatus.PAUSED and "2 failed runs" in sync.paused_reason
    assert owner.notifications.filter(title__contains="paused").exists()
    sync_resume(sync=sync, by=owner)
    sync.refresh_from_db()
    assert (sync.status, sync.consecutive_failures) == (SyncStatus.ACTIVE, 0)


def test_a_dry_run_changes_nothing(leads, crm, crm_table, source_table, owner):
    sync = make_sync(leads, crm, owner)
    dry = run_now(sync, owner, dry_run=True)
    assert dry.status == SyncRunStatus.PLANNED, dry.error
    assert dry.planned == 5 and len(dry.plan_sample["added"]) == 5
    assert dry.plan_sample["added"][0] == {
        "lead_id": 1,
        "email": "a@x",
        "country": "BE",
        "score": 0.5,
        "bid": 10.0,
    }
    assert crm_rows(crm_table) == [] and state_keys(sync) == set()
    run_now(sync, owner)
    source_table.execute("UPDATE {table} SET score = 0.6 WHERE lead_id = 1")
    before = list(SyncRecordState.objects.filter(sync=sync).values_list("key", "row_hash", "run"))
    dry = run_now(sync, owner, dry_run=True)
    assert (dry.changed, dry.added) == (1, 0)
    assert dry.plan_sample["changed"][0]["after"]["score"] == 0.6
    after = list(SyncRecordState.objects.filter(sync=sync).values_list("key", "row_hash", "run"))
    assert before == after
    assert crm_table.rows("score", "lead_id")[0] == (0.5,)
    # The next real run still finds the change the dry run saw.
    assert run_now(sync, owner).changed == 1


def test_a_dry_run_says_what_would_hold_the_run_and_holds_nothing(
    leads, crm, crm_table, source_table, owner
):
    sync = make_sync(leads, crm, owner)
    run_now(sync, owner)
    source_table.execute("UPDATE {table} SET score = score + 1 WHERE lead_id IN (1, 2)")
    dry = run_now(sync, owner, dry_run=True)
    assert dry.status == SyncRunStatus.PLANNED, dry.error
    assert [r["guardrail"] for r in dry.held_reasons] == ["max_changed_pct"]
    assert not SyncPlannedChange.objects.filter(run=dry).exists()
    assert list(sync_runs_held_for(user=owner)) == []
    assert not Event.objects.filter(type="portal.sync_run.held").exists()
    assert crm_table.rows("score", "lead_id")[0] == (0.5,)


def test_a_duplicate_key_fails_before_sending(leads, crm, crm_table, source_table, owner):
    source_table.execute("INSERT INTO {table} VALUES (3, 'x@x', 'FR', 0.4, 1)")
    sync = make_sync(leads, crm, owner)
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.FAILED
    assert "(lead_id) is not unique" in run.error and '["3"]' in run.error
    assert crm_rows(crm_table) == []


def test_a_key_repeated_after_the_first_run_fails_before_sending(
    leads, crm, crm_table, source_table, owner
):
    sync = make_sync(leads, crm, owner)
    assert run_now(sync, owner).status == SyncRunStatus.SUCCEEDED
    source_table.execute("INSERT INTO {table} VALUES (3, 'x@x', 'FR', 0.4, 1)")  # a new copy
    source_table.execute("UPDATE {table} SET score = 0.6 WHERE lead_id = 5")
    before = crm_rows(crm_table)
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.FAILED
    assert "(lead_id) is not unique" in run.error and '["3"]' in run.error
    assert crm_rows(crm_table) == before  # not even lead 5's change was sent


def test_a_key_the_source_declares_unique_is_not_looked_for_twice(
    leads, crm, crm_table, source_table, owner
):
    """A primary key on the source's key column: the plans trust it (no repeat to look
    for) and still find every change."""
    source_table.execute("ALTER TABLE {table} ADD PRIMARY KEY (lead_id)")
    sync = make_sync(leads, crm, owner)
    first = run_now(sync, owner)
    assert (first.status, first.added) == (SyncRunStatus.SUCCEEDED, 5), first.error
    source_table.execute("UPDATE {table} SET score = 0.6 WHERE lead_id = 5")
    second = run_now(sync, owner)
    assert (second.status, second.changed, second.added) == (SyncRunStatus.SUCCEEDED, 1, 0)
    assert "plan_duplicates_s" not in second.detail["timings"]
    assert crm_table.rows("lead_id, score")[-1] == (5, 0.6)


def test_a_unique_key_that_may_be_null_is_still_looked_for_twice(
    leads, crm, crm_table, source_table, owner
):
    """A unique constraint lets rows with a NULL key repeat: both plans still find them."""
    source_table.execute("ALTER TABLE {table} ADD UNIQUE (lead_id)")
    nulls = "INSERT INTO {table} VALUES (NULL, 'a@x', 'FR', 0.1, 1), (NULL, 'b@x', 'BE', 0.2, 2)"
    source_table.execute(nulls)
    sync = make_sync(leads, crm, owner)
    first = run_now(sync, owner)
    assert first.status == SyncRunStatus.FAILED
    assert "(lead_id) is not unique" in first.error and "[null]" in first.error
    source_table.execute("DELETE FROM {table} WHERE lead_id IS NULL")
    assert run_now(sync, owner).status == SyncRunStatus.SUCCEEDED
    source_table.execute(nulls)
    again = run_now(sync, owner)
    assert again.status == SyncRunStatus.FAILED
    assert "(lead_id) is not unique" in again.error and "[null]" in again.error
    assert None not in [lead_id for lead_id, *_ in crm_rows(crm_table)]  # none was sent


def test_rejected_records_are_kept_exported_and_retried(leads, crm, crm_table, source_table, owner):
    source_table.execute("UPDATE {table} SET bid = 5000 WHERE lead_id = 4")  # the CRM's CHECK
    sync = make_sync(leads, crm, owner)
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.SUCCEEDED, run.error
    assert (run.added, run.rejected) == (4, 1)
    rejected = SyncRejectedRecord.objects.get(sync=sync)
    assert rejected.key == '["4"]' and rejected.resolved_at is None and rejected.reason
    assert '["4"]' not in state_keys(sync)  # state advances only for acknowledged records
    lines = list(rejected_records_csv(sync=sync))
    assert lines[0].startswith("key,kind,run") and '"[""4""]"' in lines[1]
    # Retried at the next run: still refused (and kept, once), then accepted once fixed.
    again = run_now(sync, owner)
    assert (again.added, again.rejected) == (0, 1)
    assert SyncRejectedRecord.objects.filter(sync=sync, resolved_at__isnull=True).count() == 1
    source_table.execute("UPDATE {table} SET bid = 500 WHERE lead_id = 4")
    fixed = run_now(sync, owner)
    assert (fixed.added, fixed.rejected) == (1, 0)
    assert not SyncRejectedRecord.objects.filter(sync=sync, resolved_at__isnull=True).exists()


def test_save_refuses_what_cannot_work_naming_the_field(leads, crm, owner):
    grantee = UserFactory(username="analyst")
    grant_create(
        product=leads, by=owner, user=grantee, reason="scores", columns=["lead_id", "score"]
    )
    cases = [
        (owner, {"mapping": {"score": "lead_score"}}, "mapping", "lead_score"),
        (owner, {"mapping": {"score": "country"}}, "mapping", "both go to field"),
        (owner, {"key_columns": ["nope"]}, "key_columns", "not among"),
        (owner, {"columns": ["lead_id", "ghost"]}, "columns", "ghost"),
        (grantee, {"columns": ["lead_id", "score", "bid"]}, "columns", "bid"),
        (owner, {"trigger": "schedule", "cron": "61 * * * *"}, "cron", "minute"),
        (
            owner,
            {"guardrails": {"column_limits": [{"column": "country", "max_sum": 1}]}},
            "column_limits",
            "not numeric",
        ),
    ]
    for by, fields, field, words in cases:
        columns = ["lead_id", "score"] if by is grantee else COLUMNS
        with pytest.raises(ValidationError) as caught:
            make_sync(leads, crm, by, **{"columns": columns, **fields})
        assert field in caught.value.message_dict, (fields, caught.value)
        assert words in json.dumps(caught.value.message_dict), (fields, caught.value)
    masked_key = UserFactory(username="masked")
    grant_create(product=leads, by=owner, user=masked_key, reason="emails")
    with pytest.raises(ValidationError) as caught:
        make_sync(leads, crm, masked_key, key_columns=["email"])
    assert "masked" in caught.value.message_dict["key_columns"][0]
    with pytest.raises(PermissionDenied):
        make_sync(leads, crm, UserFactory(username="stranger"))


def test_a_destination_of_another_domain_is_refused(leads, crm, owner):
    crm.domain = DomainFactory(name="Finance", slug="finance")
    crm.save()
    reader = UserFactory(username="reader")
    grant_create(product=leads, by=owner, user=reader, reason="reads")
    with pytest.raises(ValidationError) as caught:
        make_sync(leads, crm, reader)
    assert "Finance" in caught.value.message_dict["destination"][0]


def test_a_loop_warns_and_needs_column_limits_to_run(leads, crm, source_table, owner):
    crm.schema_name, crm.table_name = source_table.schema, source_table.name
    crm.save()
    sync = make_sync(leads, crm, owner)
    assert "Loop" in sync.loop_warning and "leads" in sync.loop_warning
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.FAILED and "column_limits" in run.error
    sync = sync_update(
        sync=sync, by=owner, guardrails={"column_limits": [{"column": "bid", "max_change_pct": 5}]}
    )
    assert sync.loop_warning  # still a loop, now within limits


def test_chart_rows_count_each_run(leads, crm, owner):
    sync = make_sync(leads, crm, owner)
    run_now(sync, owner)
    run_now(sync, owner)
    rows = sync_run_chart_rows(sync=sync)
    assert [(r["added"], r["status"]) for r in rows] == [(5, "succeeded"), (0, "succeeded")]


@pytest.mark.parametrize("rows", [LEADS])
def test_state_keys_are_the_keys_as_json_text(rows, leads, crm, owner):
    sync = make_sync(leads, crm, owner)
    run_now(sync, owner)
    assert sorted(json.loads(k)[0] for k in state_keys(sync)) == sorted(str(r[0]) for r in rows)


def test_a_failing_sync_neither_lowers_the_trust_score_nor_marks_the_product(leads, crm, owner):
    before = trust_score_compute(product=leads)
    sync = make_sync(leads, crm, owner)
    crm.port = 1  # nothing listens there
    crm.save()
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.FAILED
    assert Incident.objects.filter(cause=IncidentCause.SYNC, status=IncidentStatus.OPEN).exists()
    after = trust_score_compute(product=leads)
    assert after.score == before.score
    assert products_with_open_incidents([leads.pk]) == set()
    assert trust_header_context(product=leads)["open_incidents"] == []
    finished = Event.objects.get(type="portal.sync_run.finished")
    assert finished.data["status"] == "failed" and finished.data["counts"]["added"] == 0


@pytest.mark.parametrize("mode", ["upsert", "mirror"])
def test_a_plan_counts_and_lists_removed_keys_in_every_mode(
    leads, crm, source_table, owner, mode, postgres
):
    """Removed keys are counted and listed in both modes (skipped in upsert, deleted in
    mirror), and the plan's scan table is not left behind."""
    guardrails = {"max_removed_pct": 90, "max_changed_pct": 100, "max_count_move_pct": 100}
    sync = make_sync(leads, crm, owner, mode=mode, guardrails=guardrails)
    assert run_now(sync, owner).status == SyncRunStatus.SUCCEEDED
    source_table.execute("DELETE FROM {table} WHERE lead_id IN (2, 4)")
    source_table.execute("UPDATE {table} SET score = 0.8 WHERE lead_id = 1")
    source_table.insert([(6, "f@x", "NL", 0.2, 60.0)])
    dry = run_now(sync, owner, dry_run=True)
    assert dry.status == SyncRunStatus.PLANNED, dry.error
    assert (dry.added, dry.changed, dry.removed) == (1, 1, 2)
    assert dry.plan_sample["removed"] == [{"lead_id": "2"}, {"lead_id": "4"}]
    run = run_now(sync, owner)
    assert run.status == SyncRunStatus.SUCCEEDED, run.error
    if mode == "mirror":
        assert (run.removed, run.skipped) == (2, 0)
        assert state_keys(sync) == {'["1"]', '["3"]', '["5"]', '["6"]'}
    else:
        assert (run.removed, run.skipped) == (0, 2)
        assert state_keys(sync) == {'["1"]', '["2"]', '["3"]', '["4"]', '["5"]', '["6"]'}
    assert plan_tables() == []
