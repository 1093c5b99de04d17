"""The pages of admins and domain managers: grants across products (who sees which,
filters, paging, revoke selected and revoke all of a person, with a reason, refused
across domains however the POST is crafted) and the audit (paged by cursor through
equal timestamps, filtered by part of a name, details in words, CSV in ISO 8601)."""

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.templatetags.portal_display import when_parts
from products.choices import MembershipRole
from sharing.access.audit_words import EVERY_ROW_LIMIT, event_in_words
from sharing.access.filters import filter_in_words
from sharing.access.services.grants import grant_create
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent, AccessGrant
from sharing.serving.reads import MAX_ROWS
from tests.factories import (
    PASSWORD,
    DomainFactory,
    MembershipFactory,
    ProductFactory,
    UserFactory,
)

GRANTS = reverse("sharing:grants-admin")
REVOKE_PERSON = reverse("sharing:grants-revoke-person")
AUDIT = reverse("sharing:audit")


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


@pytest.fixture
def world(domain, owner, steward, admin_user):
    """Sales (owner, steward): Orders and Customers; Finance (its own owner): Ledger.
    Alice holds a grant on each product, Bob one on Orders, team Analysts one on Orders."""
    finance = DomainFactory(name="Finance", slug="finance")
    finance_owner = UserFactory(username="fiona")
    MembershipFactory(domain=finance, user=finance_owner, role=MembershipRole.OWNER)
    orders = ProductFactory(domain=domain, name="Customer orders", slug="orders")
    customers = ProductFactory(domain=domain, name="Customers", slug="customers")
    ledger = ProductFactory(domain=finance, name="General ledger", slug="ledger")
    alice = UserFactory(
        username="alice", first_name="Alice", last_name="Martin", email="alice@corp.example"
    )
    bob = UserFactory(username="bob", first_name="Bob", last_name="Peeters")
    analysts = Group.objects.create(name="Analysts")
    grants = {
        "alice_orders": grant_create(product=orders, by=admin_user, user=alice, reason="r"),
        "alice_customers": grant_create(
            product=customers, by=admin_user, user=alice, reason="r", duration_days=5
        ),
        "alice_ledger": grant_create(product=ledger, by=admin_user, user=alice, reason="r"),
        "bob_orders": grant_create(product=orders, by=admin_user, user=bob, reason="r"),
        "team_orders": grant_create(product=orders, by=admin_user, group=analysts, reason="r"),
    }
    return {
        "finance_owner": finance_owner,
        "orders": orders,
        "customers": customers,
        "ledger": ledger,
        "alice": alice,
        "bob": bob,
        "grants": grants,
    }


def listed(response) -> set[int]:
    return {grant.pk for grant in response.context["page"].object_list}


# --- who may open the pages --------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client, db):
    for path in (GRANTS, REVOKE_PERSON, AUDIT):
        response = client.get(path)
        assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("who", ["outsider", "member"])
def test_readers_are_refused(client, world, request, who):
    login(client, request.getfixturevalue(who))
    assert client.get(GRANTS).status_code == 403
    assert client.get(REVOKE_PERSON).status_code == 403
    assert client.get(AUDIT).status_code == 403
    response = client.post(
        GRANTS, {"grants": [world["grants"]["bob_orders"].pk], "reason": "mine now"}
    )
    assert response.status_code == 403
    assert not AccessGrant.objects.filter(revoked_at__isnull=False).exists()


def test_admin_sees_every_grant_and_the_nav_link(client, world, admin_user):
    login(client, admin_user)
    page = client.get(GRANTS)
    assert page.status_code == 200
    assert listed(page) == {grant.pk for grant in world["grants"].values()}
    assert f'href="{GRANTS}"'.encode() in page.content  # the navigation's "Grants"
    assert b"Revoke everything a person holds" in page.content


def test_a_steward_sees_only_the_grants_of_their_domain(client, world, steward):
    login(client, steward)
    page = client.get(GRANTS)
    grants = world["grants"]
    assert listed(page) == {
        grants[name].pk for name in ("alice_orders", "alice_customers", "bob_orders", "team_orders")
    }
    assert b"General ledger" not in page.content
    # Filtering does not widen the scope.
    assert listed(client.get(GRANTS, {"product": "ledger"})) == set()
    assert b"Revoke everything a person holds" not in page.content  # owners and admins


# --- filters and paging ------------------------------------------------------------------


