"""What a port's data is now, read cheaply at its source: a fingerprint that changes when
the data changes (Delta Sharing's table versions, the federated query cache)."""

from __future__ import annotations

from pathlib import Path

from products.catalog.services.ports import port_connector
from products.choices import PortKind, SourceKind
from products.connectors import ConnectorError, RelationMissing, port_file_path
from products.models import OutputPort

_PG_FINGERPRINT = """
SELECT c.relkind::text,
       coalesce((
         SELECT string_agg(
                  concat_ws(':', t.oid, t.relfilenode, s.n_tup_ins, s.n_tup_upd, s.n_tup_del),
                  ',' ORDER BY t.oid)
         FROM pg_class t LEFT JOIN pg_stat_all_tables s ON s.relid = t.oid
         WHERE t.oid = c.oid
            OR t.oid IN (SELECT relid FROM pg_partition_tree(c.oid) WHERE isleaf)
       ), '')
FROM pg_class c WHERE c.oid = to_regclass(%s)
"""

# Spark: a count and an order-independent hash of the rows (64-bit hashes summed as
# decimals: a sum of bigints would overflow, an error under ANSI mode).
_SPARK_ROWS = (
    "SELECT count(*), coalesce(sum(CAST(xxhash64(*) AS DECIMAL(38, 0))), 0) FROM {relation}"
)


def source_fingerprint(port: OutputPort, *, read_views: bool = True) -> str:
    """Text that changes when the port's data changes, read cheaply at the source:

    - a file port: the file's inode, size and modification time;
    - a DuckDB database: the database file's (and its WAL's) size and modification time
      (any change in the database counts);
    - a PostgreSQL table, materialised view or partitioned table: the relation's file
      node (TRUNCATE, VACUUM FULL) and PostgreSQL's cumulative row counters (inserted,
      updated, deleted) of it and its partitions. PostgreSQL publishes those counters
      within about a second of a commit; a reset of the statistics counts as a change;
    - a PostgreSQL view (or foreign table): a count and an order-independent hash of its
      rows, which reads every row ("" with `read_views=False`);
    - a Spark table: the same count and hash of its rows, computed by the cluster ("" with
      `read_views=False`). Spark offers nothing cheaper that holds for every table: a
      Delta table's version (DESCRIBE DETAIL) or a table's properties are commands, which
      the connector never sends, and a Parquet or Hive table keeps no version at all.

    "" means "no fingerprint": the caller neither caches nor versions by it.

    Raises ConnectorError when the source cannot be read."""
    if port.kind == PortKind.FILE:
        path = port_file_path(port.file_path)
        try:
            stat = path.stat()
        except OSError:
            raise RelationMissing(f"The file {port.file_path} does not exist.") from None
        return f"file:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"
    source = port.source
    if source is None:
        raise ConnectorError("This port has no data source.")
    if source.kind == SourceKind.DUCKDB:
        parts = []
        for path in (Path(source.path), Path(source.path + ".wal")):
            try:
                stat = path.stat()
            except OSError:
                parts.append("-")
                continue
            parts.append(f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}")
        return "duckdb:" + ",".join(parts)
    if source.kind == SourceKind.SPARK:
        if not read_views:
            return ""
        with port_connector(port) as connector:
            count, digest = connector.fetch(_SPARK_ROWS.format(relation=connector.relation_sql()))[
                0
            ]
        return f"spark-rows:{count}:{digest}"
    with port_connector(port) as connector:
        relation = connector.relation_sql()
        rows = connector.fetch(_PG_FINGERPRINT, [relation])
        if not rows:
            raise RelationMissing(f"The relation {relation} does not exist.")
        relkind, counters = rows[0]
        if relkind in ("r", "m", "p"):
            return f"pg:{counters}"
        if not read_views:  # the caller would rather have no fingerprint than read it all
            return ""
        count, digest = connector.fetch(
            f"SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0) FROM {relation} AS t"
        )[0]
        return f"pg-rows:{count}:{digest}"
