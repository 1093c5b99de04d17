"""Sources belong to someone: a port names only a relation its domain was allowed (page,
API, contract import and schema refresh share one rule), never the portal's own metadata
tables (not even for an admin, not even when a source points at the metadata database),
and a file port names only a file uploaded to its own domain."""

import duckdb
import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from products.catalog.services.ports import (
    output_port_create,
    output_port_update,
    source_is_metadata_database,
    storage_allow,
)
from products.catalog.services.schema_refresh import schema_refresh_execute
from products.choices import MembershipRole, RunStatus, SourceKind
from products.contracts.services.contracts import contract_import
from products.contracts.services.documents import ContractInvalid
from products.models import OutputPort, SchemaRefreshRun, SourceAllowance
from tests.factories import (
    DataSourceFactory,
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
    metadata_db_source,
    source_allowance,
)
from tests.products.contracts.helpers import contract_yaml

PORT_ADD_PAGE = "/products/sales/orders/ports/new/"
PORTS_API = "/api/v1/products/sales.orders/ports/"


@pytest.fixture
def marketing(db):
    return DomainFactory(name="Marketing", slug="marketing")


@pytest.fixture
def other_steward(marketing):
    """A steward of another domain."""
    user = UserFactory(username="marketing-steward")
    MembershipFactory(domain=marketing, user=user, role=MembershipRole.STEWARD)
    return user


@pytest.fixture
def campaigns(marketing):
    return ProductFactory(domain=marketing, name="Campaigns", slug="campaigns")


@pytest.fixture
def warehouse(tmp_path, domain, marketing):
    """A real DuckDB warehouse: `sales.orders` and `sales.customers` are Sales's (only
    `orders` of `finance`), `marketing.leads` is Marketing's."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        for schema, table in [
            ("sales", "orders"),
            ("sales", "customers"),
            ("finance", "orders"),
            ("finance", "salaries"),
            ("marketing", "leads"),
        ]:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(f"CREATE TABLE {schema}.{table} AS SELECT 1 AS id")
    source = DataSourceFactory(name="warehouse", path=str(path), domains=[])
    source_allowance(source=source, domain=domain, schema_name="sales")
    source_allowance(source=source, domain=domain, schema_name="finance", relations=["orders"])
    source_allowance(source=source, domain=marketing, schema_name="marketing")
    return source


def create(product, by, **fields):
    return output_port_create(product=product, by=by, name=fields.pop("name", "Port"), **fields)


def refused_on(excinfo) -> dict:
    return excinfo.value.message_dict


# --- the rule, in the service ----------------------------------------------------------


def test_a_steward_names_what_the_domain_was_allowed(product, steward, warehouse):
    port = create(product, steward, source=warehouse, schema_name="sales", table_name="orders")
    assert port.pk and port.location == "warehouse: sales.orders"
    only = create(
        product,
        steward,
        name="Finance",
        source=warehouse,
        schema_name="finance",
        table_name="orders",
    )
    assert only.pk


@pytest.mark.parametrize(
    "schema, table, field, words",
    [
        ("marketing", "leads", "schema_name", "only in schema finance, sales"),
        ("finance", "salaries", "table_name", "'salaries' is not one of them"),
        ("", "orders", "schema_name", "not 'main'"),  # a blank schema is the default one
        ("information_schema", "tables", "schema_name", "system catalog"),
        ("Sales", "orders", "schema_name", "not 'Sales'"),  # names are taken verbatim
    ],
)
def test_a_relation_outside_the_allowances_is_refused(
    product, steward, warehouse, schema, table, field, words
):
    with pytest.raises(ValidationError) as refused:
        create(product, steward, source=warehouse, schema_name=schema, table_name=table)
    errors = refused_on(refused)
    assert set(errors) == {field}, errors
    assert words in errors[field][0]
    assert not OutputPort.objects.exists()


def test_a_source_not_made_available_to_the_domain_is_refused(
    product, campaigns, steward, other_steward, warehouse, admin_user
):
    unshared = DataSourceFactory(name="finance-dwh", path=warehouse.path, domains=[])
    for by, target in [(steward, product), (admin_user, product), (other_steward, campaigns)]:
        with pytest.raises(ValidationError) as refused:
            create(target, by, source=unshared, schema_name="sales", table_name="orders")
        (message,) = refused_on(refused)["source"]
        assert "'finance-dwh' is not available to the" in message
        assert "ask an admin" in message
    # Another domain's steward cannot reach Sales's schema through their own product.
    with pytest.raises(ValidationError) as refused:
        create(campaigns, other_steward, source=warehouse, schema_name="sales", table_name="orders")
    assert "only in schema marketing" in refused_on(refused)["schema_name"][0]
    assert not OutputPort.objects.exists()


def test_a_withdrawn_allowance_stops_edits_and_schema_refresh(product, steward, warehouse):
    port = create(product, steward, source=warehouse, schema_name="sales", table_name="orders")
    SourceAllowance.objects.filter(schema_name="sales").delete()
    with pytest.raises(ValidationError) as refused:
        output_port_update(port=port, by=steward, description="still mine?")
    assert "schema_name" in refused_on(refused)
    run = SchemaRefreshRun.objects.create(port=port, requested_by=steward)
    run = schema_refresh_execute(run_id=run.pk)
    assert run.status == RunStatus.FAILED
    assert "may use data source 'warehouse' only in schema finance" in run.error
    assert not port.columns.exists()


def test_an_allowance_for_every_schema_still_refuses_system_catalogs(product, steward, warehouse):
    source_allowance(source=warehouse, domain=product.domain, schema_name="*")
    assert create(product, steward, source=warehouse, schema_name="marketing", table_name="leads")
    for schema in ("information_schema", "pg_catalog", "system", "temp"):
        with pytest.raises(ValidationError) as refused:
            create(
                product, steward, name=schema, source=warehouse, schema_name=schema, table_name="x"
            )
        assert "system catalog" in refused_on(refused)["schema_name"][0]


# --- the portal's own metadata database -------------------------------------------------


@pytest.fixture
def own_schema_table(postgres):
    """A schema of the metadata (test) database that is not the portal's: what the demo's
    `warehouse` schema is."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA IF NOT EXISTS scope_wh")
        cursor.execute("CREATE TABLE IF NOT EXISTS scope_wh.orders (id int)")
    return "scope_wh", "orders"


