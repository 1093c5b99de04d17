"""Contracts in ODCS v3.1 through their services: import (parse, validate, map, nothing
stored on a problem), export that validates and round-trips, a product created from a
contract alone, and every ODCS example shipped with the standard."""

import pytest
import yaml
from django.core.exceptions import PermissionDenied

from products.choices import CheckKind, ContractStatus, SLOKind
from products.contracts.services.contracts import (
    BreakingChangesUnconfirmed,
    ContractInvalid,
    ContractTooLarge,
    contract_export,
    contract_import,
    contract_publish,
    product_create_from_contract,
)
from products.contracts.services.documents import document_parse, odcs_validate
from products.contracts.services.mapping import contract_map
from products.models import Contract, DataProduct, StorageAllowance
from tests.factories import (
    DataSourceFactory,
    DomainFactory,
    MembershipFactory,
    ProductFactory,
    source_allowance,
)
from tests.products.contracts.helpers import (
    ODCS_EXAMPLES,
    STANDARDS,
    catalog_fields,
    contract_yaml,
    documented_product,
)


@pytest.fixture
def product(domain, owner):
    return documented_product(domain=domain, owner=owner)


def test_export_validates_and_round_trips_through_a_new_product(product, owner):
    document = contract_export(product=product)
    assert odcs_validate(document) == []
    text = yaml.safe_dump(document, sort_keys=False)
    # Into another domain, as a new product: the same mapped fields come back.
    other = DomainFactory(name="Finance", slug="finance")
    MembershipFactory(domain=other, user=owner)
    # An admin made what the ports read available to Finance too (sources belong to domains).
    for port in product.ports.all():
        if port.source_id:
            source_allowance(source=port.source, domain=other)
        else:
            StorageAllowance.objects.create(domain=other, path=port.file_path)
    contract = product_create_from_contract(by=owner, text=text, domain=other)
    copy = contract.product
    assert copy.domain == other and copy.name == "Orders" and copy.key == "finance.orders"
    assert contract.status == ContractStatus.PUBLISHED and contract.version == "1.0.0"
    assert catalog_fields(copy) == catalog_fields(product)
    # The copy exports to the same document, but for its domain and its (draft) status.
    again = contract_export(product=copy)
    assert (again["domain"], again["team"]["name"], again["status"]) == (
        "finance",
        "Finance",
        "draft",
    )
    different = {"domain", "team", "status", "contractCreatedTs"}
    assert {k: v for k, v in again.items() if k not in different} == {
        k: v for k, v in document.items() if k not in different
    }


# --- every ODCS example of the standard ------------------------------------------------

EXAMPLE_NAMES = [path.name for path in ODCS_EXAMPLES]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_odcs_example_imports_into_a_product(name, domain, owner, media_root):
    """Each example validates and imports as a draft, then publishes onto the catalog;
    new ports are created on the data source chosen at import (the examples name servers
    the portal does not know)."""
    source = DataSourceFactory(name="warehouse")
    product = ProductFactory(domain=domain, slug="example", name="Example", owners=[owner])
    text = (STANDARDS / "odcs" / name).read_bytes()
    contract = contract_import(product=product, by=owner, text=text, default_source=source)
    assert contract.status == ContractStatus.DRAFT
    assert contract.document == document_parse(text)
    contract_publish(contract=contract, by=owner)
    mapping = contract_map(contract.document)
    ports = {port.slug: port for port in product.ports.all()}
    assert set(ports) == {port.slug for port in mapping.ports}
    for mapped in mapping.ports:
        port = ports[mapped.slug]
        assert port.source == source and port.table_name == mapped.table_name
        assert list(port.columns.order_by("position").values_list("name", flat=True)) == [
            c.name for c in mapped.columns
        ]
        assert set(port.checks.values_list("name", flat=True)) == {c.name for c in mapped.checks}
    product.refresh_from_db()
    assert product.version == contract.version


