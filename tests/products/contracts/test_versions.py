"""Contract versions: semantic versions, the diff of two versions, breaking-change
detection (each of the four kinds), publishing a breaking version only once the owner
confirms, and the product's current grantees emailed when it is."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from products.choices import ContractChangeKind, ContractStatus
from products.contracts.services.contracts import (
    BreakingChangesUnconfirmed,
    contract_current,
    contract_diff,
    contract_import,
    contract_publish,
)
from products.contracts.services.documents import document_parse, semver_key
from sharing.models import AccessGrant
from tests.factories import UserFactory
from tests.products.contracts.helpers import contract_yaml

V1_COLUMNS = [("order_id", "BIGINT", True), ("amount", "NUMERIC", False), ("note", "TEXT", False)]
ROW_RULE = """\
    quality:
      - name: Enough rows
        metric: rowCount
        mustBeGreaterOrEqualTo: {low}
      - name: Few null notes
        type: sql
        query: SELECT count(*) FROM ${{object}} WHERE note IS NULL
        mustBeLessOrEqualTo: {tolerance}
        unit: percent
"""

pytestmark = pytest.mark.usefixtures("eager_tasks")


def doc(version="1.0.0", columns=V1_COLUMNS, low=10, tolerance=5):
    return document_parse(
        contract_yaml(version, columns, ROW_RULE.format(low=low, tolerance=tolerance))
    )


def kinds(changes) -> list[tuple[str, str, bool]]:
    return [(c.kind, c.subject, c.breaking) for c in changes]


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"columns": V1_COLUMNS[:2]},
            (ContractChangeKind.COLUMN_REMOVED, "Order lines.note"),
        ),
        (
            {"columns": [V1_COLUMNS[0], ("amount", "DOUBLE", False), V1_COLUMNS[2]]},
            (ContractChangeKind.TYPE_CHANGED, "Order lines.amount"),
        ),
        (
            {"columns": [V1_COLUMNS[0], ("amount", "NUMERIC", True), V1_COLUMNS[2]]},
            (ContractChangeKind.COLUMN_REQUIRED, "Order lines.amount"),
        ),
        (
            {"tolerance": 1},
            (ContractChangeKind.TOLERANCE_TIGHTENED, "Order lines / Few null notes"),
        ),
        ({"low": 100}, (ContractChangeKind.TOLERANCE_TIGHTENED, "Order lines / Enough rows")),
    ],
    ids=["column-removed", "type-changed", "made-required", "tolerance-tightened", "min-raised"],
)
def test_each_kind_of_breaking_change_is_detected(change, expected):
    changes = contract_diff(old=doc(), new=doc("2.0.0", **change))
    assert [(c.kind, c.subject) for c in changes if c.breaking] == [expected]


def test_changes_that_do_not_break_are_listed_but_not_breaking():
    new = doc(
        "1.1.0",
        columns=[
            ("order_id", "BIGINT", False),
            ("amount", "numeric", False),
            *V1_COLUMNS[2:],
            ("country", "TEXT", False),
        ],
        low=5,
        tolerance=10,
    )
    changes = contract_diff(old=doc(), new=new)
    assert kinds(changes) == [
        (ContractChangeKind.COLUMN_ADDED, "Order lines.country", False),
        (ContractChangeKind.COLUMN_RELAXED, "Order lines.order_id", False),
        (ContractChangeKind.CHECK_CHANGED, "Order lines / Enough rows", False),
        (ContractChangeKind.CHECK_CHANGED, "Order lines / Few null notes", False),
    ]
    # Same types written in another case are the same types.
    assert not any(c.subject == "Order lines.amount" for c in changes)


def test_a_removed_object_removes_its_columns():
    old = doc()
    new = {**doc("2.0.0"), "schema": []}
    changes = contract_diff(old=old, new=new)
    removed = [c.subject for c in changes if c.kind == ContractChangeKind.COLUMN_REMOVED]
    assert removed == ["Order lines.amount", "Order lines.note", "Order lines.order_id"]
    assert all(c.breaking for c in changes if c.kind == ContractChangeKind.COLUMN_REMOVED)


def test_the_first_version_breaks_nothing():
    assert contract_diff(old=None, new=doc()) == []


def test_semantic_versions_sort_by_precedence():
    versions = ["1.0.0", "2.0.0", "1.0.0-alpha", "1.10.0", "1.0.0-alpha.1", "1.2.0", "1.0.0-beta"]
    assert sorted(versions, key=semver_key) == [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-beta",
        "1.0.0",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]


# --- publishing ------------------------------------------------------------------------


def _import(product, owner, version, **change):
    text = contract_yaml(
        version,
        change.pop("columns", V1_COLUMNS),
        ROW_RULE.format(low=change.pop("low", 10), tolerance=change.pop("tolerance", 5)),
    )
    return contract_import(product=product, by=owner, text=text)


@pytest.fixture
def grantees(product, owner):
    """An active user grant, a team grant (two members, one inactive), and grants that no
    longer count: revoked and expired."""
    later = timezone.now() + timedelta(days=30)
    reader = UserFactory(username="reader")
    AccessGrant.objects.create(product=product, user=reader, expires_at=later, granted_by=owner)
    team = Group.objects.create(name="analysts")
    for name, active in (("ana", True), ("gone", False)):
        UserFactory(username=name, is_active=active).groups.add(team)
    AccessGrant.objects.create(product=product, group=team, expires_at=later, granted_by=owner)
    AccessGrant.objects.create(
        product=product,
        user=UserFactory(username="revoked"),
        expires_at=later,
        revoked_at=timezone.now(),
    )
    AccessGrant.objects.create(
        product=product,
        user=UserFactory(username="expired"),
        expires_at=timezone.now() - timedelta(days=1),
    )
    return ["ana@example.com", "reader@example.com"]


def test_a_breaking_version_waits_for_confirmation_then_grantees_are_told(
    product, owner, grantees, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        v1 = contract_publish(contract=_import(product, owner, "1.0.0"), by=owner)
    assert mail.outbox == []  # the first version breaks nothing
    v2 = _import(product, owner, "2.0.0", columns=V1_COLUMNS[:2], tolerance=1)

    with pytest.raises(BreakingChangesUnconfirmed) as unconfirmed:
        contract_publish(contract=v2, by=owner)
    assert [c.kind for c in unconfirmed.value.changes] == [
        ContractChangeKind.COLUMN_REMOVED,
        ContractChangeKind.TOLERANCE_TIGHTENED,
    ]
    v2.refresh_from_db()
    assert v2.status == ContractStatus.DRAFT and contract_current(product=product) == v1
    assert list(product.ports.get().columns.values_list("name", flat=True)) == [
        "order_id",
        "amount",
        "note",
    ]
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        contract_publish(contract=v2, by=owner, confirm_breaking=True)
    v2.refresh_from_db()
    assert v2.status == ContractStatus.PUBLISHED and v2.published_by == owner
    assert [c["kind"] for c in v2.breaking_changes] == ["column_removed", "tolerance_tightened"]
    assert contract_current(product=product) == v2
    port = product.ports.get()
    assert list(port.columns.values_list("name", flat=True)) == ["order_id", "amount"]
    assert port.checks.get(name="Few null notes").tolerance_percent == 1.0
    # One email per grantee: the user, the team's active member; not the revoked or
    # expired grantees, nor the inactive team member.
    assert sorted(m.to[0] for m in mail.outbox) == grantees
    assert all(len(m.to) == 1 for m in mail.outbox)
    email = mail.outbox[0]
    assert email.subject == "[sales.orders] Breaking contract change: version 2.0.0"
    assert "Column removed: Order lines.note" in email.body
    assert "Quality tolerance tightened: Order lines / Few null notes" in email.body
    assert "/products/sales/orders/contract/" in email.body


def test_a_version_without_breaking_changes_publishes_without_asking_or_emailing(
    product, owner, grantees, django_capture_on_commit_callbacks
):
    contract_publish(contract=_import(product, owner, "1.0.0"), by=owner)
    with django_capture_on_commit_callbacks(execute=True):
        v11 = contract_publish(contract=_import(product, owner, "1.1.0", tolerance=10), by=owner)
    assert v11.status == ContractStatus.PUBLISHED and v11.breaking_changes == []
    assert mail.outbox == []


def test_a_version_must_be_above_the_current_one_to_publish(product, owner):
    contract_publish(contract=_import(product, owner, "2.0.0"), by=owner)
    older = _import(product, owner, "1.5.0")
    with pytest.raises(ValidationError) as refused:
        contract_publish(contract=older, by=owner)
    assert "not above the current version 2.0.0" in refused.value.messages[0]
    with pytest.raises(ValidationError):
        contract_publish(contract=contract_current(product=product), by=owner)
