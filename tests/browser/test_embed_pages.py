"""The portal's own embeds pages in a real browser (the URL walks of test_shell_journey and
test_csp cannot open an embed's page: they know no embed id). A product's embeds, the
new-embed form (with its errors) and an embed's page (its views chart, applications and
keys, a key form with its errors) pass axe, fit a phone and run within the Content
Security Policy; the form shows a metric's fields or a port's as the source changes; the
copy button puts the snippet on the clipboard."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from products.definitions.services.metrics import metric_create
from sharing.embeds.host import key_pair
from sharing.embeds.services.apps import embed_app_create, embed_key_add
from sharing.embeds.services.embeds import embed_create
from sharing.models import EmbedViewDay
from tests.browser.test_csp import RECORD_VIOLATIONS
from tests.browser.test_shell_journey import (
    BLOCKING,
    DESKTOP,
    PHONE,
    WIDE_ELEMENTS,
    describe,
    page_overflow,
    signed_in_context,
)
from tests.factories import parquet_product

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "amount": [12.5, 80.0, 3.25, 41.0],
    "email": ["a@x", None, None, "d@x"],
}


@pytest.fixture
def world(domain, owner, media_root):
    """sales.orders with a metric, an embed locked on the country with a month of views
    from three tenants, an application with two keys and a domain application."""
    product = parquet_product(
        media_root=media_root,
        domain=domain,
        rows=ROWS,
        file_path="embed-pages/orders.parquet",
        owners=[owner],
    )
    metric_create(
        by=owner,
        port=product.ports.get(),
        key="sales.revenue",
        name="Revenue",
        aggregation="sum",
        column="amount",
        dimensions=["country"],
    )
    embed = embed_create(
        by=owner,
        product=product,
        title="Orders of a very long-named customer segment, by country and amount",
        chart="bar",
        port_slug="orders",
        columns=["country", "amount"],
        locked_params={"tenant": "country"},
        allowed_origins=[
            "https://a-rather-long-host-name-for-a-customer-portal.example.com:8443",
            "https://shop.example.com",
        ],
        allow_csv=True,
    )
    today = timezone.now().date()
    for days in range(20):
        for tenant, views in (("tenant=BE", 5 + days % 3), ("tenant=NL", 2), ("tenant=FR", 1)):
            EmbedViewDay.objects.create(
                embed=embed, day=today - timedelta(days=days), tenant=tenant, views=views
            )
    _, public = key_pair("EdDSA")
    app = embed_app_create(
        by=owner,
        name="Customer portal",
        embed=embed,
        kid="shop-1",
        algorithm="EdDSA",
        public_key=public,
    )
    _, second = key_pair("EdDSA")
    embed_key_add(app=app, by=owner, kid="shop-2", algorithm="EdDSA", public_key=second)
    _, domain_key = key_pair("EdDSA")
    embed_app_create(
        by=owner,
        name="Sales extranet",
        domain=domain,
        kid="extranet-1",
        algorithm="EdDSA",
        public_key=domain_key,
    )
    return product, embed


def test_the_embeds_pages_pass_axe_fit_a_phone_and_keep_the_policy(
    browser, live_server, world, screenshot_dir
):
    product, embed = world
    slugs = [product.domain.slug, product.slug]
    detail = reverse("sharing:embed-detail", args=[embed.pk])
    listing = reverse("sharing:product-embeds", args=slugs)
    new = reverse("sharing:embed-create", args=slugs)
    axe = Axe()
    desktop = signed_in_context(browser, live_server, "owner", DESKTOP)
    desktop.grant_permissions(["clipboard-read", "clipboard-write"])
    phone = signed_in_context(browser, live_server, "owner", PHONE)
    problems: list[str] = []
    try:
        wide, narrow = desktop.new_page(), phone.new_page()
        for tab in (wide, narrow):
            tab.add_init_script(RECORD_VIOLATIONS)

        def check(where: str):
            for violation in axe.run(wide).response["violations"]:
                if violation["impact"] in BLOCKING:
                    problems.append(f"{where} at 1280 px: {describe(violation)}")
            problems.extend(f"{where}: CSP: {item}" for item in wide.evaluate("window.__csp"))

        def fits(path: str):
            narrow.goto(path)
            narrow.wait_for_load_state("load")
            overflow = page_overflow(narrow)
            if overflow > 0:
                problems.append(
                    f"{path} at 390 px: {overflow} px too wide: {narrow.evaluate(WIDE_ELEMENTS)}"
                )
                narrow.screenshot(path=str(screenshot_dir / "embed-too-wide.png"), full_page=True)
            problems.extend(
                f"{path} phone: CSP: {item}" for item in narrow.evaluate("window.__csp")
            )

        # An embed's page: the chart of its views is drawn, the snippet copies.
        wide.goto(detail)
        expect(wide.locator(".js-plotly-plot .main-svg").first).to_be_visible()
        expect(wide.get_by_role("heading", name="Customer portal")).to_be_visible()
        check(detail)
        wide.get_by_role("button", name="Copy", exact=True).first.click()
        expect(wide.locator('[data-copy-status-for="embed-script-snippet"]')).to_contain_text(
            "clipboard"
        )
        copied = wide.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("<script src=") and f"/embed/{embed.pk}/" in copied
        wide.screenshot(path=str(screenshot_dir / "embed-detail.png"), full_page=True)
        fits(detail)

        # A key with a mistake: the form opens again with the error beside the field.
        wide.get_by_text("Add a key to Customer portal").click()
        key_form = wide.locator(".embed-key-add form").first
        key_form.get_by_label("Key id (kid)").fill("shop-3")
        key_form.get_by_label("Public key (PEM)").fill("not a key")
        key_form.get_by_role("button", name="Add the key").click()
        wide.wait_for_load_state("load")
        expect(wide.locator(".embed-key-add .field-error")).to_contain_text("PEM")
        check(detail + " (a key form with an error)")

        # The form: a metric's fields or a port's, as the source changes; errors shown.
        wide.goto(new)
        wide.wait_for_load_state("load")
        check(new)
        columns = wide.locator("#id_columns")
        grain_or_by = wide.locator("#id_dimension")
        wide.get_by_label("What it shows").select_option("metric:sales.revenue")
        expect(columns).to_be_hidden()
        expect(grain_or_by).to_be_visible()
        wide.get_by_label("What it shows").select_option("port:orders")
        expect(columns).to_be_visible()
        expect(grain_or_by).to_be_hidden()
        wide.locator("#id_title").fill("Orders")
        columns.fill("country, amount")
        wide.locator("#id_allowed_origins").fill("ftp://shop.example.com")
        wide.get_by_role("button", name="Create the embed").click()
        wide.wait_for_load_state("load")
        expect(wide.locator(".field-error").first).to_contain_text("is not an origin")
        check(new + " (with errors)")
        wide.screenshot(path=str(screenshot_dir / "embed-form.png"), full_page=True)
        fits(new)

        wide.goto(listing)
        wide.wait_for_load_state("load")
        check(listing)
        wide.screenshot(path=str(screenshot_dir / "embed-list.png"), full_page=True)
        fits(listing)
    finally:
        desktop.close()
        phone.close()
    assert problems == [], "\n".join(problems)
