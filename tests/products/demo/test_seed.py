"""`manage.py seed_demo` builds a demo people can sign in to and read, on the warehouse of
the running mode (PostgreSQL schema or DuckDB file), and running it again changes nothing.
Its checks find the planted defects, exactly, so that incidents are open and trust scores
differ right after seeding.

Transactional tests: the connectors read the warehouse over their own connections, so
the seeded rows must be committed.
"""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from products.choices import (
    ROW_LEVEL_CHECKS,
    UNRESOLVED_INCIDENT_STATUSES,
    CheckKind,
    CheckOutcome,
    CheckRunStatus,
    Classification,
    IncidentCause,
    LifecycleStatus,
    MembershipRole,
    PortKind,
    Severity,
    SourceKind,
)
from products.connectors import connector_for_port, port_file_path
from products.demo.catalog import PRODUCTS
from products.demo.data import DEFAULT_SEED, generate_tables
from products.demo.seed import demo_seed
from products.demo.trust import OUTAGE_LASTED, OUTAGE_STARTED, TRUST, failing_rows
from products.models import (
    Check,
    CheckResult,
    CheckRun,
    Column,
    DataProduct,
    DataSource,
    Domain,
    DomainMembership,
    Incident,
    OutputPort,
    PortObservation,
    ServiceLevelObjective,
    Tag,
    TrustScore,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("demo_settings")]

LOGINS = ("admin", "owner", "steward", "supply", "analyst", "viewer")


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def catalog_state() -> dict:
    models = (get_user_model(), Domain, DomainMembership, DataProduct, Tag, DataSource)
    state = {model.__name__: model.objects.count() for model in models}
    state["products"] = sorted(DataProduct.objects.values_list("slug", "status", "updated_at"))
    state["ports"] = sorted(OutputPort.objects.values_list("slug", "schema_refreshed_at"))
    state["columns"] = sorted(
        Column.objects.values_list("port__slug", "name", "data_type", "classification")
    )
    trust = (Check, ServiceLevelObjective, CheckRun, CheckResult, PortObservation, Incident)
    state |= {model.__name__: model.objects.count() for model in trust}
    state["checks"] = sorted(Check.objects.values_list("port__slug", "name", "params"))
    return state


def orders_port() -> OutputPort:
    return OutputPort.objects.select_related("source").get(product__slug="orders")


def fetch_one(port: OutputPort, sql: str):
    with connector_for_port(port) as connector:
        return connector.fetch(sql.format(relation=connector.relation_sql()))[0]


@pytest.mark.usefixtures("one_hour")
def test_seeding_twice_changes_nothing_and_the_demo_is_usable():
    first = seed()
    state = catalog_state()
    second = seed()

    # No second set of checks, SLOs or history, and no second run on the same data.
    assert catalog_state() == state
    assert "created: nothing" in second and "updated: nothing" in second
    assert "already up to date" in second
    assert "checks run on 9 ports" in first and "checks not run" in second
    assert "6 users" in first and "9 products" in first

    # Every demo login signs in with the documented password.
    for username in LOGINS:
        assert Client().login(username=username, password="portal-demo"), username
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not get_user_model().objects.get(username="analyst").is_staff

    # The warehouse of this mode holds the data; the largest table is read back in full.
    mode = SourceKind.POSTGRESQL if connection.vendor == "postgresql" else SourceKind.DUCKDB
    port = orders_port()
    assert port.source.kind == mode
    if mode == SourceKind.POSTGRESQL:
        assert port.schema_name == "warehouse"
        assert port.source.database == connection.settings_dict["NAME"]
        assert port.source.password_env == ""
    (rows,) = fetch_one(port, "SELECT count(*) FROM {relation}")
    assert rows >= 100_000


