"""The files of export runs: where they are written (a temporary name beside the final
one on local storage, a local temporary file uploaded whole otherwise), and serving one
with its audit event after deciding whether a person may download it.

Files live in Django's default storage under `exports/<schedule id>/`. On local storage an
attempt writes `exports/<schedule id>/.<run id>-<attempt>.<ext>.partial` and renames it
with os.replace once complete and fsynced; on other storage (S3-compatible) the temporary
file is written under settings.EXPORT_TEMP_DIR and uploaded whole at the end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.http import FileResponse
from django.utils import timezone

from sharing.access.decision import AccessDecision, access_decide
from sharing.choices import (
    AuditAction,
    Channel,
    ExportStatus,
)
from sharing.models import AccessEvent, ExportRun
from sharing.serving.reads import CONTENT_TYPES, EXTENSIONS

logger = logging.getLogger(__name__)

EXPORT_FOLDER = "exports"
PARTIAL_SUFFIX = ".partial"
PARTIAL_NAME = re.compile(r"^\.(\d+)-(\d+)\.[a-z]+\.partial$")


# --- files -----------------------------------------------------------------------------


def _storage_is_local() -> bool:
    try:
        default_storage.path(EXPORT_FOLDER)
    except NotImplementedError:
        return False
    return True


def _schedule_folder(schedule_id: int) -> str:
    return f"{EXPORT_FOLDER}/{schedule_id}"


def temp_folder(schedule_id: int) -> Path:
    """Where a schedule's runs write their temporary files: beside the final files on
    local storage (so the rename is atomic), under EXPORT_TEMP_DIR otherwise."""
    if _storage_is_local():
        return Path(default_storage.path(_schedule_folder(schedule_id)))
    return Path(settings.EXPORT_TEMP_DIR) / _schedule_folder(schedule_id)


def temp_name(run_id: int, attempt: int, fmt: str) -> str:
    return f".{run_id}-{attempt}.{EXTENSIONS[fmt]}{PARTIAL_SUFFIX}"


def temp_roots() -> list[Path]:
    """Folders holding every schedule's temporary files (for the reaper)."""
    if _storage_is_local():
        return [Path(default_storage.path(EXPORT_FOLDER))]
    return [Path(settings.EXPORT_TEMP_DIR) / EXPORT_FOLDER]


