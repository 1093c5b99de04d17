import difflib
import ipaddress
import re
import socket
from collections.abc import Sequence
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, transaction
from django.utils.text import slugify

from products.catalog.permissions import can_edit_product, user_is_admin
from products.catalog.services.search_index import product_search_index_update
from products.choices import Classification, FileFormat, PortKind, SourceKind
from products.connectors import (
    Connector,
    ConnectorError,
    LocationRefused,
    RelationMissing,
    connector_for_port,
    port_file_path,
)
from products.connectors import spark as spark_connector
from products.connectors.nats_stream import StreamReader, stream_location_errors
from products.models import (
    Column,
    DataProduct,
    DataSource,
    Domain,
    OutputPort,
    SourceAllowance,
    StorageAllowance,
)
from products.models.ports import ANY_SCHEMA

ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SPARK_HOST = spark_connector.HOST_NAME
SPARK_USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,120}$")
SPARK_CLUSTER_ID = spark_connector.CLUSTER_ID
SPARK_DEFAULT_PORT = spark_connector.DEFAULT_PORT
# Port slugs that would collide with API routes (`/ports/upload/`).
RESERVED_PORT_SLUGS = {"upload"}
RESERVED_STREAM_PREFIXES = ("PORTAL", "KV_", "OBJ_", "$")
RESERVED_SUBJECT_PREFIXES = ("portal.", "$", "_INBOX")

PORT_FIELDS = (
    "name",
    "description",
    "kind",
    "source",
    "schema_name",
    "table_name",
    "file_path",
    "file_format",
    "stream_name",
    "stream_subject",
    "freshness_column",
)


def data_source_create(*, by, name: str, kind: str, **fields) -> DataSource:
    """Register a connection. Only admins do this: a source reaches real data."""
    if not user_is_admin(by):
        raise PermissionDenied("Only admins register data sources.")
    source = DataSource(name=(name or "").strip(), kind=kind, **fields)
    if kind == SourceKind.SPARK and source.port is None:
        source.port = SPARK_DEFAULT_PORT
    errors = data_source_errors(source)
    if errors:
        raise ValidationError(errors)
    source.full_clean()
    source.save()
    return source


def data_source_errors(source: DataSource) -> dict[str, str]:
    """What is wrong with a source's connection fields, by field (empty: nothing)."""
    errors: dict[str, str] = {}
    if source.password_env and not ENV_VAR_NAME.match(source.password_env):
        errors["password_env"] = (
            "Give the name of an environment variable (letters, digits, underscores), "
            "not the password itself."
        )
    if source.kind == SourceKind.POSTGRESQL and not source.database:
        errors["database"] = "A PostgreSQL source needs a database name."
    if source.kind == SourceKind.DUCKDB and not source.path:
        errors["path"] = "A DuckDB source needs the path of its database file."
    if source.kind == SourceKind.SPARK:
        if not SPARK_HOST.match(source.host or ""):
            errors["host"] = (
                "A Spark source needs the host name of its Spark Connect server "
                "(spark.example.com), without sc://, a port or parameters."
            )
        if source.database:
            errors["database"] = (
                "A Spark source has no database: its ports name `schema` or "
                "`catalog.schema` as their schema."
            )
        if source.path:
            errors["path"] = "A Spark source has no file path: give its host and port."
        if source.username and not SPARK_USER_ID.match(source.username):
            errors["username"] = "The Spark session's user name: letters, digits and . _ @ - only."
        if source.cluster_id and not SPARK_CLUSTER_ID.match(source.cluster_id):
            errors["cluster_id"] = (
                "Give the cluster id as Databricks shows it (0123-456789-abcdefgh): letters, "
                "digits, - and _ only, no spaces."
            )
    elif source.cluster_id:
        errors["cluster_id"] = (
            "Only a Spark source (Databricks) runs on a cluster: leave the cluster id blank."
        )
    return errors


# Where a port may read from ------------------------------------------------------------
#
# A table port names a relation of a source its product's domain may use (an admin's
# SourceAllowance), never a system catalog, and never the schemas holding the portal's own
# metadata when the source is the metadata database. A file port names a file uploaded to
# its own domain (`uploads/<domain>/`) or one an admin made available to the domain
# (StorageAllowance); never an export file, another domain's upload or a serving cache.

