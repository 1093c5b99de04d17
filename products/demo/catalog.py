"""What the demo contains: people, domains and data products, with the words people read.

Each product has one output port serving one table (on the demo warehouse) or one file (in
portal storage). The table specs say which columns exist, their logical types, what they
mean and how sensitive they are; `products.demo.data` generates matching rows.

Known defects: real tables are never clean, and the trust features need something to find.
`Defects` plants them on purpose, reproducibly (same seed, same rows):
  - sales.orders: 37 order lines loaded twice (duplicate `order_id`).
  - sales.customers: 0.4% of customers without an `email`, a required column.
  - supply-chain.supplier-quality: no inspection in the last 9 days (a stale table).
  - marketing.web-sessions: the last load read 2 of the 5 collector partitions, so the
    table holds 40% of its usual rows (a volume drop against its 30-day history).
Set other values in a table's `Defects` to plant more (nulls in any column, duplicates,
staleness, a partial load); data generation and the warehouse writers apply them
generically. What the checks make of them is in `products.demo.trust`.
"""

from dataclasses import dataclass, field

from products.choices import Audience, Classification, LifecycleStatus, MembershipRole

PASSWORD = "portal-demo"
# Where the demo tables live: a `warehouse` schema on PostgreSQL; DuckDB's default `main`
# schema in the DuckDB file (a schema named like the file, warehouse.duckdb, would make
# `warehouse.orders` ambiguous between catalog and schema).
POSTGRES_SCHEMA = "warehouse"
DUCKDB_SCHEMA = "main"
SPARK_SCHEMA = "warehouse"  # a database of Spark's session catalog (spark_catalog)
FILES_DIR = "demo"  # under MEDIA_ROOT

PUBLIC = Classification.PUBLIC
INTERNAL = Classification.INTERNAL
CONFIDENTIAL = Classification.CONFIDENTIAL
RESTRICTED = Classification.RESTRICTED

# Logical column types and how each engine stores them. DuckDB gets naive TIMESTAMP (UTC by
# convention): reading TIMESTAMPTZ into Python through DuckDB needs pytz, not installed.
DUCKDB_TYPES = {
    "id": "BIGINT",
    "int": "INTEGER",
    "float": "DOUBLE",
    "money": "DECIMAL(12,2)",
    "text": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "bool": "BOOLEAN",
}
POSTGRES_TYPES = {
    "id": "bigint",
    "int": "integer",
    "float": "double precision",
    "money": "numeric(12,2)",
    "text": "text",
    "date": "date",
    "timestamp": "timestamp with time zone",
    "bool": "boolean",
}
SPARK_TYPES = {  # TIMESTAMP: the session's time zone is UTC (products.connectors.spark)
    "id": "BIGINT",
    "int": "INT",
    "float": "DOUBLE",
    "money": "DECIMAL(12,2)",
    "text": "STRING",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "bool": "BOOLEAN",
}


@dataclass(frozen=True)
class UserSpec:
    username: str
    first_name: str
    last_name: str
    is_staff: bool = False
    is_superuser: bool = False
    memberships: tuple[tuple[str, str], ...] = ()  # (domain slug, role)

    @property
    def email(self) -> str:
        return f"{self.username}@demo.example.com"


@dataclass(frozen=True)
class DomainSpec:
    slug: str
    name: str
    description: str


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # a key of DUCKDB_TYPES
    description: str
    classification: str = INTERNAL
    # Required by the product's promise to its consumers. The physical column is NOT NULL
    # too, unless a planted defect puts nulls in it (the source does not enforce it).
    required: bool = False


@dataclass(frozen=True)
class Defects:
    """Data-quality defects planted in a generated table."""

    null_rates: tuple[tuple[str, float], ...] = ()  # (column, share of rows set to null)
    duplicate_rows: int = 0  # rows loaded a second time: duplicate keys
    stale_days: int = 0  # shift the freshness column back: newest row is this many days old
    # A partial load: only this share of the rows arrived (a random subset), a volume drop.
    loaded_share: float = 1.0

    def null_rate(self, column: str) -> float:
        return dict(self.null_rates).get(column, 0.0)


@dataclass(frozen=True)
class TableSpec:
    name: str  # table name, and the stem of a file port's file name
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]  # the columns that identify a row
    freshness_column: str = ""  # the timestamp or date that says how fresh the data is
    defects: Defects = field(default_factory=Defects)

    def column(self, name: str) -> ColumnSpec:
        return next(column for column in self.columns if column.name == name)

    def physically_not_null(self, column: ColumnSpec) -> bool:
        return column.required and self.defects.null_rate(column.name) == 0.0