def test_domains_products_ports_and_people_fit_together():
    seed("--rows-scale", "0.05")

    assert set(Domain.objects.values_list("slug", flat=True)) == {
        "sales",
        "marketing",
        "supply-chain",
    }
    roles = set(DomainMembership.objects.values_list("domain__slug", "user__username", "role"))
    assert roles == {
        ("sales", "owner", MembershipRole.OWNER),
        ("marketing", "steward", MembershipRole.STEWARD),
        ("supply-chain", "supply", MembershipRole.OWNER),
    }
    products = {p.key: p for p in DataProduct.objects.select_related("domain")}
    assert len(products) >= 8
    assert {
        "sales.orders",
        "sales.customers",
        "marketing.campaigns",
        "supply-chain.inventory",
    } <= set(products)
    assert products["marketing.lead-scores"].status == LifecycleStatus.DRAFT
    assert products["sales.daily-revenue"].status == LifecycleStatus.DEPRECATED
    published = [p for p in products.values() if p.status == LifecycleStatus.PUBLISHED]
    assert len(published) >= 6
    for product in products.values():
        # Owners belong to the product's domain team; every product is documented.
        owners = set(product.owners.values_list("username", flat=True))
        team = set(product.domain.memberships.values_list("user__username", flat=True))
        assert owners and owners <= team, product.key
        assert product.description and product.summary and product.purpose_use_case
        assert product.tags.exists()
        port = product.ports.get()
        assert port.columns.exists(), product.key
        assert not port.columns.filter(description="").exists(), product.key
        if port.kind == PortKind.STREAM:  # read on NATS: tests/sharing/streams
            assert port.stream_name.startswith("SALES_"), product.key
            continue
        # Every port is readable through the connector layer, files included.
        (rows,) = fetch_one(port, "SELECT count(*) FROM {relation}")
        assert rows > 0, product.key
        if port.kind == PortKind.FILE:
            assert port_file_path(port.file_path).is_file()

    file_formats = set(OutputPort.objects.values_list("file_format", flat=True))
    assert {"parquet", "csv"} <= file_formats
    customers = {c.name: c for c in Column.objects.filter(port__product__slug="customers")}
    assert customers["email"].classification == Classification.CONFIDENTIAL
    assert customers["full_name"].classification == Classification.RESTRICTED
    assert customers["customer_id"].nullable is False


@pytest.mark.usefixtures("one_hour")
def test_duckdb_warehouse_can_be_forced(settings):
    output = seed("--warehouse", "duckdb", "--rows-scale", "0.05")

    assert "warehouse (duckdb, rebuilt)" in output
    assert settings.DEMO_DUCKDB_PATH.is_file()
    port = orders_port()
    assert port.source.kind == SourceKind.DUCKDB
    assert port.source.path == str(settings.DEMO_DUCKDB_PATH)
    (rows,) = fetch_one(port, "SELECT count(*) FROM {relation}")
    assert rows == 6_000 + 37  # 5% of 120,000 order lines, plus the duplicated ones
    assert "already up to date" in seed("--warehouse", "duckdb", "--rows-scale", "0.05")


def test_planted_defects_are_there_for_the_checks_to_find():
    seed("--rows-scale", "0.05")

    duplicates = fetch_one(
        orders_port(), "SELECT count(*) - count(DISTINCT order_id) FROM {relation}"
    )
    assert duplicates == (37,)
    customers = OutputPort.objects.get(product__slug="customers")
    total, missing_email = fetch_one(
        customers, "SELECT count(*), count(*) - count(email) FROM {relation}"
    )
    assert missing_email == round(total * 0.004) > 0
    inspections = OutputPort.objects.get(product__slug="supplier-quality")
    (newest,) = fetch_one(inspections, "SELECT max(inspected_on) FROM {relation}")
    assert newest <= timezone.now().date() - timedelta(days=9)


# --- trust: checks, history, incidents, trust scores -------------------------------------

# What the checks must find in the planted defects (product key, check): nothing else fails.
EXPECTED_FAILING = {
    ("sales.orders", "Order lines are unique"),  # 37 order lines loaded twice
    ("sales.customers", "Every customer has an email"),  # 0.4% without one
    ("supply-chain.supplier-quality", "Inspections recorded daily"),  # 10 days stale
    ("marketing.web-sessions", "Volume as usual"),  # 40% of its usual rows
    ("marketing.web-sessions", "Multi-page sessions have a duration"),  # a warning
}
TRUST_SCALE = 0.3  # enough rows that every fresh table has rows from the last hours
DEFECTIVE = {key for key, _ in EXPECTED_FAILING}


