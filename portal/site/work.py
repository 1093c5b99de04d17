"""The work inbox (/my/work/, and its count in the top bar): what waits on a person, each
item linking to the page where it is done.

- access requests to decide, on the products of the domains they own or steward;
- feedback threads past their response objective (no answer yet), same products;
- unresolved incidents, same products;
- retirement proposals held by objections (waiting for the owners), same products;
- their own grants ending within the expiry notice's window (their user grants and the
  grants of their teams): request again in time (no longer work once asked again, or
  once a longer grant is held);
- grants ending within that window on the products of the domains they own: the owners
  renew them (a direct grant) or let them end (no longer work once renewed);
- sync runs held by a guardrail, for the sync's creator, its destination domain's owners
  and admins (sharing.syncs.selectors.sync_runs_held_for): approve or decline.

"Products I manage" are those of the domains where the person is an owner or a steward,
the people who decide requests, answer feedback and handle incidents. Admins see the work
of their own domains like everyone, not every domain's: that is the admin pages' job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import (
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.urls import reverse
from django.utils import timezone

from portal.core.people import display_name
from products.choices import (
    ANSWER_EXPECTED_KINDS,
    MANAGING_ROLES,
    UNRESOLVED_FEEDBACK_STATUSES,
    UNRESOLVED_INCIDENT_STATUSES,
    MembershipRole,
    RetirementStatus,
)
from products.feedback.services.feedback import business_days_late
from products.models import (
    DataProduct,
    DomainMembership,
    FeedbackThread,
    Incident,
    RetirementProposal,
)
from sharing.access.services.grants import EXPIRY_NOTICE_DAYS
from sharing.choices import RequestStatus
from sharing.models import AccessGrant, AccessRequest
from sharing.syncs.selectors import sync_runs_held_for

# The kinds of work, in the order the page shows them: (kind, heading).
REQUESTS = "requests"
OVERDUE_THREADS = "overdue_threads"
INCIDENTS = "incidents"
OBJECTIONS = "objections"
MY_GRANTS_ENDING = "my_grants_ending"
GRANTS_ENDING = "grants_ending"
SYNC_RUNS_HELD = "sync_runs_held"
KINDS = (
    (REQUESTS, "Access requests to decide"),
    (OVERDUE_THREADS, "Feedback past its response objective"),
    (INCIDENTS, "Open incidents"),
    (OBJECTIONS, "Objections to a retirement"),
    (MY_GRANTS_ENDING, "Your access ending soon"),
    (GRANTS_ENDING, "Access you granted ending soon"),
    (SYNC_RUNS_HELD, "Sync runs held for approval"),
)
ITEMS_SHOWN = 50  # per kind; the rest are counted ("and 12 more")


@dataclass
class WorkItem:
    title: str
    url: str
    product: DataProduct
    detail: str = ""
    since: datetime | None = None  # when it started waiting
    since_label: str = "since"  # "asked", "opened", "proposed"
    ends_at: datetime | None = None  # grants: when the access ends
    action: str = "Open"


@dataclass
class WorkGroup:
    kind: str
    heading: str
    items: list[WorkItem] = field(default_factory=list)
    count: int = 0

    @property
    def more(self) -> int:
        return self.count - len(self.items)


def _managed_domains(user) -> QuerySet:
    """The ids of the domains the user owns or stewards (a subquery)."""
    return DomainMembership.objects.filter(user_id=user.pk, role__in=MANAGING_ROLES).values(
        "domain_id"
    )


def _owned_domains(user) -> QuerySet:
    return DomainMembership.objects.filter(user_id=user.pk, role=MembershipRole.OWNER).values(
        "domain_id"
    )


def _ending_window(now: datetime) -> Q:
    return Q(
        revoked_at__isnull=True,
        expires_at__gt=now,
        expires_at__lte=now + timedelta(days=EXPIRY_NOTICE_DAYS),
    )


def _product_url(product: DataProduct, name: str, anchor: str = "", **kwargs) -> str:
    kwargs.update(domain_slug=product.domain.slug, product_slug=product.slug)
    return reverse(name, kwargs=kwargs) + anchor


def _person(user) -> str:
    return display_name(user, nobody="Someone")


# --- the querysets, one per kind ------------------------------------------------------------


def requests_to_decide(*, user) -> QuerySet[AccessRequest]:
    """Pending requests on the products of the domains the user owns or stewards."""
    return AccessRequest.objects.filter(
        status=RequestStatus.PENDING, product__domain_id__in=_managed_domains(user)
    )


def _threads_waiting(*, user, now: datetime) -> QuerySet[FeedbackThread]:
    """Threads that expect an answer and have none, old enough to be late (a response
    objective is at least one business day, so at least one calendar day). Which of them
    are overdue is decided in business days (`_is_overdue`), per product's objective."""
    return FeedbackThread.objects.filter(
        product__domain_id__in=_managed_domains(user),
        kind__in=ANSWER_EXPECTED_KINDS,
        status__in=UNRESOLVED_FEEDBACK_STATUSES,
        first_response_at__isnull=True,
        created_at__lt=now - timedelta(days=1),
    )


