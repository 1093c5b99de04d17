"""demo_seed: people, domains, products, warehouse data, ports, columns and search
documents for the demo, then its trust evidence: checks, SLOs, 30 days of history and one
real check run per port (see `products.demo.trust`). Idempotent: seeding again with the
same inputs writes nothing (every step compares before it writes; history is written once
per port; checks run again only on data this seeding wrote, or not yet checked since the
data's `as_of` hour), and it never fights later changes people made to a product's
lifecycle.

Warehouse: on PostgreSQL the tables go to a `warehouse` schema of the metadata database
and a PostgreSQL data source points at it, with host, port and database taken from the
metadata connection and the read-only role `portal_demo_reader` as user (SELECT on
`warehouse` only; the metadata user when it may not create roles). Its `password_env` is
PORTAL_DEMO_READER_PASSWORD when that variable is set (the role gets that password), blank
otherwise: libpq then falls back to PGPASSWORD or ~/.pgpass (the demo database usually
trusts local connections). On SQLite (embedded mode) the tables go to the DuckDB file at
settings.DEMO_DUCKDB_PATH. With `warehouse="spark"` (DEMO_ENGINE=spark: `manage.py
runstack` starts a local Spark Connect server and seeds on it) the tables go to a
`warehouse` database on the Spark Connect server at `spark_url`, and a Spark data source
points at its host and port (updated when the port changes). Two products are served as
files in portal storage instead.

Each domain is made available the source's warehouse schema (and the demo files' folder)
that its products' ports read: a port may name only what its domain was allowed.
"""

import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from products.catalog.services.domains import domain_create, domain_member_set
from products.catalog.services.ports import (
    column_update,
    data_source_create,
    output_port_create,
    output_port_update,
    source_allow,
    storage_allow,
)
from products.catalog.services.products import (
    product_create,
    product_deprecate,
    product_publish,
    product_update,
)
from products.catalog.services.schema_refresh import schema_apply_columns
from products.catalog.services.search_index import product_search_index_update
from products.choices import (
    UNRESOLVED_INCIDENT_STATUSES,
    LifecycleStatus,
    PortKind,
    SourceKind,
)
from products.connectors import connector_for_port
from products.connectors.spark import SparkEndpoint
from products.demo import catalog
from products.demo.access import access_seed
from products.demo.catalog import (
    DUCKDB_SCHEMA,
    FILES_DIR,
    POSTGRES_SCHEMA,
    PRODUCTS,
    SPARK_SCHEMA,
    USERS,
    ProductSpec,
)
from products.demo.data import DEFAULT_SEED, generate_tables
from products.demo.definitions import definitions_seed
from products.demo.embeds import embeds_seed
from products.demo.feedback import feedback_seed
from products.demo.queries import queries_seed
from products.demo.streams import live_orders_seed
from products.demo.syncs import syncs_seed
from products.demo.trust import (
    TRUST,
    checks_run_now,
    ensure_checks,
    ensure_slos,
    history_seed,
    incidents_backdate,
    trust_history_backfill,
)
from products.demo.usage import usage_seed
from products.demo.warehouse import (
    READER_PASSWORD_ENV,
    build_id,
    duckdb_build_id,
    duckdb_write,
    file_bytes,
    file_write,
    postgres_build_id,
    postgres_reader_ensure,
    postgres_write,
    spark_build_id,
    spark_write,
)
from products.models import (
    CheckRun,
    DataProduct,
    DataSource,
    Domain,
    DomainMembership,
    Incident,
    OutputPort,
    SourceAllowance,
    StorageAllowance,
    UsageSummaryRun,
)
from products.trust.services.evidence import trust_after_check_run
from products.trust.services.trust_score import trust_score_compute, trust_scores_latest_for
from products.usage.services import usage_summaries_refresh

