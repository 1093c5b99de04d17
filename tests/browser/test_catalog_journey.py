"""A domain owner signs in, searches the catalog, opens a product and refreshes its
schema: the refresh runs on a real Celery worker, the page shows progress and then the
columns the worker read from the Parquet file."""

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import expect

from products.choices import Classification, LifecycleStatus, RunStatus
from products.models import SchemaRefreshRun
from tests.factories import (
    PASSWORD,
    ColumnFactory,
    DomainFactory,
    FilePortFactory,
    ProductFactory,
)

DESCRIPTION = """One row per **order line** from the web shop and the stores, loaded every
night at 02:00 UTC.

- Amounts are in euros, VAT included.
- Cancelled orders keep their row with `status = 'cancelled'`.

See the [finance glossary](https://example.com/glossary) for *net revenue*.
"""


@pytest.fixture
def catalog(domain, owner, media_root):
    """A small catalog across three domains; `sales.orders` has a Parquet port whose
    known schema is out of date."""
    marketing = DomainFactory(name="Marketing", slug="marketing")
    supply = DomainFactory(name="Supply Chain", slug="supply-chain")
    orders = ProductFactory(
        domain=domain,
        name="Orders",
        slug="orders",
        summary="Every order line from web and stores, refreshed nightly.",
        description=DESCRIPTION,
        purpose_use_case="Revenue reporting and basket analysis",
        purpose_intended_users="Sales analysts, finance controllers",
        purpose_expected_outcome="One trusted revenue figure across teams",
        tags=["orders", "revenue", "daily"],
        owners=[owner],
        version="2.1.0",
    )
    ProductFactory(
        domain=domain,
        name="Returns by supplier",
        summary="Returned order lines grouped by supplier and reason.",
        description="Returned orders per supplier.",
        tags=["orders", "quality"],
    )
    ProductFactory(
        domain=marketing,
        name="Campaign performance",
        summary="Spend, clicks and attributed orders per campaign and day.",
        description="Campaign results, attributed orders.",
        tags=["campaigns", "revenue"],
    )
    ProductFactory(
        domain=marketing,
        name="Lead scores",
        summary="Weekly propensity scores for open leads.",
        status=LifecycleStatus.DEPRECATED,
        tags=["leads"],
    )
    ProductFactory(
        domain=supply,
        name="Inventory levels",
        summary="Stock on hand per warehouse and SKU, hourly.",
        tags=["inventory"],
    )

    path = media_root / "files" / "browser-orders.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "order_id": pa.array([1, 2, 3], pa.int64()),
                "amount": pa.array([9.5, 3.25, 1.0], pa.float64()),
                "country": pa.array(["BE", "NL", None], pa.string()),
            }
        ),
        path,
    )
    port = FilePortFactory(
        product=orders,
        name="Orders file",
        slug="orders-file",
        description="Nightly Parquet snapshot.",
        file_path="files/browser-orders.parquet",
    )
    # What the catalog knew before: `amount` was documented, `legacy_flag` has gone since.
    ColumnFactory(
        port=port,
        name="amount",
        data_type="VARCHAR",
        description="Order total in euros, VAT included",
        classification=Classification.CONFIDENTIAL,
        position=0,
    )
    ColumnFactory(port=port, name="legacy_flag", data_type="BOOLEAN", position=1)
    return orders, port


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_owner_searches_opens_a_product_and_refreshes_its_schema(
    celery_worker, live_server, page, catalog, screenshot_dir
):
    product, port = catalog

    # Signing in: every page sends an anonymous visitor to the sign-in form first.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Find data you can trust")).to_be_visible()

    # Searching.
    page.get_by_role("searchbox", name="Search data products").fill("orders")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/search/\?q=orders$"))
    results = page.locator(".result-title")
    expect(results.first).to_have_text("Orders")  # the name match ranks first
    expect(
        page.get_by_role("heading", name=re.compile(r"\d+ results? for “orders”"))
    ).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "portal-search.png"), full_page=True)

    # Opening the product.
    results.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/products/sales/orders/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Orders")
    expect(page.locator(".prose strong").first).to_have_text("order line")
    schema = page.locator("#port-orders-file")
    expect(schema.get_by_role("row", name=re.compile("legacy_flag"))).to_be_visible()

    # Refreshing the schema: progress first, then the columns the worker read.
    schema.get_by_role("button", name="Refresh schema").click()
    expect(page.locator("#port-orders-file .run")).to_contain_text(
        re.compile("Schema refresh queued|Refreshing schema")
    )
    page.screenshot(path=str(screenshot_dir / "portal-refresh-progress.png"))
    expect(page.locator("#port-orders-file .run")).to_contain_text(
        "Schema refreshed", timeout=60_000
    )
    schema = page.locator("#port-orders-file")
    expect(schema).to_contain_text("2 columns added, 1 removed, 1 changed type")
    column_names = schema.locator("tbody th code")
    expect(column_names).to_have_text(["order_id", "amount", "country"])
    amount = schema.get_by_role("row", name=re.compile(r"^amount"))
    expect(amount).to_contain_text("DOUBLE")
    expect(amount).to_contain_text("Order total in euros, VAT included")  # kept
    expect(amount).to_contain_text("Confidential")
    expect(schema.get_by_role("button", name="Refresh schema")).to_be_enabled()

    run = SchemaRefreshRun.objects.get(port=port)
    assert run.status == RunStatus.SUCCEEDED, run.error
    page.screenshot(path=str(screenshot_dir / "portal-product.png"), full_page=True)

    # Every script, stylesheet and request came from the portal itself.
    outside = [url for url in page.requested_urls if not url.startswith(live_server.url)]
    assert outside == []
    assert page.console_errors == []
