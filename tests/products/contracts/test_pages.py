"""Contract pages: the Contract tab for owners and readers (empty state, versions,
service levels, support, downloads), import by upload with its problems listed, the diff
page with breaking changes marked, publishing with its confirmation, deleting a draft, a
new product from a contract; who may do what; the list's query count."""

from datetime import timedelta

import pytest
import yaml
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from products.choices import ContractStatus, LifecycleStatus
from products.contracts.services.contracts import contract_import, contract_publish
from products.contracts.services.documents import odcs_validate, odps_validate
from products.models import Contract, DataProduct
from sharing.models import AccessGrant
from tests.factories import DataSourceFactory, ProductFactory, UserFactory
from tests.products.contracts.helpers import contract_yaml, documented_product

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]

PAGE = "/products/sales/orders/contract/"


def upload(text: str, name="orders.odcs.yaml"):
    return SimpleUploadedFile(name, text.encode(), content_type="application/yaml")


def test_the_tab_before_any_contract(client, product, owner, outsider):
    client.force_login(owner)
    html = client.get(PAGE).content.decode()
    assert "No contract is published yet" in html and "No versions yet" in html
    assert 'id="contract-import-form"' in html and 'enctype="multipart/form-data"' in html
    assert "/products/sales/orders/contract/odcs.yaml" in html
    assert "/products/sales/orders/contract/odps.yaml" in html
    assert 'aria-current="page">Contract</a>' in html
    client.force_login(outsider)
    html = client.get(PAGE).content.decode()
    assert "No contract is published yet" in html
    assert 'id="contract-import-form"' not in html  # readers download, never import


def test_upload_imports_a_draft(client, product, owner):
    client.force_login(owner)
    response = client.post(PAGE + "import/", {"file": upload(contract_yaml("1.0.0"))})
    assert response.status_code == 302 and response["Location"] == PAGE + "#versions"
    contract = Contract.objects.get()
    assert (contract.version, contract.status) == ("1.0.0", ContractStatus.DRAFT)
    html = client.get(PAGE).content.decode()
    assert "Imported version 1.0.0 as a draft" in html
    assert 'id="version-1.0.0"' in html and "Publish…" in html and "Delete draft" in html


def test_an_invalid_upload_lists_each_problem_and_stores_nothing(client, product, owner):
    client.force_login(owner)
    text = (
        contract_yaml()
        .replace("kind: DataContract", "kind: Contract")
        .replace("version: 1.0.0", "version: one")
    )
    response = client.post(PAGE + "import/", {"file": upload(text)})
    assert response.status_code == 400
    html = response.content.decode()
    assert "The contract does not follow ODCS v3.1: 1 problem." in html
    assert "<td>$.kind</td>" in html and "Nothing was stored" in html
    assert not Contract.objects.exists()
    # YAML that does not parse, and a missing file.
    response = client.post(PAGE + "import/", {"file": upload("a: [b\n")})
    assert response.status_code == 400 and "does not parse at line" in response.content.decode()
    response = client.post(PAGE + "import/", {})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert not Contract.objects.exists()


def test_an_oversized_upload_is_refused_on_its_field(client, product, owner):
    client.force_login(owner)
    big = contract_yaml() + "#" + "x" * (1024 * 1024) + "\n"
    response = client.post(PAGE + "import/", {"file": upload(big)})
    assert response.status_code == 400
    assert "the limit is 1,024 KiB" in response.content.decode()
    assert not Contract.objects.exists()


def test_diff_page_marks_breaking_changes(client, product, owner):
    contract_publish(
        contract=contract_import(product=product, by=owner, text=contract_yaml("1.0.0")), by=owner
    )
    contract_import(
        product=product,
        by=owner,
        text=contract_yaml(
            "2.0.0",
            [("order_id", "TEXT", True), ("amount", "NUMERIC", False), ("country", "TEXT", False)],
        ),
    )
    client.force_login(owner)
    tab = client.get(PAGE).content.decode()
    assert 'id="diff-form"' in tab and '<option value="1.0.0" selected>' in tab
    html = client.get(PAGE + "diff/?from=1.0.0&to=2.0.0").content.decode()
    assert "From version 1.0.0 to 2.0.0" in html
    assert "1 breaking change" in html
    assert html.count('class="change-breaking"') == 1
    assert "Type BIGINT -&gt; TEXT." in html and "Order lines.country" in html
    assert 'class="diff-add"' in html and 'class="diff-del"' in html
    # Defaults: the newest version against the current one.
    assert "From version 1.0.0 to 2.0.0" in client.get(PAGE + "diff/").content.decode()
    missing = client.get(PAGE + "diff/?from=1.0.0&to=7.0.0")
    assert missing.status_code == 400 and "no contract version 7.0.0" in missing.content.decode()