WAREHOUSE_DUCKDB = "duckdb"
WAREHOUSE_POSTGRESQL = "postgresql"
WAREHOUSE_SPARK = "spark"
SOURCE_NAMES = {
    WAREHOUSE_DUCKDB: "Demo warehouse (DuckDB)",
    WAREHOUSE_POSTGRESQL: "Demo warehouse (PostgreSQL)",
    WAREHOUSE_SPARK: "Demo warehouse (Spark)",
}
WAREHOUSE_SCHEMAS = {
    SourceKind.DUCKDB: DUCKDB_SCHEMA,
    SourceKind.POSTGRESQL: POSTGRES_SCHEMA,
    SourceKind.SPARK: SPARK_SCHEMA,
}
# DEMO_ENGINE: where `make run` puts the demo's warehouse. Unset: the default (PostgreSQL
# schema or DuckDB file); "spark": a local Spark Connect server runstack starts.
DEMO_ENGINE_ENV = "DEMO_ENGINE"
DEMO_ENGINES = ("", WAREHOUSE_SPARK)
SPARK_URL = re.compile(r"^sc://(?P<host>[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})/?$")


class DemoSeedError(Exception):
    """The demo cannot be seeded as asked; the message says why."""


@dataclass
class DemoSeedResult:
    warehouse: str
    warehouse_location: str
    warehouse_rebuilt: bool
    files_written: list[str]
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    row_counts: dict[str, int] = field(default_factory=dict)  # product key -> rows
    # product key -> (passed, failed, errored) of the check run this seeding ran
    check_runs: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    trust_scores: dict[str, float] = field(default_factory=dict)  # product key -> score
    open_incidents: int = 0
    seconds: float = 0.0


def demo_engine() -> str:
    """The DEMO_ENGINE `make run` was given: "" (the default) or "spark"."""
    engine = os.environ.get(DEMO_ENGINE_ENV, "").strip().lower()
    if engine not in DEMO_ENGINES:
        raise DemoSeedError(
            f"Unknown DEMO_ENGINE {engine!r}: leave it unset, or set DEMO_ENGINE=spark for "
            "a warehouse on a local Spark Connect server."
        )
    return engine


def spark_endpoint_of(url: str) -> SparkEndpoint:
    """The endpoint of a token-less `sc://host:port` URL (the local server's)."""
    match = SPARK_URL.match(url or "")
    if match is None:
        raise DemoSeedError(
            f"The Spark warehouse needs a Spark Connect URL like sc://127.0.0.1:15002, not {url!r}."
        )
    return SparkEndpoint(host=match["host"], port=int(match["port"]))


def warehouse_mode(requested: str = "auto") -> str:
    vendor = connection.vendor
    if requested == "auto":
        return WAREHOUSE_POSTGRESQL if vendor == "postgresql" else WAREHOUSE_DUCKDB
    if requested == WAREHOUSE_POSTGRESQL and vendor != "postgresql":
        raise DemoSeedError(
            "The PostgreSQL warehouse goes into the metadata database, which is "
            f"{vendor} here. Set DATABASE_URL to a PostgreSQL database, or use the "
            "DuckDB warehouse."
        )
    if requested not in SOURCE_NAMES:
        raise DemoSeedError(
            f"Unknown warehouse {requested!r}: use auto, duckdb, postgresql or spark."
        )
    return requested


