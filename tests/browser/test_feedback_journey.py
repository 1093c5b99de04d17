"""The feedback loop in a real browser, with a real Celery worker delivering the
notifications:

- a stakeholder files an issue; the product's owner, in a second browser, sees it under
  the bell, answers (the reply appears in place, by HTMX) and resolves it; the
  stakeholder sees the answer, the resolution note and two notifications;
- an owner posts a deprecation naming the replacement product; a follower sees the
  banner linking the replacement, and the notification under the bell.
"""

import re

import pytest
from playwright.sync_api import expect

from portal.models import Notification
from products.models import Announcement, FeedbackThread, ProductFollow
from tests.conftest import wait_for
from tests.factories import PASSWORD, ProductFactory, UserFactory


def sign_in(page, username: str, next_path: str) -> None:
    page.goto(f"/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def second_page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    other = context.new_page()
    other.requested_urls = []
    other.on("request", lambda request: other.requested_urls.append(request.url))
    return context, other


def unread_badge(page):
    return page.locator(".notif-bell .notif-count")


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_stakeholder_files_an_issue_and_the_owner_answers_and_resolves_it(
    celery_worker, live_server, browser, page, domain, owner, screenshot_dir
):
    product = ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])
    UserFactory(username="stakeholder", first_name="Stella", last_name="Holder")

    # The stakeholder reports an issue from the product's overview.
    sign_in(page, "stakeholder", product.get_absolute_url())
    card = page.locator(".feedback-card")
    expect(card).to_contain_text("3 business days")
    expect(card).to_contain_text("no answers yet")
    card.get_by_role("link", name="Report an issue").click()
    expect(page.get_by_label("Issue")).to_be_checked()
    page.get_by_role("button", name="Post thread").click()  # empty: told what is missing
    expect(page.locator(".field.has-error")).to_have_count(2)
    expect(page.get_by_text("Give the thread a title")).to_be_visible()
    page.get_by_label("Title").fill("Refunds counted twice in March")
    page.get_by_label("Details").fill(
        "Order **10482** shows its refund twice.\n\n<script>window.pwned = 1</script>\n\n"
        "[details](javascript:alert(1))"
    )
    page.get_by_role("button", name="Post thread").click()
    expect(page.locator(".message-success")).to_contain_text("Thanks: your issue is posted.")
    expect(page.locator(".thread-heading")).to_contain_text("Refunds counted twice in March")
    expect(page.locator(".thread-heading")).to_contain_text("Open")
    expect(page.locator(".thread-body strong")).to_have_text("10482")
    assert page.evaluate("window.pwned") is None  # the script never ran
    expect(page.locator(".thread-body a")).not_to_have_attribute("href", re.compile("javascript"))
    thread = FeedbackThread.objects.get()
    page.screenshot(path=str(screenshot_dir / "feedback-issue-filed.png"), full_page=True)

    # The owner, in another browser, is told: one unread notification.
    wait_for(
        lambda: Notification.objects.filter(
            user=owner, key=f"feedback-thread:{thread.pk}"
        ).exists(),
        message="the worker did not notify the owner",
    )
    context, owner_page = second_page(browser, live_server)
    try:
        sign_in(owner_page, "owner", "/")
        expect(unread_badge(owner_page)).to_have_text(re.compile(r"^1"))
        owner_page.locator(".notif-bell").click()
        expect(owner_page.get_by_role("heading", name="Notifications")).to_be_visible()
        owner_page.get_by_role("link", name=re.compile("New issue on Orders")).click()
        expect(owner_page).to_have_url(re.compile(rf"/feedback/{thread.pk}/$"))
        expect(owner_page.locator("[data-no-replies]")).to_be_visible()

        # The reply appears in place (HTMX): the page does not reload.
        owner_page.evaluate("window.stillHere = true")
        owner_page.get_by_label("Your reply").fill(
            "Confirmed: the refund job ran twice on 3 March."
        )
        owner_page.get_by_role("button", name="Reply", exact=True).click()
        reply = owner_page.locator(".feedback-comment").first
        expect(reply).to_contain_text("Confirmed: the refund job ran twice")
        expect(reply.locator(".badge-team")).to_have_text("Sales team")
        assert owner_page.evaluate("window.stillHere") is True
        expect(owner_page.get_by_label("Your reply")).to_have_value("")

        # Resolving needs a note; with one, the thread is resolved.
        owner_page.get_by_label("New status").select_option("resolved")
        owner_page.get_by_role("button", name="Change status").click()
        expect(owner_page.locator("#status-form .field-error")).to_contain_text(
            "Say why the thread is resolved"
        )
        owner_page.get_by_label("New status").select_option("resolved")
        owner_page.get_by_label("Note").fill("Duplicates removed; the job now runs once a day.")
        owner_page.get_by_role("button", name="Change status").click()
        expect(owner_page.locator(".message-success")).to_contain_text("resolved now")
        expect(owner_page.locator(".thread-heading")).to_contain_text("Resolved")
        owner_page.screenshot(
            path=str(screenshot_dir / "feedback-owner-resolved.png"), full_page=True
        )
        outside = [u for u in owner_page.requested_urls if not u.startswith(live_server.url)]
        assert outside == []
    finally:
        context.close()

    # The stakeholder hears of both, and reads the answer and the resolution.
    wait_for(
        lambda: Notification.objects.filter(user__username="stakeholder").count() == 2,
        message="the worker did not notify the stakeholder",
    )
    page.goto("/my/feedback/")
    expect(unread_badge(page)).to_have_text(re.compile(r"^2"))
    item = page.locator(".thread-item", has_text="Refunds counted twice in March")
    expect(item).to_contain_text("Resolved")
    expect(item).to_contain_text("1 reply")
    item.get_by_role("link", name="Refunds counted twice in March").click()
    expect(page.locator("[data-resolution-note]")).to_contain_text("Duplicates removed")
    expect(page.locator(".feedback-comment")).to_contain_text("the refund job ran twice")
    expect(page.locator(".reply-form button")).to_have_text("Reply and reopen")
    page.goto("/notifications/")
    expect(page.locator(".notification-item.is-unread")).to_have_count(2)
    expect(page.locator(".notification-list")).to_contain_text("is resolved")
    page.screenshot(path=str(screenshot_dir / "feedback-stakeholder-notified.png"), full_page=True)
    thread.refresh_from_db()
    assert thread.status == "resolved" and thread.first_response_by == owner
    outside = [u for u in page.requested_urls if not u.startswith(live_server.url)]
    assert outside == []


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_owner_posts_a_deprecation_and_a_follower_sees_it(
    celery_worker, live_server, browser, page, domain, owner, screenshot_dir
):
    legacy = ProductFactory(
        domain=domain, name="Daily revenue", slug="daily-revenue", owners=[owner]
    )
    successor = ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])
    follower = UserFactory(username="follower")
    ProductFollow.objects.create(user=follower, product=legacy)

    # The owner posts the deprecation; the replacement field shows for deprecations only.
    sign_in(page, "owner", legacy.get_absolute_url())
    page.get_by_role("link", name="Announcements").first.click()
    expect(page.get_by_text("No announcements yet.")).to_be_visible()
    page.get_by_role("link", name="Post the first announcement").click()
    expect(page.get_by_label("Replacement product")).to_be_hidden()
    page.get_by_label("Deprecation").check()
    expect(page.get_by_label("Replacement product")).to_be_visible()
    page.get_by_label("Title").fill("Daily revenue retires on 30 June")
    page.get_by_label("Details").fill("It does not deduct returns. Use **Orders**.")
    page.get_by_role("button", name="Post announcement").click()
    expect(page.get_by_text("A deprecation names the product")).to_be_visible()
    page.get_by_label("Replacement product").select_option(label="Orders (sales.orders)")
    page.get_by_role("button", name="Post announcement").click()
    banner = page.locator('[data-announcement-banner="deprecation"]')
    expect(banner).to_contain_text("Daily revenue retires on 30 June")
    expect(banner.get_by_role("link", name="Orders")).to_have_attribute(
        "href", successor.get_absolute_url()
    )
    page.screenshot(path=str(screenshot_dir / "announcement-posted.png"), full_page=True)
    announcement = Announcement.objects.get()

    # The follower, in another browser: the notification, then the banner.
    wait_for(
        lambda: Notification.objects.filter(
            user=follower, key=f"announcement:{announcement.pk}"
        ).exists(),
        message="the worker did not deliver the announcement",
    )
    context, fan = second_page(browser, live_server)
    try:
        sign_in(fan, "follower", "/")
        expect(unread_badge(fan)).to_have_text(re.compile(r"^1"))
        fan.locator(".notif-bell").click()
        fan.get_by_role("link", name=re.compile("Deprecation on Daily revenue")).click()
        expect(fan).to_have_url(
            re.compile(rf"/products/sales/daily-revenue/#announcement-{announcement.pk}$")
        )
        banner = fan.locator('[data-announcement-banner="deprecation"]')
        expect(banner).to_contain_text("Move to Orders")
        fan.locator(".feedback-card").get_by_role(
            "button", name=re.compile("Following")
        ).is_visible()
        banner.get_by_text("Details").click()
        expect(banner.locator(".prose strong")).to_have_text("Orders")
        fan.screenshot(path=str(screenshot_dir / "announcement-follower.png"), full_page=True)
        banner.get_by_role("link", name="Orders").click()
        expect(fan.get_by_role("heading", level=1)).to_contain_text("Orders")
        expect(fan.locator(".notif-count")).to_have_count(0)  # opened: read
        outside = [u for u in fan.requested_urls if not u.startswith(live_server.url)]
        assert outside == []
    finally:
        context.close()
