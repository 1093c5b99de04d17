"""Every change writes its event (docs/event-types.md): each type through the real service,
as a page or the API calls it, with its data and audience; a change rolled back after its
event was written leaves no event; nobody sees an event about something they may not see."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from portal.core.events import EVENT_TYPES
from portal.models import Event
from products.catalog.services.products import (
    product_create,
    product_deprecate,
    product_publish,
    product_retire,
    product_update,
)
from products.catalog.services.schema_refresh import schema_refresh_execute, schema_refresh_request
from products.choices import LifecycleStatus, MembershipRole, SLOKind
from products.contracts.services.contracts import (
    contract_import,
    contract_publish,
    product_create_from_contract,
)
from products.contracts.services.documents import ContractInvalid
from products.feedback.services.announcements import announcement_create
from products.models import CheckRun, PortObservation
from products.trust.services.checks import (
    check_create,
    check_run_execute,
    check_run_reap,
    check_run_request,
)
from products.trust.services.evidence import trust_after_check_run
from products.trust.services.incidents import incident_resolve
from products.trust.services.slos import slo_create, slo_evaluate
from sharing.access.services.grants import grant_create, grant_revoke, grants_expire
from sharing.access.services.requests import (
    access_request_approve,
    access_request_create,
    access_request_deny,
)
from sharing.events.selectors import events_visible_to
from sharing.exports.services.runs import (
    export_run_execute,
    export_run_request,
    export_schedule_create,
)
from sharing.models import AccessGrant
from sharing.serving.source_errors import SOURCE_UNREADABLE
from sharing.share_links.services import share_link_create, share_link_revoke
from tests.factories import (
    ColumnFactory,
    DataSourceFactory,
    DomainFactory,
    FilePortFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
    source_allowance,
)
from tests.products.contracts.helpers import contract_yaml
from tests.products.trust.helpers import orders_parquet
from tests.sharing.exports.helpers import orders_product

SITE = "https://portal.example.com"
PRODUCT_URL = f"{SITE}/products/sales/orders/"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.PORTAL_SITE_URL = SITE


def the_event(type: str) -> Event:  # noqa: A002
    """The one event of `type` (fails when there is none, or more than one)."""
    (event,) = Event.objects.filter(type=type)
    return event


def seen_by(user) -> set[str]:
    return set(events_visible_to(user).values_list("type", flat=True))


@pytest.fixture
def marketing_steward(db):
    """A steward of another domain: sees what every signed-in person sees, no more."""
    other = DomainFactory(name="Marketing", slug="marketing")
    user = UserFactory(username="marketing-steward")
    MembershipFactory(domain=other, user=user, role=MembershipRole.STEWARD)
    return user


# --- products ------------------------------------------------------------------------------


def test_a_new_product_is_announced_to_its_domain_only(
    domain, owner, member, marketing_steward, outsider
):
    product = product_create(domain=domain, name="Orders", by=owner)
    event = the_event("portal.product.created")
    assert event.subject == "sales.orders" and event.product_id == product.pk
    assert event.audience == Event.AUDIENCE_DOMAIN  # a draft
    assert event.data == {
        "product": "sales.orders",
        "name": "Orders",
        "status": "draft",
        "version": "0.1.0",
        "url": PRODUCT_URL,
    }
    assert "portal.product.created" in seen_by(member)
    assert "portal.product.created" not in seen_by(marketing_steward) | seen_by(outsider)


def test_the_lifecycle_writes_one_event_per_transition(domain, owner, outsider):
    product = ProductFactory(
        domain=domain, name="Orders", slug="orders", owners=[owner], status=LifecycleStatus.DRAFT
    )
    OutputPortFactory(product=product)
    product_publish(product=product, by=owner)
    product_deprecate(product=product, by=owner)
    product_publish(product=product, by=owner)  # deprecated -> published again
    product_deprecate(product=product, by=owner)
    product_retire(product=product, by=owner)
    events = list(Event.objects.values_list("type", "data__status", "audience"))
    assert events == [
        ("portal.product.published", "published", "catalog"),
        ("portal.product.deprecated", "deprecated", "catalog"),
        ("portal.product.published", "published", "catalog"),
        ("portal.product.deprecated", "deprecated", "catalog"),
        # A retired product is seen by its domain only, and so is its last event.
        ("portal.product.retired", "retired", "domain"),
    ]
    assert all(e.data["url"] == PRODUCT_URL for e in Event.objects.all())
    assert seen_by(outsider) == {"portal.product.published", "portal.product.deprecated"}


def test_a_refused_transition_writes_nothing(product, owner, outsider):
    with pytest.raises(ValidationError, match="cannot become"):
        product_retire(product=product, by=owner)  # published -> retired is not allowed
    with pytest.raises(PermissionDenied, match="owners and stewards"):
        product_deprecate(product=product, by=outsider)
    assert not Event.objects.exists()


def test_a_version_change_names_both_versions(product, owner):
    product_update(product=product, by=owner, summary="Now with refunds")  # same version
    assert not Event.objects.exists()
    product_update(product=product, by=owner, version="2.0.0")
    event = the_event("portal.product.version_changed")
    assert event.data["version"] == "2.0.0" and event.data["previous_version"] == "0.1.0"
    assert event.audience == Event.AUDIENCE_CATALOG


# --- schema, contracts ---------------------------------------------------------------------


def test_a_schema_refresh_that_finds_changes_lists_them_by_name_and_type(domain, owner, media_root):
    product = ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])
    port = FilePortFactory(
        product=product,
        slug="orders-file",
        file_path=orders_parquet(media_root, "schema.parquet", ["a@x", None]),
    )
    # The file has order_id BIGINT and email VARCHAR.
    ColumnFactory(port=port, name="order_id", data_type="INTEGER", position=0)
    ColumnFactory(port=port, name="customer", data_type="VARCHAR", position=1)
    run = schema_refresh_request(port=port, by=owner)
    schema_refresh_execute(run_id=run.pk)

    event = the_event("portal.schema.changed")
    assert event.data["port"] == "orders-file" and event.data["port_id"] == port.pk
    assert event.data["added"] == [{"name": "email", "type": "VARCHAR", "nullable": True}]
    assert event.data["removed"] == [{"name": "customer", "type": "VARCHAR", "nullable": True}]
    assert event.data["changed"] == [
        {
            "name": "order_id",
            "type": "BIGINT",
            "nullable": True,
            "previous_type": "INTEGER",
            "previous_nullable": True,
        }
    ]
    assert event.data["product"] == "sales.orders"

    # The same schema again: nothing changed, no event.
    schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
    assert Event.objects.filter(type="portal.schema.changed").count() == 1


def test_a_contract_published_says_whether_it_breaks_consumers(product, owner):
    OutputPortFactory(product=product, name="Order lines", slug="order-lines")
    first = contract_import(product=product, by=owner, text=contract_yaml(version="1.1.0"))
    # Importing tries the changes in a transaction that is rolled back: its version change
    # was written there, and is gone with it.
    assert not Event.objects.exists()
    contract_publish(contract=first, by=owner)
    assert list(Event.objects.values_list("type", flat=True)) == [
        "portal.product.version_changed",
        "portal.contract.published",
    ]
    published = the_event("portal.contract.published")
    assert published.data["version"] == "1.1.0" and published.data["contract_id"] == first.pk
    assert published.data["breaking"] is False and published.data["breaking_changes"] == []

    second = contract_import(
        product=product,
        by=owner,
        text=contract_yaml("2.0.0", columns=[("order_id", "BIGINT", True)]),
    )
    contract_publish(contract=second, by=owner, confirm_breaking=True)
    breaking = Event.objects.filter(type="portal.contract.published").last()
    assert breaking.data["version"] == "2.0.0" and breaking.data["breaking"] is True
    assert [(c["kind"], c["subject"]) for c in breaking.data["breaking_changes"]] == [
        ("column_removed", "Order lines.amount")
    ]


def test_a_product_from_a_contract_refused_after_its_creation_leaves_no_event(
    domain, owner, tmp_path
):
    """product_create wrote "created"; the contract's port is then refused (its relation
    does not exist): everything is rolled back, the event too."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE main.other (id INT)")
    source = DataSourceFactory(name="warehouse", path=str(path), domains=[])
    source_allowance(source=source, domain=domain, schema_name="main")
    with pytest.raises(ContractInvalid, match="refused"):
        product_create_from_contract(
            by=owner, text=contract_yaml(), domain=domain, default_source=source
        )
    assert not Event.objects.exists()


