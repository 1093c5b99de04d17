"""The work inbox (/my/work/ and its count in the top bar): each kind of work appears for
the people who do it (the domain's owners and stewards; the grantee for their own access)
and for nobody else (a steward of another domain, a plain reader); every item links to a
page that opens; the count matches the page and costs a fixed number of queries."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from portal.site.work import (
    GRANTS_ENDING,
    INCIDENTS,
    MY_GRANTS_ENDING,
    OBJECTIONS,
    OVERDUE_THREADS,
    REQUESTS,
    work_by_product,
    work_count,
    work_inbox,
)
from products.choices import (
    FeedbackKind,
    FeedbackStatus,
    IncidentCause,
    IncidentStatus,
    MembershipRole,
    RetirementStatus,
)
from products.models import FeedbackThread, Incident, RetirementObjection, RetirementProposal
from sharing.access.services.grants import grant_create
from sharing.access.services.requests import access_request_approve, access_request_create
from tests.factories import DomainFactory, MembershipFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

ALL_KINDS = {REQUESTS, OVERDUE_THREADS, INCIDENTS, OBJECTIONS, GRANTS_ENDING}


@pytest.fixture
def product(domain):
    return ProductFactory(domain=domain, name="Customer orders", slug="customer-orders")


@pytest.fixture
def other_steward(db):
    """Steward of another domain: none of the Sales domain's work is theirs."""
    user = UserFactory(username="other-steward")
    MembershipFactory(
        domain=DomainFactory(name="Marketing", slug="marketing"),
        user=user,
        role=MembershipRole.STEWARD,
    )
    return user


@pytest.fixture
def reader(db):
    return UserFactory(username="reader")


def _thread(product, *, author, days_ago: int, **fields) -> FeedbackThread:
    opened = timezone.now() - timedelta(days=days_ago)
    return FeedbackThread.objects.create(
        product=product,
        author=author,
        kind=fields.pop("kind", FeedbackKind.QUESTION),
        title=fields.pop("title", "Where are the refunds?"),
        body="The refunds of March are missing.",
        created_at=opened,
        last_activity_at=opened,
        **fields,
    )


@pytest.fixture
def work(product, owner, steward, reader):
    """One item of every kind on the Sales product, and what must stay out."""
    analyst = UserFactory(username="analyst")
    request = access_request_create(product=product, by=analyst, purpose="Churn study")
    overdue = _thread(product, author=reader, days_ago=10)
    # Not work: answered, praise, or too fresh to be late.
    _thread(
        product,
        author=reader,
        days_ago=10,
        title="Answered",
        first_response_at=timezone.now() - timedelta(days=9),
    )
    _thread(product, author=reader, days_ago=10, title="Thanks", kind=FeedbackKind.PRAISE)
    _thread(product, author=reader, days_ago=0, title="Fresh")
    _thread(product, author=reader, days_ago=10, title="Closed", status=FeedbackStatus.RESOLVED)
    incident = Incident.objects.create(
        product=product,
        cause=IncidentCause.CHECK,
        cause_key="check:1",
        title="Orders arrive late",
        opened_at=timezone.now() - timedelta(hours=3),
    )
    Incident.objects.create(
        product=product,
        cause=IncidentCause.CHECK,
        cause_key="check:2",
        title="Fixed",
        status=IncidentStatus.RESOLVED,
        opened_at=timezone.now() - timedelta(days=2),
    )
    proposal = RetirementProposal.objects.create(
        product=product,
        proposed_by=owner,
        reason="Nobody reads it",
        notice_days=30,
        proposed_at=timezone.now() - timedelta(days=3),
        notice_ends_at=timezone.now() + timedelta(days=27),
        status=RetirementStatus.OBJECTED,
    )
    RetirementObjection.objects.create(
        proposal=proposal, user=reader, reason="I read it monthly", at=timezone.now()
    )
    ending = grant_create(product=product, by=owner, user=reader, reason="Audit", duration_days=5)
    grant_create(
        product=product,
        by=owner,
        user=UserFactory(username="later"),
        reason="Audit",
        duration_days=60,
    )
    return {
        "request": request,
        "thread": overdue,
        "incident": incident,
        "proposal": proposal,
        "grant": ending,
    }


def _kinds(user) -> dict[str, list[str]]:
    return {group.kind: [item.title for item in group.items] for group in work_inbox(user=user)}


def test_each_kind_reaches_the_people_who_do_it(work, owner, steward, reader, other_steward):
    owner_work = _kinds(owner)
    assert set(owner_work) == ALL_KINDS
    assert owner_work[REQUESTS] == ["analyst asks to read Customer orders"]
    assert owner_work[OVERDUE_THREADS] == ["Where are the refunds?"]
    assert owner_work[INCIDENTS] == ["Orders arrive late"]
    assert owner_work[OBJECTIONS] == ["Retirement of Customer orders"]
    assert owner_work[GRANTS_ENDING] == ["Access of reader to Customer orders ends soon"]

    # Stewards decide, answer and handle; renewing grants is the owners' (direct grants).
    assert set(_kinds(steward)) == ALL_KINDS - {GRANTS_ENDING}
    # The reader's own access ends soon: theirs to request again. Nothing else is theirs.
    assert _kinds(reader) == {MY_GRANTS_ENDING: ["Your access to Customer orders ends soon"]}
    assert _kinds(other_steward) == {}
    assert work_count(user=other_steward) == 0


def test_a_member_and_an_admin_of_no_domain_have_nothing(work, member, admin_user):
    assert _kinds(member) == {}
    assert _kinds(admin_user) == {}