def demo_seed(
    *,
    warehouse: str = "auto",
    rows_scale: float = 1.0,
    seed: int = DEFAULT_SEED,
    as_of: datetime | None = None,
    force: bool = False,
    spark_url: str = "",
    log: Callable[[str], None] = lambda line: None,
) -> DemoSeedResult:
    """Seed (or bring up to date) the demo. `as_of` (UTC) is when the newest rows were
    generated; it defaults to the start of the current hour, so the demo data is fresh
    and seeding again within the hour writes nothing. `spark_url` (sc://host:port, no
    token) is the Spark Connect server of the spark warehouse."""
    started = time.monotonic()
    # `make run` seeds before runstack starts: with DEMO_ENGINE=spark the server is not
    # there yet, and runstack seeds on it once it is (no warehouse written twice).
    deferred = warehouse == "auto" and not spark_url and demo_engine() == WAREHOUSE_SPARK
    mode = WAREHOUSE_SPARK if deferred else warehouse_mode(warehouse)
    endpoint = spark_endpoint_of(spark_url) if mode == WAREHOUSE_SPARK and not deferred else None
    if rows_scale <= 0:
        raise DemoSeedError("rows_scale must be positive.")
    as_of = (
        (as_of or datetime.now(UTC))
        .astimezone(UTC)
        .replace(minute=0, second=0, microsecond=0, tzinfo=None)
    )
    result = DemoSeedResult(
        warehouse=mode, warehouse_location="", warehouse_rebuilt=False, files_written=[]
    )

    with transaction.atomic():
        users = {spec.username: _ensure_user(spec, result) for spec in USERS}
        admin = users["admin"]
        domains = {spec.slug: _ensure_domain(spec, admin, result) for spec in catalog.DOMAINS}
        for spec in USERS:
            for domain_slug, role in spec.memberships:
                _ensure_membership(domains[domain_slug], users[spec.username], role, admin, result)

    frames = generate_tables(seed=seed, as_of=as_of, rows_scale=rows_scale)
    by_name = {spec.name: spec for spec in catalog.TABLES}
    table_products = [p for p in PRODUCTS if not p.port.file_format]
    warehouse_tables = {p.port.table: frames[p.port.table.name] for p in table_products}
    specs = tuple(warehouse_tables)
    build = build_id(seed=seed, rows_scale=rows_scale, as_of=as_of, specs=catalog.TABLES)
    log(
        f"Generated {sum(len(f) for f in frames.values()):,} rows as of {as_of:%Y-%m-%d %H:00} UTC."
    )
    if deferred:
        result.warehouse_location = (
            "DEMO_ENGINE=spark: `manage.py runstack` seeds the demo once it has started the "
            "local Spark Connect server"
        )
        result.row_counts = {spec.key: len(frames[spec.port.table.name]) for spec in PRODUCTS}
        result.seconds = time.monotonic() - started
        return result

    reader = None
    if mode == WAREHOUSE_DUCKDB:
        path = settings.DEMO_DUCKDB_PATH
        result.warehouse_location = str(path)
        if force or duckdb_build_id(path, specs) != build:
            duckdb_write(path, warehouse_tables, build)
            result.warehouse_rebuilt = True
    elif mode == WAREHOUSE_SPARK:
        result.warehouse_location = f"database {SPARK_SCHEMA} on {endpoint.url}"
        if force or spark_build_id(endpoint, specs) != build:
            spark_write(endpoint, warehouse_tables, build)
            result.warehouse_rebuilt = True
    else:
        result.warehouse_location = f"schema {POSTGRES_SCHEMA} of database {_pg_settings()['NAME']}"
        if force or postgres_build_id(specs) != build:
            postgres_write(warehouse_tables, build)
            result.warehouse_rebuilt = True
        # Committed before the source connects as the role (its own transaction).
        reader = postgres_reader_ensure()
        if reader is None:
            log("Could not create the read-only role: the source reads as the metadata user.")
    for product in PRODUCTS:
        if product.port.file_format:
            data = file_bytes(
                frames[product.port.table.name],
                by_name[product.port.table.name],
                product.port.file_format,
            )
            if file_write(product.port.file_path, data):
                result.files_written.append(product.port.file_path)

    ports: dict[str, OutputPort] = {}
    with transaction.atomic():
        source = _ensure_source(mode, admin, result, reader=reader, spark=endpoint)
        _ensure_allowances(source, domains, admin, result)
        product_ids = []
        for spec in PRODUCTS:
            product = _ensure_product(spec, domains[spec.domain], users, admin, result)
            port = _ensure_port(spec, product, source, admin, result)
            _ensure_columns(spec, port, admin, result)
            _ensure_status(spec, product, admin, result)
            product_ids.append(product.pk)
            ports[spec.key] = port
            result.row_counts[spec.key] = len(frames[spec.port.table.name])
        product_search_index_update(product_ids=product_ids)

    written = {
        spec.key
        for spec in PRODUCTS
        if (spec.port.file_path in result.files_written)
        or (not spec.port.file_format and result.warehouse_rebuilt)
    }
    with_history = _seed_trust(
        ports, frames, as_of.replace(tzinfo=UTC), written, admin, result, log
    )
    with transaction.atomic():  # the stream port (its producer is started by `make run`)
        _, created = live_orders_seed(domain=domains["sales"], admin=admin, owners=[users["owner"]])
        _count(result, "stream ports", created, created)
    _seed_feedback(users, result, log)
    for what, n in access_seed(users=users, log=log).items():
        if n:
            result.created[what] += n
    with (
        transaction.atomic()
    ):  # glossary terms and metrics, when missing (before the syncs: one sends a metric)
        definitions_seed(
            users=users,
            ports=ports,
            count=lambda what, created, changed: _count(result, what, created, changed),
        )
    for what, n in syncs_seed(users=users, log=log).items():  # runs here, not queued
        if n:
            result.created[what] += n
    for what, n in queries_seed(users=users, log=log).items():
        if n:
            result.created[what] += n
    # The embed of sales.revenue (a metric: after the definitions) and its demo host's key.
    for what, n in embeds_seed(users=users, log=log).items():
        if n:
            result.created[what] += n
    # Last, once every kind of evidence is in: the trust score's days, from that history.
    clock = time.monotonic()
    with transaction.atomic():
        for key in sorted(with_history):
            result.created["trust snapshots (history)"] += trust_history_backfill(
                product=ports[key].product, as_of=as_of.replace(tzinfo=UTC)
            )
    if with_history:  # today's scores were recomputed with them
        latest = trust_scores_latest_for([port.product_id for port in ports.values()])
        result.trust_scores = {
            key: latest[port.product_id].score
            for key, port in ports.items()
            if port.product_id in latest
        }
    log(f"Trust score history in {time.monotonic() - clock:.1f} s.")

    usage_events = usage_seed(
        products={key: port.product for key, port in ports.items()},
        users=users,
        as_of=as_of.replace(tzinfo=UTC),
    )
    if usage_events:
        result.created["usage events (demo)"] += usage_events

    if usage_events or not UsageSummaryRun.objects.exists():
        usage_summaries_refresh()  # the usage dashboard's figures, without waiting an hour

    result.seconds = time.monotonic() - started
    return result


