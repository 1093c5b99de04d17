"""Delta Sharing, the serving side: what the protocol views (`sharing.delta_sharing.protocol_views`)
ask, kept out of the views.

- **Who.** A recipient authenticates with `Authorization: Bearer <token>`; the token's
  SHA-256 is looked up. Unknown, expired and revoked tokens get the same 401.
- **What.** A recipient sees its own share only. Each table is read with what the share
  creator may *share* now, as for share links:
  `sharing.serving.reads.read_plan(user=share.created_by, ..., shareable_only=True)` with the
  table's columns and row filter, on the Delta Sharing channel (admins and the domain's
  owners and stewards share what they read; anyone else only within a grant marked
  shareable). The plan is taken again at every request (version, metadata, query) and at
  every file fetch, so a recipient never reads more than the creator may share, and
  nothing once the creator may not (a steward demoted to a plain grantee included).
- **Version.** A table's version is a counter kept on `DeltaShareTable`, bumped when the
  fingerprint of what the table serves changes: the source's data (see
  `source_fingerprint`), the port's columns, the creator's access (columns, masking, row
  filter). No history is kept: only the current version can be queried.
- **Files.** A query materialises the plan's rows once per (table, version, plan) into
  Parquet files under `MEDIA_ROOT/delta-sharing/table-<id>/` (written to a temporary
  directory, renamed when complete; row groups of `ROW_GROUP_ROWS`, files of at most
  `FILE_ROWS` rows, bounded memory), and answers short-lived signed URLs
  (`/delta-sharing/files/<token>/`, `URL_MAX_AGE`) that the portal serves without the
  bearer token, with HTTP range requests. Every fetch of a file URL checks again that
  its recipient is active, its table still in the share, and the creator's share right
  unchanged (same columns, masking and rows): a revocation stops file reads at once, and
  the URL's lifetime only bounds how long a copied URL could be replayed. Snapshots not
  handed out for `URL_MAX_AGE` are pruned when a table is materialised again.
- **Audit.** One read event per query (not per file fetch): channel `delta_sharing`, the
  creator as the reader, the recipient in `detail`. A refused query writes one
  `read_denied` event.
- **Types.** Columns are served with Delta (Spark) types derived from the Arrow types of
  the rows read; what has no Delta equivalent (intervals, UUIDs, JSON, numerics of more
  than 38 digits...) is served as text; an unconstrained numeric is decimal(38,18), as on
  every channel (sharing.serving.reads). Masked columns are text. Timestamps are instants in
  UTC (a timestamp without a time zone is taken as UTC).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core import signing
from django.db import transaction
from django.utils import timezone

from products.connectors import (
    ConnectorError,
    RelationMissing,
    connector_for_port,
)
from products.models import OutputPort
from sharing.choices import AuditAction, Channel
from sharing.delta_sharing.services import table_cache_dir, token_hash
from sharing.models import AccessEvent, DeltaRecipient, DeltaShare, DeltaShareTable
from sharing.serving.fingerprints import source_fingerprint
from sharing.serving.reads import (
    BATCH_ROWS,
    ReadPlan,
    ReadRefused,
    audit_read,
    read_plan,
    select_sql,
)
from sharing.serving.source_errors import SOURCE_UNREADABLE

# Signed file URLs: a client fetches a query's files right after it, so a few minutes is
# room enough for the last file of a large table (see docs/sharing.md).
URL_MAX_AGE = timedelta(minutes=5)
ROW_GROUP_ROWS = 250_000
FILE_ROWS = 2_000_000
MAX_ROWS = 100_000_000  # one shared table; larger products are shared as narrower tables
MAX_PAGE = 1000
DEFAULT_PAGE = 500
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often
FILE_SALT = "sharing.delta_sharing.file"
PAGE_SALT = "sharing.delta_sharing.page"
ID_NAMESPACE = uuid.UUID("6f1b1f5e-3c9a-4d55-9a53-0d3c2a8e7b41")
SNAPSHOT_NAME = re.compile(r"^v\d+-[0-9a-f]{20}$")
PART_NAME = re.compile(r"^part-\d{5}\.parquet$")


class ProtocolError(Exception):
    """An answer of the protocol's error shape: `{"errorCode", "message"}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