def warehouses() -> list[str]:
    return ["duckdb", "postgresql"] if connection.vendor == "postgresql" else ["duckdb"]


def latest_results(key: str) -> dict[str, CheckResult]:
    run = CheckRun.objects.filter(port__product__slug=key.split(".")[1]).order_by("-created_at")[0]
    return {r.quality_check.name: r for r in run.results.select_related("quality_check")}


@pytest.mark.parametrize("warehouse", warehouses())
def test_checks_find_exactly_the_planted_defects(warehouse):
    as_of = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    result = demo_seed(warehouse=warehouse, rows_scale=TRUST_SCALE, as_of=as_of)
    frames = generate_tables(seed=DEFAULT_SEED, as_of=as_of, rows_scale=TRUST_SCALE)

    # One real run per port, every check evaluated; the failing ones are the defects.
    assert len(result.check_runs) == len(PRODUCTS)
    assert all(errored == 0 for _, _, errored in result.check_runs.values())
    failing = set()
    for spec in PRODUCTS:
        port = OutputPort.objects.get(product__slug=spec.slug)
        run = port.check_runs.order_by("-created_at")[0]
        assert run.status == CheckRunStatus.DONE, (spec.key, run.error)
        assert run.requested_by.username == "admin"
        results = latest_results(spec.key)
        assert set(results) == {c.name for c in TRUST[spec.key].checks}, spec.key
        failing |= {(spec.key, n) for n, r in results.items() if r.outcome == CheckOutcome.FAIL}
        # Exact counts: what the pushed-down SQL found is what pandas finds in the rows.
        frame = frames[spec.port.table.name]
        for check in TRUST[spec.key].checks:
            if check.kind in ROW_LEVEL_CHECKS or check.kind == CheckKind.CUSTOM_SQL:
                expected = int(failing_rows(check, frame).sum())
                assert results[check.name].failing_rows == expected, (spec.key, check.name)
    assert failing == EXPECTED_FAILING

    assert latest_results("sales.orders")["Order lines are unique"].failing_rows == 37
    customers = latest_results("sales.customers")["Every customer has an email"]
    assert customers.failing_rows == round(0.004 * 25_000 * TRUST_SCALE) == 30
    volume = latest_results("marketing.web-sessions")["Volume as usual"]
    # The table holds 40% of the sessions; the history is one count per past day (each a
    # little below today's full count), so the drop reads a little under 60%.
    assert volume.outcome == "fail"
    assert -65 < volume.observed_value < -55
    assert volume.row_count == len(frames["web_sessions"])
    stale = latest_results("supply-chain.supplier-quality")["Inspections recorded daily"]
    newest = frames["supplier_inspections"]["inspected_on"].max().to_pydatetime()
    age = (stale.evaluated_at - newest.replace(tzinfo=UTC)).total_seconds() / 3600
    assert stale.observed_value == pytest.approx(age, abs=0.01)
    assert stale.observed_value >= 10 * 24

    # An incident per failing error check (the warning opens none), open since the
    # failures began; the orders' duplicates came in 52 hours before the data's hour.
    check_incidents = {
        (i.product.key, i.cause_key): i
        for i in Incident.objects.filter(
            cause=IncidentCause.CHECK, status__in=UNRESOLVED_INCIDENT_STATUSES
        ).select_related("product__domain")
    }
    expected_incidents = {
        (key, f"check:{Check.objects.get(port__product__slug=key.split('.')[1], name=name).pk}")
        for key, name in EXPECTED_FAILING
        if next(c for c in TRUST[key].checks if c.name == name).severity == Severity.ERROR
    }
    assert set(check_incidents) == expected_incidents
    duplicates = next(i for (key, _), i in check_incidents.items() if key == "sales.orders")
    assert duplicates.opened_at == as_of - timedelta(hours=52)

    # Trust: every product has a score; each product with a defect scores below every
    # product without one.
    scores = {key: result.trust_scores[key] for key in (p.key for p in PRODUCTS)}
    assert len(set(scores.values())) >= 2
    clean = [score for key, score in scores.items() if key not in DEFECTIVE]
    assert max(scores[key] for key in DEFECTIVE) < min(clean)


