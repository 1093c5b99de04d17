"""An admin tidies access in a real browser: opens Grants from the account menu, finds the
grants of one product by part of its name, ticks two, revokes them with a reason, then
opens the audit, reads the revocations and a read in words, and pages to older events."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from sharing.access.services.grants import grant_create
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent, AccessGrant
from tests.factories import PASSWORD, ProductFactory, UserFactory


def sign_in(page, username: str) -> None:
    page.goto("/login/?next=/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_revokes_selected_grants_and_pages_through_the_audit(
    page, domain, admin_user, screenshot_dir
):
    orders = ProductFactory(domain=domain, name="Customer orders", slug="customer-orders")
    ledger = ProductFactory(domain=domain, name="Ledger", slug="ledger")
    alice = UserFactory(username="alice", first_name="Alice", last_name="Martin")
    bob = UserFactory(username="bob", first_name="Bob", last_name="Peeters")
    carol = UserFactory(username="carol", first_name="Carol", last_name="Dubois")
    for person in (alice, bob, carol):
        grant_create(product=orders, by=admin_user, user=person, reason="Quarterly review")
    kept = grant_create(product=ledger, by=admin_user, user=alice, reason="Month close")
    # Older reads, enough for more than one page of the audit.
    start = timezone.now() - timedelta(days=3)
    for n in range(60):
        AccessEvent.objects.create(
            at=start + timedelta(minutes=n),
            action=AuditAction.READ,
            user=carol,
            product=orders,
            product_key=orders.key,
            channel=Channel.NOTEBOOK,
            columns=["order_id", "country"],
            row_filter=[{"column": "country", "op": "in", "value": ["BE", "NL"]}],
            rows=1000,
            detail={"format": "arrow", "limit": 10**12, "basis": "grant"},
        )

    sign_in(page, admin_user.username)
    page.locator("details.user-menu summary").click()
    page.locator(".user-menu-panel").get_by_role("link", name="Grants I manage").click()
    expect(page.get_by_role("heading", name="Grants", exact=True)).to_be_visible()
    expect(page.locator("#grants-count")).to_contain_text("4 active grants")

    # Part of the product's name, any case.
    page.get_by_label("Product", exact=True).fill("ORDERS")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#grants-count")).to_contain_text("3 active grants match the filters")
    expect(page.get_by_role("cell", name="Ledger")).to_have_count(0)

    page.get_by_label("Select the grant of alice on Customer orders").check()
    page.get_by_label("Select the grant of bob on Customer orders").check()
    expect(page.get_by_role("button", name="Revoke selected (2)")).to_be_visible()
    page.get_by_role("button", name="Revoke selected (2)").click()  # no reason: the browser asks
    assert not AccessGrant.objects.filter(revoked_at__isnull=False).exists()
    page.get_by_label("Reason for revoking").fill("Quarterly review finished")
    page.screenshot(path=str(screenshot_dir / "admin-grants-selected.png"), full_page=True)
    page.get_by_role("button", name="Revoke selected (2)").click()
    expect(page.locator(".message-success")).to_contain_text("Revoked 2 grants")
    expect(page).to_have_url(re.compile(r"/access/grants/\?product=ORDERS&"))
    expect(page.locator("#grants-count")).to_contain_text("1 active grant matches")
    revoked = AccessGrant.objects.filter(revoked_at__isnull=False)
    assert {grant.user.username for grant in revoked} == {"alice", "bob"}
    assert set(revoked.values_list("revoke_reason", flat=True)) == {"Quarterly review finished"}
    assert AccessGrant.objects.get(pk=kept.pk).revoked_at is None
    page.screenshot(path=str(screenshot_dir / "admin-grants-revoked.png"), full_page=True)

    # The audit: the revocations in words, then older pages.
    page.get_by_role("link", name="Access audit").click()
    expect(page.get_by_role("heading", name="Access audit")).to_be_visible()
    first_row = page.locator(".audit-table tbody tr").first
    expect(first_row).to_contain_text("Access revoked")
    expect(first_row).to_contain_text("reason: Quarterly review finished")
    expect(page.locator(".audit-table tbody tr")).to_have_count(50)
    page.screenshot(path=str(screenshot_dir / "admin-audit-first-page.png"), full_page=True)
    page.get_by_role("link", name="Older →").click()
    expect(page).to_have_url(re.compile(r"/audit/\?after="))
    rows = page.locator(".audit-table tbody tr")
    expect(rows.first).to_contain_text(
        "Read 1,000 rows of columns order_id, country where country is BE or NL"
    )
    expect(rows.first).to_contain_text("all rows asked")
    expect(page.locator(".audit-table")).not_to_contain_text("1000000000000")
    expect(page.get_by_role("link", name="← Newer")).to_be_visible()
    # Dates in the portal's one form: relative, the exact time on hover.
    expect(page.locator(".audit-table time").first).to_have_attribute(
        "title", re.compile(r"^\w{3} \d{1,2} \w{3} \d{4}, \d{2}:\d{2} UTC$")
    )
    page.screenshot(path=str(screenshot_dir / "admin-audit-older-page.png"), full_page=True)

    # Filter the audit by part of the product's name and the person.
    page.get_by_label("Product", exact=True).fill("ledg")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".audit-table tbody tr")).to_have_count(1)  # the Ledger grant
    expect(page.locator(".audit-table")).to_contain_text("Granted alice every column")

    # Carol left: everything she holds, counted before confirming.
    page.get_by_role("link", name="Grants").first.click()
    page.get_by_role("textbox", name="Person", exact=True).fill("carol")
    page.get_by_role("button", name="Review their grants…").click()
    expect(page.get_by_role("heading", name="1 grant will be revoked")).to_be_visible()
    page.get_by_role("textbox", name="Reason", exact=True).fill("Left the company")
    page.screenshot(path=str(screenshot_dir / "admin-revoke-person.png"), full_page=True)
    page.get_by_role("button", name="Revoke 1 grant").click()
    expect(page.locator(".message-success")).to_contain_text("Revoked 1 grant of Carol Dubois.")
    assert not AccessGrant.objects.filter(user=carol, revoked_at__isnull=True).exists()

    # On a phone, the tables scroll inside their box, not the page.
    page.set_viewport_size({"width": 390, "height": 844})
    for link, path in (("Grants", "/access/grants/"), ("Audit", "/audit/")):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(screenshot_dir / f"admin-{link.lower()}-390.png"), full_page=True)
        page.locator("table").first.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / f"admin-{link.lower()}-390-table.png"))
        assert width <= 390, f"{link}: the page is {width}px wide at 390px"
    assert page.console_errors == []