# The schema a port with a blank schema name reads (what the connectors use).
DEFAULT_SCHEMA = {
    SourceKind.POSTGRESQL: "public",
    SourceKind.DUCKDB: "main",
    SourceKind.SPARK: spark_connector.DEFAULT_SCHEMA,
}
SYSTEM_SCHEMAS = {
    SourceKind.POSTGRESQL: {"pg_catalog", "information_schema", "pg_toast"},
    SourceKind.DUCKDB: {"information_schema", "pg_catalog", "system", "temp"},
    # global_temp: views any Spark session may create, seen by all of them
    SourceKind.SPARK: {"information_schema", "global_temp"},
}
# Spark: the `system` catalog (Databricks' audit and billing tables; Spark's session
# variables and built-in functions) is no port's.
SPARK_SYSTEM_CATALOGS = {"system"}
# Spark reads `parquet.`/some/path`` as the file at that path, not as a table of a schema
# named parquet: a port naming such a schema alone would read any file the server can.
# (Its sessions turn that off as well, where the server lets them: products.connectors.spark.)
SPARK_FILE_FORMATS = {
    "parquet", "csv", "json", "orc", "text", "avro", "delta", "binaryfile", "xml",
    "jdbc", "iceberg", "hudi", "hive", "file", "jsonl", "tsv",
}  # fmt: skip
SYSTEM_SCHEMA_PREFIXES = ("pg_temp", "pg_toast_temp")
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}
# Folders of portal storage no file port may name: the upload feature's (each domain only
# its own), scheduled exports (sharing.exports.services.files.EXPORT_FOLDER: served through
# their export's own access check) and the Delta Sharing serving cache.
UPLOADS_DIR = "uploads"
FORBIDDEN_STORAGE_DIRS = ("exports", "delta-sharing")


def port_default_schema(source: DataSource) -> str:
    return DEFAULT_SCHEMA.get(source.kind, "")


def _host_addresses(host: str) -> frozenset[str]:
    """The addresses a database host name means; "local" for this machine (loopback, a
    Unix socket directory, this host's own name)."""
    host = (host or "").strip().lower()
    if host in LOCAL_HOSTS or host.startswith("/") or host == socket.gethostname().lower():
        return frozenset({"local"})
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return frozenset({host})
        addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    return frozenset("local" if a.is_loopback else str(a) for a in addresses)


def source_is_metadata_database(source: DataSource) -> bool:
    """Whether the source reaches the portal's own metadata database: the same PostgreSQL
    host (loopback, socket and this host's name are one host), port and database, or, on
    SQLite, the same file opened as a DuckDB database."""
    metadata = connections["default"]
    cfg = metadata.settings_dict
    if metadata.vendor == "sqlite":
        if source.kind != SourceKind.DUCKDB or not source.path:
            return False
        try:
            return Path(source.path).resolve() == Path(str(cfg["NAME"])).resolve()
        except OSError:
            return False
    if metadata.vendor != "postgresql" or source.kind != SourceKind.POSTGRESQL:
        return False
    if (source.database or "") != (cfg.get("NAME") or ""):
        return False
    if int(source.port or 5432) != int(cfg.get("PORT") or 5432):
        return False
    return bool(_host_addresses(source.host) & _host_addresses(cfg.get("HOST") or ""))


def metadata_schemas() -> set[str]:
    """The schemas of the metadata database that hold the portal's tables: its search path,
    and wherever a table of a Django model (users, sessions, tokens...) is found."""
    tables = sorted({model._meta.db_table for model in apps.get_models(include_auto_created=True)})
    tables.append("django_migrations")
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT unnest(current_schemas(false)) UNION "
            "SELECT n.nspname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = ANY(%s)",
            [tables],
        )
        return {row[0] for row in cursor.fetchall()}


def _domain_of(port: OutputPort) -> Domain:
    return port.product.domain


def _spark_schema_errors(schema: str) -> dict[str, str]:
    """A Spark port's schema: `schema` or `catalog.schema`, neither a system one (Spark
    matches names without regard to case) nor, alone, a file format's name."""
    parts = schema.split(".")
    if len(parts) > 2 or not all(parts):
        return {
            "schema_name": "Name the schema as `schema` or `catalog.schema` (the table goes "
            "in its own field)."
        }
    if parts[-1].lower() in SYSTEM_SCHEMAS[SourceKind.SPARK] or (
        len(parts) == 2 and parts[0].lower() in SPARK_SYSTEM_CATALOGS
    ):
        return {"schema_name": f"{schema!r} is a system catalog: no port may serve it."}
    if len(parts) == 1 and schema.lower() in SPARK_FILE_FORMATS:
        return {
            "schema_name": f"Spark reads {schema}.`...` as a file path, not as a table: name "
            f"the schema with its catalog (spark_catalog.{schema})."
        }
    return {}