def test_history_covers_30_days_and_is_written_once():
    as_of = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    demo_seed(warehouse="duckdb", rows_scale=0.05, as_of=as_of)
    state = catalog_state()

    orders = OutputPort.objects.get(product__slug="orders")
    history = CheckRun.objects.filter(port=orders, created_at__lt=as_of)
    # Hourly (the product's default schedule) for 30 days, from the scheduler.
    assert history.count() == 30 * 24 - 1
    assert history.order_by("created_at")[0].created_at == as_of - timedelta(days=30, hours=-1)
    assert not history.exclude(slot__startswith="0 * * * *@").exists()
    # Two hours of warehouse outage, 12 days ago: those runs failed, nothing was evaluated.
    down = history.filter(status=CheckRunStatus.ERROR)
    assert down.count() == 2 and not CheckResult.objects.filter(run__in=down).exists()
    assert PortObservation.objects.filter(port=orders, available=False).count() == 4
    # The file ports were not affected.
    files = OutputPort.objects.filter(kind=PortKind.FILE)
    assert not CheckRun.objects.filter(port__in=files, status=CheckRunStatus.ERROR).exists()
    # Daily checks ran daily: inspections at 08:00, failing since the data went stale.
    inspections = CheckResult.objects.filter(quality_check__name="Inspections recorded daily")
    # The 08:00 slots strictly inside the 30 days, but for one in the warehouse's outage
    # (as_of hours 10 and 11): that run failed, as the hourly ones above did.
    outage_start = as_of - OUTAGE_STARTED
    slots = [
        slot
        for slot in (as_of.replace(hour=8) - timedelta(days=d) for d in range(32))
        if as_of - timedelta(days=30) < slot < as_of
        and not outage_start <= slot < outage_start + OUTAGE_LASTED
    ]
    assert inspections.filter(evaluated_at__lt=as_of).count() == len(slots)
    assert (
        inspections.filter(evaluated_at__gte=as_of - timedelta(days=7))
        .exclude(outcome=CheckOutcome.FAIL)
        .count()
        == 0
    )
    # Every SLO has data in its 7-day window.
    for slo in ServiceLevelObjective.objects.all():
        observed = PortObservation.objects.filter(
            port__product=slo.product, observed_at__gt=as_of - timedelta(days=7)
        )
        assert observed.exists(), slo
    assert TrustScore.objects.exists()

    # Seeding the same data again writes nothing: no history, no run.
    again = demo_seed(warehouse="duckdb", rows_scale=0.05, as_of=as_of)
    assert catalog_state() == state
    assert again.check_runs == {} and not again.created


def test_a_fresh_demo_has_access_work_waiting():
    """The owner's work inbox has a request to decide (the analyst's, on a confidential
    column) and the viewer holds a narrowed grant that ends within the week; seeding
    again writes neither twice."""
    from portal.site.work import requests_to_decide
    from sharing.models import AccessGrant, AccessRequest

    seed("--rows-scale", "0.05")
    users = {u.username: u for u in get_user_model().objects.all()}
    pending = list(requests_to_decide(user=users["owner"]))
    assert [(r.requester.username, r.product.key) for r in pending] == [
        ("analyst", "sales.customers")
    ]
    assert "email" in pending[0].columns
    grant = AccessGrant.objects.get(user=users["viewer"], revoked_at=None)
    assert grant.product.key == "sales.orders" and grant.row_filter
    assert timezone.now() < grant.expires_at <= timezone.now() + timedelta(days=5)

    seed("--rows-scale", "0.05")
    assert AccessRequest.objects.count() == 1 and AccessGrant.objects.count() == 1