# --- checks, incidents, SLOs ---------------------------------------------------------------


@pytest.fixture
def port(product, media_root):
    """Orders in a Parquet file, two of five without an email."""
    port = FilePortFactory(
        product=product,
        name="Orders file",
        slug="orders-file",
        file_path=orders_parquet(media_root, "orders.parquet", ["a@x", None, "c@x", None, "e@x"]),
    )
    ColumnFactory(port=port, name="order_id", data_type="BIGINT", position=0)
    ColumnFactory(port=port, name="email", data_type="VARCHAR", position=1)
    return port


def test_a_check_run_writes_started_and_finished_with_its_counts(port, owner):
    check_create(port=port, by=owner, kind="not_null", column="email", name="Email set")
    check_create(port=port, by=owner, kind="not_null", column="order_id", name="Id set")
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)

    started = the_event("portal.check_run.started")
    assert started.data == {
        **started.data,
        "run_id": run.pk,
        "port": "orders-file",
        "port_id": port.pk,
        "trigger": "manual",
    }
    finished = the_event("portal.check_run.finished")
    assert started.pk < finished.pk
    assert finished.data["run_id"] == run.pk and finished.data["port_id"] == port.pk
    assert finished.data["outcome"] == "failed"
    assert finished.data["counts"] == {"passed": 1, "failed": 1, "errored": 0}
    assert finished.data["started_at"] == run.started_at.isoformat()
    assert finished.data["finished_at"] == run.finished_at.isoformat()
    assert finished.audience == Event.AUDIENCE_CATALOG
    # Counts, never the failing rows.
    assert "a@x" not in json.dumps(finished.data) and "sample" not in finished.data


