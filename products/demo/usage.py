"""Demo usage: 90 days of page views and data reads, so the Usage tabs and the usage
dashboard have something to show, and one legacy product nobody reads any more, so
the dashboard lists it as unused and its owner sees "propose retirement".

- sales.orders: read every day by its team and admins (API, notebook, preview,
  download) and through a share link, more in the last 30 days than before;
  analysts and viewers open its page.
- marketing.web-sessions: steady for two months, then a jump (the fastest growing).
- marketing.campaigns and supply-chain.inventory: a few reads a week.
- sales.daily-revenue (deprecated): published 200 days ago, last read 120 days ago.

Readers are people who may read the rows without a grant (admins, the owning domain's
team) and anonymous share-link holders, so the audit stays consistent with the access
rules. Written once: a second seeding finds the demo's events and writes nothing.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from products.models import DataProduct, ProductPageView
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent

DEMO_MARK = "demo-usage"
DAYS = 90

# product key -> (reads on a day before the last 30 days, reads on a day in them,
# readers by username, channels)
TRAFFIC = {
    "sales.orders": (
        3,
        5,
        ("owner", "admin", None),  # None: someone holding a share link
        (Channel.API, Channel.NOTEBOOK, Channel.PREVIEW, Channel.DOWNLOAD),
    ),
    "marketing.web-sessions": (1, 4, ("steward", "admin"), (Channel.NOTEBOOK, Channel.API)),
    "marketing.campaigns": (0.4, 0.4, ("steward",), (Channel.PREVIEW, Channel.DOWNLOAD)),
    "supply-chain.inventory": (0.5, 0.6, ("supply", "admin"), (Channel.API, Channel.EXPORT)),
}
VIEWERS = ("analyst", "viewer")
UNUSED = "sales.daily-revenue"


def usage_seed(*, products: dict[str, DataProduct], users: dict, as_of: datetime) -> int:
    """Write the demo's usage once. Returns how many audit events it wrote."""
    if AccessEvent.objects.filter(detail__demo=DEMO_MARK).exists():
        return 0
    rng = random.Random(90)
    today = as_of.astimezone(UTC).date()
    events: list[AccessEvent] = []
    views: list[ProductPageView] = []
    for key, (before, recent, readers, channels) in TRAFFIC.items():
        product = products.get(key)
        if product is None:
            continue
        for age in range(DAYS):
            day = today - timedelta(days=age)
            rate = recent if age < 30 else before
            count = int(rate) + (1 if rng.random() < rate - int(rate) else 0)
            if count:
                count = max(0, count + rng.choice((-1, 0, 0, 1)))
            for _ in range(count):
                reader = rng.choice(readers)
                channel = Channel.SHARE_LINK if reader is None else rng.choice(channels)
                at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
                    hours=rng.randint(7, 19), minutes=rng.randint(0, 59)
                )
                events.append(_read(product, users.get(reader) if reader else None, channel, at))
            for username in VIEWERS:
                if rng.random() < rate / 4:
                    views.append(
                        ProductPageView(
                            product=product,
                            user=users[username],
                            day=day,
                            views=rng.randint(1, 3),
                        )
                    )
    legacy = products.get(UNUSED)
    if legacy is not None:
        long_ago = as_of - timedelta(days=200)
        if legacy.created_at > as_of - timedelta(days=DAYS):
            DataProduct.objects.filter(pk=legacy.pk).update(
                created_at=long_ago, published_at=long_ago
            )
        events.append(_read(legacy, users["owner"], Channel.DOWNLOAD, as_of - timedelta(days=120)))
    AccessEvent.objects.bulk_create(events, batch_size=1000)
    ProductPageView.objects.bulk_create(views, batch_size=1000, ignore_conflicts=True)
    return len(events)


def _read(product: DataProduct, user, channel: str, at: datetime) -> AccessEvent:
    return AccessEvent(
        at=at,
        action=AuditAction.READ,
        user=user,
        product=product,
        product_key=product.key,
        channel=channel,
        rows=random.Random(at.toordinal()).randint(100, 5000),
        detail={"demo": DEMO_MARK, "basis": _basis(user)},
    )


def _basis(user) -> str:
    if user is None:
        return "share_link"
    return "admin" if user.is_staff else "domain_member"
