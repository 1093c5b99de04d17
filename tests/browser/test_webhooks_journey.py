"""A person creates a webhook subscription in a real browser: picks a group of events and
one more, copies the secret shown once with the button, sends a test event to a real
receiver (delivered signed, by the live server's in-process tasks), sees it in the
delivery log; the list then shows the subscription healthy."""

import re

import pytest
from playwright.sync_api import expect

from sharing.webhooks.services import webhook_deliveries_send
from tests.factories import PASSWORD
from tests.sharing.webhooks.receiver import Receiver, verified

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def test_create_a_subscription_and_send_a_test_event(
    live_server, page, owner, receiver, settings, screenshot_dir
):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto("/my/webhooks/")
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("You have no webhook subscriptions")).to_be_visible()
    page.get_by_role("link", name="New subscription").first.click()

    page.get_by_role("textbox", name="Name", exact=True).fill("Incidents to on-call")
    page.get_by_role("textbox", name="Target URL").fill(receiver.url)
    page.get_by_label(re.compile("Every access event")).check()
    page.get_by_label(re.compile("An incident was opened")).check()
    page.screenshot(path=str(screenshot_dir / "portal-webhook-form.png"), full_page=True)
    page.get_by_role("button", name="Create the subscription").click()

    secret_field = page.get_by_role("textbox", name="The signing secret")
    expect(secret_field).to_have_value(re.compile(r"^whsec_"))
    secret = secret_field.input_value()
    page.get_by_role("button", name="Copy secret").click()
    expect(page.get_by_text("The secret is on your clipboard.")).to_be_visible()
    page.get_by_role("link", name="Go to the subscription").click()
    expect(page.get_by_text("Nothing sent yet")).to_be_visible()

    page.get_by_role("button", name="Send a test event").click()
    expect(page.get_by_text("A test event is on its way")).to_be_visible()
    # The worker's part, in this process: send what is due.
    subscription_id = int(re.search(r"/my/webhooks/(\d+)/", page.url).group(1))
    webhook_deliveries_send(subscription_id=subscription_id)
    envelope = verified(secret, receiver.delivered()[0])
    assert envelope["type"] == "portal.webhook.test"

    page.reload()
    log = page.locator("table.webhook-log")
    expect(log).to_contain_text("test event")
    expect(log).to_contain_text("Succeeded")
    page.screenshot(path=str(screenshot_dir / "portal-webhook-detail.png"), full_page=True)
    page.goto("/my/webhooks/")
    expect(page.get_by_text("healthy")).to_be_visible()
