"""Row filters built, not typed, in a real browser: the owner approves a request with a
two-condition filter made in the builder (a column's few values offered as ticks), sees
the grant say it in words, and the analyst reads the same words under My access; then
the owner schedules an export with a two-condition filter (a value and a range) and its
page says it in words. Without the builder's JSON typed by hand, nothing is lost."""

import json
import re

import pytest
from playwright.sync_api import expect

from products.choices import LifecycleStatus
from sharing.access.services.requests import access_request_create
from sharing.models import AccessGrant, ExportSchedule
from tests.factories import PASSWORD, UserFactory, parquet_product

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "FR", "BE"],
    "email": ["a@example.com", "b@example.com", "c@example.com", "d@example.com"],
    "amount": [10.5, 20.0, 7.25, 42.0],
}
GRANT_WORDS = "Rows where country is BE or NL and amount is at least 10"


def sign_in(page, username: str, next_path: str) -> None:
    page.goto(f"/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_owner_builds_filters_on_approve_and_on_an_export(
    live_server, browser, page, domain, owner, media_root, screenshot_dir
):
    product = parquet_product(
        media_root=media_root,
        domain=domain,
        rows=ROWS,
        file_path="journey/filter-orders.parquet",
        status=LifecycleStatus.PUBLISHED,
    )
    product.owners.add(owner)
    analyst = UserFactory(username="analyst")
    request = access_request_create(
        product=product, by=analyst, purpose="Benelux revenue review", duration_days=30
    )

    # The decision form is open on the Access tab: Approve and Deny are buttons.
    sign_in(page, owner.username, f"{product.get_absolute_url()}access/")
    decision = page.locator(f"#request-{request.pk}")
    expect(decision.get_by_role("button", name="Approve", exact=True)).to_be_visible()
    expect(decision.get_by_role("button", name="Deny", exact=True)).to_be_visible()
    expect(decision.locator("details")).to_have_count(0)
    builder = decision.locator(".filter-builder")
    expect(builder).to_contain_text("No condition: every row.")
    expect(decision.locator("textarea")).to_be_hidden()  # the JSON field, written by the builder
    decision.get_by_label("email").uncheck()

    # Condition 1: country is one of BE, NL (its few values offered as ticks).
    builder.get_by_role("button", name="Add a condition").click()
    first = builder.locator(".filter-condition").nth(0)
    first.get_by_label("Column").select_option("country")
    first.get_by_label("Condition").select_option(label="is one of")
    expect(first.locator(".filter-choices label")).to_have_text(["BE", "FR", "NL"])
    first.get_by_label("BE").check()
    first.get_by_label("NL").check()
    # Condition 2: amount is at least 10.
    builder.get_by_role("button", name="Add a condition").click()
    second = builder.locator(".filter-condition").nth(1)
    second.get_by_label("Column").select_option("amount")
    expect(second.get_by_label("Condition").locator("option")).to_contain_text(
        ["is", "is not", "is less than"]
    )
    second.get_by_label("Condition").select_option(label="is at least")
    second.get_by_label("Value").fill("10")
    expect(builder.locator(".filter-words")).to_have_text(
        "Rows where country is BE or NL and amount is at least 10."
    )
    page.screenshot(path=str(screenshot_dir / "filter-builder-approve.png"), full_page=True)

    # An empty third condition is caught before sending, and says what it needs.
    builder.get_by_role("button", name="Add a condition").click()
    decision.get_by_role("button", name="Approve", exact=True).click()
    expect(builder.locator(".field-error")).to_have_text(
        "Condition 3 needs a column: choose one, or remove the condition."
    )
    builder.locator(".filter-condition").nth(2).get_by_role("button", name="Remove").click()

    # A value the column cannot take: the server refuses it beside the filter, and the
    # page comes back with everything as entered (email unticked, both conditions).
    second.get_by_label("Value").fill("lots")
    decision.get_by_role("button", name="Approve", exact=True).click()
    expect(decision.locator(".field > .field-error")).to_have_text(
        "The filter on amount needs a number (DOUBLE); 'lots' is not one."
    )
    assert not AccessGrant.objects.exists()
    expect(decision.get_by_label("email")).not_to_be_checked()
    expect(decision.get_by_label("country")).to_be_checked()
    builder = decision.locator(".filter-builder")
    expect(builder.locator(".filter-condition")).to_have_count(2)
    first = builder.locator(".filter-condition").nth(0)
    second = builder.locator(".filter-condition").nth(1)
    expect(first.get_by_label("BE")).to_be_checked()
    expect(first.get_by_label("FR")).not_to_be_checked()
    expect(second.get_by_label("Value")).to_have_value("lots")
    page.screenshot(path=str(screenshot_dir / "filter-builder-approve-error.png"), full_page=True)
    second.get_by_label("Value").fill("10")
    decision.get_by_role("button", name="Approve", exact=True).click()

    expect(page.locator(".message-success")).to_contain_text("Approved: analyst can read")
    grant = AccessGrant.objects.get()
    assert grant.columns == ["order_id", "country", "amount"]
    assert grant.row_filter == [
        {"column": "country", "op": "in", "value": ["BE", "NL"]},
        {"column": "amount", "op": ">=", "value": 10},
    ]
    expect(page.locator("#grants")).to_contain_text(GRANT_WORDS)
    expect(page.locator("#grants")).not_to_contain_text("['BE', 'NL']")
    page.screenshot(path=str(screenshot_dir / "filter-builder-grant-in-words.png"), full_page=True)

    # The analyst reads the same words under My access.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    analyst_page = context.new_page()
    try:
        sign_in(analyst_page, "analyst", "/my/access/")
        expect(analyst_page.locator("main")).to_contain_text(GRANT_WORDS)
    finally:
        context.close()

    # An export with a filter built the same way: country is BE, amount between 10 and 50.
    page.goto(f"{product.get_absolute_url()}exports/new/")
    builder = page.locator(".filter-builder")
    builder.get_by_role("button", name="Add a condition").click()
    first = builder.locator(".filter-condition").nth(0)
    first.get_by_label("Column").select_option("country")
    first.get_by_label("Value").fill("BE")  # the column's values offered as suggestions
    expect(first.locator("datalist option")).to_have_count(3)
    builder.get_by_role("button", name="Add a condition").click()
    second = builder.locator(".filter-condition").nth(1)
    second.get_by_label("Column").select_option("amount")
    second.get_by_label("Condition").select_option(label="is between")
    second.get_by_label("From").fill("10")
    second.get_by_label("To").fill("50")
    page.get_by_label("Name").fill("Belgian orders")
    page.screenshot(path=str(screenshot_dir / "filter-builder-export.png"), full_page=True)
    page.get_by_role("button", name="Schedule the export").click()

    expect(page.locator(".message-success")).to_contain_text("Export “Belgian orders” scheduled")
    schedule = ExportSchedule.objects.get()
    assert schedule.row_filter == [
        {"column": "country", "op": "=", "value": "BE"},
        {"column": "amount", "op": ">=", "value": 10},
        {"column": "amount", "op": "<=", "value": 50},
    ]
    expect(page.locator("main")).to_contain_text("country is BE")
    expect(page.locator("main")).to_contain_text("amount is between 10 and 50")

    # Editing it: the builder shows the stored filter again, the range as one condition.
    page.goto(f"{product.get_absolute_url()}exports/{schedule.pk}/edit/")
    builder = page.locator(".filter-builder")
    expect(builder.locator(".filter-condition")).to_have_count(2)
    expect(builder.locator(".filter-words")).to_have_text(
        "Rows where country is BE and amount is between 10 and 50."
    )
    # The JSON stays reachable: "Edit as JSON" shows what is sent.
    builder.get_by_role("button", name="Edit as JSON").click()
    field = page.locator("textarea[name=row_filter]")
    expect(field).to_be_visible()
    assert json.loads(field.input_value()) == schedule.row_filter
    page.screenshot(path=str(screenshot_dir / "filter-builder-export-edit.png"), full_page=True)

    # Revoking from the grants table: a reason and a button in the row, no disclosure.
    page.goto(f"{product.get_absolute_url()}access/")
    row = page.locator("#grants tbody tr").filter(has_text="analyst")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_label("Reason for revoking").fill("Project ended")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".message-success")).to_contain_text("Revoked: analyst no longer reads")
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revoke_reason == "Project ended"

    # The refused approval answered 400 (the page with the error); nothing else failed.
    assert [e for e in page.console_errors if "status of 400" not in e] == []
    outside = [u for u in page.requested_urls if not u.startswith(live_server.url)]
    assert outside == []
    assert re.search(r"/column-values/\?column=country", " ".join(page.requested_urls))