def _is_overdue(*, opened_at: datetime, days: int, now: datetime) -> bool:
    return business_days_late(opened_at=opened_at, days=days, now=now) > 0


def incidents_open(*, user) -> QuerySet[Incident]:
    return Incident.objects.filter(
        product__domain_id__in=_managed_domains(user), status__in=UNRESOLVED_INCIDENT_STATUSES
    )


def retirements_objected(*, user) -> QuerySet[RetirementProposal]:
    """Proposals held by objections: the owners withdraw them or proceed."""
    return RetirementProposal.objects.filter(
        product__domain_id__in=_managed_domains(user), status=RetirementStatus.OBJECTED
    )


def grants_ending_mine(*, user, now: datetime) -> QuerySet[AccessGrant]:
    """The user's grants (their own and their teams') ending within the notice window,
    unless they already asked again or hold a grant on the product that lasts longer."""
    mine = Q(user_id=user.pk) | Q(group_id__in=user.groups.values("pk"))
    renewed = AccessGrant.objects.filter(
        mine,
        product_id=OuterRef("product_id"),
        revoked_at__isnull=True,
        expires_at__gt=now + timedelta(days=EXPIRY_NOTICE_DAYS),
    )
    asked_again = AccessRequest.objects.filter(
        product_id=OuterRef("product_id"), requester_id=user.pk, status=RequestStatus.PENDING
    )
    return (
        AccessGrant.objects.filter(_ending_window(now))
        .filter(mine)
        .exclude(Exists(renewed))
        .exclude(Exists(asked_again))
    )


def grants_ending_managed(*, user, now: datetime) -> QuerySet[AccessGrant]:
    """Grants ending within the notice window on the products of the domains the user
    owns (who grant again, as the expiry email tells them), unless the grantee already
    holds a grant on the product that lasts longer."""
    # The same grantee: a grant has a user or a group, and NULL equals nothing.
    same_grantee = Q(user_id=OuterRef("user_id")) | Q(group_id=OuterRef("group_id"))
    renewed = AccessGrant.objects.filter(
        same_grantee,
        product_id=OuterRef("product_id"),
        revoked_at__isnull=True,
        expires_at__gt=now + timedelta(days=EXPIRY_NOTICE_DAYS),
    )
    return (
        AccessGrant.objects.filter(_ending_window(now))
        .filter(product__domain_id__in=_owned_domains(user))
        .exclude(Exists(renewed))
    )


# --- the count (top bar) ----------------------------------------------------------------------


def work_count(*, user, now: datetime | None = None) -> int:
    """How many things wait on the user: one query (every kind's rows in one UNION ALL;
    overdue threads are then decided in business days)."""
    if user is None or not user.is_authenticated:
        return 0
    now = now or timezone.now()

    def rows(qs: QuerySet, kind: str, opened=None, days=None) -> QuerySet:
        return qs.annotate(
            work_kind=Value(kind, output_field=CharField()),
            work_opened=opened or Value(None, output_field=DateTimeField()),
            work_days=days or Value(None, output_field=IntegerField()),
        ).values_list("work_kind", "work_opened", "work_days")

    union = rows(requests_to_decide(user=user), REQUESTS).union(
        rows(
            _threads_waiting(user=user, now=now),
            OVERDUE_THREADS,
            F("created_at"),
            F("product__feedback_response_days"),
        ),
        rows(incidents_open(user=user), INCIDENTS),
        rows(retirements_objected(user=user), OBJECTIONS),
        rows(grants_ending_mine(user=user, now=now), MY_GRANTS_ENDING),
        rows(grants_ending_managed(user=user, now=now), GRANTS_ENDING),
        rows(sync_runs_held_for(user=user).order_by(), SYNC_RUNS_HELD),
        all=True,
    )
    total = 0
    for kind, opened, days in union:
        if kind != OVERDUE_THREADS or _is_overdue(opened_at=opened, days=days, now=now):
            total += 1
    return total


