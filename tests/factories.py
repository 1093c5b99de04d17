import factory
from django.contrib.auth import get_user_model

from products.catalog.services.search_index import product_search_index_update
from products.choices import (
    Classification,
    LifecycleStatus,
    MembershipRole,
    PortKind,
    SourceKind,
)
from products.models import (
    Column,
    DataProduct,
    DataSource,
    Domain,
    DomainMembership,
    OutputPort,
    SourceAllowance,
    StorageAllowance,
    Tag,
)

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class DomainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Domain
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Domain {n}")
    slug = factory.Sequence(lambda n: f"domain-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DomainMembership

    domain = factory.SubFactory(DomainFactory)
    user = factory.SubFactory(UserFactory)
    role = MembershipRole.OWNER


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataProduct
        skip_postgeneration_save = True

    domain = factory.SubFactory(DomainFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    summary = "A data product for tests."
    description = "Rows of things, one per event."
    status = LifecycleStatus.PUBLISHED

    @factory.post_generation
    def tags(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.tags.set([TagFactory(name=name) for name in extracted])

    @factory.post_generation
    def owners(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.owners.set(extracted)

    @factory.post_generation
    def indexed(obj, create, extracted, **kwargs):
        if create:
            product_search_index_update(product_ids=[obj.pk])


class DataSourceFactory(factory.django.DjangoModelFactory):
    """A registered source. `domains=[...]` makes it available to those domains in every
    schema; by default it is available to every domain that exists when it is created
    (so tests about something else can add ports on it); `domains=[]` to none."""

    class Meta:
        model = DataSource
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"source-{n}")
    kind = SourceKind.DUCKDB
    path = "/nonexistent/warehouse.duckdb"

    @factory.post_generation
    def domains(obj, create, extracted, **kwargs):
        if not create:
            return
        domains = Domain.objects.all() if extracted is None else extracted
        for domain in domains:
            source_allowance(source=obj, domain=domain)


class SparkSourceFactory(DataSourceFactory):
    """A Spark Connect source (no file path), on the local server's host unless told."""

    kind = SourceKind.SPARK
    path = ""
    host = "127.0.0.1"


def source_allowance(*, source, domain, schema_name="*", relations=()) -> SourceAllowance:
    """Make `source` available to `domain` (what an admin does in the admin site)."""
    allowance, _ = SourceAllowance.objects.update_or_create(
        source=source,
        domain=domain,
        schema_name=schema_name,
        defaults={"relations": list(relations)},
    )
    return allowance


def metadata_db_connect():
    """A psycopg connection of its own (autocommit) to the test run's database: tables a
    test builds for a metadata_db_source are committed, as a real warehouse's are."""
    import psycopg
    from django.db import connection

    cfg = connection.settings_dict
    info = {
        "host": cfg["HOST"] or "localhost",
        "port": int(cfg["PORT"] or 5432),
        "dbname": cfg["NAME"],
        "user": cfg["USER"] or None,
        "password": cfg["PASSWORD"] or None,
    }
    return psycopg.connect(**{k: v for k, v in info.items() if v}, autocommit=True)


def metadata_db_source(**kwargs) -> DataSource:
    """A PostgreSQL data source in the test run's own database (tests create the tables
    it serves in a schema of their own)."""
    from django.db import connection

    cfg = connection.settings_dict
    return DataSourceFactory(
        kind=SourceKind.POSTGRESQL,
        path="",
        host=cfg["HOST"] or "localhost",
        port=int(cfg["PORT"] or 5432),
        database=cfg["NAME"],
        username=cfg["USER"] or "",
        **kwargs,
    )


class OutputPortFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OutputPort
        skip_postgeneration_save = True

    product = factory.SubFactory(ProductFactory)
    name = factory.Sequence(lambda n: f"port {n}")
    slug = factory.Sequence(lambda n: f"port-{n}")
    kind = PortKind.TABLE
    source = factory.SubFactory(DataSourceFactory)
    schema_name = "main"
    table_name = "things"

    @factory.post_generation
    def allowed(obj, create, extracted, **kwargs):
        """The port's domain may use where it reads (the port exists: an admin allowed
        it), unless `allowed=False`."""
        if not create or extracted is False:
            return
        if obj.source_id is not None:
            source_allowance(source=obj.source, domain=obj.product.domain)
        elif obj.file_path:
            StorageAllowance.objects.get_or_create(
                domain=obj.product.domain, path=obj.file_path.strip("/")
            )


class ColumnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Column

    port = factory.SubFactory(OutputPortFactory)
    name = factory.Sequence(lambda n: f"col_{n}")
    data_type = "INTEGER"
    position = factory.Sequence(lambda n: n)


def columns_declare(port, types: dict[str, str], *, confidential=("email",)) -> None:
    """The port's columns, in the order of `types` (name -> data type); those named in
    `confidential` confidential (masked for grantees), the others internal."""
    for position, (name, data_type) in enumerate(types.items()):
        ColumnFactory(
            port=port,
            name=name,
            position=position,
            data_type=data_type,
            classification=Classification.CONFIDENTIAL
            if name in confidential
            else Classification.INTERNAL,
        )


class FilePortFactory(OutputPortFactory):
    """A port serving a file in portal storage (file_path relative to MEDIA_ROOT)."""

    kind = PortKind.FILE
    source = None
    schema_name = ""
    table_name = ""
    file_format = "parquet"


def parquet_product(
    *, media_root, domain, rows: dict, file_path: str, sensitive=("email",), **product_fields
) -> DataProduct:
    """A product served from a Parquet file written from `rows` (column -> values), with a
    port `orders` whose columns are documented; `sensitive` columns are confidential."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from products.choices import Classification

    path = media_root / file_path
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(rows)
    pq.write_table(table, path)
    product_fields = {"name": "Orders", "slug": "orders", **product_fields}
    product = ProductFactory(domain=domain, **product_fields)
    port = FilePortFactory(product=product, name="Orders", slug="orders", file_path=file_path)
    for position, name in enumerate(rows):
        ColumnFactory(
            port=port,
            name=name,
            position=position,
            # The file's own type, as a schema refresh records it (filters are typed by it).
            data_type=duckdb_type_name(table.schema.field(name).type),
            classification=Classification.CONFIDENTIAL
            if name in sensitive
            else Classification.INTERNAL,
        )
    return product


def duckdb_type_name(arrow_type) -> str:
    """The type DuckDB names for an Arrow type (what a schema refresh of the file records)."""
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP WITH TIME ZONE" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision},{arrow_type.scale})"
    names = {
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.float64(): "DOUBLE",
        pa.float32(): "FLOAT",
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
        pa.null(): "INTEGER",  # DuckDB reads an all-null column as INTEGER
    }
    return names.get(arrow_type, str(arrow_type).upper())


def export_run_now(*, schedule, by):
    """ "Run now" and execute the run here, as a test wants it done. In a transactional
    test the run's task also reaches Redis at commit, where the session's Celery worker
    (when an earlier test started it) may claim the run first: then wait for its result."""
    from sharing.choices import ExportStatus
    from sharing.exports.services.runs import export_run_execute, export_run_request
    from sharing.models import ExportRun
    from tests.conftest import wait_for

    requested = export_run_request(schedule=schedule, by=by)
    run = export_run_execute(run_id=requested.pk)
    if run is None:
        unfinished = (ExportStatus.QUEUED, ExportStatus.RUNNING)
        wait_for(
            lambda: ExportRun.objects.get(pk=requested.pk).status not in unfinished,
            timeout=60,
            message="the worker that claimed the export run did not finish it within 60 s",
        )
        run = ExportRun.objects.get(pk=requested.pk)
    return run