UNAUTHENTICATED = ProtocolError(
    401,
    "UNAUTHENTICATED",
    "The bearer token is missing, unknown, expired or revoked. Ask the data owner for a "
    "new profile file.",
)


def _not_found(what: str) -> ProtocolError:
    return ProtocolError(404, "RESOURCE_DOES_NOT_EXIST", what)


def _bad(message: str) -> ProtocolError:
    return ProtocolError(400, "INVALID_PARAMETER_VALUE", message)


# --- recipients ---------------------------------------------------------------------------


def recipient_authenticate(*, authorization: str | None) -> DeltaRecipient:
    """The recipient holding the bearer token, with its share and the share's creator.
    Raises ProtocolError(401), the same for a missing, unknown, expired or revoked token."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UNAUTHENTICATED
    recipient = (
        DeltaRecipient.objects.select_related("share__created_by")
        .filter(token_hash=token_hash(token))
        .first()
    )
    now = timezone.now()
    if recipient is None or recipient.revoked_at is not None or recipient.expires_at <= now:
        raise UNAUTHENTICATED
    if recipient.last_used_at is None or recipient.last_used_at < now - LAST_USED_EVERY:
        DeltaRecipient.objects.filter(pk=recipient.pk).update(last_used_at=now)
    return recipient


# --- shares, schemas, tables --------------------------------------------------------------


def share_id(share: DeltaShare) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"share:{share.pk}"))


def table_id(table: DeltaShareTable) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"table:{table.pk}"))


def share_get(*, recipient: DeltaRecipient, name: str) -> DeltaShare:
    """The recipient's share by name (case-insensitive); any other name is unknown."""
    share = recipient.share
    if share.name.lower() != name.lower():
        raise _not_found(f"There is no share {name!r}.")
    return share


def share_schemas(*, share: DeltaShare) -> list[str]:
    return sorted({schema.lower() for schema in share.tables.values_list("schema", flat=True)})


def share_tables(*, share: DeltaShare, schema: str | None = None) -> list[DeltaShareTable]:
    tables = share.tables.order_by("schema", "name")
    if schema is not None:
        tables = tables.filter(schema__iexact=schema)
        if not tables.exists():
            raise _not_found(f"There is no schema {schema!r} in share {share.name!r}.")
    return list(tables)


def table_get(*, share: DeltaShare, schema: str, name: str) -> DeltaShareTable:
    table = (
        share.tables.select_related("product__domain", "port", "share__created_by")
        .filter(schema__iexact=schema, name__iexact=name)
        .first()
    )
    if table is None:
        raise _not_found(f"There is no table {share.name}.{schema}.{name}.")
    return table


def table_item(table: DeltaShareTable, share: DeltaShare) -> dict:
    return {
        "name": table.name,
        "schema": table.schema,
        "share": share.name,
        "shareId": share_id(share),
        "id": table_id(table),
    }


# --- pagination ---------------------------------------------------------------------------


def page(
    items: list, *, max_results: str | None, page_token: str | None, scope: str
) -> tuple[list, str | None]:
    """One page of `items` and the token of the next one (None at the end). Page tokens
    are signed offsets bound to `scope` (the listing), so a token of another listing, or
    made up, answers 400."""
    if max_results in (None, ""):
        size = DEFAULT_PAGE
    else:
        try:
            size = int(max_results)
        except ValueError:
            raise _bad(f"maxResults must be an integer, not {max_results!r}.") from None
        if size < 0:
            raise _bad("maxResults must be 0 or more.")
        size = min(size, MAX_PAGE)
    offset = 0
    if page_token:
        try:
            data = signing.loads(page_token, salt=PAGE_SALT)
        except signing.BadSignature:
            raise _bad("pageToken is not a token this server gave.") from None
        if not isinstance(data, dict) or data.get("scope") != scope:
            raise _bad("pageToken belongs to another listing.")
        offset = int(data.get("offset", 0))
    chunk = items[offset : offset + size]
    following = offset + size
    if following < len(items):
        return chunk, signing.dumps({"scope": scope, "offset": following}, salt=PAGE_SALT)
    return chunk, None


# --- Delta types ----------------------------------------------------------------------------