@pytest.mark.parametrize("host", ["", "localhost", "127.0.0.1", "/var/run/postgresql"])
@pytest.mark.parametrize(
    "schema, table",
    [
        ("public", "auth_user"),
        ("public", "django_session"),
        ("public", "knox_authtoken"),
        ("public", "products_datasource"),
        ("", "auth_user"),  # a blank schema is `public`
        ("pg_catalog", "pg_authid"),
        ("information_schema", "tables"),
    ],
)
def test_no_one_names_the_metadata_tables_even_through_a_source_on_that_database(
    postgres, product, steward, admin_user, host, schema, table
):
    source = metadata_db_source(name=f"metadata-{host or 'socket'}", domains=[product.domain])
    source.host = host
    source.save()
    # An admin even allows that schema explicitly: still refused, to the admin as well.
    source_allowance(source=source, domain=product.domain, schema_name=schema or "public")
    assert source_is_metadata_database(source)
    for by in (steward, admin_user):
        with pytest.raises(ValidationError) as refused:
            create(product, by, source=source, schema_name=schema, table_name=table)
        (message,) = refused_on(refused)["schema_name"]
        assert "metadata" in message or "system catalog" in message
    assert not OutputPort.objects.exists()


def test_another_schema_of_the_metadata_database_is_served(
    postgres, product, steward, own_schema_table
):
    source = metadata_db_source(name="metadata-db", domains=[product.domain])
    schema, table = own_schema_table
    port = create(product, steward, source=source, schema_name=schema, table_name=table)
    assert port.pk


def test_a_source_on_another_database_is_not_the_metadata_database(postgres):
    cfg = connection.settings_dict
    assert not source_is_metadata_database(
        DataSourceFactory(
            kind=SourceKind.POSTGRESQL, path="", host="127.0.0.1", database=f"{cfg['NAME']}_x"
        )
    )
    assert not source_is_metadata_database(
        DataSourceFactory(
            kind=SourceKind.POSTGRESQL, path="", host="localhost", port=5433, database=cfg["NAME"]
        )
    )


# --- file ports ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, words",
    [
        ("uploads/marketing/campaigns/leads/1.csv", "uploaded to another domain"),
        ("uploads/sales-eu/orders/1.csv", "uploaded to another domain"),  # a prefix of it
        ("uploads/x.csv", "uploaded to another domain"),
        ("exports/3/orders-20261201.csv", "belongs to an export"),
        ("delta-sharing/table-1/part-0.parquet", "belongs to an export or to Delta Sharing"),
        ("demo/orders.csv", "or in a folder of storage an admin made available"),
        ("uploads/sales/../marketing/x.csv", "uploaded to another domain"),
        ("../etc/passwd", "outside the portal's storage"),
    ],
)
def test_a_file_port_names_only_its_own_domains_uploads(product, steward, path, words):
    with pytest.raises(ValidationError) as refused:
        create(product, steward, kind="file", file_path=path, file_format="csv")
    (message,) = refused_on(refused)["file_path"]
    assert words in message
    assert not OutputPort.objects.exists()