@dataclass(frozen=True)
class PortSpec:
    name: str  # the port's slug is made from it (output_port_create)
    description: str
    table: TableSpec
    file_format: str = ""  # "" for a table on the warehouse; "csv" or "parquet" for a file

    @property
    def file_path(self) -> str:
        return f"{FILES_DIR}/{self.table.name}.{self.file_format}" if self.file_format else ""


@dataclass(frozen=True)
class ProductSpec:
    domain: str
    slug: str
    name: str
    summary: str
    description: str
    use_case: str
    intended_users: str
    expected_outcome: str
    tags: tuple[str, ...]
    owners: tuple[str, ...]
    port: PortSpec
    version: str = "1.0.0"
    audience: str = Audience.INTERNAL
    status: str = LifecycleStatus.PUBLISHED

    @property
    def key(self) -> str:
        return f"{self.domain}.{self.slug}"


USERS = (
    UserSpec("admin", "Ada", "Admin", is_staff=True, is_superuser=True),
    UserSpec("owner", "Olivia", "Owens", memberships=(("sales", MembershipRole.OWNER),)),
    UserSpec("steward", "Sam", "Stewart", memberships=(("marketing", MembershipRole.STEWARD),)),
    UserSpec("supply", "Sunil", "Patel", memberships=(("supply-chain", MembershipRole.OWNER),)),
    UserSpec("analyst", "Ana", "Lytic"),
    UserSpec("viewer", "Victor", "Viewer"),
)

DOMAINS = (
    DomainSpec(
        "sales",
        "Sales",
        "Orders, customers and revenue across the web shop, stores and marketplaces. "
        "The Sales data team answers for order and customer data from checkout to return.",
    ),
    DomainSpec(
        "marketing",
        "Marketing",
        "Campaigns, web analytics and lead scoring. Marketing's analysts own attribution "
        "and the definitions of sessions, conversions and campaign spend.",
    ),
    DomainSpec(
        "supply-chain",
        "Supply Chain",
        "Stock in our four warehouses and the quality of what suppliers deliver. "
        "Supply Chain owns the inventory snapshot and supplier inspection data.",
    ),
)


# --- tables ---------------------------------------------------------------------------

ORDERS = TableSpec(
    name="orders",
    key=("order_id",),
    freshness_column="ordered_at",
    defects=Defects(duplicate_rows=37),
    columns=(
        ColumnSpec("order_id", "id", "Order line number, unique per line.", required=True),
        ColumnSpec(
            "ordered_at", "timestamp", "When the customer placed the order (UTC).", required=True
        ),
        ColumnSpec(
            "customer_id",
            "id",
            "The customer who ordered; joins to sales.customers.",
            required=True,
        ),
        ColumnSpec(
            "channel",
            "text",
            "Where the order was placed: web, store, marketplace or phone.",
            PUBLIC,
            required=True,
        ),
        ColumnSpec(
            "country", "text", "Delivery country, ISO 3166-1 alpha-2 code.", PUBLIC, required=True
        ),
        ColumnSpec("sku", "text", "Stock keeping unit of the item ordered.", required=True),
        ColumnSpec("category", "text", "Product category of the item.", PUBLIC),
        ColumnSpec("supplier_id", "id", "Supplier of the item; joins to supplier data."),
        ColumnSpec("quantity", "int", "Units ordered on this line.", required=True),
        ColumnSpec("unit_price", "money", "List price of one unit in EUR, VAT included."),
        ColumnSpec("discount", "money", "Discount granted on the line in EUR."),
        ColumnSpec(
            "net_amount",
            "money",
            "What the customer paid for the line in EUR: quantity x unit price - discount.",
            CONFIDENTIAL,
            required=True,
        ),
        ColumnSpec("currency", "text", "Currency of the amounts; always EUR.", PUBLIC),
        ColumnSpec(
            "status",
            "text",
            "processing, shipped, completed, cancelled or returned.",
            required=True,
        ),
    ),
)