def _seed_trust(
    ports: dict[str, OutputPort],
    frames: dict[str, pd.DataFrame],
    as_of: datetime,
    written: set[str],
    admin,
    result: DemoSeedResult,
    log: Callable[[str], None],
) -> set[str]:
    """Checks, SLOs and history, then one real check run per port that needs one. Returns
    the keys of the products whose history this seeding wrote."""
    began, clock = timezone.now(), time.monotonic()
    specs = {spec.key: spec for spec in PRODUCTS}

    def count(what: str, created: bool, changed: bool) -> None:
        _count(result, what, created, changed)

    with transaction.atomic():
        for key, port in ports.items():
            table = specs[key].port.table
            ensure_checks(
                port=port, spec=TRUST[key], frame=frames[table.name], admin=admin, count=count
            )

    # History only for ports that never ran (the first seeding): written once.
    new = {key for key, port in ports.items() if not port.check_runs.exists()}
    for key in sorted(new):
        table = specs[key].port.table
        history = history_seed(
            port=ports[key],
            table=table,
            spec=TRUST[key],
            frame=frames[table.name],
            as_of=as_of,
            run=None,
            observations_only=True,
        )
        result.created["observations (history)"] += history.observations

    log(f"Checks and observation history in {time.monotonic() - clock:.1f} s.")
    clock = time.monotonic()
    runs: dict[str, CheckRun] = {}
    for key, port in ports.items():
        checked = port.check_runs.filter(created_at__gte=as_of).exists()
        if key in written or key in new or not checked:
            run = checks_run_now(port=port, admin=admin)
            if run is not None:
                runs[key] = run
                result.check_runs[key] = (run.passed, run.failed, run.errored)
    log(f"Ran the checks of {len(runs)} ports in {time.monotonic() - clock:.1f} s.")
    clock = time.monotonic()

    histories = {}
    for key in sorted(new):
        table = specs[key].port.table
        histories[key] = history_seed(
            port=ports[key],
            table=table,
            spec=TRUST[key],
            frame=frames[table.name],
            as_of=as_of,
            run=runs.get(key),
            observations_only=False,
        )
        result.created["check runs (history)"] += histories[key].runs
        result.created["check results (history)"] += histories[key].results

    log(f"Check run history in {time.monotonic() - clock:.1f} s.")
    clock = time.monotonic()
    for key, port in ports.items():
        ensure_slos(product=port.product, spec=TRUST[key], admin=admin, count=count)
    for run in runs.values():
        trust_after_check_run(run=run)
    for history in histories.values():
        incidents_backdate(history=history, since=began)

    log(f"SLOs, incidents and trust scores in {time.monotonic() - clock:.1f} s.")
    product_ids = {port.product_id: key for key, port in ports.items()}
    result.trust_scores = {
        product_ids[pk]: score.score
        for pk, score in trust_scores_latest_for(list(product_ids)).items()
    }
    result.open_incidents = Incident.objects.filter(
        product_id__in=product_ids, status__in=UNRESOLVED_INCIDENT_STATUSES
    ).count()
    return new


