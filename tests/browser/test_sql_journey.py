"""A grantee with a narrowed grant asks one question across two products on the SQL page:
the browser shows what they may query (masked columns marked), a product key and a column
are inserted by clicking, Ctrl+Enter runs it, the answer comes as a table and a chart with
the grant's rows only, Explain says what runs where, a masked column in a filter is
refused with its reason, and the query is saved and opened again from the list."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.sharing import conftest as sharing_fixtures
from tests.sharing.federation import conftest as federation_fixtures

# The federation tests' products and grantee, as fixtures of this module.
orders = sharing_fixtures.orders
crm = federation_fixtures.crm
narrowed = federation_fixtures.narrowed


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_grantee_queries_across_products(
    live_server,
    page,
    crm,
    orders,
    narrowed,
    screenshot_dir,
):
    narrowed.set_password(PASSWORD)
    narrowed.save()
    page.goto("/login/?next=/sql/")
    page.get_by_label("Username").fill("narrowed")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/sql/$"))
    expect(page.get_by_role("link", name="SQL", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    browser_panel = page.locator(".sql-browser")
    expect(browser_panel).to_contain_text("2 you can query")
    # The filter narrows the browser; a product's columns show what the grant masks.
    page.get_by_placeholder("Filter products…").fill("customers")
    expect(page.locator("[data-sql-product]").filter(has_text="crm.visits")).to_be_hidden()
    customers = page.locator("[data-sql-product]").filter(has_text="crm.customers")
    customers.locator("summary").click()
    expect(customers.locator(".sql-columns")).to_contain_text("masked")

    editor = page.locator("#sql-text")
    editor.fill("SELECT c.segment, count(*) AS orders\nFROM ")
    customers.get_by_role("button", name="crm.customers").click()
    editor.press("End")
    # Completion: "sales.or" offers sales.orders, Tab takes it.
    editor.type(" c JOIN sales.or")
    expect(page.locator(".sql-completions")).to_contain_text("sales.orders")
    editor.press("Tab")
    editor.type(" o ON o.country = c.country\nGROUP BY 1 ORDER BY 1")
    expect(editor).to_have_value(re.compile(r"FROM crm\.customers c JOIN sales\.orders o"))
    editor.press("Control+Enter")
    answer = page.locator(".sql-answer")
    expect(answer).to_contain_text("2 rows")
    expect(answer.locator("tbody tr")).to_have_count(2)
    expect(answer).to_contain_text("pro")
    expect(answer).to_contain_text("retail")
    expect(page.locator(".sql-chart .plotly-chart")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "sql-answer.png"), full_page=True)

    page.get_by_role("button", name="Explain").click()
    explain = page.locator(".sql-explain")
    expect(explain).to_contain_text("joined in the portal's DuckDB")
    expect(explain).to_contain_text("country")  # the row filter, in words

    assert not page.console_errors
    editor.fill("SELECT customer_id FROM crm.customers WHERE email LIKE '%@x'")
    page.get_by_role("button", name="Run").click()
    expect(page.locator(".sql-error")).to_contain_text("masked for you")
    expect(editor).to_have_value(re.compile("LIKE '%@x'"))
    # The refusal is the page's own status (403), which the browser notes; nothing else.
    assert [error for error in page.console_errors if "403" not in error] == []
    page.console_errors.clear()

    editor.fill("SELECT customer_id, email FROM crm.customers ORDER BY customer_id")
    page.locator(".sql-save summary").click()
    page.get_by_label("Name").fill("Belgian customers")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Saved as")
    page.goto("/sql/")
    page.get_by_role("link", name="Belgian customers").click()
    expect(editor).to_have_value(re.compile("ORDER BY customer_id"))
    page.get_by_role("button", name="Run").click()
    expect(page.locator(".sql-answer tbody")).to_contain_text("****")
    expect(page.locator(".sql-answer tbody")).not_to_contain_text("ann@x")
    expect(page.locator(".sql-history")).to_contain_text("Succeeded")
    assert not page.console_errors
