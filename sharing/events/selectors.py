"""Which events a person may see: the one rule every way of following events applies
(the replay API, Server-Sent Events, webhook subscriptions)."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from portal.core.events import EVENT_TYPES, events_sequence
from portal.models import Event
from products.choices import MANAGING_ROLES
from products.models import DataProduct, Domain, DomainMembership


def events_visible_to(user) -> QuerySet[Event]:
    """The events `user` may see, by each event's audience (portal.core.events):

    - catalog: every signed-in person (the product was published or deprecated);
    - domain: members of the event's domain (a draft's, a retired product's events);
    - people: the people the event names, and the managers (owners, stewards) of its
      product's domain.

    Admins see every event; anonymous people none."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Event.objects.none()
    if user.is_staff:
        return Event.objects.all()
    memberships = DomainMembership.objects.filter(user_id=user.pk)
    member_of = memberships.values("domain_id")
    named = Event.people.through.objects.filter(user_id=user.pk)
    managing = memberships.filter(role__in=list(MANAGING_ROLES)).values("domain_id")
    return Event.objects.filter(
        Q(audience=Event.AUDIENCE_CATALOG)
        | Q(audience=Event.AUDIENCE_DOMAIN, domain_id__in=member_of)
        | Q(audience=Event.AUDIENCE_PEOPLE, domain_id__in=managing)
        | Q(audience=Event.AUDIENCE_PEOPLE, pk__in=named.values("event_id"))
    )


# The most events one page of the replay (or one read of the stream) holds.
EVENTS_PAGE_DEFAULT = 100
EVENTS_PAGE_MAX = 500


@dataclass(frozen=True)
class EventFilters:
    """What a follower of events asked for (the replay API and the stream take the same):
    events after `after` (None: not given; the replay starts at the oldest, the stream at
    the newest), of `types` (exact types and `prefix.*` wildcards; empty: all), about one
    product or one domain."""

    after: int | None = None
    types: tuple[str, ...] = ()
    product_id: int | None = None
    domain_id: int | None = None
    limit: int = EVENTS_PAGE_DEFAULT


def _after_parse(raw: str | None, *, field: str = "after") -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ValidationError(
            {
                field: [
                    f"{field} must be a non-negative whole number (an event's sequence), "
                    f"not {raw[:40]!r}."
                ]
            }
        )
    return int(raw)


def event_types_parse(values: list[str]) -> tuple[str, ...]:
    """`type` values (repeated or comma-separated) checked against the catalogue
    (portal.core.events.EVENT_TYPES); `portal.access.*` stands for every type under it."""
    wanted: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if part.endswith(".*"):
                prefix = part[:-1]
                known = any(name.startswith(prefix) for name in EVENT_TYPES)
            else:
                known = part in EVENT_TYPES
            if not known:
                raise ValidationError(
                    {
                        "type": [
                            f"Unknown event type {part[:100]!r}. Known types: "
                            + ", ".join(EVENT_TYPES)
                            + " (or a prefix such as portal.access.*)."
                        ]
                    }
                )
            if part not in wanted:
                wanted.append(part)
    return tuple(wanted)


def event_filters_parse(
    *,
    user,
    after: str | None,
    types: list[str],
    product: str | None,
    domain: str | None,
    limit: str | None = None,
    last_event_id: str | None = None,
) -> EventFilters:
    """Parse a follower's query into EventFilters, or raise ValidationError with a message
    per parameter. A product the caller may not see is answered exactly as one that does
    not exist (no existence leak). `last_event_id` (the SSE Last-Event-ID header) wins over
    `after` when both are given: it is where the client really got to."""
    if last_event_id:
        start = _after_parse(last_event_id.strip(), field="Last-Event-ID")
    else:
        start = _after_parse(after)
    product_id = domain_id = None
    if product:
        domain_slug, _, slug = product.partition(".")
        found = (
            DataProduct.objects.visible_to(user)
            .filter(domain__slug=domain_slug, slug=slug)
            .values_list("pk", flat=True)
            .first()
            if domain_slug and slug
            else None
        )
        if found is None:
            raise ValidationError(
                {
                    "product": [
                        f"There is no product {product[:200]!r} you can see "
                        "(a key is <domain>.<product>)."
                    ]
                }
            )
        product_id = found
    if domain:
        domain_id = Domain.objects.filter(slug=domain).values_list("pk", flat=True).first()
        if domain_id is None:
            raise ValidationError({"domain": [f"There is no domain {domain[:100]!r}."]})
    size = EVENTS_PAGE_DEFAULT
    if limit not in (None, ""):
        if not limit.isascii() or not limit.isdigit() or not 1 <= int(limit) <= EVENTS_PAGE_MAX:
            raise ValidationError(
                {"limit": [f"limit must be a whole number from 1 to {EVENTS_PAGE_MAX}."]}
            )
        size = int(limit)
    return EventFilters(
        after=start,
        types=event_types_parse(types),
        product_id=product_id,
        domain_id=domain_id,
        limit=size,
    )


def events_after(
    *, user, filters: EventFilters, limit: int | None = None, up_to: int | None = None
) -> list[Event]:
    """The events `user` may see after `filters.after` (and up to `up_to`) that match the
    filters, in position order (commit order): one query, on the position's index."""
    events = events_visible_to(user).filter(position__gt=filters.after or 0)
    if up_to is not None:
        events = events.filter(position__lte=up_to)
    if filters.types:
        by_type = Q()
        for name in filters.types:
            by_type |= Q(type__startswith=name[:-1]) if name.endswith(".*") else Q(type=name)
        events = events.filter(by_type)
    if filters.product_id is not None:
        events = events.filter(product_id=filters.product_id)
    if filters.domain_id is not None:
        events = events.filter(domain_id=filters.domain_id)
    return list(events.order_by("position")[: limit or filters.limit])


def events_latest_position() -> int:
    """The newest position, after giving positions to what has committed
    (portal.core.events.events_sequence): every event up to it is there to read, in commit
    order, so a reader past it never misses one committed late. 0 when there are none."""
    events_sequence()
    return (
        Event.objects.filter(position__isnull=False)
        .order_by("-position")
        .values_list("position", flat=True)
        .first()
        or 0
    )
