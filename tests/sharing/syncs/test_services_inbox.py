"""Held sync runs in the work inbox: for the sync's creator, its destination domain's
owners and admins; gone once approved; each item opens the sync's page."""

from __future__ import annotations

from portal.site.work import SYNC_RUNS_HELD, work_count, work_inbox
from products.choices import MembershipRole
from sharing.models.syncs import SyncRunStatus
from sharing.syncs.services.runs import sync_run_approve, sync_run_execute, sync_run_request
from sharing.syncs.services.syncs import sync_create
from tests.factories import DomainFactory, MembershipFactory, UserFactory


def _held_items(user) -> list:
    groups = {group.kind: group for group in work_inbox(user=user)}
    return groups[SYNC_RUNS_HELD].items if SYNC_RUNS_HELD in groups else []


def test_a_held_run_waits_on_its_approvers_until_approved(
    client, leads, crm, source_table, owner, admin_user
):
    crm_domain = DomainFactory(name="CRM team", slug="crm-team")
    crm_owner = UserFactory(username="crm-owner")
    MembershipFactory(domain=crm_domain, user=crm_owner, role=MembershipRole.OWNER)
    MembershipFactory(domain=crm_domain, user=owner, role=MembershipRole.MEMBER)
    crm.domain = crm_domain
    crm.save()
    sync = sync_create(
        by=owner,
        product=leads,
        destination=crm,
        name="Leads to CRM",
        columns=["lead_id", "score"],
        key_columns=["lead_id"],
    )
    sync_run_execute(run_id=sync_run_request(sync=sync, by=owner).pk)
    source_table.execute("UPDATE {table} SET score = score + 1")
    held = sync_run_execute(run_id=sync_run_request(sync=sync, by=owner).pk)
    assert held.status == SyncRunStatus.HELD
    stranger = UserFactory(username="stranger")
    for user in (owner, crm_owner, admin_user):
        (item,) = _held_items(user)
        assert "Leads to CRM" in item.title and "would change" in item.detail
    assert _held_items(stranger) == []
    before = work_count(user=crm_owner)
    assert before >= 1
    client.force_login(owner)
    (item,) = _held_items(owner)
    assert client.get(item.url).status_code == 200
    sync_run_approve(run=held, by=crm_owner)
    assert _held_items(owner) == [] and work_count(user=crm_owner) == before - 1
