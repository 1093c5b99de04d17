"""ODPS v1.0: a product descriptor that validates against the Open Data Product Standard
schema, carries what the catalog knows (description, purpose, tags, output ports pointing
at the product's contract, support channels with a URL, owners), and the validator that
checks it accepts the standard's own examples and refuses what breaks the schema."""

import pytest
import yaml

from products.contracts.services.contracts import contract_export, contract_import, contract_publish
from products.contracts.services.documents import document_dump, document_parse, odps_validate
from products.contracts.services.odps import product_odps
from tests.factories import OutputPortFactory, ProductFactory
from tests.products.contracts.helpers import ODPS_EXAMPLES, contract_yaml, documented_product

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ODPS_EXAMPLES, ids=lambda p: p.name)
def test_the_standards_examples_validate(path):
    assert odps_validate(document_parse(path.read_bytes())) == []


def test_the_validator_lists_each_violation_with_its_path():
    document = {
        "apiVersion": "v2.0.0",
        "kind": "DataProduct",
        "status": "active",
        "outputPorts": [{"name": "x"}],
        "support": [{"channel": "help", "url": "not a url"}],
    }
    assert [p.path for p in odps_validate(document)] == [
        "$.apiVersion",
        "$.id",
        "$.outputPorts[0].version",
        "$.support[0].url",
    ]


def test_a_documented_product_as_odps(domain, owner):
    product = documented_product(domain=domain, owner=owner)
    document = product_odps(product=product)
    assert odps_validate(document) == []
    assert (document["apiVersion"], document["kind"], document["name"], document["status"]) == (
        "v1.0.0",
        "DataProduct",
        "Orders",
        "active",
    )
    assert document["domain"] == "Sales" and document["version"] == "1.0.0"
    assert document["description"]["purpose"] == product.description
    assert document["description"]["usage"] == "Revenue reporting"
    assert sorted(document["tags"]) == ["orders", "sales"]
    # Each output port points at the contract the ODCS export carries.
    contract_id = contract_export(product=product)["id"]
    assert [(p["name"], p["type"], p["contractId"]) for p in document["outputPorts"]] == [
        ("Daily totals", "files", contract_id),
        ("Order lines", "tables", contract_id),
    ]
    assert [s["channel"] for s in document["support"]] == ["#orders-help", "orders-announce"]
    assert document["team"]["members"] == [{"username": "owner", "role": "owner"}]
    assert document["authoritativeDefinitions"][0]["url"].endswith("/products/sales/orders/")
    assert document["productCreatedTs"].endswith("Z")
    assert document["id"] != contract_id


def test_output_ports_name_the_published_contract_and_version(domain, owner):
    product = ProductFactory(domain=domain, slug="orders", name="Orders", owners=[owner])
    OutputPortFactory(product=product, name="Order lines", slug="order-lines")
    contract_publish(
        contract=contract_import(product=product, by=owner, text=contract_yaml("3.1.0")),
        by=owner,
    )
    product.refresh_from_db()
    (port,) = product_odps(product=product)["outputPorts"]
    assert (port["version"], port["contractId"]) == ("3.1.0", "orders-contract")


def test_a_bare_product_is_still_a_valid_descriptor(domain):
    product = ProductFactory(domain=domain, slug="bare", name="Bare", description="", summary="")
    document = product_odps(product=product)
    assert odps_validate(document) == []
    assert document["outputPorts"] == [] and document["team"]["members"] == []
    assert "description" not in document and "support" not in document
    # The YAML text parses back to the same document.
    assert yaml.safe_load(document_dump(document)) == document