# --- the page ---------------------------------------------------------------------------------


def _group(kind: str, heading: str, items: Iterable[WorkItem], count: int | None = None):
    items = list(items)
    return WorkGroup(
        kind=kind,
        heading=heading,
        items=items[:ITEMS_SHOWN],
        count=len(items) if count is None else count,
    )


def work_inbox(*, user, now: datetime | None = None) -> list[WorkGroup]:
    """Every kind of work with its items (at most ITEMS_SHOWN each, oldest first, so what
    waits longest comes first); kinds without items are left out. Two queries a kind."""
    now = now or timezone.now()
    headings = dict(KINDS)
    groups: list[WorkGroup] = []

    requests = requests_to_decide(user=user).select_related("product__domain", "requester")
    groups.append(
        _group(
            REQUESTS,
            headings[REQUESTS],
            (
                WorkItem(
                    title=f"{_person(r.requester)} asks to read {r.product.name}",
                    detail=r.purpose,
                    url=_product_url(r.product, "sharing:product-access", "#pending"),
                    product=r.product,
                    since=r.created_at,
                    since_label="asked",
                    action="Decide",
                )
                for r in requests.order_by("created_at", "pk")[:ITEMS_SHOWN]
            ),
            requests.count(),
        )
    )

    threads = []
    for thread in (
        _threads_waiting(user=user, now=now)
        .select_related("product__domain", "author")
        .order_by("created_at", "pk")
    ):
        days = thread.product.feedback_response_days
        thread.days_late = business_days_late(opened_at=thread.created_at, days=days, now=now)
        if thread.days_late > 0:
            threads.append(thread)
    groups.append(
        _group(
            OVERDUE_THREADS,
            headings[OVERDUE_THREADS],
            (
                WorkItem(
                    title=t.title,
                    detail=(
                        f"{t.get_kind_display()} from {_person(t.author)}, {t.days_late} "
                        "business day(s) past the response objective"
                    ),
                    url=_product_url(t.product, "products:feedback-detail", thread_id=t.pk),
                    product=t.product,
                    since=t.created_at,
                    since_label="opened",
                    action="Answer",
                )
                for t in threads
            ),
        )
    )

    incidents = incidents_open(user=user).select_related("product__domain")
    groups.append(
        _group(
            INCIDENTS,
            headings[INCIDENTS],
            (
                WorkItem(
                    title=i.title,
                    detail=f"{i.get_severity_display()}, {i.get_status_display().lower()}",
                    url=_product_url(i.product, "products:incident-detail", incident_id=i.pk),
                    product=i.product,
                    since=i.opened_at,
                    since_label="opened",
                    action="Handle",
                )
                for i in incidents.order_by("opened_at", "pk")[:ITEMS_SHOWN]
            ),
            incidents.count(),
        )
    )

    proposals = (
        retirements_objected(user=user)
        .select_related("product__domain")
        .annotate(objection_count=Count("objections"))
    )
    groups.append(
        _group(
            OBJECTIONS,
            headings[OBJECTIONS],
            (
                WorkItem(
                    title=f"Retirement of {p.product.name}",
                    detail=f"{p.objection_count} objection(s): withdraw the proposal or proceed",
                    url=_product_url(p.product, "products:product-retirement"),
                    product=p.product,
                    since=p.proposed_at,
                    since_label="proposed",
                    action="Decide",
                )
                for p in proposals.order_by("proposed_at", "pk")[:ITEMS_SHOWN]
            ),
        )
    )

    mine = grants_ending_mine(user=user, now=now).select_related("product__domain", "group")
    groups.append(
        _group(
            MY_GRANTS_ENDING,
            headings[MY_GRANTS_ENDING],
            (
                WorkItem(
                    title=f"Your access to {g.product.name} ends soon",
                    detail=(f"Through the team {g.group.name}" if g.group_id else ""),
                    url=_product_url(g.product, "sharing:product-access", "#your-access"),
                    product=g.product,
                    ends_at=g.expires_at,
                    action="Request again",
                )
                for g in mine.order_by("expires_at", "pk")[:ITEMS_SHOWN]
            ),
            mine.count(),
        )
    )

    managed = grants_ending_managed(user=user, now=now).select_related(
        "product__domain", "user", "group"
    )
    groups.append(
        _group(
            GRANTS_ENDING,
            headings[GRANTS_ENDING],
            (
                WorkItem(
                    title=f"Access of {_grantee(g)} to {g.product.name} ends soon",
                    detail=g.reason,
                    url=_product_url(g.product, "sharing:product-access", "#grants"),
                    product=g.product,
                    ends_at=g.expires_at,
                    action="Review",
                )
                for g in managed.order_by("expires_at", "pk")[:ITEMS_SHOWN]
            ),
            managed.count(),
        )
    )

    held = sync_runs_held_for(user=user)
    groups.append(
        _group(
            SYNC_RUNS_HELD,
            headings[SYNC_RUNS_HELD],
            (
                WorkItem(
                    title=f"Sync {r.sync.name} to {r.sync.destination.name}",
                    detail="; ".join(reason["message"] for reason in r.held_reasons)[:300],
                    url=reverse(
                        "sharing:sync-detail",
                        args=[r.sync.product.domain.slug, r.sync.product.slug, r.sync.pk],
                    ),
                    product=r.sync.product,
                    since=r.finished_at or r.created_at,
                    since_label="held",
                    action="Approve or decline",
                )
                for r in held[:ITEMS_SHOWN]
            ),
            held.count(),
        )
    )
    return [group for group in groups if group.count]