def _table_location_errors(port: OutputPort) -> dict[str, str]:
    source = port.source
    schema = port.schema_name or port_default_schema(source)
    table = port.table_name
    if schema in SYSTEM_SCHEMAS.get(source.kind, set()) or schema.startswith(
        SYSTEM_SCHEMA_PREFIXES
    ):
        return {"schema_name": f"{schema!r} is a system catalog: no port may serve it."}
    if source.kind == SourceKind.SPARK:
        errors = _spark_schema_errors(schema)
        if errors:
            return errors
    if source_is_metadata_database(source):
        if source.kind == SourceKind.DUCKDB or schema in metadata_schemas():
            return {
                "schema_name": f"The schema {schema!r} of data source {source.name!r} holds "
                "the portal's own metadata (people, sessions, grants): no port may serve it, "
                "whoever asks. Serve a table of another schema."
            }
    domain = _domain_of(port)
    # Loaded with the source already (`prefetch_related("source__allowances")`: a
    # federated query checks several ports at once), or read now.
    loaded = getattr(source, "_prefetched_objects_cache", {}).get("allowances")
    if loaded is not None:
        allowances = [a for a in loaded if a.domain_id == domain.pk]
    else:
        allowances = list(SourceAllowance.objects.filter(source=source, domain=domain))
    if not allowances:
        return {
            "source": f"The data source {source.name!r} is not available to the "
            f"{domain.name} domain: ask an admin to make it available, naming the schemas "
            "your ports need."
        }
    in_schema = [a for a in allowances if a.schema_name in ("*", schema)]
    if not in_schema:
        allowed = ", ".join(sorted(a.schema_name for a in allowances))
        return {
            "schema_name": f"The {domain.name} domain may use data source {source.name!r} "
            f"only in schema {allowed}, not {schema!r}: ask an admin to allow it."
        }
    if not any(a.allows(schema_name=schema, table_name=table) for a in in_schema):
        return {
            "table_name": f"The {domain.name} domain may use only some relations of schema "
            f"{schema!r} on data source {source.name!r}, and {table!r} is not one of them: "
            "ask an admin to allow it."
        }
    return {}


def _file_location_errors(port: OutputPort) -> dict[str, str]:
    try:
        path = port_file_path(port.file_path)
    except ConnectorError as exc:
        return {"file_path": str(exc)}
    root = Path(settings.MEDIA_ROOT).resolve()

    def under(relative: str) -> bool:
        folder = (root / relative).resolve()
        return path == folder or folder in path.parents

    if any(under(folder) for folder in FORBIDDEN_STORAGE_DIRS):
        return {
            "file_path": "This file belongs to an export or to Delta Sharing: it is served "
            "through its own access check and cannot become a port. Upload the file instead."
        }
    domain = _domain_of(port)
    if under(UPLOADS_DIR):
        if under(f"{UPLOADS_DIR}/{domain.slug}") and path != (root / UPLOADS_DIR / domain.slug):
            return {}
        return {
            "file_path": f"This file was uploaded to another domain: a port of {domain.name} "
            f"may name only files uploaded to it (under {UPLOADS_DIR}/{domain.slug}/)."
        }
    for allowed in StorageAllowance.objects.filter(domain=domain).values_list("path", flat=True):
        if allowed.strip("/") and under(allowed.strip("/")):
            return {}
    return {
        "file_path": f"A port of {domain.name} may name only files uploaded to it (under "
        f"{UPLOADS_DIR}/{domain.slug}/) or in a folder of storage an admin made available "
        "to it. Upload the file instead."
    }


def stream_prefix(domain: Domain) -> str:
    """What the names of the streams a domain's ports may name start with: SALES_ for
    the sales domain, SUPPLY_CHAIN_ for supply-chain."""
    return re.sub(r"[^A-Z0-9]+", "_", domain.slug.upper()).strip("_") + "_"


def _stream_location_errors(port: OutputPort) -> dict[str, str]:
    errors = stream_location_errors(
        stream_name=port.stream_name,
        subject=port.stream_subject,
        prefix=stream_prefix(_domain_of(port)),
    )
    # The portal's own streams (its events) and NATS's (key-value and object stores).
    if port.stream_name.upper().startswith(RESERVED_STREAM_PREFIXES):
        errors["stream_name"] = "This stream belongs to the portal or to NATS itself."
    if port.stream_subject.startswith(RESERVED_SUBJECT_PREFIXES):
        errors["stream_subject"] = "Subjects under portal. belong to the portal's events."
    return errors


