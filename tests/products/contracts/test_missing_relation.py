"""A contract whose port names a relation its source does not have is refused, naming the
relation, unless the owner says explicitly to import it anyway: then the port is added
with a warning kept in the version's notes (service, API, page)."""

import duckdb
import pytest

from products.contracts.services.contracts import (
    contract_import,
    contract_publish,
    product_create_from_contract,
)
from products.contracts.services.documents import ContractInvalid
from products.models import Contract, OutputPort
from tests.factories import DataSourceFactory, ProductFactory, source_allowance
from tests.products.contracts.helpers import contract_yaml

CONTRACTS_API = "/api/v1/products/sales.orders/contracts/"
IMPORT_PAGE = "/products/sales/orders/contract/import/"


@pytest.fixture
def product(domain, owner):
    return ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])


@pytest.fixture
def warehouse(tmp_path, domain):
    """A DuckDB warehouse with `main.order_lines` (what the contract's schema object
    names) and nothing else; Sales may use its `main` schema."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE main.order_lines (order_id BIGINT, amount DECIMAL(12, 2))")
    source = DataSourceFactory(name="warehouse", path=str(path), domains=[])
    source_allowance(source=source, domain=domain, schema_name="main")
    return source


def missing_yaml(version="1.0.0") -> str:
    """The contract's table is `order_lines`; this one names `order_lines_v2`, which the
    warehouse does not have."""
    return contract_yaml(version).replace(
        "physicalName: order_lines", "physicalName: order_lines_v2"
    )


def test_an_existing_relation_imports_without_a_word(product, owner, warehouse):
    contract = contract_import(
        product=product, by=owner, text=contract_yaml(), default_source=warehouse
    )
    assert not [n for n in contract.unmapped if "order_lines" in n["message"]]
    contract_publish(contract=contract, by=owner)
    assert product.ports.get().table_name == "order_lines"


def test_a_missing_relation_is_refused_naming_it(product, owner, warehouse):
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text=missing_yaml(), default_source=warehouse)
    (problem,) = refused.value.problems
    assert problem.path == "$.schema[0]"
    assert "The relation main.order_lines_v2 does not exist on data source 'warehouse'" in (
        problem.message
    )
    assert "allow missing relations" in problem.message
    assert not Contract.objects.exists() and not OutputPort.objects.exists()


def test_allowed_explicitly_it_is_imported_with_a_warning_and_published(product, owner, warehouse):
    contract = contract_import(
        product=product,
        by=owner,
        text=missing_yaml(),
        default_source=warehouse,
        allow_missing_relations=True,
    )
    (warning,) = [n for n in contract.unmapped if n["message"].startswith("Warning:")]
    assert warning["path"] == "$.schema[0]"
    assert "main.order_lines_v2 does not exist on data source 'warehouse'" in warning["message"]
    assert not OutputPort.objects.exists()  # a draft: nothing applied yet
    # Publishing keeps to what was allowed at import, without asking again.
    contract_publish(contract=contract, by=owner)
    port = product.ports.get()
    assert (port.schema_name, port.table_name) == ("", "order_lines_v2")
    contract.refresh_from_db()
    assert [n for n in contract.unmapped if n["message"].startswith("Warning:")] == [warning]


def test_a_new_product_from_a_contract_follows_the_same_rule(domain, owner, warehouse):
    with pytest.raises(ContractInvalid) as refused:
        product_create_from_contract(
            by=owner, text=missing_yaml(), domain=domain, default_source=warehouse
        )
    assert "order_lines_v2 does not exist" in refused.value.problems[0].message
    assert not OutputPort.objects.exists()
    contract = product_create_from_contract(
        by=owner,
        text=missing_yaml(),
        domain=domain,
        default_source=warehouse,
        allow_missing_relations=True,
    )
    assert contract.product.ports.get().table_name == "order_lines_v2"
    assert any(n["message"].startswith("Warning:") for n in contract.unmapped)


def test_a_source_that_does_not_answer_is_noted_not_refused(product, owner, domain):
    gone = DataSourceFactory(name="gone", path="/nonexistent/gone.duckdb", domains=[domain])
    contract = contract_import(product=product, by=owner, text=missing_yaml(), default_source=gone)
    assert any(
        "Could not check that the relation" in n["message"]
        and "'gone' did not answer" in n["message"]
        for n in contract.unmapped
    )


def test_a_relation_the_domain_may_not_use_is_not_probed(product, owner, tmp_path):
    """The allowance is checked first: the refusal says the schema is not allowed, never
    whether a relation exists there."""
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE main.order_lines (id INT)")
    other = DataSourceFactory(name="other", path=str(path), domains=[])
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text=missing_yaml(), default_source=other)
    (problem,) = refused.value.problems
    assert "is not available to the Sales domain" in problem.message
    assert "does not exist" not in problem.message


def test_the_api_refuses_and_takes_the_flag(api_client, product, owner, warehouse, outsider):
    headers = {"content_type": "application/yaml"}
    url = f"{CONTRACTS_API}?source=warehouse"
    assert api_client.post(url, missing_yaml(), **headers).status_code == 401
    api_client.force_authenticate(outsider)
    assert api_client.post(url, missing_yaml(), **headers).status_code in (403, 404)
    api_client.force_authenticate(owner)
    response = api_client.post(url, missing_yaml(), **headers)
    assert response.status_code == 400
    assert "order_lines_v2 does not exist" in str(response.json())
    assert not Contract.objects.exists()
    response = api_client.post(f"{url}&allow_missing_relations=true", missing_yaml(), **headers)
    assert response.status_code == 201, response.json()
    notes = [n for n in response.json()["unmapped"] if n["message"].startswith("Warning:")]
    assert len(notes) == 1 and "order_lines_v2 does not exist" in notes[0]["message"]


def test_the_contract_tab_form_refuses_and_takes_the_flag(client, product, owner, warehouse):
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload():
        return SimpleUploadedFile("c.odcs.yaml", missing_yaml().encode(), "application/yaml")

    client.force_login(owner)
    page = client.get("/products/sales/orders/contract/")
    assert b'name="allow_missing_relations"' in page.content
    response = client.post(IMPORT_PAGE, {"file": upload(), "source": warehouse.pk})
    assert response.status_code == 400
    assert "order_lines_v2 does not exist" in response.content.decode()
    assert not Contract.objects.exists()
    response = client.post(
        IMPORT_PAGE, {"file": upload(), "source": warehouse.pk, "allow_missing_relations": "on"}
    )
    assert response.status_code == 302
    contract = Contract.objects.get()
    assert any(n["message"].startswith("Warning:") for n in contract.unmapped)
    page = client.get("/products/sales/orders/contract/")
    assert "order_lines_v2 does not exist" in page.content.decode()
