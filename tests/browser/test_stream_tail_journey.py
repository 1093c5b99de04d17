"""A grantee with a row filter opens the Data tab of a stream port: the live tail shows
the messages their grant allows as they are published, the confidential column masked,
and says so when their grant is revoked (the subscription is cut off)."""

import re

import pytest
from playwright.sync_api import expect

from sharing.access.services.grants import grant_create, grant_revoke
from tests.factories import PASSWORD, UserFactory
from tests.sharing.streams.conftest import (  # noqa: F401 - fixtures of the stream tests
    nats_stream,
    order,
    stream_product,
)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_live_tail_follows_what_the_grant_allows_until_it_is_revoked(
    live_server,
    page,
    stream_product,  # noqa: F811 - the stream tests' fixture
    nats_stream,  # noqa: F811
    owner,
    screenshot_dir,
):
    reader = UserFactory(username="analyst")
    grant = grant_create(
        product=stream_product,
        by=owner,
        user=reader,
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
        reason="Belgian orders",
    )
    nats_stream.publish(order(1), order(2, country="NL"))
    page.goto("/products/sales/live-orders/data/")
    page.get_by_label("Username").fill(reader.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/products/sales/live-orders/data/$"))

    table = page.locator("table[data-stream-tail]")
    expect(table.locator("thead th")).to_have_text(
        ["seq", "order_id", "country", "amount", "email masked", "placed_at"]
    )
    expect(table.locator("tbody tr")).to_have_count(1)
    nats_stream.publish(order(3, country="NL"), order(4, amount=12.5))
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first.locator("td")).to_have_text(
        ["4", "4", "BE", "12.5", "****", "2026-12-05T10:00:00+00:00"]
    )
    page.screenshot(path=str(screenshot_dir / "portal-stream-tail.png"), full_page=True)

    grant_revoke(grant=grant, by=owner, reason="left the team")
    nats_stream.publish(order(5))
    expect(page.locator("[data-stream-tail-status]")).to_have_text(
        "Your access to this product was revoked. Request access again."
    )
    expect(table.locator("tbody tr")).to_have_count(2)
    assert [url for url in page.requested_urls if not url.startswith(live_server.url)] == []