def _validate_port(port: OutputPort) -> None:
    errors: dict[str, str] = {}
    if port.kind != PortKind.STREAM:
        port.stream_name, port.stream_subject = "", ""
    if port.kind == PortKind.STREAM:
        port.source, port.schema_name, port.table_name = None, "", ""
        port.file_path, port.file_format = "", ""
        errors.update(_stream_location_errors(port))
    elif port.kind == PortKind.TABLE:
        if port.source_id is None:
            errors["source"] = "A table port needs a data source."
        if not port.table_name:
            errors["table_name"] = "Name the table or view."
        port.file_path, port.file_format = "", ""
        if not errors:
            errors.update(_table_location_errors(port))
    elif port.kind == PortKind.FILE:
        if not port.file_path:
            errors["file_path"] = "Give the file's path in portal storage."
        else:
            errors.update(_file_location_errors(port))
        if port.file_format not in FileFormat.values:
            errors["file_format"] = "Choose CSV or Parquet."
        port.source, port.schema_name, port.table_name = None, "", ""
    if errors:
        raise ValidationError(errors)
    if not port.slug:
        port.slug = slugify(port.name)[:80]
    if port.slug in RESERVED_PORT_SLUGS:
        raise ValidationError({"name": f"{port.slug!r} is reserved: choose another port name."})
    # full_clean reports the (product, slug) constraint as a non-field error; say it on name.
    taken = OutputPort.objects.filter(product_id=port.product_id, slug=port.slug)
    if port.slug and taken.exclude(pk=port.pk).exists():
        raise ValidationError({"name": f"This product already has a port {port.slug!r}."})
    port.full_clean()


def port_location_check(*, port: OutputPort) -> None:
    """Raise ValidationError when the port names a relation or file its domain may no
    longer use (an allowance was withdrawn): for work that reads an existing port."""
    if port.kind == PortKind.TABLE and port.source_id is not None:
        errors = _table_location_errors(port)
    elif port.kind == PortKind.FILE and port.file_path:
        errors = _file_location_errors(port)
    elif port.kind == PortKind.STREAM:
        errors = _stream_location_errors(port)
    else:
        errors = {}
    if errors:
        raise ValidationError(errors)


def port_connector(port: OutputPort) -> Connector:
    """The connector to the port's data, for work that reads it (checks, monitors,
    metrics, every read channel): the port's location is checked again first, so a port
    whose allowance was withdrawn, or that was saved before sources belonged to domains,
    is read by nothing. Raises LocationRefused (a ConnectorError) with a message safe for
    readers; the rule that refused it is its detail."""
    try:
        port_location_check(port=port)
    except ValidationError as exc:
        raise LocationRefused(
            "This port names a table or file its domain may not serve: its owners must "
            "move it before it can be read.",
            detail=" ".join(exc.messages),
        ) from exc
    return connector_for_port(port)


def source_allow(
    *, source: DataSource, domain: Domain, by, schema_name: str, relations: Sequence[str] = ()
) -> SourceAllowance:
    """Make `source` available to `domain` in `schema_name` (`*`: every schema), limited to
    `relations` when given. Only admins do this. Idempotent: an allowance for the same
    schema is replaced."""
    if not user_is_admin(by):
        raise PermissionDenied("Only admins make data sources available to domains.")
    if not schema_name or len(schema_name) > 120:
        raise ValidationError({"schema_name": "Name a schema (at most 120 characters), or *."})
    allowance, _ = SourceAllowance.objects.update_or_create(
        source=source,
        domain=domain,
        schema_name=schema_name,
        defaults={"relations": [str(name) for name in relations]},
    )
    return allowance


def storage_allow(*, domain: Domain, by, path: str) -> StorageAllowance:
    """Let `domain`'s file ports name files under `path` of portal storage (files an admin
    put there by hand). Only admins do this; export and serving folders stay refused."""
    if not user_is_admin(by):
        raise PermissionDenied("Only admins make storage available to domains.")
    path = (path or "").strip().strip("/")
    if not path:
        raise ValidationError({"path": "Name a folder or file of portal storage."})
    try:
        port_file_path(path)
    except ConnectorError as exc:
        raise ValidationError({"path": str(exc)}) from None
    allowance, _ = StorageAllowance.objects.get_or_create(domain=domain, path=path)
    return allowance