def _seed_feedback(users: dict, result: DemoSeedResult, log: Callable[[str], None]) -> None:
    """Feedback threads, announcements and follows (see products.demo.feedback); a
    product given an overdue thread gets a fresh trust score showing it."""

    seeded = feedback_seed(users=users, log=log)
    for what, n in seeded.created.items():
        result.created[what] += n
    for key in seeded.overdue_products:
        trust_score_compute(product=DataProduct.objects.get_by_key(key))


# --- steps -----------------------------------------------------------------------------


def _ensure_user(spec: catalog.UserSpec, result: DemoSeedResult):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=spec.username)
    wanted = {
        "first_name": spec.first_name,
        "last_name": spec.last_name,
        "email": spec.email,
        "is_staff": spec.is_staff,
        "is_superuser": spec.is_superuser,
        "is_active": True,
    }
    changed = [name for name, value in wanted.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, wanted[name])
    if created or not user.check_password(catalog.PASSWORD):
        user.set_password(catalog.PASSWORD)
        changed.append("password")
    if changed:
        user.save()
    _count(result, "users", created, bool(changed))
    return user


def _ensure_domain(spec: catalog.DomainSpec, admin, result: DemoSeedResult) -> Domain:
    domain = Domain.objects.filter(slug=spec.slug).first()
    if domain is None:
        domain = domain_create(
            name=spec.name, slug=spec.slug, description=spec.description, by=admin
        )
        _count(result, "domains", True, True)
        return domain
    if (domain.name, domain.description) != (spec.name, spec.description):
        domain.name, domain.description = spec.name, spec.description
        domain.full_clean()
        domain.save(update_fields=["name", "description"])
        _count(result, "domains", False, True)
    return domain


def _ensure_membership(domain, user, role, admin, result: DemoSeedResult) -> None:
    current = (
        DomainMembership.objects.filter(domain=domain, user=user)
        .values_list("role", flat=True)
        .first()
    )
    if current != role:
        domain_member_set(domain=domain, user=user, role=role, by=admin)
        _count(result, "memberships", current is None, True)


