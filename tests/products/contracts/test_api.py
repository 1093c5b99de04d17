"""The contract API: import by `application/yaml` body and by multipart upload, 400 with
every problem and its path, 413 for oversized bodies, 415 for other content types;
versions, the YAML downloads (ODCS of a version and of the catalog, ODPS), the diff,
publishing with its 409 for unconfirmed breaking changes, a product from a contract; each
protected endpoint anonymous, signed in without permission, with a narrowed permission
(a domain member, a grantee) and as an owner; list query counts pinned."""

from datetime import timedelta

import pytest
import yaml
from django.core import mail
from django.utils import timezone

from products.choices import ContractStatus, LifecycleStatus
from products.contracts.services.contracts import contract_import, contract_publish
from products.contracts.services.documents import odcs_validate, odps_validate
from products.models import Contract, DataProduct
from sharing.models import AccessGrant
from tests.factories import DataSourceFactory, ProductFactory, UserFactory
from tests.products.contracts.helpers import contract_yaml, documented_product

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]

API = "/api/v1/products/sales.orders"
YAML = "application/yaml"


def post_yaml(client, url, text):
    return client.post(url, data=text.encode(), content_type=YAML)


def test_import_by_yaml_body_then_read_it_back(client_as, product, owner):
    client = client_as(owner)
    response = post_yaml(client, f"{API}/contracts/", contract_yaml("1.0.0"))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["version"], body["status"], body["current"]) == ("1.0.0", "draft", False)
    assert body["created_by"] == "owner" and body["document"]["version"] == "1.0.0"
    assert body["url"].endswith("/api/v1/products/sales.orders/contracts/1.0.0/")

    listing = client.get(f"{API}/contracts/").json()
    assert [c["version"] for c in listing["results"]] == ["1.0.0"]
    detail = client.get(f"{API}/contracts/1.0.0/").json()
    assert detail["document"] == yaml.safe_load(contract_yaml("1.0.0"))

    download = client.get(f"{API}/contracts/1.0.0/odcs.yaml")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/yaml; charset=utf-8"
    assert 'filename="sales.orders-1.0.0.odcs.yaml"' in download["Content-Disposition"]
    assert yaml.safe_load(download.content) == detail["document"]


