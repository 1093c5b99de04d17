"""Destination writers: how a sync run sends its changes to an HTTP API, a table
(PostgreSQL, MySQL / MariaDB, DuckDB) or a NATS JetStream subject. The interface is in
base.py; `destination_writer` gives the writer of a destination:

    with destination_writer(destination, key_fields=["lead_id"], run_id=run.pk) as writer:
        writer.check()
        for batch in ...:  # at most writer.batch_size records each
            outcome = writer.send(batch)
"""

from __future__ import annotations

from sharing.models import SyncDestination
from sharing.models.syncs import DestinationKind
from sharing.syncs.destinations.base import (
    BatchOutcome,
    DestinationError,
    DestinationUnavailable,
    DestinationWriter,
    OutgoingBatch,
)

__all__ = [
    "BatchOutcome",
    "DestinationError",
    "DestinationUnavailable",
    "DestinationWriter",
    "OutgoingBatch",
    "destination_relation",
    "destination_writer",
]


def destination_writer(
    destination: SyncDestination, *, key_fields: list[str], run_id: int | str
) -> DestinationWriter:
    """The writer of `destination` for one run (a context manager: leaving it closes the
    connection). `writer.batch_size` is the most records one send() writes at once (larger
    batches are split)."""
    # Each writer's module here, not at the top: its driver (nats-py, PyMySQL, DuckDB) is
    # loaded by the process that sends, not by every process that loads the syncs' API.
    kind = destination.kind
    if kind == DestinationKind.HTTP:
        from sharing.syncs.destinations.http import HttpWriter

        return HttpWriter(destination, run_id=run_id)
    if kind in (DestinationKind.POSTGRESQL, DestinationKind.MYSQL, DestinationKind.DUCKDB):
        from sharing.syncs.destinations.sql import DuckDBWriter, MySQLWriter, PostgresWriter

        writer = {
            DestinationKind.POSTGRESQL: PostgresWriter,
            DestinationKind.MYSQL: MySQLWriter,
            DestinationKind.DUCKDB: DuckDBWriter,
        }[kind]
        return writer(destination, key_fields=key_fields)
    if kind == DestinationKind.NATS:
        from sharing.syncs.destinations.nats import NatsWriter

        return NatsWriter(destination)
    raise DestinationError(f"Destination {destination.name!r} has an unknown kind {kind!r}.")


def destination_relation(destination: SyncDestination) -> tuple[str, str, str, str] | None:
    """(engine, server identity, schema, table) of a table destination, for loop
    detection; None for HTTP and NATS. The server identity is "host:port/database"
    (host lower-cased, the engine's default port when none is given) or the DuckDB path."""
    kind = destination.kind
    host = (destination.host or "localhost").lower()
    if kind == DestinationKind.POSTGRESQL:
        return (
            "postgresql",
            f"{host}:{destination.port or 5432}/{destination.database}",
            destination.schema_name or "public",
            destination.table_name,
        )
    if kind == DestinationKind.MYSQL:
        return (
            "mysql",
            f"{host}:{destination.port or 3306}/{destination.database}",
            destination.schema_name or destination.database,
            destination.table_name,
        )
    if kind == DestinationKind.DUCKDB:
        return (
            "duckdb",
            destination.path,
            destination.schema_name or "main",
            destination.table_name,
        )
    return None