def test_publishing_a_breaking_version_asks_for_confirmation(
    client, product, owner, django_capture_on_commit_callbacks
):
    AccessGrant.objects.create(
        product=product,
        user=UserFactory(username="reader"),
        expires_at=timezone.now() + timedelta(days=5),
    )
    contract_publish(
        contract=contract_import(product=product, by=owner, text=contract_yaml("1.0.0")), by=owner
    )
    contract_import(
        product=product, by=owner, text=contract_yaml("1.1.0", [("order_id", "BIGINT", True)])
    )
    client.force_login(owner)
    url = PAGE + "1.1.0/publish/"
    html = client.get(url).content.decode()
    assert 'id="breaking-warning"' in html and "Column removed" in html
    assert "1 person with access to Orders will be emailed" in html
    assert "consider 2.0.0" in html  # a breaking change in a minor version
    assert 'name="confirm_breaking"' in html

    response = client.post(url, {})
    assert response.status_code == 400 and "tick the box" in response.content.decode()
    assert Contract.objects.get(version="1.1.0").status == ContractStatus.DRAFT
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"confirm_breaking": "on"})
    assert response.status_code == 302
    assert Contract.objects.get(version="1.1.0").status == ContractStatus.PUBLISHED
    assert [m.to for m in mail.outbox] == [["reader@example.com"]]
    html = client.get(PAGE).content.decode()
    assert "Version <strong>1.1.0</strong>" in html and "1 breaking" in html


def test_publishing_without_breaking_changes_needs_no_box(client, product, owner):
    contract_import(product=product, by=owner, text=contract_yaml("1.0.0"))
    client.force_login(owner)
    html = client.get(PAGE + "1.0.0/publish/").content.decode()
    assert "first contract" in html and 'name="confirm_breaking"' not in html
    assert client.post(PAGE + "1.0.0/publish/", {}).status_code == 302
    assert Contract.objects.get().status == ContractStatus.PUBLISHED
    assert client.get(PAGE + "1.0.0/publish/").status_code == 302  # published already


def test_delete_a_draft(client, product, owner):
    contract_import(product=product, by=owner, text=contract_yaml("1.0.0"))
    client.force_login(owner)
    assert client.post(PAGE + "1.0.0/delete/").status_code == 302
    assert not Contract.objects.exists()


def test_downloads_are_yaml_that_validates(client, domain, owner, outsider):
    product = documented_product(domain=domain, owner=owner)
    contract_publish(
        contract=contract_import(product=product, by=owner, text=contract_yaml("2.0.0")),
        by=owner,
        confirm_breaking=True,
    )
    client.force_login(outsider)
    odcs = client.get(PAGE + "odcs.yaml")
    assert odcs["Content-Type"] == "application/yaml; charset=utf-8"
    assert odcs_validate(yaml.safe_load(odcs.content)) == []
    odps = client.get(PAGE + "odps.yaml")
    assert odps_validate(yaml.safe_load(odps.content)) == []
    version = client.get(PAGE + "2.0.0/odcs.yaml")
    assert yaml.safe_load(version.content)["version"] == "2.0.0"
    assert client.get(PAGE + "9.0.0/odcs.yaml").status_code == 404
    html = client.get(PAGE).content.decode()
    # Service levels, measured or declared, and support channels.
    assert "Data at most 26 hours old in 95% of observations" in html
    assert "Declared, not measured" in html and "3 y" in html
    assert "#orders-help" in html


def test_who_may_do_what(client, domain, product, owner, member, outsider):
    contract_import(product=product, by=owner, text=contract_yaml("1.0.0"))
    for user in (member, outsider):
        client.force_login(user)
        assert client.get(PAGE).status_code == 200
        assert (
            client.post(PAGE + "import/", {"file": upload(contract_yaml("1.1.0"))}).status_code
            == 403
        )
        assert client.get(PAGE + "1.0.0/publish/").status_code == 403
        assert client.post(PAGE + "1.0.0/publish/", {}).status_code == 403
        assert client.post(PAGE + "1.0.0/delete/").status_code == 403
    assert Contract.objects.get().status == ContractStatus.DRAFT
    client.logout()
    anonymous = client.get(PAGE)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    draft = ProductFactory(domain=domain, slug="returns", status=LifecycleStatus.DRAFT)
    client.force_login(outsider)
    assert client.get(f"/products/sales/{draft.slug}/contract/").status_code == 404
    assert client.get(f"/products/sales/{draft.slug}/contract/odcs.yaml").status_code == 404


def test_new_product_from_a_contract(client, domain, owner, outsider):
    DataSourceFactory(name="warehouse")
    client.force_login(owner)
    create = client.get("/products/new/").content.decode()
    assert "/products/new-from-contract/" in create
    page = client.get("/products/new-from-contract/")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.content.decode()
    response = client.post("/products/new-from-contract/", {"file": upload(contract_yaml())})
    assert response.status_code == 400  # no data source for its port: said where
    assert "$.schema[0]" in response.content.decode()
    source = DataSourceFactory(name="dwh")
    response = client.post(
        "/products/new-from-contract/",
        {"file": upload(contract_yaml()), "source": source.pk, "domain": domain.pk},
    )
    assert response.status_code == 302 and response["Location"] == PAGE
    product = DataProduct.objects.get()
    assert product.key == "sales.orders" and product.ports.get().source == source
    client.force_login(outsider)
    assert client.get("/products/new-from-contract/").status_code == 403


def test_the_tab_query_count_does_not_grow_with_versions(client, product, owner):
    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get(PAGE).status_code == 200
        return len(queries)

    client.force_login(owner)
    contract_import(product=product, by=owner, text=contract_yaml("1.0.0"))
    few = count()
    for minor in range(1, 8):
        contract_import(product=product, by=owner, text=contract_yaml(f"1.{minor}.0"))
    assert count() == few
