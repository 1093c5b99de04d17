"""Which events a person may see: the one rule every way of following events applies
(the replay API, Server-Sent Events, webhook subscriptions)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from portal.models import Event
from products.choices import MANAGING_ROLES
from products.models import DomainMembership


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