def test_own_uploads_and_admin_allowed_storage_are_accepted(product, steward, admin_user):
    assert create(
        product, steward, kind="file", file_path="uploads/sales/orders/p/1.csv", file_format="csv"
    )
    with pytest.raises(ValidationError):
        create(
            product, steward, name="Demo", kind="file", file_path="demo/a.csv", file_format="csv"
        )
    storage_allow(domain=product.domain, by=admin_user, path="demo")
    assert create(
        product, steward, name="Demo", kind="file", file_path="demo/a.csv", file_format="csv"
    )
    # An allowance cannot open the export folder or another domain's uploads.
    storage_allow(domain=product.domain, by=admin_user, path="exports")
    storage_allow(domain=product.domain, by=admin_user, path="uploads/marketing")
    for path in ("exports/1/a.csv", "uploads/marketing/a.csv"):
        with pytest.raises(ValidationError):
            create(product, steward, name="X", kind="file", file_path=path, file_format="csv")
    with pytest.raises(Exception, match="Only admins"):
        storage_allow(domain=product.domain, by=steward, path="elsewhere")


def test_a_symlink_out_of_the_domains_uploads_is_refused(product, steward, media_root):
    target = media_root / "uploads" / "marketing" / "secret.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("id\n1\n")
    link = media_root / "uploads" / "sales" / "innocent.csv"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    try:
        with pytest.raises(ValidationError) as refused:
            create(
                product,
                steward,
                kind="file",
                file_path="uploads/sales/innocent.csv",
                file_format="csv",
            )
        assert "another domain" in refused_on(refused)["file_path"][0]
    finally:
        link.unlink()


# --- four ways through the page ----------------------------------------------------------


def _table_form(source, schema="sales", table="orders"):
    return {
        "name": "Orders table",
        "kind": "table",
        "source": source.pk,
        "schema_name": schema,
        "table_name": table,
    }


def test_the_port_form_four_ways(
    client, product, warehouse, outsider, grantee, other_steward, steward
):
    # Anonymous: to the sign-in page.
    response = client.post(PORT_ADD_PAGE, _table_form(warehouse))
    assert response.status_code == 302 and "/login" in response["Location"]
    # A reader without a grant, a grantee and another domain's steward may not add ports.
    for user in (outsider, grantee, other_steward):
        client.force_login(user)
        response = client.post(PORT_ADD_PAGE, _table_form(warehouse))
        assert response.status_code in (403, 404), user
    assert not OutputPort.objects.exists()
    # The domain's steward: only what Sales was allowed, told why otherwise.
    client.force_login(steward)
    response = client.post(PORT_ADD_PAGE, _table_form(warehouse, "marketing", "leads"))
    assert response.status_code == 400
    assert "only in schema finance, sales" in response.content.decode()
    response = client.post(PORT_ADD_PAGE, _table_form(warehouse, "finance", "salaries"))
    assert response.status_code == 400
    assert "&#x27;salaries&#x27; is not one of them" in response.content.decode()
    response = client.post(
        PORT_ADD_PAGE,
        {"name": "Leads", "kind": "file", "file_path": "exports/1/x.csv", "file_format": "csv"},
    )
    assert response.status_code == 400 and "belongs to an export" in response.content.decode()
    assert not OutputPort.objects.exists()
    response = client.post(PORT_ADD_PAGE, _table_form(warehouse))
    assert response.status_code == 302
    assert product.ports.get().location == "warehouse: sales.orders"


def test_another_domains_steward_cannot_reach_sales_through_their_own_product(
    client, campaigns, warehouse, other_steward
):
    client.force_login(other_steward)
    page = "/products/marketing/campaigns/ports/new/"
    response = client.post(page, _table_form(warehouse, "sales", "customers"))
    assert response.status_code == 400 and "only in schema marketing" in response.content.decode()
    response = client.post(
        page,
        {
            "name": "Theirs",
            "kind": "file",
            "file_path": "uploads/sales/orders/p/1.csv",
            "file_format": "csv",
        },
    )
    assert response.status_code == 400 and "another domain" in response.content.decode()
    assert not OutputPort.objects.exists()


# --- four ways through the API -------------------------------------------------------------