def test_a_run_that_cannot_read_its_source_finishes_in_error(product, owner):
    port = FilePortFactory(product=product, slug="gone", file_path="trust-orders/missing.parquet")
    check_create(port=port, by=owner, kind="row_count", params={"min": 1}, name="Rows")
    check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    finished = the_event("portal.check_run.finished")
    assert finished.data["outcome"] == "error"
    assert finished.data["counts"] == {"passed": 0, "failed": 0, "errored": 0}
    assert "missing.parquet" not in json.dumps(finished.data)  # no technical detail


def test_a_run_no_worker_picked_up_is_finished_by_the_reaper(port):
    run = CheckRun.objects.create(port=port)
    later = timezone.now() + timedelta(hours=2)
    assert check_run_reap(now=later) == 1
    finished = the_event("portal.check_run.finished")
    assert finished.data["run_id"] == run.pk and finished.data["outcome"] == "error"
    assert finished.data["started_at"] is None
    assert check_run_reap(now=later) == 0
    assert Event.objects.filter(type="portal.check_run.finished").count() == 1


def test_an_incident_opens_and_resolves_with_an_event_each(port, owner):
    check_create(port=port, by=owner, kind="not_null", column="email", name="Email set")
    for _ in range(2):  # the second failing run keeps the same incident: no new event
        trust_after_check_run(
            run=check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
        )
    opened = the_event("portal.incident.opened")
    incident = port.product.incidents.get()
    assert opened.data["incident_id"] == incident.pk
    assert opened.data["title"] == incident.title and opened.data["cause"] == "check"
    assert opened.data["port"] == "orders-file" and opened.data["resolved_at"] is None

    incident_resolve(incident=incident, by=owner, note="Emails back-filled upstream.")
    resolved = the_event("portal.incident.resolved")
    incident.refresh_from_db()
    assert resolved.data["incident_id"] == incident.pk
    assert resolved.data["resolved_at"] == incident.resolved_at.isoformat()
    assert resolved.data["resolved_by"] == "owner"


def test_an_slo_breach_is_announced_once_per_breach(product, port, owner):
    now = timezone.now()
    PortObservation.objects.bulk_create(
        [PortObservation(port=port, observed_at=now - timedelta(hours=1), available=True)]
        + [
            PortObservation(port=port, observed_at=now - timedelta(hours=1), available=False)
            for _ in range(3)
        ]
    )
    slo = slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=99)
    slo_evaluate(slo=slo)  # still breached: the same breach
    breach = the_event("portal.slo.breached")
    assert breach.data["slo_id"] == slo.pk and breach.data["kind"] == "availability"
    assert breach.data["target_percent"] == 99 and breach.data["attainment_percent"] == 25
    assert breach.data["incident_id"] == product.incidents.get().pk
    assert the_event("portal.incident.opened").pk < breach.pk  # written together


