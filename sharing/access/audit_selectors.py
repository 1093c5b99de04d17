"""The audit, read with its rules: who sees which events, the filters of its page, CSV
export and API, and its pages, keyed on (time, id) so a page is found by an index seek
however deep it is, and events sharing one timestamp are neither skipped nor repeated."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from products.catalog.permissions import user_is_admin
from products.choices import MembershipRole
from products.models import Domain
from sharing.models import AccessEvent

AUDIT_PAGE_ROWS = 50


def audit_domains(*, user) -> QuerySet[Domain] | None:
    """Domains whose audit the user sees: None for admins (every event), the domains they
    own otherwise (possibly none)."""
    if user_is_admin(user):
        return None
    if not user.is_authenticated:
        return Domain.objects.none()
    return Domain.objects.filter(
        memberships__user_id=user.pk, memberships__role=MembershipRole.OWNER
    )


def can_view_audit(*, user) -> bool:
    domains = audit_domains(user=user)
    return domains is None or domains.exists()


@dataclass(frozen=True)
class AuditFilters:
    product: str = ""  # part of a product's name or key, any case
    person: str = ""  # part of the actor's username, name or e-mail, any case
    action: str = ""
    channel: str = ""
    date_from: date | None = None
    date_to: date | None = None  # inclusive


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def person_matches(text: str, prefix: str = "") -> Q:
    """People whose username, first or last name, full name or e-mail contain `text`
    (any case); `prefix` leads to the user (e.g. "user__")."""
    words = text.split()
    if len(words) > 1:  # "Alice Martin": every word in one of the name fields
        match = Q()
        for word in words:
            match &= person_matches(word, prefix)
        return match
    return (
        Q(**{f"{prefix}username__icontains": text})
        | Q(**{f"{prefix}first_name__icontains": text})
        | Q(**{f"{prefix}last_name__icontains": text})
        | Q(**{f"{prefix}email__icontains": text})
    )


def access_events(*, user, filters: AuditFilters | None = None) -> QuerySet[AccessEvent]:
    """The audit, newest first: every event for admins, the events of their domains'
    products for domain owners, nothing for anyone else."""
    filters = filters or AuditFilters()
    qs = AccessEvent.objects.select_related("user", "product__domain")
    domains = audit_domains(user=user)
    if domains is not None:
        qs = qs.filter(product__domain__in=domains)
    if filters.product:
        # The key is kept on the event, so events of a deleted product are still found.
        qs = qs.filter(
            Q(product__name__icontains=filters.product) | Q(product_key__icontains=filters.product)
        )
    if filters.person:
        qs = qs.filter(person_matches(filters.person, "user__"))
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.date_from:
        qs = qs.filter(at__gte=_day_start(filters.date_from))
    if filters.date_to:
        qs = qs.filter(at__lt=_day_start(filters.date_to + timedelta(days=1)))
    return qs.order_by("-at", "-pk")


# --- pages by cursor -------------------------------------------------------------------


@dataclass(frozen=True)
class AuditCursor:
    """A place in the audit: the (time, id) of an event. Opaque in URLs."""

    at: datetime
    pk: int

    def encode(self) -> str:
        raw = f"{self.at.isoformat()}|{self.pk}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> AuditCursor | None:
        """The cursor, or None when the text is not one (a mangled link)."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            stamp, pk = raw.split("|")
            at = datetime.fromisoformat(stamp)
            if at.tzinfo is None:
                return None
            return cls(at=at, pk=int(pk))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None

    @classmethod
    def of(cls, event: AccessEvent) -> AuditCursor:
        return cls(at=event.at, pk=event.pk)


@dataclass(frozen=True)
class AuditPage:
    events: list[AccessEvent]
    newer: AuditCursor | None  # the page before (newer events), when there is one
    older: AuditCursor | None  # the page after (older events), when there is one


def audit_page(
    events: QuerySet[AccessEvent],
    *,
    after: AuditCursor | None = None,
    before: AuditCursor | None = None,
    size: int = AUDIT_PAGE_ROWS,
) -> AuditPage:
    """One page of `events` (ordered newest first by access_events): the events older
    than `after`, or the page just newer than `before`, or the newest. Keyset paging on
    (at, id): no OFFSET, so every page costs the same, and events written meanwhile do
    not shift the pages already seen."""
    if before is not None:
        newer_first = events.filter(Q(at__gt=before.at) | Q(at=before.at, pk__gt=before.pk))
        rows = list(newer_first.order_by("at", "pk")[: size + 1])
        has_newer = len(rows) > size
        page = list(reversed(rows[:size]))
        return AuditPage(
            events=page,
            newer=AuditCursor.of(page[0]) if has_newer and page else None,
            older=AuditCursor.of(page[-1]) if page else before,
        )
    if after is not None:
        events = events.filter(Q(at__lt=after.at) | Q(at=after.at, pk__lt=after.pk))
    rows = list(events[: size + 1])
    page = rows[:size]
    return AuditPage(
        events=page,
        newer=AuditCursor.of(page[0]) if after is not None and page else None,
        older=AuditCursor.of(page[-1]) if len(rows) > size else None,
    )