def test_the_examples_map_as_documented(domain, owner):
    """What the portal makes of the examples' quality rules and SLA properties, and what
    it keeps in the contract only."""

    def mapped(name):
        return contract_map(document_parse((STANDARDS / "odcs" / name).read_bytes()))

    completeness = mapped("column-completeness.odcs.yaml")
    (column,) = completeness.ports[0].columns
    assert (column.name, column.data_type, column.primary_key) == ("UniqueID", "int", True)
    (check,) = completeness.ports[0].checks
    assert (check.kind, check.column, check.tolerance_percent, check.schedule) == (
        CheckKind.NOT_NULL,
        "UniqueID",
        0.0,
        "0 20 * * *",
    )

    validity = mapped("column-validity.odcs.yaml")
    (check,) = validity.ports[0].checks
    assert (check.kind, check.params, check.tolerance_percent) == (
        CheckKind.ACCEPTED_VALUES,
        {"values": ["", "n/a"]},
        5.0,
    )
    assert any("null among validValues" in note.message for note in validity.unmapped)

    custom = mapped("column-custom.odcs.yaml")
    assert custom.ports[0].checks == []
    assert [n.path for n in custom.unmapped if "soda" in n.message] == [
        "$.schema[0].properties[0].quality[0]",
        "$.schema[0].properties[0].quality[1]",
    ]

    sla = mapped("database-table-sla.odcs.yaml")
    slos = {slo.kind: slo for slo in sla.slos}
    assert (
        slos[SLOKind.FRESHNESS].threshold_hours,
        slos[SLOKind.FRESHNESS].value,
        slos[SLOKind.FRESHNESS].unit,
    ) == (96.0, "4", "d")
    assert (slos[SLOKind.RETENTION].value, slos[SLOKind.RETENTION].unit) == ("3", "y")
    assert (slos[SLOKind.FREQUENCY].value, slos[SLOKind.FREQUENCY].unit) == ("1", "d")
    assert slos[SLOKind.TIME_OF_AVAILABILITY].value == "09:00-08:00"
    assert {n.path for n in sla.unmapped} == {
        "$.slaProperties[1]",
        "$.slaProperties[2]",
        "$.slaProperties[3]",
        "$.slaProperties[7]",
    }

    full = mapped("full-example.odcs.yaml")
    assert (full.name, full.domain, full.version, full.owners) == (
        "my quantum",
        "seller",
        "1.1.0",
        ["daustin"],
    )
    assert full.product == {
        "description": "Views built on top of the seller tables.",
        "purpose_use_case": "Predict sales over time",
    }
    tbl = full.ports[0]
    assert [(c.name, c.classification, c.primary_key) for c in tbl.columns] == [
        ("transaction_reference_date", "public", False),
        ("rcvr_id", "restricted", True),
        ("rcvr_cntry_code", "public", False),
    ]
    row_count = next(c for c in tbl.checks if c.kind == CheckKind.ROW_COUNT)
    assert row_count.params == {"min": 1000001}  # mustBeGreaterThan: 1000000
    assert [s.channel for s in full.support] == [
        "#product-help",
        "datacontract-ann",
        "Feedback",
        "product-issues",
    ]
    assert {"$.price", "$.roles", "$.tenant"} <= {n.path for n in full.unmapped}


def test_a_product_is_created_from_a_contract_alone(domain, owner):
    """The full example names its domain and product: nothing else is needed, but a data
    source for its ports (its server is not registered here)."""
    seller = DomainFactory(name="Seller", slug="seller")
    MembershipFactory(domain=seller, user=owner)
    text = (STANDARDS / "odcs" / "full-example.odcs.yaml").read_bytes()
    source = DataSourceFactory(name="warehouse")
    contract = product_create_from_contract(by=owner, text=text, default_source=source)
    product = DataProduct.objects.get(pk=contract.product_id)
    assert (product.key, product.name, product.status, product.version) == (
        "seller.my-quantum",
        "my quantum",
        "draft",
        "1.1.0",
    )
    assert product.description == "Views built on top of the seller tables."
    assert list(product.tags.values_list("name", flat=True)) == ["transactions"]
    assert list(product.owners.all()) == [owner]  # daustin is no portal user: noted
    assert sorted(product.ports.values_list("slug", flat=True)) == ["receivers", "tbl"]
    assert product.support_channels.count() == 4
    assert set(product.slos.values_list("kind", flat=True)) == {
        "freshness",
        "retention",
        "frequency",
        "time_of_availability",
    }
    assert contract.status == ContractStatus.PUBLISHED


