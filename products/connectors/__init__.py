"""`connector_for_port(port)` is how every service reaches a port's data (PostgreSQL,
DuckDB, Spark Connect)."""

from pathlib import Path

from django.conf import settings

from products.choices import PortKind, SourceKind
from products.connectors.base import (
    ColumnInfo,
    Connector,
    ConnectorError,
    LocationRefused,
    RelationMissing,
    SourceAccessRefused,
)
from products.connectors.duckdb import DuckDBConnector
from products.connectors.postgres import PostgresConnector
from products.connectors.spark import SparkConnector

__all__ = [
    "ColumnInfo",
    "Connector",
    "ConnectorError",
    "LocationRefused",
    "RelationMissing",
    "SourceAccessRefused",
    "connector_for_port",
    "port_file_path",
]


def port_file_path(relative_path: str) -> Path:
    """The absolute path of a file port, refusing anything outside the media storage."""
    root = Path(settings.MEDIA_ROOT).resolve()
    candidate = (root / relative_path).resolve()
    if candidate != root and root not in candidate.parents:
        raise ConnectorError("The file path points outside the portal's storage.")
    return candidate


def connector_for_port(port) -> Connector:
    if port.kind == PortKind.FILE:
        return DuckDBConnector(
            file_path=str(port_file_path(port.file_path)),
            file_format=port.file_format,
            label=port.file_path,
            reuse_instance=True,
        )
    source = port.source
    if source is None:
        raise ConnectorError("This port has no data source.")
    if source.kind == SourceKind.POSTGRESQL:
        return PostgresConnector(
            source=source, schema_name=port.schema_name, table_name=port.table_name
        )
    if source.kind == SourceKind.DUCKDB:
        return DuckDBConnector(
            database_path=source.path,
            schema_name=port.schema_name,
            table_name=port.table_name,
            label=source.name,
        )
    if source.kind == SourceKind.SPARK:
        return SparkConnector(
            source=source, schema_name=port.schema_name, table_name=port.table_name
        )
    raise ConnectorError(f"Unsupported data source kind {source.kind!r}.")