CUSTOMERS = TableSpec(
    name="customers",
    key=("customer_id",),
    freshness_column="signed_up_on",
    defects=Defects(null_rates=(("email", 0.004),)),
    columns=(
        ColumnSpec("customer_id", "id", "Customer number.", required=True),
        ColumnSpec("full_name", "text", "The customer's name.", RESTRICTED, required=True),
        ColumnSpec(
            "email",
            "text",
            "Where we write to the customer; personal data.",
            CONFIDENTIAL,
            required=True,
        ),
        ColumnSpec("country", "text", "Country of the billing address (ISO code).", PUBLIC),
        ColumnSpec("city", "text", "City of the billing address.", INTERNAL),
        ColumnSpec("segment", "text", "consumer, small business or enterprise.", PUBLIC),
        ColumnSpec("signed_up_on", "date", "Date the customer account was created.", INTERNAL),
        ColumnSpec("marketing_opt_in", "bool", "Whether the customer agreed to marketing email."),
        ColumnSpec(
            "lifetime_value",
            "money",
            "Sum of the customer's completed order lines in EUR.",
            CONFIDENTIAL,
        ),
    ),
)

DAILY_REVENUE = TableSpec(
    name="daily_revenue",
    key=("day", "channel"),
    freshness_column="day",
    columns=(
        ColumnSpec("day", "date", "Calendar day (UTC).", PUBLIC, required=True),
        ColumnSpec("channel", "text", "Sales channel.", PUBLIC, required=True),
        ColumnSpec("orders", "int", "Order lines placed that day, cancelled ones included."),
        ColumnSpec(
            "net_revenue", "money", "Net amount of the lines, in EUR, returns not deducted."
        ),
    ),
)

RETURNS_BY_SUPPLIER = TableSpec(
    name="returns_by_supplier",
    key=("month", "supplier_id"),
    freshness_column="month",
    columns=(
        ColumnSpec("month", "date", "First day of the month the items were ordered.", PUBLIC),
        ColumnSpec("supplier_id", "id", "Supplier number.", PUBLIC, required=True),
        ColumnSpec("supplier_name", "text", "Supplier's trading name.", PUBLIC),
        ColumnSpec("units_sold", "int", "Units sold that month, cancellations excluded."),
        ColumnSpec("units_returned", "int", "Of those, units the customer sent back."),
        ColumnSpec("return_rate", "float", "units_returned / units_sold, between 0 and 1."),
        ColumnSpec("top_return_reason", "text", "Most frequent reason customers gave."),
    ),
)

CAMPAIGNS = TableSpec(
    name="campaigns",
    key=("campaign_id",),
    # Not ends_on: planned campaigns end in the future. The newest start says whether
    # new campaigns are loaded.
    freshness_column="starts_on",
    columns=(
        ColumnSpec(
            "campaign_id", "id", "Campaign number; web sessions refer to it.", required=True
        ),
        ColumnSpec("name", "text", "Campaign name as planned by the team.", required=True),
        ColumnSpec("channel", "text", "email, paid search, social, display or affiliate.", PUBLIC),
        ColumnSpec("objective", "text", "awareness, acquisition, retention or reactivation."),
        ColumnSpec("starts_on", "date", "First day the campaign ran."),
        ColumnSpec("ends_on", "date", "Last day the campaign ran (or will run)."),
        ColumnSpec("budget", "money", "Approved budget in EUR.", CONFIDENTIAL),
        ColumnSpec("spend", "money", "Spent so far in EUR, from the ad platforms.", CONFIDENTIAL),
        ColumnSpec("impressions", "id", "Times an ad or email was shown."),
        ColumnSpec("clicks", "int", "Clicks on the campaign's links."),
        ColumnSpec("conversions", "int", "Sessions from the campaign that ended in an order."),
    ),
)

WEB_SESSIONS = TableSpec(
    name="web_sessions",
    key=("session_id",),
    freshness_column="started_at",
    defects=Defects(loaded_share=0.4),
    columns=(
        ColumnSpec(
            "session_id", "text", "Session identifier from the web analytics tag.", required=True
        ),
        ColumnSpec(
            "visitor_id",
            "text",
            "Pseudonymous cookie identifier; can single out a person.",
            CONFIDENTIAL,
            required=True,
        ),
        ColumnSpec("started_at", "timestamp", "Start of the session (UTC).", required=True),
        ColumnSpec("landing_page", "text", "Path of the first page viewed.", PUBLIC),
        ColumnSpec(
            "utm_source", "text", "Traffic source: google, newsletter, facebook, direct...", PUBLIC
        ),
        ColumnSpec("campaign_id", "id", "Campaign the visit is attributed to; empty when none."),
        ColumnSpec("device", "text", "mobile, desktop or tablet.", PUBLIC),
        ColumnSpec("country", "text", "Country from the IP address (ISO code).", PUBLIC),
        ColumnSpec("pageviews", "int", "Pages viewed in the session."),
        ColumnSpec("duration_seconds", "int", "Seconds between first and last hit."),
        ColumnSpec("converted", "bool", "Whether the session ended with an order."),
    ),
)