class ExportFile:
    """The file one attempt of a run writes: opened at the first chunk (nothing exists
    before data does), hashed and counted as it is written, then committed under its
    final name or discarded."""

    def __init__(self, *, schedule_id: int, run_id: int, attempt: int, fmt: str) -> None:
        self.path = temp_folder(schedule_id) / temp_name(run_id, attempt, fmt)
        self.bytes = 0
        self._sha = hashlib.sha256()
        self._handle = None

    def write(self, chunk: bytes) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "xb")  # noqa: SIM115 - closed in finish/discard
        self._handle.write(chunk)
        self._sha.update(chunk)
        self.bytes += len(chunk)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def finish(self) -> None:
        """Flush to disk (a file announced complete must survive a crash)."""
        if self._handle is None:
            self.write(b"")  # an empty export is an empty file, not a missing one
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def commit(self, final_name: str) -> str:
        """Give the finished file its final name; returns the name in storage."""
        if _storage_is_local():
            final_path = Path(default_storage.path(final_name))
            os.replace(self.path, final_path)
            folder = os.open(final_path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the rename itself survives a crash
            finally:
                os.close(folder)
            return final_name
        with open(self.path, "rb") as handle:
            if default_storage.exists(final_name):
                default_storage.delete(final_name)
            stored = default_storage.save(final_name, File(handle))
        self.path.unlink(missing_ok=True)
        return stored

    def discard(self) -> None:
        if self._handle is not None and not self._handle.closed:
            try:
                self._handle.close()
            except OSError:
                pass  # a full disk can refuse the last flush too
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            logger.exception("could not remove %s", self.path)


def final_name_for(run: ExportRun, fmt: str) -> str:
    started = (run.started_at or timezone.now()).astimezone(ZoneInfo(run.schedule.timezone))
    product = run.schedule.product
    stem = f"{product.domain.slug}.{product.slug}-{started:%Y%m%d-%H%M%S}-run{run.pk}"
    return f"{_schedule_folder(run.schedule_id)}/{stem}.{EXTENSIONS[fmt]}"


# --- downloading a run's file ----------------------------------------------------------


class ExportFileRefused(Exception):
    """A run's file that cannot be served: `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _clause_key(clause: dict) -> str:
    return json.dumps(clause, sort_keys=True, default=str)


def export_file_refusal(*, run: ExportRun, decision: AccessDecision) -> str | None:
    """Why a person with `decision` (their access now) may not download the run's file,
    or None when they may. The file holds what the schedule's creator could read when
    it ran; the person's access must cover all of it: admins and members of the owning
    domain (who read everything) always do; anyone else only when their access includes
    every column of the file, masks none the file holds unmasked, and has no row filter
    the file was not filtered by."""
    if not decision.allowed:
        return decision.reason
    if decision.all_columns:
        return None
    written = run.detail.get("written") or {}
    columns = written.get("columns") or []
    masked = set(written.get("masked") or [])
    outside = [name for name in columns if not decision.allows_column(name)]
    if outside:
        return f"This file holds column(s) your access does not include: {', '.join(outside)}."
    unmasked = [name for name in columns if name in decision.masked and name not in masked]
    if unmasked:
        return f"This file holds values your access masks, unmasked: {', '.join(unmasked)}."
    file_clauses = {_clause_key(clause) for clause in written.get("row_filter") or []}
    missing = [c for c in decision.row_filter if _clause_key(c.as_dict()) not in file_clauses]
    if missing:
        return (
            "This file holds rows outside your row filter (it was not filtered by "
            + ", ".join(f"{c.column} {c.op} {c.value}".strip() for c in missing)
            + ")."
        )
    return None


def export_file_decide(*, run: ExportRun, user) -> AccessDecision:
    """The requester's access decision when it covers the run's file (see
    export_file_refusal); ExportFileRefused (403) saying why otherwise."""
    decision = access_decide(user=user, product=run.schedule.product)
    refusal = export_file_refusal(run=run, decision=decision)
    if refusal:
        raise ExportFileRefused(403, refusal)
    return decision


def export_file_name(run: ExportRun) -> str:
    return os.path.basename(run.file_name)


def export_file_serve_audit(
    *,
    run: ExportRun,
    user,
    client_address: str | None,
    channel: str,
    grant=None,
    detail: dict | None = None,
) -> FileResponse:
    """Serve a succeeded run's file, streamed from storage, and write its audit event
    (action read, `channel`, the file's columns, row filter, rows and bytes, the run in
    its detail). The caller has decided access: export_file_download for a signed-in
    person, a share link's own check for its holder. Raises ExportFileRefused: 404 for a
    run without a file, 410 for a file removed by retention."""
    if run.status != ExportStatus.SUCCEEDED or not run.file_name:
        raise ExportFileRefused(
            404, f"This run has no file to download: it {run.get_status_display().lower()}."
        )
    if run.pruned_at is not None:
        raise ExportFileRefused(
            410,
            "This file was removed by the schedule's retention (it keeps the files of the "
            f"last {run.schedule.retention_runs} runs).",
        )
    try:
        handle = default_storage.open(run.file_name, "rb")
    except FileNotFoundError:
        raise ExportFileRefused(410, "This run's file is missing from storage.") from None
    written = run.detail.get("written") or {}
    fmt = written.get("format") or run.schedule.format
    product = run.schedule.product
    AccessEvent.objects.create(
        at=timezone.now(),
        action=AuditAction.READ,
        user=user if getattr(user, "is_authenticated", False) else None,
        product=product,
        product_key=product.key,
        channel=channel,
        columns=written.get("columns") or [],
        row_filter=written.get("row_filter") or [],
        rows=run.rows,
        bytes=run.bytes,
        client_address=client_address or None,
        grant=grant,
        detail={
            "export_run": run.pk,
            "export_schedule": run.schedule_id,
            "format": fmt,
            "file": export_file_name(run),
            "sha256": run.sha256,
            **({"masked": written["masked"]} if written.get("masked") else {}),
            **(detail or {}),
        },
    )
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=export_file_name(run),
        content_type=CONTENT_TYPES.get(fmt, "application/octet-stream"),
    )
    if run.sha256:
        digest = base64.b64encode(bytes.fromhex(run.sha256)).decode()
        response["Repr-Digest"] = f"sha-256=:{digest}:"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


def export_file_download(*, run: ExportRun, user, client_address: str | None) -> FileResponse:
    """A signed-in person's download (page and API): their access decides, then the file
    is served and audited on the export channel."""
    decision = export_file_decide(run=run, user=user)
    return export_file_serve_audit(
        run=run,
        user=user,
        client_address=client_address,
        channel=Channel.EXPORT,
        grant=decision.grant,
    )