def test_filters_by_product_name_person_and_expiry(client, world, admin_user):
    grants = world["grants"]
    login(client, admin_user)
    # Part of the name, any case: not the exact key.
    assert listed(client.get(GRANTS, {"product": "ORDER"})) == {
        grants["alice_orders"].pk,
        grants["bob_orders"].pk,
        grants["team_orders"].pk,
    }
    assert listed(client.get(GRANTS, {"product": "finance.led"})) == {grants["alice_ledger"].pk}
    # A person by part of their name, username or e-mail; a team by its name.
    alice = {grants["alice_orders"].pk, grants["alice_customers"].pk, grants["alice_ledger"].pk}
    assert listed(client.get(GRANTS, {"person": "marti"})) == alice
    assert listed(client.get(GRANTS, {"person": "Alice Martin"})) == alice
    assert listed(client.get(GRANTS, {"person": "corp.example"})) == alice
    assert listed(client.get(GRANTS, {"person": "analy"})) == {grants["team_orders"].pk}
    # Ending within 7 days: the 5-day grant only.
    page = client.get(GRANTS, {"expiring": "7"})
    assert listed(page) == {grants["alice_customers"].pk}
    assert b"1 active grant matches the filters" in page.content
    # Filters combine.
    assert listed(client.get(GRANTS, {"product": "orders", "person": "bob"})) == {
        grants["bob_orders"].pk
    }
    empty = client.get(GRANTS, {"product": "nothing like it"})
    assert b"No active grant matches these filters" in empty.content


def test_unused_filter_reads_the_audit(client, world, admin_user):
    grants = world["grants"]
    now = timezone.now()
    # Grants made 100 days ago; Bob read Orders yesterday, Alice read Ledger 45 days ago.
    AccessGrant.objects.update(created_at=now - timedelta(days=100))
    for grant, days_ago in ((grants["bob_orders"], 1), (grants["alice_ledger"], 45)):
        AccessEvent.objects.create(
            at=now - timedelta(days=days_ago),
            action=AuditAction.READ,
            user=grant.user,
            product=grant.product,
            product_key=grant.product.key,
            channel=Channel.API,
            grant=grant,
            rows=10,
        )
    never = {grants[name].pk for name in ("alice_orders", "alice_customers", "team_orders")}
    login(client, admin_user)
    assert listed(client.get(GRANTS, {"unused": "never"})) == never
    assert listed(client.get(GRANTS, {"unused": "30"})) == never | {grants["alice_ledger"].pk}
    assert listed(client.get(GRANTS, {"unused": "60"})) == never
    page = client.get(GRANTS, {"person": "bob"})
    assert b"never" not in page.content.split(b"<tbody>")[1]  # Bob's last read is shown


def test_grants_are_paged(client, world, admin_user, django_assert_max_num_queries):
    orders = world["orders"]
    for _n in range(55):
        grant_create(product=orders, by=admin_user, user=UserFactory(), reason="r")
    login(client, admin_user)
    with django_assert_max_num_queries(12):
        first = client.get(GRANTS, {"product": "orders"})
    assert len(listed(first)) == 50 and b"page 1 of 2" in first.content
    assert b'href="?product=orders&amp;page=2"' in first.content
    second = client.get(GRANTS, {"product": "orders", "page": 2})
    assert len(listed(second)) == 58 - 50 and not listed(first) & listed(second)


# --- revoke selected ---------------------------------------------------------------------


def test_revoke_selected_with_a_reason(client, world, owner):
    grants = world["grants"]
    chosen = [grants["alice_orders"].pk, grants["bob_orders"].pk]
    login(client, owner)
    missing = client.post(GRANTS, {"grants": chosen, "reason": "  "})
    assert missing.status_code == 400 and b"Give a reason" in missing.content
    assert b'value="%d" id="grant-%d" checked' % (chosen[0], chosen[0]) in missing.content
    none = client.post(GRANTS, {"reason": "Project finished"})
    assert none.status_code == 400 and b"Tick at least one grant" in none.content
    assert not AccessGrant.objects.filter(revoked_at__isnull=False).exists()

    response = client.post(
        GRANTS, {"grants": chosen, "reason": "Project finished", "next_query": "product=orders"}
    )
    assert response.status_code == 302 and response["Location"] == f"{GRANTS}?product=orders"
    revoked = AccessGrant.objects.filter(revoked_at__isnull=False)
    assert set(revoked.values_list("pk", flat=True)) == set(chosen)
    assert set(revoked.values_list("revoke_reason", flat=True)) == {"Project finished"}
    events = AccessEvent.objects.filter(action=AuditAction.REVOKE)
    assert sorted(events.values_list("grant_id", flat=True)) == sorted(chosen)
    assert all(event.user == owner for event in events)
    page = client.get(GRANTS)
    assert b"Revoked 2 grants: access ends now." in page.content
    assert not listed(page) & set(chosen)