def port_relation_problem(port: OutputPort) -> str:
    """Why the port's table or file is not where it says, in words ("" when it is there):
    for people saving a port, before consumers meet "could not run". The port's location
    is valid already (_validate_port)."""
    if port.kind == PortKind.STREAM:
        return stream_problem(port)
    if port.kind == PortKind.FILE:
        try:
            exists = port_file_path(port.file_path).is_file()
        except ConnectorError as exc:
            return str(exc)
        return "" if exists else f"There is no file {port.file_path} in the portal's storage."
    source = port.source
    schema = port.schema_name or port_default_schema(source)
    try:
        with connector_for_port(port) as connector:
            connector.describe()
            return ""
    except RelationMissing:
        pass
    except ConnectorError as exc:
        return f"The data source {source.name!r} could not be reached to check the table: {exc}"
    allowed = source_relations(source=source, domain=_domain_of(port), schema_name=schema)
    message = (
        f"There is no table or view {schema}.{port.table_name} on data source {source.name!r}."
    )
    close = difflib.get_close_matches(port.table_name, allowed["tables"], n=3, cutoff=0.6)
    if close:
        message += " Did you mean " + " or ".join(close) + "?"
    return message


def stream_problem(port: OutputPort) -> str:
    """Why the port's stream cannot be read, in words ("" when it can)."""
    if not settings.NATS_URL:
        return "The portal has no NATS server (NATS_URL) to read streams from."
    try:
        with StreamReader(
            url=settings.NATS_URL, stream=port.stream_name, subject=port.stream_subject
        ) as reader:
            facts = reader.facts()
    except RelationMissing:
        return f"There is no stream {port.stream_name} on the portal's NATS server."
    except ConnectorError as exc:
        return f"The NATS server could not be reached to check the stream: {exc}"
    if not any(_subject_within(port.stream_subject, pattern) for pattern in facts.subjects):
        return (
            f"The stream {port.stream_name} does not carry the subject {port.stream_subject} "
            f"(it carries {', '.join(facts.subjects)})."
        )
    return ""


def _subject_within(subject: str, pattern: str) -> bool:
    """Whether every subject `subject` matches is one `pattern` matches (NATS wildcards)."""
    tokens, wanted = subject.split("."), pattern.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return index < len(tokens)
        if index >= len(tokens):
            return False
        if token != "*" and token != tokens[index]:
            return False
        if token == "*" and tokens[index] == ">":
            return False
    return len(tokens) == len(wanted)


def source_relations(*, source: DataSource, domain: Domain, schema_name: str = "") -> dict:
    """What a port of `domain` may name on `source`, for people choosing: the schemas it
    may use, and the tables and views of `schema_name` (the source's default schema when
    empty) it may use. Nothing when the source is not available to the domain or cannot
    be reached. Raises nothing."""
    allowances = list(SourceAllowance.objects.filter(source=source, domain=domain))
    schema = schema_name or port_default_schema(source)
    found: dict = {"schemas": [], "tables": [], "schema": schema}
    if not allowances:
        return found
    probe = OutputPort(kind=PortKind.TABLE, source=source, schema_name=schema, table_name="")
    forbidden = {*SYSTEM_SCHEMAS.get(source.kind, set())}
    if source_is_metadata_database(source):
        if source.kind == SourceKind.DUCKDB:
            return found
        forbidden |= metadata_schemas()
    try:
        with connector_for_port(probe) as connector:
            if any(a.schema_name == ANY_SCHEMA for a in allowances):
                schemas = connector.schemas()
            else:
                schemas = sorted({a.schema_name for a in allowances})
            found["schemas"] = [
                name
                for name in schemas
                if name not in forbidden and not name.startswith(SYSTEM_SCHEMA_PREFIXES)
            ]
            if schema in found["schemas"]:
                found["tables"] = [
                    table
                    for table in connector.relations(schema)
                    if any(a.allows(schema_name=schema, table_name=table) for a in allowances)
                ]
    except ConnectorError:
        return found
    return found


def _require_relation(port: OutputPort) -> None:
    problem = port_relation_problem(port)
    if problem:
        field = {PortKind.FILE: "file_path", PortKind.STREAM: "stream_name"}.get(
            port.kind, "table_name"
        )
        raise ValidationError({field: problem})