def test_the_ports_api_four_ways(
    api_client, product, warehouse, outsider, grantee, other_steward, steward
):
    body = {
        "name": "Customers",
        "source": "warehouse",
        "schema_name": "sales",
        "table_name": "customers",
    }
    assert api_client.post(PORTS_API, body, format="json").status_code == 401
    for user in (outsider, grantee, other_steward):
        api_client.force_authenticate(user)
        assert api_client.post(PORTS_API, body, format="json").status_code in (403, 404), user
    assert not OutputPort.objects.exists()

    api_client.force_authenticate(steward)
    response = api_client.post(
        PORTS_API, {**body, "schema_name": "marketing", "table_name": "leads"}, format="json"
    )
    assert response.status_code == 400
    assert "only in schema finance, sales" in response.json()["schema_name"][0]
    response = api_client.post(
        PORTS_API,
        {"name": "X", "kind": "file", "file_path": "uploads/marketing/a.csv", "file_format": "csv"},
        format="json",
    )
    assert response.status_code == 400 and "another domain" in response.json()["file_path"][0]
    assert not OutputPort.objects.exists()
    response = api_client.post(PORTS_API, body, format="json")
    assert response.status_code == 201, response.json()
    # Moving the port elsewhere goes through the same rule.
    port_url = f"{PORTS_API}{response.json()['slug']}/"
    response = api_client.patch(
        port_url, {"schema_name": "finance", "table_name": "salaries"}, format="json"
    )
    assert response.status_code == 400 and "table_name" in response.json()
    assert OutputPort.objects.get().table_name == "customers"


# --- contract import -----------------------------------------------------------------------


def _server(schema: str) -> str:
    """A server the portal finds by its name (the registered source `warehouse`)."""
    return (
        "servers:\n  - server: warehouse\n    type: postgresql\n    host: dwh.internal\n"
        f"    port: 5432\n    database: dwh\n    schema: {schema}\n"
    )


def test_contract_import_follows_the_same_rule(
    product, campaigns, warehouse, steward, other_steward, outsider
):
    # A contract placing a port on a schema the domain was not allowed: refused, on the
    # schema object, saying why; nothing stored.
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=steward, text=contract_yaml() + _server("marketing"))
    (problem,) = refused.value.problems
    assert problem.path == "$.schema[0]"
    assert "only in schema finance, sales" in problem.message
    # Another domain's steward, into their own product, naming Sales's schema.
    with pytest.raises(ContractInvalid) as refused:
        contract_import(
            product=campaigns, by=other_steward, text=contract_yaml() + _server("sales")
        )
    assert "only in schema marketing" in refused.value.problems[0].message
    # Neither may import into Sales's product at all.
    for user in (other_steward, outsider):
        with pytest.raises(Exception, match="owners and stewards"):
            contract_import(product=product, by=user, text=contract_yaml() + _server("sales"))
    assert not OutputPort.objects.exists()


def test_a_factory_port_keeps_working_for_its_domain(product, steward):
    """Existing ports (the migration and the factories allow what they use) still save."""
    port = OutputPortFactory(product=product, schema_name="main", table_name="things")
    output_port_update(port=port, by=steward, description="documented")
    assert OutputPort.objects.get(pk=port.pk).description == "documented"