LEAD_SCORES = TableSpec(
    name="lead_scores",
    key=("lead_id",),
    freshness_column="scored_at",
    columns=(
        ColumnSpec("lead_id", "id", "Lead number in the CRM.", required=True),
        ColumnSpec("email", "text", "Business email of the contact.", CONFIDENTIAL),
        ColumnSpec("company", "text", "Company the contact works for.", INTERNAL),
        ColumnSpec("job_title", "text", "Job title the contact gave.", INTERNAL),
        ColumnSpec("country", "text", "Country of the company (ISO code).", PUBLIC),
        ColumnSpec("score", "float", "Probability of becoming a customer in 90 days (0-1)."),
        ColumnSpec("score_band", "text", "A (>= 0.7), B (>= 0.4), C (>= 0.15) or D."),
        ColumnSpec("model_version", "text", "Version of the scoring model."),
        ColumnSpec("scored_at", "timestamp", "When the model scored the lead (UTC)."),
    ),
)

INVENTORY = TableSpec(
    name="inventory_snapshots",
    key=("snapshot_date", "warehouse", "sku"),
    freshness_column="snapshot_date",
    columns=(
        ColumnSpec("snapshot_date", "date", "Day of the end-of-day stock count.", required=True),
        ColumnSpec(
            "warehouse", "text", "Warehouse code: AMS, ANR, DUS or LYS.", PUBLIC, required=True
        ),
        ColumnSpec("sku", "text", "Stock keeping unit.", required=True),
        ColumnSpec("category", "text", "Product category.", PUBLIC),
        ColumnSpec("on_hand", "int", "Units physically in the warehouse."),
        ColumnSpec("reserved", "int", "Units promised to open orders."),
        ColumnSpec("available", "int", "on_hand - reserved, never below zero."),
        ColumnSpec("reorder_point", "int", "Below this many available units we reorder."),
        ColumnSpec("below_reorder_point", "bool", "available < reorder_point."),
    ),
)

SUPPLIER_INSPECTIONS = TableSpec(
    name="supplier_inspections",
    key=("inspection_id",),
    freshness_column="inspected_on",
    defects=Defects(stale_days=9),
    columns=(
        ColumnSpec("inspection_id", "id", "Inspection number.", required=True),
        ColumnSpec("supplier_id", "id", "Supplier number.", PUBLIC, required=True),
        ColumnSpec("supplier_name", "text", "Supplier's trading name.", PUBLIC),
        ColumnSpec(
            "inspected_on", "date", "Day the goods-in team inspected the lot.", required=True
        ),
        ColumnSpec("lot_id", "text", "Delivery lot inspected."),
        ColumnSpec("category", "text", "Product category of the lot.", PUBLIC),
        ColumnSpec("units_inspected", "int", "Units sampled from the lot."),
        ColumnSpec("units_defective", "int", "Sampled units that failed inspection."),
        ColumnSpec("defect_rate", "float", "units_defective / units_inspected."),
        ColumnSpec("result", "text", "pass (< 2% defective), conditional (< 5%) or fail."),
        ColumnSpec("inspector_name", "text", "Who inspected the lot.", RESTRICTED),
    ),
)


# --- products -------------------------------------------------------------------------

