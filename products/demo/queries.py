"""The demo's saved SQL queries, shared with everyone, so that a newcomer's first visit to
the SQL page (`/sql/`) has questions to open and run: each runs with the reader's own
access (the analyst, who holds a grant, sees what it allows; the viewer is refused).
Idempotent: each query is saved once, by name."""

from __future__ import annotations

from collections.abc import Callable

from sharing.federation.services.saved import saved_query_save
from sharing.models import SavedQuery

QUERIES = (
    (
        "owner",
        "Revenue by customer segment",
        "SELECT c.segment, count(*) AS order_lines, sum(o.net_amount) AS revenue\n"
        "FROM sales.orders o\n"
        "JOIN sales.customers c ON c.customer_id = o.customer_id\n"
        "WHERE o.status <> 'cancelled'\n"
        "GROUP BY 1\n"
        "ORDER BY 3 DESC",
    ),
    (
        "steward",
        "Sessions per campaign channel",
        "SELECT k.channel, count(*) AS sessions, count(DISTINCT s.campaign_id) AS campaigns\n"
        'FROM marketing."web-sessions" s\n'
        "JOIN marketing.campaigns k ON k.campaign_id = s.campaign_id\n"
        "GROUP BY 1\n"
        "ORDER BY 2 DESC",
    ),
)


def queries_seed(*, users: dict, log: Callable[[str], None]) -> dict[str, int]:
    created = {"saved queries": 0}
    for username, name, sql in QUERIES:
        owner = users.get(username)
        if owner is None or SavedQuery.objects.filter(owner=owner, name=name).exists():
            continue
        saved_query_save(owner=owner, name=name, sql=sql, shared=True)
        created["saved queries"] += 1
        log(f"Saved the shared query {name!r}.")
    return created