# --- access --------------------------------------------------------------------------------


@pytest.fixture
def columns(product):
    port = OutputPortFactory(product=product, slug="orders")
    ColumnFactory(port=port, name="country", data_type="VARCHAR", position=0)
    ColumnFactory(port=port, name="amount", data_type="DOUBLE", position=1)
    return port


def test_a_request_and_its_approval_go_to_the_requester_and_the_managers(
    product, columns, owner, steward, member, outsider, marketing_steward
):
    request = access_request_create(
        product=product, by=outsider, purpose="Monthly revenue", columns=["country"]
    )
    requested = the_event("portal.access.requested")
    assert requested.audience == Event.AUDIENCE_PEOPLE
    assert list(requested.people.all()) == [outsider]
    assert requested.data["request_id"] == request.pk and requested.data["grant_id"] is None
    assert requested.data["user"] == "outsider" and requested.data["columns"] == ["country"]
    assert requested.data["purpose"] == "Monthly revenue"

    grant = access_request_approve(
        request=request,
        by=steward,
        row_filter=[{"column": "country", "op": "in", "value": ["BE", "NL"]}],
    )
    granted = the_event("portal.access.granted")
    assert list(granted.people.all()) == [outsider]
    assert granted.data["grant_id"] == grant.pk and granted.data["request_id"] == request.pk
    assert granted.data["row_filter"] == "country is BE or NL"
    assert granted.data["columns"] == ["country"] and granted.data["granted_by"] == "steward"

    access = {"portal.access.requested", "portal.access.granted"}
    for user in (outsider, owner, steward):
        assert access <= seen_by(user)
    # Not a plain member of the domain, nor a steward of another domain.
    for user in (member, marketing_steward):
        assert not access & seen_by(user)


def test_a_denial_says_why_to_the_requester(product, columns, owner, outsider):
    request = access_request_create(product=product, by=outsider, purpose="Curious")
    access_request_deny(request=request, by=owner, reason="Use the public summary instead.")
    denied = the_event("portal.access.denied")
    assert list(denied.people.all()) == [outsider]
    assert denied.data["request_id"] == request.pk
    assert denied.data["reason"] == "Use the public summary instead."


def test_a_revocation_names_the_grantee_and_the_reason(product, columns, owner):
    analyst = UserFactory(username="analyst")
    grant = grant_create(product=product, by=owner, user=analyst, columns=["amount"], reason="BI")
    grant_revoke(grant=grant, by=owner, reason="Left the team")
    revoked = the_event("portal.access.revoked")
    assert list(revoked.people.all()) == [analyst]
    assert revoked.data["grant_id"] == grant.pk and revoked.data["user"] == "analyst"
    assert revoked.data["reason"] == "Left the team" and revoked.data["revoked_by"] == "owner"


def test_a_group_grant_goes_to_every_member_of_the_group(product, columns, owner):
    group = Group.objects.create(name="analysts")
    people = [UserFactory(username=f"analyst-{i}") for i in range(2)]
    group.user_set.add(*people)
    grant_create(product=product, by=owner, group=group, reason="the BI team")
    granted = the_event("portal.access.granted")
    assert set(granted.people.all()) == set(people)
    assert granted.data["group"] == "analysts" and granted.data["user"] == ""


def test_an_expired_grant_is_announced_once(product, columns, owner):
    analyst = UserFactory(username="analyst")
    grant = grant_create(product=product, by=owner, user=analyst, reason="a week's study")
    assert grants_expire() == 0  # not ended yet
    AccessGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(minutes=5))
    assert grants_expire() == 1
    assert grants_expire() == 0  # however often the sweep runs
    expired = the_event("portal.access.expired")
    assert list(expired.people.all()) == [analyst] and expired.data["grant_id"] == grant.pk
    # A revoked grant's end is no news.
    revoked = grant_create(product=product, by=owner, user=analyst, reason="again")
    grant_revoke(grant=revoked, by=owner, reason="done")
    AccessGrant.objects.filter(pk=revoked.pk).update(expires_at=timezone.now())
    assert grants_expire() == 0


