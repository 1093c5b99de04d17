"""Shared by the contract tests: a documented product to export, ODCS YAML to import, the
ODCS examples shipped under tests/standards, and what the catalog holds, field by field."""

from __future__ import annotations

from pathlib import Path

from products.choices import CheckKind, Classification, Severity, SLOKind
from products.feedback.services.support import support_channels_set
from products.models import Check, Column, ServiceLevelObjective, SupportChannel
from products.trust.services.checks import check_create
from products.trust.services.slos import slo_create
from tests.factories import ColumnFactory, DataSourceFactory, OutputPortFactory, ProductFactory

STANDARDS = Path(__file__).resolve().parents[2] / "standards"
ODCS_EXAMPLES = sorted((STANDARDS / "odcs").glob("*.odcs.yaml"))
ODPS_EXAMPLES = sorted((STANDARDS / "odps").glob("*.odps.yaml"))


def documented_product(*, domain, owner, slug="orders", name="Orders", **fields):
    """A product with two ports (a table and a file), documented columns, every kind of
    check ODCS can carry, SLOs of each kind, support channels, tags and an owner."""
    product = ProductFactory(
        domain=domain,
        slug=slug,
        name=name,
        summary="One row per order line.",
        description="Orders placed in the web shop, **cleaned**.",
        purpose_use_case="Revenue reporting",
        purpose_intended_users="Finance analysts",
        purpose_expected_outcome="A trusted monthly revenue figure",
        version="1.0.0",
        tags=["sales", "orders"],
        owners=[owner],
        **fields,
    )
    source = DataSourceFactory(name=f"warehouse-{slug}")
    table = OutputPortFactory(
        product=product,
        name="Order lines",
        slug="order-lines",
        source=source,
        schema_name="sales",
        table_name="order_lines",
        description="One row per order line.",
    )
    OutputPortFactory(
        product=product,
        name="Daily totals",
        slug="daily-totals",
        kind="file",
        source=None,
        schema_name="",
        table_name="",
        file_path="orders/daily.parquet",
        file_format="parquet",
    )
    columns = [
        ("order_id", "BIGINT", False, True, Classification.INTERNAL, "The order."),
        ("line_no", "INTEGER", False, True, Classification.INTERNAL, ""),
        ("country", "VARCHAR(2)", True, False, Classification.PUBLIC, "ISO country code"),
        ("email", "VARCHAR", True, False, Classification.CONFIDENTIAL, "Buyer's email"),
        ("amount", "NUMERIC(12,2)", False, False, Classification.INTERNAL, "In euros"),
        ("ordered_at", "TIMESTAMP WITH TIME ZONE", False, False, Classification.INTERNAL, ""),
    ]
    for position, (col, data_type, nullable, pk, classification, description) in enumerate(columns):
        ColumnFactory(
            port=table,
            name=col,
            data_type=data_type,
            nullable=nullable,
            primary_key=pk,
            classification=classification,
            description=description,
            position=position,
        )
    checks = [
        {"name": "Order id present", "kind": CheckKind.NOT_NULL, "column": "order_id"},
        {"kind": CheckKind.UNIQUE, "column": "order_id", "severity": Severity.WARN},
        {
            "name": "Known countries",
            "kind": CheckKind.ACCEPTED_VALUES,
            "column": "country",
            "params": {"values": ["BE", "NL", "FR"]},
            "tolerance_percent": 2.5,
        },
        {"kind": CheckKind.PATTERN, "column": "email", "params": {"regex": "^[^@]+@[^@]+$"}},
        {"kind": CheckKind.RANGE, "column": "amount", "params": {"min": 0, "max": 100000}},
        {"kind": CheckKind.ROW_COUNT, "params": {"min": 10, "max": 5000000}},
        {"kind": CheckKind.FRESHNESS, "column": "ordered_at", "params": {"max_age_hours": 26}},
        {"kind": CheckKind.VOLUME_CHANGE, "params": {"max_change_percent": 30, "window": 7}},
        {
            "name": "No negative totals",
            "kind": CheckKind.CUSTOM_SQL,
            "params": {"sql": "SELECT count(*) FROM {table} WHERE amount < 0"},
            "schedule": "0 6 * * *",
        },
    ]
    for spec in checks:
        check_create(port=table, by=owner, **spec)
    slo_create(
        product=product,
        by=owner,
        kind=SLOKind.FRESHNESS,
        target_percent=95,
        threshold_hours=26,
        description="Yesterday's orders by 02:00 UTC",
    )
    slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=99.5)
    slo_create(product=product, by=owner, kind=SLOKind.QUALITY, target_percent=98)
    slo_create(
        product=product, by=owner, kind=SLOKind.FREQUENCY, target_percent=100, value="1", unit="d"
    )
    slo_create(
        product=product, by=owner, kind=SLOKind.RETENTION, target_percent=100, value="3", unit="y"
    )
    slo_create(
        product=product,
        by=owner,
        kind=SLOKind.TIME_OF_AVAILABILITY,
        target_percent=100,
        value="09:00-08:00",
    )
    support_channels_set(
        product=product,
        by=owner,
        channels=[
            {
                "channel": "#orders-help",
                "tool": "slack",
                "scope": "interactive",
                "url": "https://example.slack.com/archives/C1",
            },
            {
                "channel": "orders-announce",
                "tool": "email",
                "url": "mailto:orders@example.com",
                "description": "Changes and outages",
            },
        ],
    )
    return product