_NAME_TYPES = {
    "boolean": "boolean",
    "bool": "boolean",
    "tinyint": "byte",
    "int1": "byte",
    "smallint": "short",
    "int2": "short",
    "utinyint": "short",
    "integer": "integer",
    "int": "integer",
    "int4": "integer",
    "usmallint": "integer",
    "bigint": "long",
    "int8": "long",
    "uinteger": "long",
    "ubigint": "decimal(20,0)",
    "hugeint": "decimal(38,0)",
    "real": "float",
    "float4": "float",
    "float": "float",
    "double": "double",
    "float8": "double",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "datetime": "timestamp",
    "bytea": "binary",
    "blob": "binary",
}


def delta_type_for_name(data_type: str) -> str:
    """A Delta type from a column's declared type (PostgreSQL or DuckDB spelling): the
    schema of a table with no rows, whose Arrow types are not seen."""
    text = (data_type or "").strip().lower()
    decimal = re.match(r"^(numeric|decimal)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", text)
    if decimal and 1 <= int(decimal[2]) <= 38 and int(decimal[3]) <= int(decimal[2]):
        return f"decimal({int(decimal[2])},{int(decimal[3])})"
    base = re.split(r"[\s(\[]", text, maxsplit=1)[0] if text else ""
    if text.startswith("double"):
        return "double"
    return _NAME_TYPES.get(base, "string")


# --- versions -------------------------------------------------------------------------------