@transaction.atomic
def output_port_create(
    *, product: DataProduct, by, name: str, relation_must_exist: bool = False, **fields
) -> OutputPort:
    """A new port. `relation_must_exist`: refuse a table or file that is not there (the
    page asks unless its "save anyway" is ticked; the API does not, so ports can be
    declared before their table is built)."""
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied("Only the domain's owners and stewards add output ports.")
    unknown = set(fields) - set(PORT_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in unknown})
    port = OutputPort(product=product, name=(name or "").strip(), **fields)
    _validate_port(port)
    if relation_must_exist:
        _require_relation(port)
    port.save()
    return port


@transaction.atomic
def output_port_update(*, port: OutputPort, by, relation_must_exist: bool = False, **fields):
    if not can_edit_product(user=by, product=port.product):
        raise PermissionDenied("Only the domain's owners and stewards change output ports.")
    unknown = set(fields) - set(PORT_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be changed." for field in unknown})
    for field, value in fields.items():
        setattr(port, field, value)
    _validate_port(port)
    if relation_must_exist:
        _require_relation(port)
    port.save()
    return port


def column_update(
    *,
    column: Column,
    by,
    description: str | None = None,
    classification: str | None = None,
) -> Column:
    """People document columns; types and nullability come from the source."""
    if not can_edit_product(user=by, product=column.port.product):
        raise PermissionDenied("Only the domain's owners and stewards document columns.")
    if classification is not None:
        if classification not in Classification.values:
            raise ValidationError(
                {"classification": f"Choose one of {', '.join(Classification.values)}."}
            )
        column.classification = classification
    if description is not None:
        column.description = description.strip()
    column.full_clean()
    column.save(update_fields=["description", "classification"])
    product_search_index_update(product_ids=[column.port.product_id])
    return column


# Column fields a contract declares (ODCS schema properties), beyond the name.
DECLARED_COLUMN_FIELDS = ("data_type", "description", "nullable", "primary_key", "classification")


@transaction.atomic
def columns_declare(
    *, port: OutputPort, by, columns: list[dict], reindex: bool = True
) -> tuple[list, list, list]:
    """Make the port's columns what a contract declares: `columns` in order, each
    {"name", "data_type", "description", "nullable", "primary_key", "classification"}.
    Columns not declared are removed (a schema refresh brings back what the source still
    has). Returns (added, removed, changed) names. Raises ValidationError keyed
    `columns[<i>].<field>` for the bad columns. `reindex=False`: the caller updates the
    product's search document once, after declaring the columns of several ports."""
    if not can_edit_product(user=by, product=port.product):
        raise PermissionDenied("Only the domain's owners and stewards declare columns.")
    errors: dict[str, str] = {}
    seen: set[str] = set()
    for i, spec in enumerate(columns):
        name = str(spec.get("name") or "")  # verbatim: "amount " is not "amount"
        if not name or len(name) > 255:
            errors[f"columns[{i}].name"] = "A column needs a name of at most 255 characters."
        elif name in seen:
            errors[f"columns[{i}].name"] = f"The column {name!r} is declared twice."
        seen.add(name)
        if len(str(spec.get("data_type") or "")) > 120:
            errors[f"columns[{i}].data_type"] = "A type has at most 120 characters."
        if spec.get("classification", Classification.INTERNAL) not in Classification.values:
            errors[f"columns[{i}].classification"] = (
                f"Choose one of {', '.join(Classification.values)}."
            )
    if errors:
        raise ValidationError(errors)
    existing = {column.name: column for column in port.columns.all()}
    added, changed, to_create, to_update = [], [], [], []
    for position, spec in enumerate(columns):
        name = str(spec["name"])
        values = {
            "data_type": str(spec.get("data_type") or ""),
            "description": str(spec.get("description") or "").strip(),
            "nullable": bool(spec.get("nullable", True)),
            "primary_key": bool(spec.get("primary_key", False)),
            "classification": spec.get("classification", Classification.INTERNAL),
            "position": position,
        }
        column = existing.get(name)
        if column is None:
            added.append(name)
            to_create.append(Column(port=port, name=name, **values))
            continue
        if any(getattr(column, f) != values[f] for f in DECLARED_COLUMN_FIELDS):
            changed.append(name)
        for field, value in values.items():
            setattr(column, field, value)
        to_update.append(column)
    removed = [name for name in existing if name not in seen]
    if removed:
        port.columns.filter(name__in=removed).delete()
    Column.objects.bulk_update(to_update, [*DECLARED_COLUMN_FIELDS, "position"])
    Column.objects.bulk_create(to_create)
    if reindex:
        product_search_index_update(product_ids=[port.product_id])
    return added, removed, changed
