"""What clients see of the catalog: the products a person may see (`visible_to`), each as
the table `<domain>.<product>` with its default port's columns (the first port by name,
as a query names it), their types as PostgreSQL names.

psql's `\\dt` and `\\d`, and the metadata queries of DBeaver, Metabase and JDBC, read
pg_catalog and information_schema. pg-mimic answers those SQL statements with sqlglot's
executor over rows a server provides; its own rows put every table in `public`, so the
rows are built here instead: one namespace per domain, a class per product, an attribute
per column (with the columns psql's `\\d+` reads too). Reading this catalog reads no
data: a statement naming both a catalog table and a product is answered from these rows
alone, so the product is not found there and the answer is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch
from pg_mimic import types as pg_types
from pg_mimic.catalog import _pg_type_rows
from pg_mimic.catalog_data import PG_CATALOG_SCHEMA

from products.catalog.selectors import port_for
from products.connectors import column_types
from products.models import Column, DataProduct, OutputPort
from sharing.federation.wire.threads import django_call

Tables = dict[tuple[str, str], dict[str, "PgType"]]  # (domain, product) -> column -> type


@dataclass(frozen=True)
class PgType:
    """A PostgreSQL type as clients read it: its name (format_type, information_schema's
    data_type), its udt name and its OID."""

    name: str
    udt: str
    oid: int


TEXT = PgType("text", "text", pg_types.TEXT)
_INTEGERS = {
    1: PgType("smallint", "int2", pg_types.INT2),
    2: PgType("smallint", "int2", pg_types.INT2),
    4: PgType("integer", "int4", pg_types.INT4),
    8: PgType("bigint", "int8", pg_types.INT8),
}
_UNSIGNED = {1: _INTEGERS[2], 2: _INTEGERS[4], 4: _INTEGERS[8]}  # one size up
NUMERIC = PgType("numeric", "numeric", pg_types.NUMERIC)
_FLOATS = {
    2: PgType("real", "float4", pg_types.FLOAT4),
    4: PgType("real", "float4", pg_types.FLOAT4),
    8: PgType("double precision", "float8", pg_types.FLOAT8),
}
BOOLEAN = PgType("boolean", "bool", pg_types.BOOL)
DATE = PgType("date", "date", pg_types.DATE)
TIME = PgType("time without time zone", "time", pg_types.TIME)
TIMESTAMP = PgType("timestamp without time zone", "timestamp", pg_types.TIMESTAMP)
TIMESTAMPTZ = PgType("timestamp with time zone", "timestamptz", pg_types.TIMESTAMPTZ)
_KINDS = {
    column_types.DECIMAL: NUMERIC,
    column_types.BOOLEAN_KIND: BOOLEAN,
    column_types.TEXT_KIND: TEXT,
    column_types.DATE: DATE,
    column_types.TIME: TIME,
    column_types.TIMESTAMP: TIMESTAMP,
    column_types.TIMESTAMPTZ: TIMESTAMPTZ,
    column_types.UUID: PgType("uuid", "uuid", pg_types.UUID),
    column_types.INTERVAL: PgType("interval", "interval", pg_types.INTERVAL),
}
_OTHER_NAMES = {  # kind "other" that PostgreSQL still names
    "json": PgType("json", "json", pg_types.JSON),
    "jsonb": PgType("jsonb", "jsonb", pg_types.JSONB),
    "bytea": PgType("bytea", "bytea", pg_types.BYTEA),
    "blob": PgType("bytea", "bytea", pg_types.BYTEA),
    "binary": PgType("bytea", "bytea", pg_types.BYTEA),
}


def pg_type(data_type: str) -> PgType:
    """The PostgreSQL type a column of the declared type `data_type` (as its source
    names it: PostgreSQL, DuckDB, Arrow or Parquet) is shown as; text for anything
    PostgreSQL has no plain name for (structs, maps, lists, enums)."""
    declared = column_types.column_type(data_type or "")
    if declared.kind == column_types.INTEGER:
        size = declared.size or 8
        if declared.unsigned:
            return _UNSIGNED.get(size, NUMERIC)
        return _INTEGERS.get(size, NUMERIC)
    if declared.kind == column_types.FLOAT:
        return _FLOATS.get(declared.size or 8, _FLOATS[8])
    if declared.kind in _KINDS:
        return _KINDS[declared.kind]
    return _OTHER_NAMES.get(declared.name, TEXT)


@django_call
def wire_tables(*, user) -> Tables:
    """The tables `user` sees: each product they may see that has a port, keyed
    (domain slug, product slug), with its default port's columns in order."""
    ports = OutputPort.objects.order_by("name").prefetch_related(
        Prefetch("columns", queryset=Column.objects.order_by("position", "name"))
    )
    products = (
        DataProduct.objects.visible_to(user)
        .select_related("domain")
        .prefetch_related(Prefetch("ports", queryset=ports))
        .order_by("domain__slug", "slug")
    )
    tables: Tables = {}
    for product in products:
        port = port_for(product=product, ports=product.ports.all())
        if port is None:
            continue
        tables[(product.domain.slug, product.slug)] = {
            column.name: pg_type(column.data_type) for column in port.columns.all()
        }
    return tables


