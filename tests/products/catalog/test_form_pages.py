"""Writing through the pages: create, edit, lifecycle, output ports, column documentation
and schema refresh. Outsiders get a 404 for what they cannot see and a 403 for what they
cannot change; the services' validation errors appear on the forms."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from products.catalog.services.schema_refresh import schema_refresh_execute
from products.choices import Classification, LifecycleStatus, RunStatus
from products.models import DataProduct, SchemaRefreshRun
from tests.factories import (
    ColumnFactory,
    DataSourceFactory,
    DomainFactory,
    FilePortFactory,
    OutputPortFactory,
    ProductFactory,
)

pytestmark = pytest.mark.django_db

PRODUCT_FORM = {
    "name": "Customer churn",
    "summary": "Monthly churn per segment.",
    "description": "One row per **segment** and month.",
    "purpose_use_case": "Retention planning",
    "purpose_intended_users": "Marketing analysts",
    "purpose_expected_outcome": "Fewer surprises",
    "audience": "internal",
    "tags": "churn, Retention , monthly",
    "version": "0.1.0",
}


@pytest.fixture
def parquet_port(product, media_root):
    path = media_root / "files" / "pages-orders.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"order_id": pa.array([1, 2], pa.int64()), "amount": pa.array([1.5, 2.0])}),
        path,
    )
    return FilePortFactory(
        product=product,
        name="Orders file",
        slug="orders-file",
        file_path="files/pages-orders.parquet",
    )


# --- create ----------------------------------------------------------------------------


def test_owner_creates_a_draft_product(client, domain, owner):
    client.force_login(owner)
    page = client.get("/products/new/?domain=sales")
    assert page.status_code == 200
    assert page.context["form"]["domain"].value() == domain.pk
    assert b'<label for="id_name">' in page.content

    response = client.post("/products/new/", {**PRODUCT_FORM, "domain": domain.pk})

    product = DataProduct.objects.get(domain=domain, slug="customer-churn")
    assert response.status_code == 302
    assert response["Location"] == "/products/sales/customer-churn/"
    assert product.status == LifecycleStatus.DRAFT
    assert sorted(product.tags.values_list("name", flat=True)) == ["churn", "monthly", "retention"]
    assert list(product.owners.all()) == [owner]
    assert product.purpose_use_case == "Retention planning"
    follow = client.get(response["Location"])
    assert b"Draft Customer churn created" in follow.content


def test_create_shows_field_errors_and_service_errors(client, domain, owner):
    client.force_login(owner)
    response = client.post("/products/new/", {**PRODUCT_FORM, "name": "", "domain": domain.pk})
    assert response.status_code == 400
    assert b"This field is required." in response.content

    ProductFactory(domain=domain, slug="customer-churn")
    response = client.post("/products/new/", {**PRODUCT_FORM, "domain": domain.pk})
    assert response.status_code == 400
    # The service's uniqueness error is shown beside the slug, not a 500.
    assert "choose another slug" in str(response.context["form"].errors["slug"])


def test_create_only_in_domains_the_user_manages(client, domain, owner, member, outsider):
    other = DomainFactory(name="HR", slug="hr")
    client.force_login(owner)
    response = client.post("/products/new/", {**PRODUCT_FORM, "domain": other.pk})
    assert response.status_code == 400
    assert not DataProduct.objects.filter(domain=other).exists()
    offered = client.get("/products/new/").context["form"].fields["domain"].queryset
    assert list(offered) == [domain]  # not a random substring check: CSRF tokens vary

    for user in (member, outsider):
        client.force_login(user)
        response = client.get("/products/new/")
        assert response.status_code == 403
        assert b"Only owners and stewards of a domain create products" in response.content
        assert (
            client.post("/products/new/", {**PRODUCT_FORM, "domain": domain.pk}).status_code == 403
        )


# --- edit ------------------------------------------------------------------------------


def test_owner_edits_a_product(client, product, owner, steward):
    client.force_login(owner)
    page = client.get("/products/sales/orders/edit/")
    assert page.status_code == 200
    assert page.context["form"]["name"].value() == "Orders"

    response = client.post(
        "/products/sales/orders/edit/",
        {**PRODUCT_FORM, "name": "Orders v2", "owners": [owner.pk, steward.pk]},
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.name == "Orders v2" and product.slug == "orders"
    assert set(product.owners.all()) == {owner, steward}


def test_published_product_refuses_to_lose_its_last_owner(client, product, owner):
    client.force_login(owner)
    response = client.post("/products/sales/orders/edit/", {**PRODUCT_FORM, "owners": []})
    assert response.status_code == 400
    assert b"A published product needs at least one owner." in response.content
    assert list(product.owners.all()) == [owner]


@pytest.mark.parametrize(
    "path",
    [
        "edit/",
        "ports/new/",
        "ports/port-x/edit/",
    ],
)
def test_edit_pages_of_published_products_are_403_for_others(
    client, product, outsider, member, path
):
    OutputPortFactory(product=product, slug="port-x")
    for user in (outsider, member):
        client.force_login(user)
        assert client.get(f"/products/sales/orders/{path}").status_code == 403
        assert client.post(f"/products/sales/orders/{path}", {"name": "x"}).status_code == 403


def test_edit_pages_of_hidden_drafts_are_404(client, domain, outsider):
    ProductFactory(domain=domain, slug="secret", status=LifecycleStatus.DRAFT)
    client.force_login(outsider)
    for path in ("edit/", "ports/new/", "publish/"):
        method = client.post if path == "publish/" else client.get
        assert method(f"/products/sales/secret/{path}").status_code == 404


def test_403_page_says_why(client, product, outsider):
    client.force_login(outsider)
    response = client.get("/products/sales/orders/edit/")
    assert b"You can\xe2\x80\x99t do that here" in response.content
    assert b"Only owners and stewards of the Sales domain" in response.content


# --- lifecycle -------------------------------------------------------------------------


def test_publish_is_refused_with_the_blockers_then_allowed(client, domain, owner):
    draft = ProductFactory(
        domain=domain, slug="churn", description="", status=LifecycleStatus.DRAFT
    )
    client.force_login(owner)

    response = client.post("/products/sales/churn/publish/", follow=True)
    draft.refresh_from_db()
    assert draft.status == LifecycleStatus.DRAFT
    assert b"was not published: Write a description." in response.content

    draft.description = "Monthly churn."
    draft.save()
    draft.owners.set([owner])
    OutputPortFactory(product=draft)
    response = client.post("/products/sales/churn/publish/", follow=True)
    draft.refresh_from_db()
    assert draft.status == LifecycleStatus.PUBLISHED
    assert b"is now published" in response.content


def test_deprecate_then_retire(client, product, steward):
    client.force_login(steward)
    # An impossible transition is a message, not an error page.
    response = client.post("/products/sales/orders/retire/", follow=True)
    assert response.status_code == 200
    assert b"A published product cannot become retired." in response.content
    assert client.get("/products/sales/orders/deprecate/").status_code == 405  # POST only
    client.post("/products/sales/orders/deprecate/")
    product.refresh_from_db()
    assert product.status == LifecycleStatus.DEPRECATED
    client.post("/products/sales/orders/retire/")
    product.refresh_from_db()
    assert product.status == LifecycleStatus.RETIRED


def test_lifecycle_is_403_for_people_who_cannot_edit(client, product, outsider, member):
    for user in (outsider, member):
        client.force_login(user)
        assert client.post("/products/sales/orders/deprecate/").status_code == 403
    product.refresh_from_db()
    assert product.status == LifecycleStatus.PUBLISHED


# --- output ports and columns ----------------------------------------------------------


def test_owner_adds_a_file_port_and_a_table_port(client, product, owner):
    client.force_login(owner)
    assert client.get("/products/sales/orders/ports/new/").status_code == 200
    response = client.post(
        "/products/sales/orders/ports/new/",
        {
            "name": "Daily export",
            "kind": "file",
            "file_path": "uploads/sales/orders.parquet",
            "file_format": "parquet",
            "save_anyway": "on",  # the file comes later
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/products/sales/orders/#port-daily-export"
    port = product.ports.get(slug="daily-export")
    assert port.location == "parquet: uploads/sales/orders.parquet"

    source = DataSourceFactory(name="warehouse")
    client.post(
        "/products/sales/orders/ports/new/",
        {
            "name": "Orders table",
            "kind": "table",
            "source": source.pk,
            "table_name": "orders",
            "save_anyway": "on",
        },
    )
    assert product.ports.get(slug="orders-table").location == "warehouse: orders"


def test_port_form_shows_what_is_missing(client, product, owner):
    client.force_login(owner)
    response = client.post(
        "/products/sales/orders/ports/new/", {"name": "Orders table", "kind": "table"}
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "A table port needs a data source." in content
    assert "Name the table or view." in content

    response = client.post(
        "/products/sales/orders/ports/new/",
        {"name": "Escape", "kind": "file", "file_path": "../../etc/passwd", "file_format": "csv"},
    )
    assert response.status_code == 400
    assert b"outside the portal" in response.content
    assert not product.ports.exists()


def test_owner_edits_a_port(client, parquet_port, owner):
    client.force_login(owner)
    page = client.get("/products/sales/orders/ports/orders-file/edit/")
    assert page.context["form"]["file_path"].value() == "files/pages-orders.parquet"
    client.post(
        "/products/sales/orders/ports/orders-file/edit/",
        {
            "name": "Orders file",
            "kind": "file",
            "file_path": "uploads/sales/x.csv",
            "file_format": "csv",
            "save_anyway": "on",  # x.csv comes later
        },
    )
    parquet_port.refresh_from_db()
    assert parquet_port.file_format == "csv"


def test_owner_documents_a_column(client, parquet_port, owner, outsider):
    column = ColumnFactory(port=parquet_port, name="amount")
    url = f"/products/sales/orders/ports/orders-file/columns/{column.pk}/edit/"
    client.force_login(outsider)
    assert client.get(url).status_code == 403

    client.force_login(owner)
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"description": "Order total in euros", "classification": "confidential"}
    )
    assert response.status_code == 302
    column.refresh_from_db()
    assert column.description == "Order total in euros"
    assert column.classification == Classification.CONFIDENTIAL
    assert client.post(url, {"description": "x", "classification": "secret"}).status_code == 400
    # A column of another product's port is not reachable through this product.
    stranger = ColumnFactory(
        port=OutputPortFactory(product=ProductFactory(domain=product_domain(column)))
    )
    assert (
        client.get(
            f"/products/sales/orders/ports/orders-file/columns/{stranger.pk}/edit/"
        ).status_code
        == 404
    )


def product_domain(column):
    return column.port.product.domain


# --- schema refresh --------------------------------------------------------------------


def test_refresh_button_queues_a_run_and_the_fragment_polls_until_done(client, parquet_port, owner):
    client.force_login(owner)
    page = client.get("/products/sales/orders/").content.decode()
    assert 'hx-post="/products/sales/orders/ports/orders-file/refresh/"' in page
    assert "No columns known yet" in page
    assert 'hx-trigger="every 1s"' not in page  # nothing to poll yet

    response = client.post(
        "/products/sales/orders/ports/orders-file/refresh/", HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith("<section")  # a fragment, not a page
    assert "Schema refresh queued" in fragment
    assert 'hx-get="/products/sales/orders/ports/orders-file/schema/"' in fragment
    assert 'hx-trigger="every 1s"' in fragment
    run = SchemaRefreshRun.objects.get(port=parquet_port)
    assert run.status == RunStatus.QUEUED

    schema_refresh_execute(run_id=run.pk)  # what the worker does
    fragment = client.get("/products/sales/orders/ports/orders-file/schema/").content.decode()
    assert "Schema refreshed" in fragment and "2 columns added" in fragment
    assert "<code>order_id</code>" in fragment and "<code>amount</code>" in fragment
    assert 'hx-trigger="every 1s"' not in fragment  # done: polling stops


def test_refresh_without_javascript_redirects_back(client, parquet_port, owner):
    client.force_login(owner)
    response = client.post("/products/sales/orders/ports/orders-file/refresh/")
    assert response.status_code == 302
    assert response["Location"] == "/products/sales/orders/#port-orders-file"
    page = client.get(response["Location"]).content.decode()
    assert "Schema refresh of Orders file queued" in page
    assert "Schema refresh queued" in page and 'hx-trigger="every 1s"' in page


def test_a_failed_refresh_explains_itself(client, product, owner):
    FilePortFactory(
        product=product,
        slug="missing",
        table_name="",
        schema_name="",
        file_path="files/does-not-exist.parquet",
    )
    client.force_login(owner)
    client.post("/products/sales/orders/ports/missing/refresh/", HTTP_HX_REQUEST="true")
    schema_refresh_execute(run_id=SchemaRefreshRun.objects.get().pk)
    fragment = client.get("/products/sales/orders/ports/missing/schema/").content.decode()
    run = SchemaRefreshRun.objects.get()
    assert run.status == RunStatus.FAILED and run.error
    assert "Schema refresh failed" in fragment
    assert run.error in fragment.replace("&#x27;", "'").replace("&quot;", '"')
    assert "Fix the port or the data source" in fragment


def test_refresh_is_403_for_readers_and_404_for_hidden(client, parquet_port, domain, outsider):
    client.force_login(outsider)
    assert client.post("/products/sales/orders/ports/orders-file/refresh/").status_code == 403
    assert not SchemaRefreshRun.objects.exists()
    # Readers may watch the schema block; it offers no button.
    fragment = client.get("/products/sales/orders/ports/orders-file/schema/")
    assert fragment.status_code == 200 and b"Refresh schema" not in fragment.content
    assert client.get("/products/sales/orders/ports/nope/schema/").status_code == 404

    hidden = ProductFactory(domain=domain, slug="hidden", status=LifecycleStatus.DRAFT)
    OutputPortFactory(product=hidden, slug="p")
    assert client.post("/products/sales/hidden/ports/p/refresh/").status_code == 404
    assert client.get("/products/sales/hidden/ports/p/schema/").status_code == 404
