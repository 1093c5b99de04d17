"""A domain owner imports two versions of a contract by upload on the Contract tab (a bad
file first, whose problems are listed by path), compares them on the diff page where the
breaking change is marked, publishes the breaking version after confirming, and downloads
the ODCS export."""

import re
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone
from playwright.sync_api import expect

from products.choices import ContractStatus
from products.contracts.services.documents import odcs_validate
from products.models import Contract
from sharing.models import AccessGrant
from tests.factories import PASSWORD, OutputPortFactory, ProductFactory, UserFactory
from tests.products.contracts.helpers import contract_yaml

V1_COLUMNS = [("order_id", "BIGINT", True), ("amount", "NUMERIC", False), ("note", "TEXT", False)]
V2_COLUMNS = [("order_id", "TEXT", True), ("amount", "NUMERIC", False)]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_owner_imports_compares_and_publishes_a_contract(
    live_server, page, domain, owner, screenshot_dir, tmp_path
):
    product = ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])
    OutputPortFactory(product=product, name="Order lines", slug="order-lines")
    AccessGrant.objects.create(
        product=product,
        user=UserFactory(username="reader"),
        expires_at=timezone.now() + timedelta(days=30),
    )
    files = {
        "bad": contract_yaml("1.0.0").replace("kind: DataContract", "kind: Contract"),
        "v1": contract_yaml("1.0.0", V1_COLUMNS),
        "v2": contract_yaml("2.0.0", V2_COLUMNS),
    }
    for name, text in files.items():
        (tmp_path / f"{name}.odcs.yaml").write_text(text)

    page.goto("/login/?next=/products/sales/orders/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Contract", exact=True).click()
    expect(page).to_have_url(re.compile(r"/products/sales/orders/contract/$"))
    expect(page.locator("#versions")).to_contain_text("No versions yet")

    # A file that breaks the schema: each problem with its path, nothing stored.
    form = page.locator("#contract-import-form")
    form.get_by_label("ODCS contract (YAML)").set_input_files(str(tmp_path / "bad.odcs.yaml"))
    form.get_by_role("button", name="Import as draft").click()
    problems = page.locator("#problems")
    expect(problems).to_contain_text("does not follow ODCS v3.1: 1 problem")
    expect(problems.locator("td").first).to_have_text("$.kind")
    page.screenshot(path=str(screenshot_dir / "contract-import-problems.png"), full_page=True)
    assert not Contract.objects.exists()

    # Version 1.0.0, published; then 2.0.0 as a draft.
    page.locator("#contract-import-form").get_by_label("ODCS contract (YAML)").set_input_files(
        str(tmp_path / "v1.odcs.yaml")
    )
    page.get_by_role("button", name="Import as draft").click()
    expect(page.locator(".messages")).to_contain_text("Imported version 1.0.0 as a draft")
    page.locator("#version-1\\.0\\.0").get_by_role("link", name="Publish…").click()
    expect(page.locator("#publish")).to_contain_text("first contract")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#current")).to_contain_text("Version 1.0.0")
    page.locator("#contract-import-form").get_by_label("ODCS contract (YAML)").set_input_files(
        str(tmp_path / "v2.odcs.yaml")
    )
    page.get_by_role("button", name="Import as draft").click()
    expect(page.locator("#version-2\\.0\\.0")).to_contain_text("Draft")
    page.screenshot(path=str(screenshot_dir / "contract-tab.png"), full_page=True)

    # The diff: the removed column and the changed type are breaking, and marked so.
    page.get_by_role("button", name="Show changes").click()
    expect(page).to_have_url(re.compile(r"/contract/diff/\?from=1\.0\.0&to=2\.0\.0$"))
    expect(page.locator("#breaking-summary")).to_contain_text("2 breaking changes")
    breaking = page.locator("tr.change-breaking")
    expect(breaking).to_have_count(2)
    expect(breaking.nth(0)).to_contain_text("Column removed")
    expect(breaking.nth(0)).to_contain_text("Order lines.note")
    expect(breaking.nth(1)).to_contain_text("Type changed")
    page.get_by_text("The YAML, line by line").click()
    expect(page.locator(".contract-yaml-diff .diff-del").first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "contract-diff.png"), full_page=True)

    # Publishing warns, names who is told, and wants the box ticked.
    page.get_by_role("link", name="Back to versions").click()
    page.locator("#version-2\\.0\\.0").get_by_role("link", name="Publish…").click()
    warning = page.locator("#breaking-warning")
    expect(warning).to_contain_text("1 person with access to Orders will be emailed")
    page.screenshot(path=str(screenshot_dir / "contract-publish-warning.png"), full_page=True)
    page.get_by_role("button", name="Publish the breaking version").click()
    expect(page.locator(".field-error")).to_contain_text("tick the box")
    page.get_by_label(re.compile("I understand these changes break")).check()
    page.get_by_role("button", name="Publish the breaking version").click()
    expect(page.locator("#current")).to_contain_text("Version 2.0.0")
    assert Contract.objects.get(version="2.0.0").status == ContractStatus.PUBLISHED

    # The download is the catalog as ODCS, valid against the schema.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download ODCS contract (YAML)").click()
    document = yaml.safe_load(open(download.value.path()).read())
    assert odcs_validate(document) == [] and document["version"] == "2.0.0"
    assert [p["name"] for p in document["schema"][0]["properties"]] == ["order_id", "amount"]
    # The only failed loads are the two refusals this journey provokes (400).
    assert [e for e in page.console_errors if "status of 400" not in e] == []
    assert len(page.console_errors) == 2
    assert all(url.startswith(live_server.url) for url in page.requested_urls)