def catalog_fields(product) -> dict:
    """What the catalog holds of a product that a contract maps, without ids or keys."""
    product.refresh_from_db()
    ports = {}
    for port in product.ports.order_by("slug"):
        ports[port.slug] = {
            "name": port.name,
            "description": port.description,
            "kind": port.kind,
            "columns": list(
                Column.objects.filter(port=port)
                .order_by("position")
                .values_list(
                    "name",
                    "data_type",
                    "description",
                    "nullable",
                    "primary_key",
                    "classification",
                    "position",
                )
            ),
            "checks": list(
                Check.objects.filter(port=port, enabled=True)
                .order_by("name")
                .values_list(
                    "name",
                    "kind",
                    "column",
                    "params",
                    "tolerance_percent",
                    "severity",
                    "schedule",
                )
            ),
        }
    return {
        "product": {
            name: getattr(product, name)
            for name in (
                "summary",
                "description",
                "purpose_use_case",
                "purpose_intended_users",
                "purpose_expected_outcome",
                "version",
            )
        },
        "tags": sorted(product.tags.values_list("name", flat=True)),
        "owners": sorted(product.owners.values_list("username", flat=True)),
        "ports": ports,
        "slos": list(
            ServiceLevelObjective.objects.filter(product=product)
            .order_by("kind")
            .values_list(
                "kind", "target_percent", "threshold_hours", "value", "unit", "description"
            )
        ),
        "support": list(
            SupportChannel.objects.filter(product=product)
            .order_by("position")
            .values_list("channel", "url", "tool", "scope", "description")
        ),
    }


MINIMAL = """\
apiVersion: v3.1.0
kind: DataContract
id: orders-contract
name: Orders
version: {version}
status: active
domain: sales
schema:
  - name: Order lines
    physicalName: order_lines
    properties:
{properties}
"""

COLUMN = """\
      - name: {name}
        physicalType: {type}
        required: {required}
"""


def contract_yaml(version: str = "1.0.0", columns=None, quality: str = "") -> str:
    """A small contract: `columns` [(name, type, required)], `quality` a YAML block of
    table-level rules."""
    columns = columns or [("order_id", "BIGINT", True), ("amount", "NUMERIC", False)]
    text = MINIMAL.format(
        version=version,
        properties="".join(
            COLUMN.format(name=n, type=t, required=str(r).lower()) for n, t, r in columns
        ),
    )
    return text + quality