def test_creating_from_a_contract_needs_a_domain_and_a_name(owner):
    text = (STANDARDS / "odcs" / "postgresql-adventureworks-contract.odcs.yaml").read_bytes()
    with pytest.raises(ContractInvalid) as refused:
        product_create_from_contract(by=owner, text=text)
    assert {p.path for p in refused.value.problems} == {"$.domain", "$.name"}
    assert not DataProduct.objects.exists() and not Contract.objects.exists()


def test_creating_from_a_contract_in_a_domain_one_does_not_manage_is_refused(domain, outsider):
    with pytest.raises(PermissionDenied):
        product_create_from_contract(by=outsider, text=contract_yaml(), domain=domain)
    assert not DataProduct.objects.exists()


def test_a_missing_data_source_is_reported_and_nothing_is_created(domain, owner):
    with pytest.raises(ContractInvalid) as refused:
        product_create_from_contract(by=owner, text=contract_yaml(), domain=domain)
    (problem,) = refused.value.problems
    assert problem.path == "$.schema[0]" and "choose a data source" in problem.message
    assert not DataProduct.objects.exists() and not Contract.objects.exists()


def test_a_server_naming_a_registered_source_places_new_ports_there(domain, owner):
    source = DataSourceFactory(name="dwh", kind="postgresql", database="dwh", host="db.internal")
    text = contract_yaml() + (
        "servers:\n  - server: production\n    type: postgresql\n    host: db.internal\n"
        "    port: 5432\n    database: dwh\n    schema: sales\n"
    )
    contract = product_create_from_contract(by=owner, text=text, domain=domain)
    port = contract.product.ports.get()
    assert (port.source, port.schema_name, port.table_name) == (source, "sales", "order_lines")


# --- bad input: nothing stored ---------------------------------------------------------


def _unchanged(product):
    before = catalog_fields(product)
    return lambda: catalog_fields(product) == before and not Contract.objects.exists()


def test_yaml_that_does_not_parse_is_refused_with_its_line(product, owner):
    unchanged = _unchanged(product)
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text="version: 1.0.0\nschema: [\n  - name")
    (problem,) = refused.value.problems
    assert problem.path == "$" and "does not parse at line" in problem.message
    assert unchanged()


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("- a\n- b\n", "not a list"),
        ("a: !!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
        (b"version: \xff\xfe\n", "not UTF-8"),
        ("version: .nan\n", "NaN"),
    ],
)
def test_what_is_not_a_json_document_is_refused(product, owner, text, message):
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text=text)
    assert message in refused.value.problems[0].message
    assert not Contract.objects.exists()


def test_a_yaml_alias_bomb_is_refused_without_expanding_it(product, owner):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text="\n".join(lines))
    assert "more than 200,000 values" in refused.value.problems[0].message


def test_every_schema_violation_is_listed_with_its_path(product, owner):
    unchanged = _unchanged(product)
    text = """\
apiVersion: v9.9.9
kind: DataContract
version: 2.0.0
status: active
schema:
  - name: Order lines
    properties:
      - name: order_id
        required: "yes"
        quality:
          - metric: nullValues
            mustBe: 0
            mustBeLessThan: 1
      - physicalType: int
team:
  - role: owner
"""
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text=text)
    paths = [p.path for p in refused.value.problems]
    assert paths == [
        "$.apiVersion",
        "$.id",
        "$.schema[0].properties[0].quality[0]",
        "$.schema[0].properties[0].required",
        "$.schema[0].properties[1].name",
        "$.team[0].username",
    ]
    messages = {p.path: p.message for p in refused.value.problems}
    assert "'yes' is not of type 'boolean'" in messages["$.schema[0].properties[0].required"]
    assert "'id' is a required property" in messages["$.id"]
    assert messages["$.schema[0].properties[0].quality[0]"] == (
        "Give only one of mustBe, mustBeLessThan."
    )
    assert refused.value.summary == "The contract does not follow ODCS v3.1: 6 problems."
    assert unchanged()