def test_a_team_grant_ending_is_work_of_its_members(product, owner, reader):
    team = Group.objects.create(name="Finance")
    reader.groups.add(team)
    grant_create(product=product, by=owner, group=team, reason="Close", duration_days=3)
    [group] = work_inbox(user=reader)
    assert group.kind == MY_GRANTS_ENDING
    assert group.items[0].detail == "Through the team Finance"


def test_the_count_matches_the_page_and_falls_when_work_is_done(work, owner, steward):
    assert work_count(user=owner) == 5
    assert work_count(user=steward) == 4
    access_request_approve(request=work["request"], by=steward)
    # The request is decided; its grant ends in 90 days, outside the window.
    assert work_count(user=owner) == 4
    assert REQUESTS not in _kinds(owner)


def test_the_count_costs_one_query(work, owner, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert work_count(user=owner) == 5


def test_every_item_links_to_a_page_that_opens(client, work, owner):
    client.force_login(owner)
    for group in work_inbox(user=owner):
        for item in group.items:
            response = client.get(item.url.split("#")[0])
            assert response.status_code == 200, (group.kind, item.url)
    urls = {item.url for group in work_inbox(user=owner) for item in group.items}
    product = work["request"].product
    base = product.get_absolute_url()
    assert f"{base}access/#pending" in urls
    assert f"{base}feedback/{work['thread'].pk}/" in urls
    assert f"{base}incidents/{work['incident'].pk}/" in urls
    assert f"{base}retirement/" in urls


def test_page_lists_work_by_kind_with_links(client, work, owner):
    client.force_login(owner)
    response = client.get(reverse("portal:my-work"))
    assert response.status_code == 200
    html = response.content.decode()
    for heading in (
        "Access requests to decide",
        "Feedback past its response objective",
        "Open incidents",
        "Objections to a retirement",
        "Access you granted ending soon",
    ):
        assert heading in html
    assert "Nothing waits on you" not in html
    assert f'href="{work["incident"].product.get_absolute_url()}access/#pending"' in html


def test_page_says_when_nothing_waits(client, work, other_steward):
    client.force_login(other_steward)
    response = client.get(reverse("portal:my-work"))
    assert "Nothing waits on you" in response.content.decode()
    assert response.context["groups"] == []


def test_page_and_badge_need_sign_in(client):
    for name in ("portal:my-work", "portal:my-work-badge"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("portal:login"))


def test_badge_shows_the_count_with_few_queries(
    client, work, owner, other_steward, django_assert_max_num_queries
):
    client.force_login(owner)
    with django_assert_max_num_queries(3):  # the session, the user, the count
        response = client.get(reverse("portal:my-work-badge"))
    assert 'data-work-count="5"' in response.content.decode()
    client.force_login(other_steward)
    response = client.get(reverse("portal:my-work-badge"))
    assert 'data-work-count="0"' in response.content.decode()


def test_top_bar_links_to_the_inbox(client, owner):
    client.force_login(owner)
    html = client.get(reverse("portal:home")).content.decode()
    assert f'href="{reverse("portal:my-work")}"' in html
    assert f'hx-get="{reverse("portal:my-work-badge")}"' in html


def test_access_tab_counts_pending_requests_for_its_deciders_only(
    client, work, owner, reader, other_steward
):
    product = work["request"].product
    url = reverse("sharing:product-access", args=[product.domain.slug, product.slug])
    client.force_login(owner)
    html = client.get(url).content.decode()
    assert 'title="Access requests waiting for a decision">1<' in html
    for person in (reader, other_steward):
        client.force_login(person)
        html = client.get(product.get_absolute_url()).content.decode()
        assert "Access requests waiting for a decision" not in html


def test_my_products_shows_what_waits_on_each_product(
    client, work, owner, domain, django_assert_max_num_queries
):
    quiet = ProductFactory(domain=domain, name="Quiet product")
    counts = work_by_product(product_ids=[work["request"].product_id, quiet.pk])
    assert counts[quiet.pk].pending_requests == 0
    product_work = counts[work["request"].product_id]
    assert (
        product_work.pending_requests,
        product_work.overdue_threads,
        product_work.open_incidents,
    ) == (1, 1, 1)
    for n in range(5):
        ProductFactory(domain=domain, name=f"More {n}")
    client.force_login(owner)
    with django_assert_max_num_queries(9):
        html = client.get(reverse("portal:my-products")).content.decode()
    assert "1 pending request<" in html
    assert "1 overdue thread<" in html
    assert "1 open incident<" in html


def test_access_renewed_or_asked_again_is_no_longer_work(work, product, owner, reader):
    assert MY_GRANTS_ENDING in _kinds(reader) and GRANTS_ENDING in _kinds(owner)
    # The owner grants again for longer: neither the reader nor the owner has to act.
    grant_create(product=product, by=owner, user=reader, reason="Audit", duration_days=60)
    assert MY_GRANTS_ENDING not in _kinds(reader)
    assert GRANTS_ENDING not in _kinds(owner)
    assert work_count(user=reader) == 0


def test_asking_again_takes_ones_ending_access_off_the_list(product, owner, reader):
    grant_create(product=product, by=owner, user=reader, reason="Audit", duration_days=5)
    assert work_count(user=reader) == 1
    access_request_create(product=product, by=reader, purpose="Another quarter")
    assert _kinds(reader) == {}
    assert work_count(user=reader) == 0
    assert _kinds(owner)[REQUESTS] == ["reader asks to read Customer orders"]
