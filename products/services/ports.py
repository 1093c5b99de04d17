import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.text import slugify

from products.choices import Classification, FileFormat, PortKind, SourceKind
from products.connectors import ConnectorError, port_file_path
from products.models import Column, DataProduct, DataSource, OutputPort
from products.permissions import can_edit_product, user_is_admin
from products.services.search_index import product_search_index_update

ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Port slugs that would collide with API routes (`/ports/upload/`).
RESERVED_PORT_SLUGS = {"upload"}

PORT_FIELDS = (
    "name",
    "description",
    "kind",
    "source",
    "schema_name",
    "table_name",
    "file_path",
    "file_format",
    "freshness_column",
)


def data_source_create(*, by, name: str, kind: str, **fields) -> DataSource:
    """Register a connection. Only admins do this: a source reaches real data."""
    if not user_is_admin(by):
        raise PermissionDenied("Only admins register data sources.")
    source = DataSource(name=(name or "").strip(), kind=kind, **fields)
    errors: dict[str, str] = {}
    if source.password_env and not ENV_VAR_NAME.match(source.password_env):
        errors["password_env"] = (
            "Give the name of an environment variable (letters, digits, underscores), "
            "not the password itself."
        )
    if kind == SourceKind.POSTGRESQL and not source.database:
        errors["database"] = "A PostgreSQL source needs a database name."
    if kind == SourceKind.DUCKDB and not source.path:
        errors["path"] = "A DuckDB source needs the path of its database file."
    if errors:
        raise ValidationError(errors)
    source.full_clean()
    source.save()
    return source


def _validate_port(port: OutputPort) -> None:
    errors: dict[str, str] = {}
    if port.kind == PortKind.TABLE:
        if port.source_id is None:
            errors["source"] = "A table port needs a data source."
        if not port.table_name:
            errors["table_name"] = "Name the table or view."
        port.file_path, port.file_format = "", ""
    elif port.kind == PortKind.FILE:
        if not port.file_path:
            errors["file_path"] = "Give the file's path in portal storage."
        else:
            try:
                port_file_path(port.file_path)
            except ConnectorError as exc:
                errors["file_path"] = str(exc)
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


@transaction.atomic
def output_port_create(*, product: DataProduct, by, name: str, **fields) -> OutputPort:
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied("Only the domain's owners and stewards add output ports.")
    unknown = set(fields) - set(PORT_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in unknown})
    port = OutputPort(product=product, name=(name or "").strip(), **fields)
    _validate_port(port)
    port.save()
    return port


@transaction.atomic
def output_port_update(*, port: OutputPort, by, **fields) -> OutputPort:
    if not can_edit_product(user=by, product=port.product):
        raise PermissionDenied("Only the domain's owners and stewards change output ports.")
    unknown = set(fields) - set(PORT_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be changed." for field in unknown})
    for field, value in fields.items():
        setattr(port, field, value)
    _validate_port(port)
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
