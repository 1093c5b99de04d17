"""The demo's stream port: Sales' "Live orders", orders as the shop's checkout publishes
them on NATS JetStream (stream SALES_LIVE_ORDERS, subject sales.live-orders), fed by
`products.demo.stream_producer`, which `make run` starts.

Seeding declares the port and its columns (no NATS server is needed to seed); the producer
creates the stream when it is missing.
"""

from __future__ import annotations

from products.catalog.services.ports import column_update, output_port_create
from products.catalog.services.products import product_create, product_publish
from products.catalog.services.schema_refresh import schema_apply_columns
from products.choices import Classification, LifecycleStatus, PortKind
from products.connectors.base import ColumnInfo
from products.demo.stream_producer import STREAM_NAME, SUBJECT
from products.models import DataProduct, Domain

PRODUCT_SLUG = "live-orders"

# name, type, nullable, classification, description
COLUMNS = (
    ("order_id", "bigint", False, Classification.INTERNAL, "The order's number."),
    ("placed_at", "timestamptz", False, Classification.INTERNAL, "When the order was placed."),
    ("country", "text", False, Classification.PUBLIC, "Shipping country, ISO 3166 code."),
    ("channel", "text", False, Classification.PUBLIC, "web, app or store."),
    ("amount", "double", False, Classification.INTERNAL, "Order total in EUR."),
    ("customer_email", "text", True, Classification.CONFIDENTIAL, "The buyer's e-mail."),
)


def live_orders_seed(*, domain: Domain, admin, owners) -> tuple[DataProduct, bool]:
    """The Live orders product and its stream port (created once); (product, created)."""
    product = DataProduct.objects.filter(domain=domain, slug=PRODUCT_SLUG).first()
    if product is not None:
        return product, False
    product = product_create(
        domain=domain,
        name="Live orders",
        slug=PRODUCT_SLUG,
        by=admin,
        tags=["orders", "streaming"],
        owners=owners,
        summary="Orders as they are placed, seconds after checkout: a NATS JetStream stream.",
        description=(
            "Every order the web shop, the app and the stores place, published by checkout "
            "on the `sales.live-orders` subject. Follow it on the Data tab, with "
            "`GET /api/v1/products/sales.live-orders/stream/`, or "
            '`Portal().stream("sales.live-orders")` in a notebook. Kept for a day.'
        ),
        purpose_use_case="React to orders as they happen: live sales dashboards, stock "
        "alerts, fraud screening.",
        purpose_intended_users="Sales operations, store managers, the fraud team.",
        purpose_expected_outcome="Decisions on today's orders within seconds, not tomorrow.",
    )
    port = output_port_create(
        product=product,
        by=admin,
        name="Orders stream",
        kind=PortKind.STREAM,
        stream_name=STREAM_NAME,
        stream_subject=SUBJECT,
        description="JSON objects, one per order.",
    )
    schema_apply_columns(
        port=port,
        columns=[
            ColumnInfo(name=name, data_type=data_type, nullable=nullable, position=position)
            for position, (name, data_type, nullable, _, _) in enumerate(COLUMNS)
        ],
    )
    docs = {name: (classification, words) for name, _, _, classification, words in COLUMNS}
    for column in port.columns.all():
        classification, words = docs[column.name]
        column.port = port
        column_update(column=column, by=admin, description=words, classification=classification)
    if product.status == LifecycleStatus.DRAFT:
        product_publish(product=product, by=admin)
    return product, True
