"""The notebook path, clicked through: a grantee with a narrowed grant opens a product's
Data tab, finds the "Use in Python" card with their own columns and row filter, copies the
code, follows "Create a token", creates one (shown once, copied with the button), sees it
listed (not shown again), checks it reads the API, and revokes it: refused at once."""

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, UserFactory, parquet_product
from tests.sharing.readers import grant

ROWS = {
    "order_id": [1, 2, 3],
    "country": ["BE", "NL", "BE"],
    "email": ["a@x", "b@x", "c@x"],
    "amount": [10.5, 20.0, 30.25],
}


def api_status(base_url: str, token: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/api/v1/products/sales.orders/data/?format=json",
        headers={"Authorization": f"Token {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def analyst_and_product(domain, media_root):
    product = parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="browser/notebook.parquet"
    )
    user = UserFactory(username="analyst", first_name="Ana", last_name="Lyst")
    grant(
        product,
        user,
        columns=["order_id", "country"],
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
    )
    return user, product


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_grantee_copies_the_code_and_creates_a_token(
    live_server, page, analyst_and_product, screenshot_dir
):
    user, product = analyst_and_product
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(product.get_absolute_url())
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("link", name="Data", exact=True).click()
    card = page.locator("section.notebook-card")
    expect(card.get_by_role("heading", name="Use in Python")).to_be_visible()
    install = card.locator("#notebook-install")
    expect(install).to_have_text(
        re.compile(rf"^pip install {re.escape(live_server.url)}/client/portal_client-.+\.whl$")
    )
    snippet = card.locator("#notebook-snippet")
    expect(snippet).to_contain_text('columns=["order_id", "country"]')
    expect(snippet).to_contain_text("# Your grant serves only rows where country is BE.")
    expect(snippet).not_to_contain_text("email")
    page.screenshot(path=str(screenshot_dir / "portal-notebook-card.png"), full_page=True)

    card.get_by_role("button", name="Copy code").click()
    expect(card.get_by_text("The code is on your clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == snippet.inner_text()
    card.get_by_role("button", name="Copy", exact=True).click()
    assert page.evaluate("navigator.clipboard.readText()") == install.inner_text()

    card.get_by_role("link", name="Create a token").click()
    expect(page).to_have_url(re.compile(r"/my/tokens/\?name="))
    expect(page.get_by_role("heading", name="API tokens", level=1)).to_be_visible()
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Notebook: Orders")
    page.get_by_label("7 days").check()
    page.get_by_role("button", name="Create token").click()

    field = page.get_by_role("textbox", name="The new token")
    expect(field).to_have_value(re.compile(r"^\w{40,}$"))
    token = field.input_value()
    expect(page.get_by_text("it is shown only once")).to_be_visible()
    page.get_by_role("button", name="Copy token").click()
    expect(page.get_by_text("The token is on your clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    page.screenshot(path=str(screenshot_dir / "portal-token-created.png"), full_page=True)
    assert api_status(live_server.url, token) == 200
    page.get_by_role("link", name="Back to the data").click()
    expect(page).to_have_url(re.compile(r"/products/sales/orders/data/$"))

    # Back through the user menu: listed, never shown again.
    page.locator("details.user-menu summary").click()
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("textbox", name="The new token")).to_have_count(0)
    assert token not in page.content()
    row = page.get_by_role("row", name=re.compile("Notebook: Orders"))
    expect(row).to_contain_text("in 6 days")  # 7 days less a moment
    page.screenshot(path=str(screenshot_dir / "portal-token-list.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("revoked: anything still using it is refused now")).to_be_visible()
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()
    assert api_status(live_server.url, token) == 401
    page.screenshot(path=str(screenshot_dir / "portal-token-revoked.png"), full_page=True)
    assert page.console_errors == []