def _digest(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()


def plan_shape(plan: ReadPlan) -> dict:
    """What the plan serves, whatever its limit."""
    return {
        "port": plan.port.pk,
        "columns": plan.columns,
        "masked": sorted(plan.masked),
        "clauses": [clause.as_dict() for clause in plan.clauses],
    }


def table_version_for(*, table: DeltaShareTable, fingerprint: str) -> int:
    """The table's version for this fingerprint: the stored one while the fingerprint is
    unchanged, the next one (stored at once) when it changed. Versions start at 0."""
    if table.version_fingerprint == fingerprint:
        return table.version
    with transaction.atomic():
        locked = DeltaShareTable.objects.select_for_update().get(pk=table.pk)
        if locked.version_fingerprint != fingerprint:
            if locked.version_fingerprint:
                locked.version += 1
            locked.version_fingerprint = fingerprint
            locked.version_changed_at = timezone.now()
            locked.save(update_fields=["version", "version_fingerprint", "version_changed_at"])
    table.version = locked.version
    table.version_fingerprint = locked.version_fingerprint
    table.version_changed_at = locked.version_changed_at
    return locked.version


@dataclass
class TableSnapshot:
    table: DeltaShareTable
    plan: ReadPlan
    version: int
    key: str  # of the plan, its limit included: the files' cache key


def _refusal(exc: ReadRefused, table: DeltaShareTable) -> ProtocolError:
    if exc.status == 403:
        return ProtocolError(403, "PERMISSION_DENIED", exc.message)
    if exc.status == 404:
        return _not_found(f"The table {table} cannot be served: {exc.message}")
    return _bad(f"The table {table} cannot be served as shared: {exc.message}")


def table_plan(*, table: DeltaShareTable, limit: int | None = None) -> ReadPlan:
    """The read plan of the shared table with what the share creator may share now.
    Raises ProtocolError (403 when the creator may not share it)."""
    try:
        return read_plan(
            user=table.share.created_by,
            product=table.product,
            channel=Channel.DELTA_SHARING,
            port_slug=table.port.slug if table.port_id else None,
            columns=table.columns or None,
            filter=table.row_filter or None,
            limit=limit,
            max_rows=MAX_ROWS,
            shareable_only=True,
        )
    except ReadRefused as exc:
        raise _refusal(exc, table) from None


def source_error(exc: ConnectorError) -> ProtocolError:
    """A source that cannot be read: the shared table's relation or file is missing (404,
    as for the reads of every other channel), or the source is down (500)."""
    if isinstance(exc, RelationMissing):
        return ProtocolError(
            404, "RESOURCE_DOES_NOT_EXIST", f"The shared table's data is missing: {exc}"
        )
    # Recipients are never the domain's members: the driver's error is not theirs to read.
    return ProtocolError(500, "INTERNAL_ERROR", SOURCE_UNREADABLE)


def table_snapshot(
    *, table: DeltaShareTable, limit: int | None = None, plan: ReadPlan | None = None
) -> TableSnapshot:
    """Plan, current version and cache key of the shared table. Raises ProtocolError."""
    plan = plan or table_plan(table=table, limit=limit)
    try:
        source = source_fingerprint(plan.port)
    except ConnectorError as exc:
        raise source_error(exc) from None
    shape = plan_shape(plan)
    version = table_version_for(table=table, fingerprint=_digest([source, shape]))
    return TableSnapshot(table=table, plan=plan, version=version, key=_digest([shape, plan.limit]))


# --- files ------------------------------------------------------------------------------------


@dataclass
class Materialized:
    directory: Path
    rows: int
    bytes: int
    schema: dict
    files: list[dict]
    cached: bool


def _descriptions(port: OutputPort) -> dict[str, str]:
    return dict(port.columns.values_list("name", "description"))


def _fallback_schema(plan: ReadPlan, descriptions: dict[str, str]) -> dict:
    from sharing.delta_sharing.parquet_parts import delta_field  # loaded by _write_snapshot

    declared = dict(plan.port.columns.values_list("name", "data_type"))
    return {
        "type": "struct",
        "fields": [
            delta_field(
                name,
                "string" if name in plan.masked else delta_type_for_name(declared.get(name, "")),
                descriptions.get(name, ""),
            )
            for name in plan.columns
        ],
    }


def _write_snapshot(plan: ReadPlan, folder: Path) -> dict:
    """Read the plan's rows (one pushed-down SELECT, streamed in Arrow batches) into
    Parquet parts in `folder`; return the manifest."""
    # Here, not at the top: pyarrow (~40 MB with numpy) is for the processes that write
    # Parquet, not every process that loads the protocol's URLs.
    from sharing.delta_sharing.parquet_parts import Conformer, PartWriter

    descriptions = _descriptions(plan.port)
    conformer = writer = None
    with connector_for_port(plan.port) as connector:
        sql, params = select_sql(plan, connector, placeholder=connector.arrow_placeholder)
        for batch in connector.arrow_batches(sql, params, batch_rows=BATCH_ROWS):
            if conformer is None:
                conformer = Conformer(batch.schema, descriptions)
                writer = PartWriter(
                    folder,
                    conformer.schema,
                    row_group_rows=ROW_GROUP_ROWS,
                    file_rows=FILE_ROWS,
                )
            writer.add(conformer.conform(batch))
    parts = writer.close() if writer else []
    schema = conformer.delta_schema if conformer else _fallback_schema(plan, descriptions)
    return {
        "rows": sum(part["rows"] for part in parts),
        "bytes": sum(part["size"] for part in parts),
        "schema": schema,
        "files": parts,
    }


def _load(directory: Path, *, cached: bool) -> Materialized:
    manifest = directory / "manifest.json"
    data = json.loads(manifest.read_text())
    os.utime(manifest)  # handed out now: kept for at least URL_MAX_AGE
    return Materialized(
        directory=directory,
        rows=data["rows"],
        bytes=data["bytes"],
        schema=data["schema"],
        files=data["files"],
        cached=cached,
    )


def materialize(snapshot: TableSnapshot) -> Materialized:
    """The snapshot's Parquet files, from the cache or written now (into a temporary
    directory renamed when complete: a snapshot is never seen half-written). Raises
    ConnectorError."""
    table_dir = table_cache_dir(snapshot.table.pk)
    final = table_dir / f"v{snapshot.version}-{snapshot.key[:20]}"
    if (final / "manifest.json").is_file():
        return _load(final, cached=True)
    table_dir.mkdir(parents=True, exist_ok=True)
    temporary = table_dir / f".tmp-{uuid.uuid4().hex}"
    temporary.mkdir()
    try:
        manifest = _write_snapshot(snapshot.plan, temporary)
        manifest["version"] = snapshot.version
        (temporary / "manifest.json").write_text(json.dumps(manifest))
        try:
            os.rename(temporary, final)
        except OSError:
            if not (final / "manifest.json").is_file():
                raise
            # Another request wrote the same snapshot meanwhile: use that one.
            shutil.rmtree(temporary, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    prune(table_dir, keep=final)
    return _load(final, cached=False)


def prune(table_dir: Path, *, keep: Path) -> None:
    """Remove the table's snapshots not handed out for URL_MAX_AGE (their URLs have all
    expired), and temporary directories of writes that died."""
    cutoff = time.time() - URL_MAX_AGE.total_seconds() - 60
    for entry in table_dir.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        marker = entry / "manifest.json"
        try:
            last = (marker if marker.exists() else entry).stat().st_mtime
        except OSError:
            continue
        stale = last < cutoff if marker.exists() else last < time.time() - 6 * 3600
        if stale:
            shutil.rmtree(entry, ignore_errors=True)


class FileAccessRevoked(Exception):
    """A signed file URL whose recipient, table or share right is gone or changed."""


def file_token(*, table_pk: int, snapshot: str, name: str, recipient_pk: int, shape: str) -> str:
    return signing.dumps(
        {"t": table_pk, "s": snapshot, "f": name, "r": recipient_pk, "h": shape},
        salt=FILE_SALT,
    )


def _shape_digest(plan: ReadPlan) -> str:
    return _digest(plan_shape(plan))[:20]


def _file_access_check(*, table_pk: int, recipient_pk: int, shape: str) -> None:
    """The checks of a query, again, at a file fetch: the recipient active, the table
    still in its share, and the creator still sharing the same columns and rows. Database
    reads only (the source is not asked). Raises FileAccessRevoked."""
    now = timezone.now()
    recipient = DeltaRecipient.objects.filter(pk=recipient_pk).first()
    if recipient is None or recipient.revoked_at is not None or recipient.expires_at <= now:
        raise FileAccessRevoked("This recipient's access was revoked or has expired.")
    table = (
        DeltaShareTable.objects.select_related("share__created_by", "product__domain", "port")
        .filter(pk=table_pk, share_id=recipient.share_id)
        .first()
    )
    if table is None:
        raise FileAccessRevoked("This table is no longer in the share.")
    try:
        plan = table_plan(table=table)
    except ProtocolError as exc:
        raise FileAccessRevoked(exc.message) from None
    if _shape_digest(plan) != shape:
        raise FileAccessRevoked("What this table shares has changed: query the table again.")


def file_for_token(token: str) -> Path:
    """The file a signed URL names, after the query's access checks are made again.
    Raises signing.SignatureExpired (too old), signing.BadSignature (tampered),
    FileAccessRevoked (access lost or changed since the query) or FileNotFoundError
    (pruned)."""
    data = signing.loads(token, salt=FILE_SALT, max_age=URL_MAX_AGE)
    snapshot, name = str(data.get("s", "")), str(data.get("f", ""))
    if not SNAPSHOT_NAME.match(snapshot) or not PART_NAME.match(name):
        raise signing.BadSignature("not a snapshot file")
    if not isinstance(data.get("r"), int) or not isinstance(data.get("h"), str):
        raise signing.BadSignature("not a file URL of this server")
    _file_access_check(table_pk=int(data["t"]), recipient_pk=data["r"], shape=data["h"])
    path = table_cache_dir(int(data["t"])) / snapshot / name
    if not path.is_file():
        raise FileNotFoundError(name)
    return path


def read_range(path: Path, start: int, length: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(start)
        left = length
        while left > 0:
            data = handle.read(min(chunk, left))
            if not data:
                break
            left -= len(data)
            yield data


# --- protocol answers -------------------------------------------------------------------------


def protocol_line() -> dict:
    return {"protocol": {"minReaderVersion": 1}}


def metadata_line(snapshot: TableSnapshot, files: Materialized) -> dict:
    table = snapshot.table
    return {
        "metaData": {
            "id": table_id(table),
            "name": table.name,
            "description": table.product.summary or "",
            "format": {"provider": "parquet"},
            "schemaString": json.dumps(files.schema, separators=(",", ":")),
            "partitionColumns": [],
            "configuration": {},
            "size": files.bytes,
            "numFiles": len(files.files),
        }
    }


def file_lines(
    snapshot: TableSnapshot, files: Materialized, *, url_for, recipient: DeltaRecipient
) -> list[dict]:
    """The `file` lines: `url_for(token)` makes a signed token an absolute URL. Each
    token names the recipient and what the plan shares, checked again at every fetch."""
    expires_ms = int((time.time() + URL_MAX_AGE.total_seconds()) * 1000)
    shape = _shape_digest(snapshot.plan)
    lines = []
    for part in files.files:
        token = file_token(
            table_pk=snapshot.table.pk,
            snapshot=files.directory.name,
            name=part["name"],
            recipient_pk=recipient.pk,
            shape=shape,
        )
        lines.append(
            {
                "file": {
                    "url": url_for(token),
                    "id": hashlib.sha256(
                        f"{snapshot.table.pk}/{files.directory.name}/{part['name']}".encode()
                    ).hexdigest()[:32],
                    "partitionValues": {},
                    "size": part["size"],
                    "stats": json.dumps({"numRecords": part["rows"]}),
                    "expirationTimestamp": expires_ms,
                }
            }
        )
    return lines


def table_metadata(*, table: DeltaShareTable) -> tuple[TableSnapshot, Materialized]:
    """Version and metadata (the schema comes from the files, so that metadata and
    query always agree: the table is materialised if it is not yet). Not audited: no row
    leaves. Raises ProtocolError."""
    snapshot = table_snapshot(table=table)
    try:
        return snapshot, materialize(snapshot)
    except ConnectorError as exc:
        raise source_error(exc) from None
    except ReadRefused as exc:  # a value its Delta type cannot hold (a numeric NaN)
        raise _refusal(exc, table) from None


def _clean_query(body: dict) -> int | None:
    """The query body's limitHint; refuse what this server does not share (history)."""
    for unsupported in ("timestamp", "startingVersion", "endingVersion", "startingTimestamp"):
        if body.get(unsupported) not in (None, ""):
            raise _bad(
                f"{unsupported} is not supported: this server shares the current version "
                "of each table only, without history."
            )
    limit = body.get("limitHint")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise _bad(f"limitHint must be an integer of 0 or more, not {limit!r}.")
    return limit


def table_query(
    *,
    table: DeltaShareTable,
    recipient: DeltaRecipient,
    body: dict,
    client_address: str | None,
) -> tuple[TableSnapshot, Materialized]:
    """Authorise, materialise (or reuse) and audit one query: one `read` event, or one
    `read_denied` event when the creator's access refuses it. predicateHints and
    jsonPredicateHints are hints the protocol lets a server ignore, and are ignored (the
    client filters); limitHint is honoured (pushed down as the read's LIMIT)."""
    detail = {
        "recipient": recipient.pk,
        "recipient_name": recipient.name,
        "share": table.share.name,
        "table": f"{table.share.name}.{table.schema}.{table.name}",
    }
    limit = _clean_query(body)
    try:
        plan = table_plan(table=table, limit=limit)
    except ProtocolError as exc:
        _audit_refusal(table=table, detail=detail, reason=exc.message, ip=client_address)
        raise
    snapshot = table_snapshot(table=table, plan=plan)
    wanted = body.get("version")
    if wanted is not None and wanted != snapshot.version:
        raise _bad(
            f"Version {wanted!r} is not available: only the current version "
            f"({snapshot.version}) is shared, without history."
        )
    detail["version"] = snapshot.version
    plan = replace(plan, detail={**plan.detail, "delta_sharing": detail})
    try:
        files = materialize(snapshot)
    except ConnectorError as exc:
        audit_read(
            plan,
            rows=0,
            nbytes=0,
            client_address=client_address,
            fmt="parquet",
            error=exc.technical,
        )
        raise source_error(exc) from None
    except ReadRefused as exc:  # a value its Delta type cannot hold (a numeric NaN)
        audit_read(
            plan, rows=0, nbytes=0, client_address=client_address, fmt="parquet", error=str(exc)
        )
        raise _refusal(exc, table) from None
    detail["cached"] = files.cached
    audit_read(
        plan, rows=files.rows, nbytes=files.bytes, client_address=client_address, fmt="parquet"
    )
    return snapshot, files


def _audit_refusal(*, table: DeltaShareTable, detail: dict, reason: str, ip: str | None) -> None:
    creator = table.share.created_by
    AccessEvent.objects.create(
        at=timezone.now(),
        action=AuditAction.READ_DENIED,
        user=creator,
        product=table.product,
        product_key=table.product.key,
        channel=Channel.DELTA_SHARING,
        columns=table.columns,
        row_filter=table.row_filter,
        client_address=ip or None,
        detail={"reason": reason[:500], "delta_sharing": detail},
    )