# --- upgrading an existing install ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_allows_what_existing_ports_use():
    """Ports saved before sources had owners keep saving: each source is made available
    to the domains and schemas its ports use, each hand-placed file to its port's domain;
    a port on another domain's upload or an export file gets nothing."""
    from django.db.migrations.executor import MigrationExecutor

    before, after = (
        [("products", "0010_incident_detail")],
        [("products", "0011_source_allowances")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Domain = old.get_model("products", "Domain")
    Product = old.get_model("products", "DataProduct")
    Source = old.get_model("products", "DataSource")
    Port = old.get_model("products", "OutputPort")
    sales = Domain.objects.create(name="Sales", slug="sales")
    product = Product.objects.create(domain=sales, name="Orders", slug="orders")
    duck = Source.objects.create(name="duck", kind="duckdb", path="/w.duckdb")
    pg = Source.objects.create(name="pg", kind="postgresql", database="dwh")
    for slug, fields in {
        "a": {"source": duck, "schema_name": "", "table_name": "t"},
        "b": {"source": pg, "schema_name": "warehouse", "table_name": "t"},
        "c": {"kind": "file", "file_path": "demo/orders.csv", "file_format": "csv"},
        "d": {"kind": "file", "file_path": "uploads/marketing/x.csv", "file_format": "csv"},
        "e": {"kind": "file", "file_path": "exports/1/x.csv", "file_format": "csv"},
    }.items():
        Port.objects.create(product=product, name=slug, slug=slug, **fields)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    new = executor.loader.project_state(after).apps
    allowances = new.get_model("products", "SourceAllowance").objects
    assert set(allowances.values_list("source__name", "domain__slug", "schema_name")) == {
        ("duck", "sales", "main"),
        ("pg", "sales", "warehouse"),
    }
    storage = new.get_model("products", "StorageAllowance").objects
    assert list(storage.values_list("domain__slug", "path")) == [("sales", "demo/orders.csv")]
    # Back to the latest schema: later migrations (pg_trgm, 0012) serve the tests after this.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


# --- defence in depth: the demo's read-only role -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_demo_reader_role_reads_the_warehouse_schema_only(domain):
    """What seed_demo registers its PostgreSQL source with: a role that reads `warehouse`
    (tables there now and later), nothing of the portal's own tables, and writes nothing;
    the portal's connector reads through it."""
    import psycopg

    from products.connectors import connector_for_port
    from products.demo.warehouse import READER_ROLE, postgres_reader_ensure

    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA IF NOT EXISTS warehouse")
        cursor.execute("DROP TABLE IF EXISTS warehouse.scope_now, warehouse.scope_later")
        cursor.execute("CREATE TABLE warehouse.scope_now AS SELECT 1 AS id")
    assert postgres_reader_ensure() == READER_ROLE
    assert postgres_reader_ensure() == READER_ROLE  # idempotent
    with connection.cursor() as cursor:  # created after the grant: default privileges
        cursor.execute("CREATE TABLE warehouse.scope_later AS SELECT 2 AS id")

    cfg = connection.settings_dict
    info = {"host": cfg["HOST"] or "localhost", "port": int(cfg["PORT"] or 5432)}
    with psycopg.connect(**info, dbname=cfg["NAME"], user=READER_ROLE, autocommit=True) as conn:
        assert conn.execute("SELECT id FROM warehouse.scope_now").fetchall() == [(1,)]
        assert conn.execute("SELECT id FROM warehouse.scope_later").fetchall() == [(2,)]
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        for sql in (
            "SELECT * FROM public.auth_user",
            "SELECT * FROM public.django_session",
            "SELECT * FROM public.products_datasource",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM warehouse.scope_now")

    source = DataSourceFactory(
        name="demo-like",
        kind=SourceKind.POSTGRESQL,
        path="",
        host=info["host"],
        port=info["port"],
        database=cfg["NAME"],
        username=READER_ROLE,
        domains=[domain],
    )
    product = ProductFactory(domain=domain, name="Now", slug="now")
    port = OutputPortFactory(
        product=product, source=source, schema_name="warehouse", table_name="scope_now"
    )
    with connector_for_port(port) as connector:
        assert [c.name for c in connector.describe()] == ["id"]
        # The portal's own reads are read-only transactions too, whatever the role.
        assert connector.fetch("SHOW transaction_read_only") == [("on",)]
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE warehouse.scope_now, warehouse.scope_later")


# --- the demo ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the connectors read over their own connections
def test_the_demo_grants_each_domain_its_schema_and_reads_as_the_reader_role(settings, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    from products.demo.catalog import FILES_DIR, PRODUCTS
    from products.demo.warehouse import READER_ROLE
    from products.models import DataSource, StorageAllowance

    settings.DEMO_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    try:
        call_command("seed_demo", "--rows-scale", "0.02", stdout=StringIO())
        (source,) = DataSource.objects.all()
        assert source.kind == SourceKind.POSTGRESQL and source.username == READER_ROLE
        table_domains = {p.domain for p in PRODUCTS if not p.port.file_format}
        allowed = SourceAllowance.objects.values_list("domain__slug", "schema_name", "relations")
        assert sorted(allowed) == sorted((slug, "warehouse", []) for slug in table_domains)
        file_domains = {p.domain for p in PRODUCTS if p.port.file_format}
        assert set(StorageAllowance.objects.values_list("domain__slug", "path")) == {
            (slug, FILES_DIR) for slug in file_domains
        }
        # Every demo port passes the rule it was created under, and a port of the demo's
        # domains still cannot name the portal's tables through the demo source.
        admin = UserFactory(username="scope-admin", is_staff=True, is_superuser=True)
        for port in OutputPort.objects.select_related("product__domain", "source"):
            output_port_update(port=port, by=admin, description=port.description + ".")
        sales = OutputPort.objects.filter(source=source).first().product
        with pytest.raises(ValidationError) as refused:
            create(
                sales,
                admin,
                name="Users",
                source=source,
                schema_name="public",
                table_name="auth_user",
            )
        assert "metadata" in refused_on(refused)["schema_name"][0]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA IF EXISTS warehouse CASCADE")
