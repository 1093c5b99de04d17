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