def test_a_steward_cannot_revoke_another_domains_grants_by_crafted_ids(client, world, steward):
    grants = world["grants"]
    ledger, own = grants["alice_ledger"].pk, grants["bob_orders"].pk
    login(client, steward)
    for ids in ([ledger], [own, ledger], [ledger, ledger], [999_999]):
        response = client.post(GRANTS, {"grants": ids, "reason": "take over"})
        assert response.status_code == 404, ids
    assert not AccessGrant.objects.filter(revoked_at__isnull=False).exists()
    assert not AccessEvent.objects.filter(action=AuditAction.REVOKE).exists()
    bad = client.post(GRANTS, {"grants": ["1 OR 1=1"], "reason": "x"})
    assert bad.status_code == 400
    # Their own domain's grant, they may.
    assert client.post(GRANTS, {"grants": [own], "reason": "done"}).status_code == 302
    assert list(
        AccessGrant.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True)
    ) == [own]


def test_an_already_revoked_grant_is_skipped_and_said(client, world, admin_user):
    grants = world["grants"]
    AccessGrant.objects.filter(pk=grants["bob_orders"].pk).update(revoked_at=timezone.now())
    login(client, admin_user)
    response = client.post(
        GRANTS,
        {"grants": [grants["bob_orders"].pk, grants["alice_orders"].pk], "reason": "cleanup"},
        follow=True,
    )
    said = b"Revoked 1 grant: access ends now. 1 grant had already been revoked."
    assert said in response.content
    assert AccessEvent.objects.filter(action=AuditAction.REVOKE).count() == 1


# --- revoke everything a person holds ----------------------------------------------------


def test_revoke_all_of_a_person_shows_the_count_then_revokes(client, world, owner):
    grants = world["grants"]
    login(client, owner)
    review = client.get(REVOKE_PERSON, {"person": "alice@corp.example"})
    assert review.status_code == 200
    # Alice's grants in the domain the owner owns; Ledger (Finance) is not theirs.
    assert b"2 grants will be revoked" in review.content
    assert b"Customer orders" in review.content and b"General ledger" not in review.content
    assert b"Revoke 2 grants" in review.content
    unknown = client.get(REVOKE_PERSON, {"person": "nobody"})
    assert unknown.status_code == 400 and b"No one has this username or e-mail" in unknown.content

    no_reason = client.post(REVOKE_PERSON, {"person": "alice", "reason": "", "expected": "2"})
    assert no_reason.status_code == 400 and b"Give a reason" in no_reason.content
    assert not AccessGrant.objects.filter(revoked_at__isnull=False).exists()

    done = client.post(
        REVOKE_PERSON, {"person": "alice", "reason": "Left the company", "expected": "2"}
    )
    assert done.status_code == 302 and done["Location"] == GRANTS
    revoked = set(AccessGrant.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True))
    assert revoked == {grants["alice_orders"].pk, grants["alice_customers"].pk}
    assert AccessGrant.objects.get(pk=grants["alice_ledger"].pk).revoked_at is None
    assert AccessEvent.objects.filter(action=AuditAction.REVOKE).count() == 2
    assert b"Revoked 2 grants of Alice Martin." in client.get(GRANTS).content
    again = client.get(REVOKE_PERSON, {"person": "alice"})
    assert b"Nothing to revoke" in again.content


def test_a_steward_cannot_revoke_all_of_a_person(client, world, steward):
    login(client, steward)
    assert client.get(REVOKE_PERSON, {"person": "alice"}).status_code == 403
    response = client.post(REVOKE_PERSON, {"person": "alice", "reason": "x"})
    assert response.status_code == 403
    assert not AccessGrant.objects.filter(revoked_at__isnull=False).exists()


# --- the audit ---------------------------------------------------------------------------


def _read(product, user, *, at, **fields) -> AccessEvent:
    return AccessEvent.objects.create(
        at=at,
        action=AuditAction.READ,
        user=user,
        product=product,
        product_key=product.key,
        channel=fields.pop("channel", Channel.API),
        **fields,
    )