def _pg_settings() -> dict:
    return connection.settings_dict


def _ensure_source(
    mode: str,
    admin,
    result: DemoSeedResult,
    *,
    reader: str | None = None,
    spark: SparkEndpoint | None = None,
) -> DataSource:
    if mode == WAREHOUSE_DUCKDB:
        fields = {
            "kind": SourceKind.DUCKDB,
            "path": str(settings.DEMO_DUCKDB_PATH),
            "description": "DuckDB file written by `manage.py seed_demo` (embedded mode).",
        }
    elif mode == WAREHOUSE_SPARK:
        fields = {
            "kind": SourceKind.SPARK,
            "host": spark.host,
            "port": spark.port,
            "description": "The `warehouse` database of the local Spark Connect server that "
            "`DEMO_ENGINE=spark make run` starts (its port may change at each start; the "
            "tables are written again each time, the server's catalog being in memory).",
        }
    else:
        cfg = _pg_settings()
        password_env = READER_PASSWORD_ENV if reader and os.environ.get(READER_PASSWORD_ENV) else ""
        fields = {
            "kind": SourceKind.POSTGRESQL,
            "host": cfg.get("HOST") or "",
            "port": int(cfg["PORT"]) if cfg.get("PORT") else None,
            "database": cfg["NAME"],
            "username": reader or cfg.get("USER") or "",
            "password_env": password_env,
            "description": "The `warehouse` schema of the portal's own PostgreSQL database, "
            "written by `manage.py seed_demo`, read as a role that may only SELECT there. "
            + (
                f"Its password is in {password_env}."
                if password_env
                else "No password variable: libpq falls back to PGPASSWORD or ~/.pgpass."
            ),
        }
    name = SOURCE_NAMES[mode]
    source = DataSource.objects.filter(name=name).first()
    if source is None:
        source = data_source_create(by=admin, name=name, **fields)
        _count(result, "data sources", True, True)
        return source
    changed = [key for key, value in fields.items() if getattr(source, key) != value]
    if changed:
        for key in changed:
            setattr(source, key, fields[key])
        source.full_clean()
        source.save(update_fields=changed)
        _count(result, "data sources", False, True)
    return source


def _ensure_allowances(
    source: DataSource, domains: dict[str, Domain], admin, result: DemoSeedResult
) -> None:
    """Each domain may use the warehouse schema (and the demo files' folder) its products'
    ports read, and nothing else."""
    schema = WAREHOUSE_SCHEMAS[source.kind]
    for slug in sorted({spec.domain for spec in PRODUCTS if not spec.port.file_format}):
        domain = domains[slug]
        if not SourceAllowance.objects.filter(
            source=source, domain=domain, schema_name=schema, relations=[]
        ).exists():
            source_allow(source=source, domain=domain, by=admin, schema_name=schema)
            _count(result, "source allowances", True, True)
    for slug in sorted({spec.domain for spec in PRODUCTS if spec.port.file_format}):
        domain = domains[slug]
        if not StorageAllowance.objects.filter(domain=domain, path=FILES_DIR).exists():
            storage_allow(domain=domain, by=admin, path=FILES_DIR)
            _count(result, "storage allowances", True, True)


def _ensure_product(spec: ProductSpec, domain, users, admin, result: DemoSeedResult) -> DataProduct:
    fields = {
        "summary": spec.summary,
        "description": spec.description,
        "purpose_use_case": spec.use_case,
        "purpose_intended_users": spec.intended_users,
        "purpose_expected_outcome": spec.expected_outcome,
        "audience": spec.audience,
        "version": spec.version,
    }
    owners = [users[name] for name in spec.owners]
    product = DataProduct.objects.filter(domain=domain, slug=spec.slug).first()
    if product is None:
        product = product_create(
            domain=domain,
            name=spec.name,
            slug=spec.slug,
            by=admin,
            tags=spec.tags,
            owners=owners,
            **fields,
        )
        _count(result, "products", True, True)
        return product
    fields["name"] = spec.name
    changed = {key: value for key, value in fields.items() if getattr(product, key) != value}
    tags = sorted(spec.tags) != sorted(product.tags.values_list("name", flat=True))
    owners_changed = {u.pk for u in owners} != set(product.owners.values_list("pk", flat=True))
    if changed or tags or owners_changed:
        product = product_update(
            product=product,
            by=admin,
            tags=spec.tags if tags else None,
            owners=owners if owners_changed else None,
            **changed,
        )
        _count(result, "products", False, True)
    return product