# --- pg_catalog -------------------------------------------------------------------------------

_OWNER_OID = 10
_PUBLIC_OID = 2200
_HEAP_AM_OID = 2
_FIRST_NAMESPACE_OID = 17000  # the domains' schemas
_FIRST_TABLE_OID = 16384  # where PostgreSQL starts user objects
_DATABASE_OID = 16000
_STORAGE = {"text", "numeric", "bytea", "json", "jsonb"}  # varlena: stored "extended"

PG_CATALOG = {
    "pg_catalog": {
        **PG_CATALOG_SCHEMA["pg_catalog"],
        # psql's \d+ reads these two as well (pg-mimic 0.1.3 does not declare them).
        "pg_attribute": {
            **PG_CATALOG_SCHEMA["pg_catalog"]["pg_attribute"],
            "attstorage": "TEXT",
            "attcompression": "TEXT",
            "attlen": "INT",  # JDBC's getColumns
        },
        "pg_type": {
            **PG_CATALOG_SCHEMA["pg_catalog"]["pg_type"],
            "typtypmod": "INT",
            "typnotnull": "BOOLEAN",
            "typlen": "INT",
        },
        # JDBC's getTables/getColumns join the comments (there are none).
        "pg_description": {
            "objoid": "INT",
            "classoid": "INT",
            "objsubid": "INT",
            "description": "TEXT",
        },
        "pg_database": {
            "oid": "INT",
            "datname": "TEXT",
            "datdba": "INT",
            "encoding": "INT",
            "datcollate": "TEXT",
            "datctype": "TEXT",
            "datallowconn": "BOOLEAN",
            "datistemplate": "BOOLEAN",
            "datconnlimit": "INT",
        },
    }
}
EMPTY_CATALOG_TABLES = (  # catalog tables that never have rows here
    "pg_attrdef",
    "pg_collation",
    "pg_constraint",
    "pg_index",
    "pg_inherits",
    "pg_rewrite",
    "pg_trigger",
    "pg_policy",
    "pg_statistic_ext",
    "pg_description",
)


