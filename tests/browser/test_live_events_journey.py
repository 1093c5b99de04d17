"""Live pages in a real browser: the owner keeps a product's page open; an incident is
opened and an access request notifies them, each with its event, and the page shows the
incident banner and the new count beside the bell without being reloaded
(static/js/live_events.js over GET /api/v1/events/stream/)."""

import pytest
from django.db import transaction
from playwright.sync_api import expect

from portal.core.events import event_emit
from portal.core.notifications import notification_create
from products.trust.services.incidents import incident_open
from tests.factories import PASSWORD, ProductFactory, UserFactory


def sign_in(page, username: str, next_path: str = "/") -> None:
    page.goto(f"/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_incident_banner_and_the_bell_update_without_a_reload(live_server, page, domain, owner):
    product = ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])
    requester = UserFactory(username="requester")
    sign_in(page, owner.username, product.get_absolute_url())
    expect(page.locator(".product-header")).to_be_visible()
    expect(page.locator("[data-incident-banner]")).to_have_count(0)
    expect(page.locator('.notif-bell [data-unread-count="0"]')).to_be_attached()
    page.wait_for_function("document.documentElement.dataset.liveEvents === 'open'")
    page.evaluate("window.notReloaded = true")

    with transaction.atomic():
        incident_open(
            product=product,
            cause="check",
            cause_key="live-events-test",
            title="Orders stopped arriving",
        )
        event_emit("portal.incident.opened", product=product, data={"title": "late"})
    expect(page.locator("[data-incident-banner]")).to_contain_text("Orders stopped arriving")

    with transaction.atomic():
        notification_create(user=owner, title="requester asks for Orders", product=product)
        event_emit("portal.access.requested", product=product, people=[requester])
    expect(page.locator('.notif-bell [data-unread-count="1"]')).to_be_attached()
    assert page.evaluate("window.notReloaded") is True
    assert page.console_errors == []