def _grantee(grant: AccessGrant) -> str:
    return _person(grant.user) if grant.user_id else f"the team {grant.group.name}"


# --- per product (My products, the Access tab) ------------------------------------------------


@dataclass
class ProductWork:
    pending_requests: int = 0
    overdue_threads: int = 0
    open_incidents: int = 0


def work_by_product(
    *, product_ids: Iterable[int], now: datetime | None = None
) -> dict[int, ProductWork]:
    """Pending requests, overdue threads and unresolved incidents of each product (three
    queries for any number of products), for the products' managers' own page."""
    ids = list(product_ids)
    work = {pk: ProductWork() for pk in ids}
    if not ids:
        return work
    now = now or timezone.now()
    for pk, n in (
        AccessRequest.objects.filter(product_id__in=ids, status=RequestStatus.PENDING)
        .values_list("product_id")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        work[pk].pending_requests = n
    for pk, n in (
        Incident.objects.filter(product_id__in=ids, status__in=UNRESOLVED_INCIDENT_STATUSES)
        .values_list("product_id")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        work[pk].open_incidents = n
    overdue = Counter(
        pk
        for pk, opened, days in FeedbackThread.objects.filter(
            product_id__in=ids,
            kind__in=ANSWER_EXPECTED_KINDS,
            status__in=UNRESOLVED_FEEDBACK_STATUSES,
            first_response_at__isnull=True,
            created_at__lt=now - timedelta(days=1),
        ).values_list("product_id", "created_at", "product__feedback_response_days")
        if _is_overdue(opened_at=opened, days=days, now=now)
    )
    for pk, n in overdue.items():
        work[pk].overdue_threads = n
    return work


def access_requests_pending_count(*, user, product: DataProduct) -> int:
    """The pending requests of a product, for the people who decide them (the domain's
    owners and stewards, and admins); 0 for everyone else. One query."""
    if user is None or not user.is_authenticated:
        return 0
    pending = AccessRequest.objects.filter(product_id=product.pk, status=RequestStatus.PENDING)
    if not user.is_staff:
        pending = pending.filter(
            product__domain_id__in=_managed_domains(user).filter(domain_id=product.domain_id)
        )
    return pending.count()