def test_a_grant_rolled_back_with_its_caller_leaves_no_event(product, columns, owner):
    analyst = UserFactory(username="analyst")
    with pytest.raises(RuntimeError), transaction.atomic():
        grant_create(product=product, by=owner, user=analyst, reason="BI")
        assert Event.objects.filter(type="portal.access.granted").exists()
        raise RuntimeError("the request failed after the grant was written")
    assert not Event.objects.exists() and not AccessGrant.objects.exists()


# --- exports, share links ------------------------------------------------------------------


@pytest.fixture
def orders(domain, media_root):
    return orders_product(domain=domain, media_root=media_root)


def test_an_export_run_writes_started_and_finished_for_its_creator(
    orders, owner, outsider, marketing_steward
):
    schedule = export_schedule_create(
        product=orders, by=owner, name="Nightly", cron="0 6 * * *", format="csv"
    )
    run = export_run_execute(run_id=export_run_request(schedule=schedule, by=owner).pk)

    started = the_event("portal.export_run.started")
    assert started.data == {
        **started.data,
        "run_id": run.pk,
        "export_id": schedule.pk,
        "export": "Nightly",
        "format": "csv",
    }
    finished = the_event("portal.export_run.finished")
    assert finished.data == {
        **finished.data,
        "run_id": run.pk,
        "export_id": schedule.pk,
        "export": "Nightly",
        "format": "csv",
        "outcome": "succeeded",
        "rows": 6,
        "error": "",
    }
    for event in (started, finished):
        assert event.audience == Event.AUDIENCE_PEOPLE
        assert list(event.people.all()) == [owner]
    exports = {"portal.export_run.started", "portal.export_run.finished"}
    assert exports <= seen_by(owner)
    assert not exports & (seen_by(outsider) | seen_by(marketing_steward))


def test_a_failed_export_says_why_without_the_sources_detail(orders, owner, media_root):
    schedule = export_schedule_create(
        product=orders, by=owner, name="Nightly", cron="0 6 * * *", format="csv"
    )
    (media_root / "export-src" / "orders.parquet").unlink()  # the source file is gone
    run = export_run_execute(run_id=export_run_request(schedule=schedule, by=owner).pk)
    assert "orders.parquet" in run.error  # the owner, a member, reads the detail on the page
    finished = the_event("portal.export_run.finished")
    assert finished.data["outcome"] == "failed" and finished.data["status"] == "failed"
    assert finished.data["error"] == SOURCE_UNREADABLE and finished.data["rows"] is None
    assert "orders.parquet" not in json.dumps(finished.data)


def test_a_share_link_is_announced_without_its_token(orders, owner, outsider):
    link, token = share_link_create(by=owner, product=orders, expires_in_days=3, columns=["amount"])
    created = the_event("portal.share_link.created")
    assert created.audience == Event.AUDIENCE_PEOPLE and list(created.people.all()) == [owner]
    assert created.data["share_link_id"] == link.pk and created.data["columns"] == ["amount"]
    assert created.data["expires_at"] == link.expires_at.isoformat()
    assert token not in json.dumps(created.data) and link.token_hash not in json.dumps(created.data)

    share_link_revoke(link=link, by=owner, reason="Sent to the wrong person")
    revoked = the_event("portal.share_link.revoked")
    assert revoked.data["share_link_id"] == link.pk
    assert revoked.data["reason"] == "Sent to the wrong person"
    assert not {"portal.share_link.created", "portal.share_link.revoked"} & seen_by(outsider)


# --- announcements -------------------------------------------------------------------------


def test_an_announcement_is_posted_to_every_reader_of_the_product(product, owner, outsider):
    announcement = announcement_create(
        product=product, by=owner, kind="maintenance", title="Reload on Sunday", body="Down 2h."
    )
    posted = the_event("portal.announcement.posted")
    assert posted.audience == Event.AUDIENCE_CATALOG
    assert posted.data["announcement_id"] == announcement.pk
    assert posted.data["kind"] == "maintenance" and posted.data["title"] == "Reload on Sunday"
    assert posted.data["announcement_url"] == f"{PRODUCT_URL}#announcement-{announcement.pk}"
    assert "portal.announcement.posted" in seen_by(outsider)


def test_every_type_is_in_the_catalogue_integrators_read():
    docs = (Path(__file__).resolve().parents[3] / "docs" / "event-types.md").read_text()
    for type_ in EVENT_TYPES:
        assert f"`{type_}`" in docs, type_
