"""The work inbox in a real browser: an analyst requests access; the owner sees the
count beside the bell, opens the work inbox, follows the request to the Access tab (its
badge counts it too) and approves it; the analyst's bell then shows the decision, whose
notification opens the product's Data tab."""

import re

import pytest
from playwright.sync_api import expect

from products.choices import LifecycleStatus
from sharing.models import AccessGrant, AccessRequest
from tests.factories import PASSWORD, UserFactory, parquet_product

ROWS = {"order_id": [1, 2, 3], "country": ["BE", "NL", "FR"]}


def sign_in(page, username: str, next_path: str = "/") -> None:
    page.goto(f"/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_request_reaches_the_owners_inbox_and_its_decision_the_analysts_bell(
    live_server, browser, page, domain, owner, media_root, screenshot_dir
):
    parquet_product(
        media_root=media_root,
        domain=domain,
        rows=ROWS,
        file_path="inbox/orders.parquet",
        name="Customer orders",
        slug="customer-orders",
        status=LifecycleStatus.PUBLISHED,
    )
    UserFactory(username="analyst", first_name="Ana", last_name="Lyst")

    # The owner starts with nothing waiting.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    owner_page = context.new_page()
    try:
        sign_in(owner_page, owner.username)
        expect(owner_page.locator('.inbox-link [data-work-count="0"]')).to_be_attached()
        owner_page.locator("a.inbox-link").click()
        expect(owner_page.get_by_role("heading", name="Nothing waits on you")).to_be_visible()

        # The analyst finds the product and asks for access.
        sign_in(page, "analyst")
        page.get_by_label("Search data products").first.fill("customer orders")
        page.keyboard.press("Enter")
        page.get_by_role("link", name="Customer orders").first.click()
        page.get_by_role("link", name="Access", exact=True).click()
        page.get_by_label("Purpose").fill("Monthly **revenue** by country.")
        page.get_by_role("button", name="Request access").click()
        expect(page.get_by_role("button", name="Cancel my request")).to_be_visible()

        # The owner's top bar counts it; the inbox lists it and links to where it is done.
        owner_page.goto("/")
        badge = owner_page.locator(".inbox-link .notif-count")
        expect(badge).to_have_attribute("data-work-count", "1")
        owner_page.locator("a.inbox-link").click()
        expect(owner_page).to_have_url(re.compile(r"/my/work/$"))
        requests = owner_page.locator("#work-requests")
        expect(requests).to_contain_text("Access requests to decide")
        expect(requests).to_contain_text("Ana Lyst asks to read Customer orders")
        owner_page.screenshot(path=str(screenshot_dir / "work-inbox-owner.png"), full_page=True)

        # My products says the same, per product.
        owner_page.locator(".user-menu summary").click()
        owner_page.get_by_role("link", name="My products").click()
        row = owner_page.get_by_role("row", name=re.compile("Customer orders"))
        expect(row).to_contain_text("1 pending request")
        owner_page.screenshot(path=str(screenshot_dir / "work-inbox-my-products.png"))

        owner_page.locator("a.inbox-link").click()
        requests = owner_page.locator("#work-requests")
        requests.get_by_role("link", name=re.compile("^Decide")).click()

        expect(owner_page).to_have_url(re.compile(r"/customer-orders/access/#pending$"))
        access_tab = owner_page.get_by_role("link", name=re.compile(r"^Access 1 pending request"))
        expect(access_tab).to_be_visible()
        owner_page.locator(".tabs").screenshot(
            path=str(screenshot_dir / "work-inbox-access-tab.png")
        )
        owner_page.get_by_role("button", name="Approve", exact=True).click()
        expect(owner_page.locator(".message-success")).to_be_visible()
        expect(owner_page.locator(".tabs .tab-count")).to_have_count(0)
        expect(owner_page.locator('.inbox-link [data-work-count="0"]')).to_be_attached()
    finally:
        context.close()
    assert AccessRequest.objects.get().status == "approved"
    assert AccessGrant.objects.get().user.username == "analyst"

    # The analyst's bell shows the decision; the notification opens the Data tab.
    page.goto("/")
    bell = page.locator("a.notif-bell .notif-count")
    expect(bell).to_have_attribute("data-unread-count", "1")
    page.get_by_role("link", name=re.compile("^Notifications")).first.click()
    notice = page.locator(".notification-item").first
    expect(notice).to_contain_text("Your access to Customer orders is approved")
    page.screenshot(path=str(screenshot_dir / "work-inbox-analyst-notified.png"), full_page=True)
    notice.get_by_role("link", name=re.compile("Your access to Customer orders")).click()
    expect(page).to_have_url(re.compile(r"/customer-orders/data/$"))
    outside = [u for u in page.requested_urls if not u.startswith(live_server.url)]
    assert outside == []