def pg_catalog_rows(tables: Tables, *, database: str, username: str) -> dict:
    """The rows of the emulated pg_catalog for these tables (PG_CATALOG's shape)."""
    namespaces = [
        {"oid": _PUBLIC_OID, "nspname": "public", "nspowner": _OWNER_OID},
        {"oid": 11, "nspname": "pg_catalog", "nspowner": _OWNER_OID},
        {"oid": 13000, "nspname": "information_schema", "nspowner": _OWNER_OID},
    ]
    namespace_oids: dict[str, int] = {}
    classes, attributes = [], []
    for index, ((domain, product), columns) in enumerate(tables.items()):
        if domain not in namespace_oids:
            namespace_oids[domain] = _FIRST_NAMESPACE_OID + len(namespace_oids)
            namespaces.append(
                {"oid": namespace_oids[domain], "nspname": domain, "nspowner": _OWNER_OID}
            )
        table_oid = _FIRST_TABLE_OID + index
        classes.append(
            {
                "oid": table_oid,
                "relname": product,
                "relnamespace": namespace_oids[domain],
                "relkind": "r",
                "relowner": _OWNER_OID,
                "relam": _HEAP_AM_OID,
                "reltuples": -1,
                "relpages": 0,
                "relhasindex": False,
                "relpersistence": "p",
                "reltablespace": 0,
                "relispartition": False,
                "relrowsecurity": False,
                "relforcerowsecurity": False,
                "relreplident": "d",
                "reloftype": 0,
                "relhastriggers": False,
                "relchecks": 0,
                "relhasrules": False,
                "reltoastrelid": 0,
            }
        )
        for position, (name, kind) in enumerate(columns.items(), start=1):
            attributes.append(
                {
                    "attrelid": table_oid,
                    "attname": name,
                    "atttypid": kind.oid,
                    "attnum": position,
                    "attnotnull": False,
                    "atthasdef": False,
                    "attisdropped": False,
                    "attidentity": "",
                    "attgenerated": "",
                    "attcollation": 0,
                    "atttypmod": -1,
                    "attstattarget": -1,
                    "attformattype": kind.name,  # what format_type() is rewritten to
                    "attstorage": "x" if kind.udt in _STORAGE else "p",
                    "attcompression": "",
                    "attlen": -1,
                }
            )
    rows = {
        "pg_namespace": namespaces,
        "pg_class": classes,
        "pg_attribute": attributes,
        "pg_am": [
            {
                "oid": _HEAP_AM_OID,
                "amname": "heap",
                "amhandler": "heap_tableam_handler",
                "amtype": "t",
            }
        ],
        "pg_type": [
            {**row, "typtypmod": -1, "typnotnull": False, "typlen": -1} for row in _pg_type_rows()
        ],
        "pg_roles": [{"oid": _OWNER_OID, "rolname": username}],
        "pg_database": [
            {
                "oid": _DATABASE_OID,
                "datname": database,
                "datdba": _OWNER_OID,
                "encoding": 6,  # UTF8
                "datcollate": "C.UTF-8",
                "datctype": "C.UTF-8",
                "datallowconn": True,
                "datistemplate": False,
                "datconnlimit": -1,
            }
        ],
        **{name: [] for name in EMPTY_CATALOG_TABLES},
    }
    return {"pg_catalog": rows}


# --- information_schema -----------------------------------------------------------------------

INFORMATION_SCHEMA = {
    "information_schema": {
        "schemata": {"catalog_name": "TEXT", "schema_name": "TEXT", "schema_owner": "TEXT"},
        "tables": {
            "table_catalog": "TEXT",
            "table_schema": "TEXT",
            "table_name": "TEXT",
            "table_type": "TEXT",
            "is_insertable_into": "TEXT",
            "is_typed": "TEXT",
        },
        "columns": {
            "table_catalog": "TEXT",
            "table_schema": "TEXT",
            "table_name": "TEXT",
            "column_name": "TEXT",
            "ordinal_position": "INT",
            "column_default": "TEXT",
            "is_nullable": "TEXT",
            "data_type": "TEXT",
            "udt_catalog": "TEXT",
            "udt_schema": "TEXT",
            "udt_name": "TEXT",
            "character_maximum_length": "INT",
            "numeric_precision": "INT",
            "numeric_scale": "INT",
            "datetime_precision": "INT",
            "is_identity": "TEXT",
            "is_generated": "TEXT",
            "is_updatable": "TEXT",
        },
    }
}


def information_schema_rows(tables: Tables, *, database: str, username: str) -> dict:
    """The rows of the emulated information_schema (INFORMATION_SCHEMA's shape)."""
    schemata = [
        {"catalog_name": database, "schema_name": domain, "schema_owner": username}
        for domain in dict.fromkeys(domain for domain, _ in tables)
    ]
    table_rows, column_rows = [], []
    for (domain, product), columns in tables.items():
        table_rows.append(
            {
                "table_catalog": database,
                "table_schema": domain,
                "table_name": product,
                "table_type": "BASE TABLE",
                "is_insertable_into": "NO",
                "is_typed": "NO",
            }
        )
        for position, (name, kind) in enumerate(columns.items(), start=1):
            column_rows.append(
                {
                    "table_catalog": database,
                    "table_schema": domain,
                    "table_name": product,
                    "column_name": name,
                    "ordinal_position": position,
                    "column_default": None,
                    "is_nullable": "YES",
                    "data_type": kind.name,
                    "udt_catalog": database,
                    "udt_schema": "pg_catalog",
                    "udt_name": kind.udt,
                    "character_maximum_length": None,
                    "numeric_precision": None,
                    "numeric_scale": None,
                    "datetime_precision": None,
                    "is_identity": "NO",
                    "is_generated": "NEVER",
                    "is_updatable": "NO",
                }
            )
    return {
        "information_schema": {
            "schemata": schemata,
            "tables": table_rows,
            "columns": column_rows,
        }
    }