def test_what_the_catalog_refuses_is_listed_with_its_path(product, owner):
    """Problems only the catalog's own services find (a custom SQL check that writes, a
    support URL, a version that is not semantic, a unit that is unknown) are collected in
    one pass, and nothing is stored."""
    unchanged = _unchanged(product)
    text = contract_yaml(
        version="2.0.0",
        quality=(
            "    quality:\n"
            "      - type: sql\n"
            "        query: DELETE FROM ${object}\n"
            "        mustBe: 0\n"
            "      - metric: rowCount\n"
            "        mustBeGreaterThan: 10\n"
            "        schedule: every day\n"
        ),
    ) + (
        "support:\n  - channel: help\n    url: ftp://example.com/help\n"
        "slaProperties:\n  - property: latency\n    value: 4\n    unit: fortnights\n"
    )
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text=text)
    assert [p.path for p in refused.value.problems] == ["$.slaProperties[0].unit"]
    # With the unit fixed, the catalog's own checks find the rest, all at once.
    text = text.replace("fortnights", "d")
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text=text)
    problems = {p.path: p.message for p in refused.value.problems}
    assert set(problems) == {
        "$.schema[0].quality[0]",
        "$.schema[0].quality[1]",
        "$.support[0].url",
    }
    assert "Only a SELECT query is allowed" in problems["$.schema[0].quality[0]"]
    assert "schedule" in problems["$.schema[0].quality[1]"]
    assert unchanged()


def test_a_version_must_be_semantic_and_new(product, owner):
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text=contract_yaml(version="v2"))
    assert [p.path for p in refused.value.problems] == ["$.version"]
    contract_import(product=product, by=owner, text=contract_yaml(version="2.0.0"))
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text=contract_yaml(version="2.0.0"))
    assert "exists already" in refused.value.problems[0].message
    assert Contract.objects.count() == 1


def test_an_oversized_contract_is_refused(product, owner):
    text = contract_yaml() + "# " + "x" * (1024 * 1024) + "\n"
    with pytest.raises(ContractTooLarge):
        contract_import(product=product, by=owner, text=text.encode())
    assert not Contract.objects.exists()


# --- import, then publish ----------------------------------------------------------------


def test_import_stores_a_draft_and_publishing_applies_it(product, owner):
    before = catalog_fields(product)
    contract = contract_import(product=product, by=owner, text=contract_yaml(version="1.1.0"))
    assert contract.status == ContractStatus.DRAFT and contract.created_by == owner
    assert catalog_fields(product) == before  # a draft changes nothing
    # The first contract is compared with the catalog: it drops four documented columns
    # and declares amount NUMERIC where the catalog says NUMERIC(12,2).
    with pytest.raises(BreakingChangesUnconfirmed) as unconfirmed:
        contract_publish(contract=contract, by=owner)
    assert unconfirmed.value.current == "the catalog"
    assert sorted((c.kind, c.subject) for c in unconfirmed.value.changes) == [
        ("column_removed", "Order lines.country"),
        ("column_removed", "Order lines.email"),
        ("column_removed", "Order lines.line_no"),
        ("column_removed", "Order lines.ordered_at"),
        ("type_changed", "Order lines.amount"),
    ]
    assert catalog_fields(product) == before
    contract_publish(contract=contract, by=owner, confirm_breaking=True)
    after = catalog_fields(product)
    assert after["product"]["version"] == "1.1.0"
    port = after["ports"]["order-lines"]
    assert [c[:4] for c in port["columns"]] == [
        ("order_id", "BIGINT", "The order.", False),
        ("amount", "NUMERIC", "In euros", True),
    ] or [c[:2] for c in port["columns"]] == [("order_id", "BIGINT"), ("amount", "NUMERIC")]
    # The contract names no quality rule for this port: its checks stop running, their
    # history stays; it names no SLA, support or description: those are left alone.
    assert port["checks"] == []
    assert product.ports.get(slug="order-lines").checks.filter(enabled=False).count() == 9
    assert after["slos"] == before["slos"] and after["support"] == before["support"]
    assert after["ports"]["daily-totals"] == before["ports"]["daily-totals"]
    assert after["product"]["description"] == before["product"]["description"]


def test_only_editors_import_and_publish(product, owner, member, outsider):
    for user in (member, outsider):
        with pytest.raises(PermissionDenied):
            contract_import(product=product, by=user, text=contract_yaml(version="2.0.0"))
    contract = contract_import(product=product, by=owner, text=contract_yaml(version="2.0.0"))
    with pytest.raises(PermissionDenied):
        contract_publish(contract=contract, by=member)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.DRAFT