PRODUCTS = (
    ProductSpec(
        domain="sales",
        slug="orders",
        name="Orders",
        summary="Every order line from the web shop, stores, marketplaces and phone, "
        "for the last two years, updated hourly.",
        description="""\
One row per **order line**: what was bought, by whom, through which channel, at what
price, and what happened to it afterwards.

## What is in it
- Orders from all four channels: `web`, `store`, `marketplace` and `phone`.
- Two years of history, loaded hourly from the order service.
- Amounts in **EUR**, VAT included. `net_amount` = quantity x unit price - discount.

## Good to know
- `status` moves from `processing` to `shipped` to `completed`; `cancelled` and
  `returned` lines stay in the table, so filter them out for revenue.
- Join to [sales.customers](/products/sales/customers/) on `customer_id`.
- Amounts are *confidential*: ask the Sales team for access to rows.
""",
        use_case="Revenue reporting, basket analysis and demand forecasting.",
        intended_users="Finance and sales analysts, data scientists building forecasts.",
        expected_outcome="One trusted source for order figures, so that revenue reported by "
        "Finance and Sales agrees.",
        tags=("orders", "revenue", "e-commerce", "hourly"),
        owners=("owner",),
        version="2.3.0",
        port=PortSpec(
            name="Orders table",
            description="The `orders` table on the demo warehouse.",
            table=ORDERS,
        ),
    ),
    ProductSpec(
        domain="sales",
        slug="customers",
        name="Customers",
        summary="Customer master data: one row per customer account, with segment, "
        "opt-in and lifetime value.",
        description="""\
One row per **customer account**, deduplicated across channels.

## Fields
- Contact details (`full_name`, `email`) are personal data: `full_name` is
  *restricted*, `email` *confidential*.
- `segment` is assigned by Sales Operations: consumer, small business or enterprise.
- `lifetime_value` sums the customer's completed order lines in EUR.

## Known issues
A small share of older accounts has no email address (created in stores before 2021).
""",
        use_case="Segmentation, churn analysis, joining orders to customer attributes.",
        intended_users="Sales and marketing analysts; CRM team.",
        expected_outcome="Consistent customer counts and segments in every report.",
        tags=("customers", "personal-data", "crm", "master-data"),
        owners=("owner",),
        version="1.4.0",
        port=PortSpec(
            name="Customers table",
            description="The `customers` table on the demo warehouse.",
            table=CUSTOMERS,
        ),
    ),
    ProductSpec(
        domain="sales",
        slug="returns-by-supplier",
        name="Returns by supplier",
        summary="Monthly units sold and returned per supplier, with the return rate and "
        "the most common return reason.",
        description="""\
Monthly aggregate of [sales.orders](/products/sales/orders/) per **supplier**: units
sold, units returned, the return rate and the reason customers gave most often.

Published as a **Parquet file** so that suppliers' account managers can open it in a
notebook or spreadsheet tool. Shared with suppliers in quarterly business reviews.

| return rate | what we do |
|---|---|
| below 3% | nothing |
| 3% to 8% | discuss in the quarterly review |
| above 8% | quality escalation with Supply Chain |
""",
        use_case="Supplier reviews and quality escalations.",
        intended_users="Category managers, supplier account managers, Supply Chain quality.",
        expected_outcome="Fewer returns through early escalation of poor suppliers.",
        tags=("returns", "suppliers", "monthly", "quality"),
        owners=("owner",),
        version="1.1.0",
        audience=Audience.EXTERNAL,
        port=PortSpec(
            name="Monthly Parquet file",
            description="A Parquet file in portal storage, rewritten monthly.",
            table=RETURNS_BY_SUPPLIER,
            file_format="parquet",
        ),
    ),
    ProductSpec(
        domain="sales",
        slug="daily-revenue",
        name="Daily revenue (legacy)",
        summary="Order lines and net revenue per day and channel. Deprecated: use "
        "sales.orders instead.",
        description="""\
**Deprecated.** This pre-aggregated table predates [sales.orders](/products/sales/orders/)
and does not deduct returns. It will be retired at the end of the quarter; compute daily
revenue from `sales.orders` instead.
""",
        use_case="Legacy revenue dashboards.",
        intended_users="Owners of dashboards built before 2024.",
        expected_outcome="Dashboards keep working while they move to sales.orders.",
        tags=("revenue", "daily", "legacy"),
        owners=("owner",),
        version="0.9.2",
        status=LifecycleStatus.DEPRECATED,
        port=PortSpec(
            name="Daily revenue table",
            description="The `daily_revenue` table on the demo warehouse.",
            table=DAILY_REVENUE,
        ),
    ),
    ProductSpec(
        domain="marketing",
        slug="campaigns",
        name="Campaigns",
        summary="All marketing campaigns with channel, objective, budget and spend, "
        "impressions, clicks and conversions.",
        description="""\
One row per **campaign** run by Marketing across email, paid search, social, display
and affiliate channels.

- `spend`, `impressions` and `clicks` come from the ad platforms, loaded daily.
- `conversions` counts web sessions attributed to the campaign that ended in an order
  (see [marketing.web-sessions](/products/marketing/web-sessions/)).
- Budgets and spend are *confidential*.
""",
        use_case="Campaign performance, return on ad spend, budget planning.",
        intended_users="Marketing managers and analysts, Finance controllers.",
        expected_outcome="Budget moves to the campaigns that bring customers.",
        tags=("campaigns", "marketing-spend", "attribution"),
        owners=("steward",),
        version="1.2.0",
        port=PortSpec(
            name="Campaigns table",
            description="The `campaigns` table on the demo warehouse.",
            table=CAMPAIGNS,
        ),
    ),
    ProductSpec(
        domain="marketing",
        slug="web-sessions",
        name="Web sessions",
        summary="Visits to the web shop: source, campaign, device, pages viewed and "
        "whether the visit converted.",
        description="""\
One row per **session** on the web shop, from the first-party analytics tag.

## Definitions
- A *session* ends after 30 minutes without a hit.
- A session is *converted* when it contains a completed checkout.
- Attribution is last non-direct click: `campaign_id` is empty for unattributed visits.

`visitor_id` is a pseudonymous cookie identifier and counts as personal data.
""",
        use_case="Funnel and conversion analysis, attribution, landing page tests.",
        intended_users="Web analysts, growth marketers, UX researchers.",
        expected_outcome="Shared numbers for traffic and conversion in every team.",
        tags=("web-analytics", "sessions", "attribution", "personal-data"),
        owners=("steward",),
        version="3.0.1",
        port=PortSpec(
            name="Web sessions table",
            description="The `web_sessions` table on the demo warehouse.",
            table=WEB_SESSIONS,
        ),
    ),
    ProductSpec(
        domain="marketing",
        slug="lead-scores",
        name="B2B lead scores",
        summary="Weekly model scores for business leads: how likely each lead is to buy "
        "within 90 days.",
        description="""\
Scores from the lead-scoring model for every open **business lead** in the CRM,
exported weekly as a **CSV file**.

- `score` is a calibrated probability; `score_band` groups it into A-D.
- Model version 3 is under review: this product stays a draft until the review
  signs it off.
""",
        use_case="Prioritising the sales team's follow-up of business leads.",
        intended_users="Business sales representatives and their managers.",
        expected_outcome="Sales calls go to the leads most likely to buy.",
        tags=("leads", "machine-learning", "b2b", "weekly"),
        owners=("steward",),
        version="3.0.0-rc.1",
        status=LifecycleStatus.DRAFT,
        port=PortSpec(
            name="Weekly CSV export",
            description="A CSV file in portal storage, rewritten by the weekly scoring job.",
            table=LEAD_SCORES,
            file_format="csv",
        ),
    ),
    ProductSpec(
        domain="supply-chain",
        slug="inventory",
        name="Inventory snapshots",
        summary="End-of-day stock per SKU in each of our four warehouses, with reorder points.",
        description="""\
One row per **day, warehouse and SKU** with the end-of-day stock count.

- Warehouses: Amsterdam (`AMS`), Antwerp (`ANR`), Düsseldorf (`DUS`) and Lyon (`LYS`).
- `available` = `on_hand` - `reserved`; `below_reorder_point` flags items to reorder.
- The last 60 days are kept; older snapshots move to the archive.
""",
        use_case="Stock-out prevention, replenishment planning, warehouse balancing.",
        intended_users="Supply planners, warehouse managers, category managers.",
        expected_outcome="Fewer stock-outs and less excess stock.",
        tags=("inventory", "stock", "daily", "warehouses"),
        owners=("supply",),
        version="1.0.3",
        port=PortSpec(
            name="Inventory table",
            description="The `inventory_snapshots` table on the demo warehouse.",
            table=INVENTORY,
        ),
    ),
    ProductSpec(
        domain="supply-chain",
        slug="supplier-quality",
        name="Supplier quality inspections",
        summary="Goods-in inspections of supplier deliveries: units sampled, defects "
        "found and the verdict per lot.",
        description="""\
One row per **inspected delivery lot**. The goods-in team samples units from
incoming lots and records what fails.

- `result`: `pass` below 2% defective, `conditional` below 5%, `fail` above.
- Inspector names are *restricted*.
- Read together with [sales.returns-by-supplier](/products/sales/returns-by-supplier/)
  to see whether defects found at goods-in show up as customer returns.
""",
        use_case="Supplier scorecards and quality escalations.",
        intended_users="Supply Chain quality engineers, category managers.",
        expected_outcome="Poor lots are caught before they reach customers.",
        tags=("suppliers", "quality", "inspections"),
        owners=("supply",),
        version="2.0.0",
        port=PortSpec(
            name="Inspections table",
            description="The `supplier_inspections` table on the demo warehouse.",
            table=SUPPLIER_INSPECTIONS,
        ),
    ),
)

TABLES = tuple(product.port.table for product in PRODUCTS)