def test_import_by_multipart_upload_with_a_data_source(client_as, domain, owner):
    ProductFactory(domain=domain, name="Orders", slug="orders")  # no port yet
    source = DataSourceFactory(name="warehouse")
    client = client_as(owner)
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("orders.odcs.yaml", contract_yaml().encode(), content_type=YAML)
    response = client.post(
        f"{API}/contracts/", {"file": upload, "source": "warehouse"}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    assert Contract.objects.get().default_source == source


def test_other_content_types_are_refused_with_415(client_as, product, owner):
    response = client_as(owner).post(f"{API}/contracts/", {"version": "1.0.0"}, format="json")
    assert response.status_code == 415
    assert not Contract.objects.exists()


def test_yaml_that_does_not_parse_answers_400_with_where(client_as, product, owner):
    response = post_yaml(client_as(owner), f"{API}/contracts/", "version: [1.0\nkind: x")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("The contract was not imported: 1 problem")
    (problem,) = body["problems"]
    assert problem["path"] == "$" and "line 2" in problem["message"]
    assert not Contract.objects.exists()


def test_schema_violations_answer_400_listing_each_with_its_path(client_as, product, owner):
    text = (
        contract_yaml()
        .replace("kind: DataContract", "kind: Contract")
        .replace("required: true", "required: sometimes")
    )
    response = post_yaml(client_as(owner), f"{API}/contracts/", text)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "The contract does not follow ODCS v3.1: 2 problems."
    assert [p["path"] for p in body["problems"]] == [
        "$.kind",
        "$.schema[0].properties[0].required",
    ]
    assert not Contract.objects.exists()


def test_oversized_bodies_are_refused_with_413(client_as, product, owner):
    big = contract_yaml() + "# " + "x" * (1024 * 1024 + 10) + "\n"
    response = post_yaml(client_as(owner), f"{API}/contracts/", big)
    assert response.status_code == 413
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("big.yaml", big.encode(), content_type=YAML)
    response = client_as(owner).post(f"{API}/contracts/", {"file": upload}, format="multipart")
    assert response.status_code == 413
    assert not Contract.objects.exists()


def test_a_multipart_upload_without_a_file_names_the_field(client_as, product, owner):
    response = client_as(owner).post(f"{API}/contracts/", {"source": "x"}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


def test_an_unknown_data_source_names_the_field(client_as, product, owner):
    response = client_as(owner).post(
        f"{API}/contracts/?source=nowhere", data=contract_yaml().encode(), content_type=YAML
    )
    assert response.status_code == 400 and "nowhere" in response.json()["source"][0]


def test_diff_and_publish_with_confirmation(
    client_as, product, owner, django_capture_on_commit_callbacks
):
    client = client_as(owner)
    reader = UserFactory(username="reader")
    AccessGrant.objects.create(
        product=product, user=reader, expires_at=timezone.now() + timedelta(days=9)
    )
    post_yaml(client, f"{API}/contracts/", contract_yaml("1.0.0"))
    assert client.post(f"{API}/contracts/1.0.0/publish/", {}, format="json").status_code == 200
    narrower = [("order_id", "BIGINT", True)]
    assert (
        post_yaml(client, f"{API}/contracts/", contract_yaml("2.0.0", narrower)).status_code == 201
    )

    diff = client.get(f"{API}/contracts/diff/?from=1.0.0&to=2.0.0")
    assert diff.status_code == 200
    body = diff.json()
    assert body["breaking"] is True
    assert [(c["kind"], c["subject"], c["breaking"]) for c in body["changes"]] == [
        ("column_removed", "Order lines.amount", True)
    ]
    assert client.get(f"{API}/contracts/diff/?from=1.0.0").status_code == 400
    assert client.get(f"{API}/contracts/diff/?from=1.0.0&to=9.9.9").status_code == 404

    refused = client.post(f"{API}/contracts/2.0.0/publish/", {}, format="json")
    assert refused.status_code == 409
    assert refused.json()["breaking_changes"][0]["kind"] == "column_removed"
    assert Contract.objects.get(version="2.0.0").status == ContractStatus.DRAFT
    with django_capture_on_commit_callbacks(execute=True):
        published = client.post(
            f"{API}/contracts/2.0.0/publish/", {"confirm_breaking": True}, format="json"
        )
    assert published.status_code == 200
    assert published.json()["current"] is True
    assert published.json()["breaking_changes"][0]["subject"] == "Order lines.amount"
    assert [m.to for m in mail.outbox] == [["reader@example.com"]]
    bad = client.post(f"{API}/contracts/2.0.0/publish/", {"confirm": True}, format="json")
    assert bad.status_code == 400 and "confirm" in bad.json()


def test_delete_a_draft_not_a_published_version(client_as, product, owner):
    client = client_as(owner)
    post_yaml(client, f"{API}/contracts/", contract_yaml("1.0.0"))
    client.post(f"{API}/contracts/1.0.0/publish/", {}, format="json")
    post_yaml(client, f"{API}/contracts/", contract_yaml("1.1.0"))
    assert client.delete(f"{API}/contracts/1.0.0/").status_code == 400
    assert client.delete(f"{API}/contracts/1.1.0/").status_code == 204
    assert list(Contract.objects.values_list("version", flat=True)) == ["1.0.0"]


def test_catalog_exports_download_as_yaml_that_validates(client_as, domain, owner, outsider):
    documented_product(domain=domain, owner=owner)
    client = client_as(outsider)  # a published product's metadata: any signed-in user
    odcs = client.get(f"{API}/odcs.yaml")
    assert odcs.status_code == 200 and odcs["Content-Type"].startswith(YAML)
    assert 'filename="sales.orders.odcs.yaml"' in odcs["Content-Disposition"]
    assert odcs_validate(yaml.safe_load(odcs.content)) == []
    odps = client.get(f"{API}/odps.yaml")
    assert odps.status_code == 200 and odps["Content-Type"].startswith(YAML)
    assert odps_validate(yaml.safe_load(odps.content)) == []


def test_a_product_is_created_from_a_contract_by_api(client_as, domain, owner):
    source = DataSourceFactory(name="warehouse")
    response = client_as(owner).post(
        "/api/v1/contracts/?source=warehouse", data=contract_yaml().encode(), content_type=YAML
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["product"] == "sales.orders"
    assert body["product_url"].endswith("/api/v1/products/sales.orders/")
    assert body["contract"]["status"] == "published" and body["contract"]["current"] is True
    product = DataProduct.objects.get()
    assert product.status == LifecycleStatus.DRAFT
    assert product.ports.get().source == source


def test_creating_from_a_contract_reports_problems_and_permissions(
    client_as, domain, owner, member
):
    # No data source for the port, and a domain the contract does not name: 400 each.
    response = client_as(owner).post(
        "/api/v1/contracts/", data=contract_yaml().encode(), content_type=YAML
    )
    assert response.status_code == 400
    assert response.json()["problems"][0]["path"] == "$.schema[0]"
    response = client_as(owner).post(
        "/api/v1/contracts/?domain=nowhere", data=contract_yaml().encode(), content_type=YAML
    )
    assert response.status_code == 400 and "domain" in response.json()
    # A member (not an owner or steward) of the domain: 403.
    DataSourceFactory(name="warehouse")
    response = client_as(member).post(
        "/api/v1/contracts/?source=warehouse", data=contract_yaml().encode(), content_type=YAML
    )
    assert response.status_code == 403
    assert not DataProduct.objects.exists()


def test_anonymous_requests_are_refused(api_client, product):
    for url in (f"{API}/contracts/", f"{API}/odcs.yaml", f"{API}/odps.yaml"):
        assert api_client.get(url).status_code == 401
    assert post_yaml(api_client, f"{API}/contracts/", contract_yaml()).status_code == 401
    assert post_yaml(api_client, "/api/v1/contracts/", contract_yaml()).status_code == 401


def test_permissions_four_ways(client_as, domain, product, owner, steward, member, outsider):
    """Outsider: reads a published product's contracts, never imports or publishes; a
    draft product is a 404. A domain member sees drafts but may not change them. A
    grantee reads, no more. Owners and stewards import and publish."""
    contract = contract_import(product=product, by=owner, text=contract_yaml("1.0.0"))
    grantee = UserFactory(username="grantee")
    AccessGrant.objects.create(
        product=product, user=grantee, expires_at=timezone.now() + timedelta(days=9)
    )
    for user in (outsider, member, grantee):
        client = client_as(user)
        assert client.get(f"{API}/contracts/").status_code == 200
        assert client.get(f"{API}/contracts/1.0.0/").status_code == 200
        assert post_yaml(client, f"{API}/contracts/", contract_yaml("1.1.0")).status_code == 403
        assert client.post(f"{API}/contracts/1.0.0/publish/", {}, format="json").status_code == 403
        assert client.delete(f"{API}/contracts/1.0.0/").status_code == 403
    contract.refresh_from_db()
    assert contract.status == ContractStatus.DRAFT

    assert (
        post_yaml(client_as(steward), f"{API}/contracts/", contract_yaml("1.1.0")).status_code
        == 201
    )
    assert (
        client_as(owner).post(f"{API}/contracts/1.1.0/publish/", {}, format="json").status_code
        == 200
    )

    draft = ProductFactory(domain=domain, slug="returns", status=LifecycleStatus.DRAFT)
    contract_import(
        product=draft,
        by=owner,
        text=contract_yaml("1.0.0").replace("Order lines", "Returns"),
        default_source=DataSourceFactory(),
    )
    hidden = "/api/v1/products/sales.returns"
    client = client_as(outsider)
    for url in (
        f"{hidden}/contracts/",
        f"{hidden}/contracts/1.0.0/",
        f"{hidden}/odcs.yaml",
        f"{hidden}/odps.yaml",
        f"{hidden}/contracts/1.0.0/odcs.yaml",
    ):
        assert client.get(url).status_code == 404, url
    assert post_yaml(client, f"{hidden}/contracts/", contract_yaml("2.0.0")).status_code == 404
    assert client_as(member).get(f"{hidden}/contracts/").status_code == 200


def test_list_query_count_is_pinned(client_as, product, owner, django_assert_max_num_queries):
    for minor in range(12):
        contract = contract_import(product=product, by=owner, text=contract_yaml(f"1.{minor}.0"))
        if minor % 3 == 0:
            contract_publish(contract=contract, by=owner)
    client = client_as(owner)
    # product (+ its tags and owners), the current version, count, page: however many
    with django_assert_max_num_queries(6):
        response = client.get(f"{API}/contracts/")
    assert response.status_code == 200 and response.json()["count"] == 12
    assert sum(c["current"] for c in response.json()["results"]) == 1


def test_the_openapi_schema_documents_the_contract_endpoints(tmp_path):
    from django.core.management import call_command

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    paths = yaml.safe_load(path.read_text())["paths"]
    upload = paths["/api/v1/products/{product_key}/contracts/"]["post"]["requestBody"]["content"]
    assert {"application/yaml", "multipart/form-data"} <= set(upload)
    assert "400" in paths["/api/v1/products/{product_key}/contracts/"]["post"]["responses"]
    for download in (
        "/api/v1/products/{product_key}/odcs.yaml",
        "/api/v1/products/{product_key}/odps.yaml",
        "/api/v1/products/{product_key}/contracts/{version}/odcs.yaml",
    ):
        assert set(paths[download]["get"]["responses"]["200"]["content"]) == {YAML}
    publish = paths["/api/v1/products/{product_key}/contracts/{version}/publish/"]["post"]
    assert "409" in publish["responses"]
    assert "/api/v1/contracts/" in paths
    assert "/api/v1/products/{product_key}/contracts/diff/" in paths


def test_primary_keys_declared_by_a_contract_show_in_the_columns_api(client_as, product, owner):
    text = contract_yaml("1.0.0").replace(
        "      - name: order_id\n", "      - name: order_id\n        primaryKey: true\n"
    )
    contract_publish(contract=contract_import(product=product, by=owner, text=text), by=owner)
    columns = client_as(owner).get(f"{API}/ports/order-lines/columns/").json()
    rows = columns["results"] if isinstance(columns, dict) else columns
    assert [(c["name"], c["primary_key"], c["nullable"]) for c in rows] == [
        ("order_id", True, False),
        ("amount", False, True),
    ]