def _ensure_port(spec: ProductSpec, product, source, admin, result: DemoSeedResult) -> OutputPort:
    port_spec = spec.port
    if port_spec.file_format:
        fields = {
            "kind": PortKind.FILE,
            "source": None,
            "schema_name": "",
            "table_name": "",
            "file_path": port_spec.file_path,
            "file_format": port_spec.file_format,
        }
    else:
        fields = {
            "kind": PortKind.TABLE,
            "source": source,
            "schema_name": WAREHOUSE_SCHEMAS[source.kind],
            "table_name": port_spec.table.name,
            "file_path": "",
            "file_format": "",
        }
    fields["description"] = port_spec.description
    port = product.ports.filter(name=port_spec.name).select_related("source").first()
    created = port is None
    if created:
        port = output_port_create(product=product, by=admin, name=port_spec.name, **fields)
        _count(result, "ports", True, True)
    else:
        changed = {key: value for key, value in fields.items() if getattr(port, key) != value}
        if changed:
            port = output_port_update(port=port, by=admin, **changed)
            _count(result, "ports", False, True)
    # Set directly: the port services do not take the freshness column.
    freshness_column = port_spec.table.freshness_column
    if port.freshness_column != freshness_column:
        OutputPort.objects.filter(pk=port.pk).update(freshness_column=freshness_column)
        port.freshness_column = freshness_column
        if not created:
            _count(result, "ports", False, True)
    return port


def _ensure_columns(spec: ProductSpec, port: OutputPort, admin, result: DemoSeedResult) -> None:
    """Read the columns from the source now (no worker needed), then document them."""
    with connector_for_port(port) as connector:
        infos = connector.describe()
    current = list(
        port.columns.order_by("position").values_list("name", "data_type", "nullable", "position")
    )
    if current != [(i.name, i.data_type, i.nullable, i.position) for i in infos]:
        schema_apply_columns(port=port, columns=infos)
        _count(result, "column schemas", not current, True)
    docs = {column.name: column for column in spec.port.table.columns}
    for column in port.columns.all():
        doc = docs.get(column.name)
        if doc is None:
            continue
        if (column.description, column.classification) != (doc.description, doc.classification):
            column.port = port  # column_update checks rights through the port's product
            column_update(
                column=column,
                by=admin,
                description=doc.description,
                classification=doc.classification,
            )
            _count(result, "column descriptions", False, True)


def _ensure_status(spec: ProductSpec, product: DataProduct, admin, result: DemoSeedResult) -> None:
    """Move a product forward to its demo status; a status people set later is kept."""
    wanted = spec.status
    if product.status == LifecycleStatus.DRAFT and wanted in (
        LifecycleStatus.PUBLISHED,
        LifecycleStatus.DEPRECATED,
    ):
        product_publish(product=product, by=admin)
        product.status = LifecycleStatus.PUBLISHED
        _count(result, "lifecycle changes", False, True)
    if product.status == LifecycleStatus.PUBLISHED and wanted == LifecycleStatus.DEPRECATED:
        product_deprecate(product=product, by=admin)
        _count(result, "lifecycle changes", False, True)


def _count(result: DemoSeedResult, what: str, created: bool, changed: bool) -> None:
    if created:
        result.created[what] += 1
    elif changed:
        result.updated[what] += 1