def test_audit_pages_by_cursor_through_equal_timestamps(
    client, world, admin_user, django_assert_max_num_queries
):
    at = timezone.now().replace(microsecond=0)
    for _n in range(120):  # more than two pages, every event at the same instant
        _read(world["orders"], world["alice"], at=at, rows=1)
    expected = list(AccessEvent.objects.order_by("-at", "-pk").values_list("pk", flat=True))
    login(client, admin_user)
    seen, pages, url = [], [], AUDIT
    while url:
        with django_assert_max_num_queries(6):
            response = client.get(url if url.startswith("/") else AUDIT + url)
        pages.append(response)
        seen += [event.pk for event in response.context["events"]]
        url = response.context["older_url"]
    assert seen == expected  # none skipped, none twice, newest first
    assert [len(page.context["events"]) for page in pages] == [50, 50, 25]
    with CaptureQueriesContext(connection) as queries:  # keyset, however deep
        client.get(AUDIT + pages[1].context["older_url"])
    assert not [q["sql"] for q in queries if "OFFSET" in q["sql"].upper()]
    # Back one page from the last: the second page again.
    back = client.get(AUDIT + pages[2].context["newer_url"])
    assert [e.pk for e in back.context["events"]] == [e.pk for e in pages[1].context["events"]]
    assert b"Older" not in pages[2].content.split(b'aria-label="Audit pages"')[1]
    mangled = client.get(AUDIT, {"after": "%%%"})
    assert mangled.status_code == 200 and len(mangled.context["events"]) == 50


def test_audit_filters_by_partial_product_person_channel_and_dates(client, world, admin_user):
    now = timezone.now()
    _read(world["orders"], world["alice"], at=now, channel=Channel.NOTEBOOK, rows=3)
    _read(world["ledger"], world["bob"], at=now - timedelta(days=10), rows=4)
    login(client, admin_user)

    def products(**query):
        response = client.get(AUDIT, query)
        return {(e.product_key, e.action) for e in response.context["events"]}

    reads = {"action": "read"}
    assert products(product="CUSTOMER ORD", **reads) == {("sales.orders", "read")}
    assert products(product="ledg", **reads) == {("finance.ledger", "read")}
    assert products(person="peeters", **reads) == {("finance.ledger", "read")}
    assert products(channel="notebook") == {("sales.orders", "read")}
    day = timezone.localdate(now - timedelta(days=10)).isoformat()
    assert products(date_from=day, date_to=day, **reads) == {("finance.ledger", "read")}
    bad = client.get(AUDIT, {"date_from": "2026-02-01", "date_to": "2026-01-01"})
    assert b"The end date comes before the start date" in bad.content


def test_audit_details_are_in_words_and_dates_in_one_format(client, world, admin_user):
    event = _read(
        world["orders"],
        world["alice"],
        at=timezone.now(),
        rows=1000,
        columns=["a", "b"],
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
        detail={"format": "csv", "port": "orders", "basis": "grant", "limit": 10**12},
    )
    login(client, admin_user)
    page = client.get(AUDIT, {"action": "read"})
    text = page.content.decode()
    assert "Read 1,000 rows of columns a, b where country is BE" in text
    assert "all rows asked" in text and "as CSV" in text and "through a grant" in text
    assert "1000000000000" not in text and "limit:" not in text
    local = timezone.localtime(event.at)
    assert f'<time datetime="{local.isoformat()}"' in text
    # The portal's one date form: relative, the exact time on hover (portal_display.when).
    assert f'title="{when_parts(event.at)[2]}"' in text
    # A grant and a revocation, as decisions in words.
    grant = world["grants"]["bob_orders"]
    decision = AccessEvent.objects.get(action=AuditAction.GRANT, grant=grant)
    assert event_in_words(decision).startswith("Granted bob every column until ")
    assert "reason: r" in event_in_words(decision)


def test_filters_in_words():
    assert filter_in_words(
        [
            {"column": "country", "op": "in", "value": ["BE", "NL"]},
            {"column": "amount", "op": ">=", "value": 1000},
            {"column": "email", "op": "is null"},
            {"column": "status", "op": "not in", "value": ["void", "test"]},
        ]
    ) == (
        "country is BE or NL and amount is at least 1000 and email has no value "
        "and status is neither void nor test"
    )
    # "All rows" from the limit a read without one gets.
    assert EVERY_ROW_LIMIT == MAX_ROWS


def test_audit_limit_below_every_row_is_said(world):
    event = _read(world["orders"], world["alice"], at=timezone.now(), rows=5, detail={"limit": 5})
    assert "at most 5 rows asked" in event_in_words(event)
    event.detail = {"limit": 5, "unknown_key": "kept"}
    assert "unknown key: kept" in event_in_words(event)


def test_audit_csv_is_filtered_streamed_and_iso(client, world, admin_user):
    _read(world["orders"], world["alice"], at=timezone.now(), rows=7, columns=["a"])
    _read(world["ledger"], world["bob"], at=timezone.now(), rows=8)
    login(client, admin_user)
    response = client.get(
        reverse("sharing:audit-export"), {"product": "customer", "action": "read"}
    )
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["product"], r["rows"]) for r in rows] == [("sales.orders", "7")]
    assert datetime.fromisoformat(rows[0]["at"]).tzinfo is not None
    assert rows[0]["summary"].startswith("Read 7 rows of column a")
