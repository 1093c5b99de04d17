"""Uploading a CSV or Parquet file to a file port: a new port from an upload, or a new
version of an existing file port's file. The page and the API both call
`port_file_upload`.

Nothing is stored until the file has passed every check, and then all of it is:

1. the upload is on disk already, streamed by `PortUploadHandler` into a temporary file
   and stopped at PORT_UPLOAD_MAX_BYTES (413, `UploadTooLarge`);
2. `products.connectors.file_probe` checks it in a child process whose address space is capped at
   PORT_UPLOAD_CHECK_MEMORY_BYTES, reading it through the DuckDB connector that will
   serve it (a refusal is a ValidationError on `file`: 400);
3. the file is copied into MEDIA_ROOT under a temporary name, and the port and its
   columns are written in one transaction that renames the file into place last; if any
   of it fails, the file is removed. A replaced file is deleted once the new version is
   committed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadhandler import SkipFile, StopUpload, TemporaryFileUploadHandler
from django.db import IntegrityError, transaction
from django.utils import timezone

from products.catalog.permissions import can_edit_product
from products.catalog.services.ports import _validate_port
from products.catalog.services.schema_refresh import schema_apply_columns
from products.choices import PortKind
from products.connectors import port_file_path
from products.connectors.base import ColumnInfo
from products.connectors.file_probe import FileRefused, ProbeLimits, detect_format, size_words
from products.models import DataProduct, OutputPort

logger = logging.getLogger(__name__)

UPLOAD_FIELD = "file"
UPLOADS_DIR = "uploads"  # under MEDIA_ROOT: uploads/<domain>/<product>/<port>/<version>.<ext>
EXTENSIONS = {"csv": "csv", "parquet": "parquet"}
# A multipart body carries its fields and boundaries besides the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
COPY_CHUNK_BYTES = 1 << 20


class UploadTooLarge(Exception):
    """The upload is above PORT_UPLOAD_MAX_BYTES: answered 413, nothing stored."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or too_large_message()
        super().__init__(self.message)


def too_large_message() -> str:
    return (
        f"The file is larger than {size_words(settings.PORT_UPLOAD_MAX_BYTES)}, the most "
        "the portal takes in one upload (PORT_UPLOAD_MAX_BYTES). Split it into smaller "
        "files, or write it as Parquet (compressed)."
    )


def _refused(message: str) -> ValidationError:
    return ValidationError({UPLOAD_FIELD: message})


# --- receiving the upload ----------------------------------------------------------------


class PortUploadHandler(TemporaryFileUploadHandler):
    """Streams the `file` field to a temporary file on disk (never into memory, whatever
    its size) and stops reading at PORT_UPLOAD_MAX_BYTES. Install it before the body is
    read: `request.upload_handlers = [PortUploadHandler(request)]`. Other file fields are
    skipped."""

    def __init__(self, request=None, max_bytes: int | None = None) -> None:
        super().__init__(request)
        self.max_bytes = settings.PORT_UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
        self.too_large = False
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # A declared body beyond the limit is refused before any of the file is written.
        if content_length and content_length > self.max_bytes + MULTIPART_OVERHEAD_BYTES:
            self.too_large = True
        return None

    def new_file(self, field_name, *args, **kwargs):
        if self.too_large:
            # Read and drop the rest of the body, so that the client gets the answer.
            raise StopUpload(connection_reset=False)
        if field_name != UPLOAD_FIELD:
            raise SkipFile()
        self.received = 0
        super().new_file(field_name, *args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.too_large = True
            self.file.close()  # a NamedTemporaryFile: closing it deletes it
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)


def upload_handler_install(request) -> PortUploadHandler:
    """Put the capped handler in front of the request's body (before anything reads it)."""
    handler = PortUploadHandler(request)
    request.upload_handlers = [handler]
    return handler


# --- checking the file (in a child process) ------------------------------------------------


@dataclass
class FileCheck:
    """What the probe found, and what the checking process used."""

    format: str
    rows: int
    columns: list[dict[str, str]]
    notes: list[str] = field(default_factory=list)
    peak_rss_bytes: int = 0


def probe_limits() -> ProbeLimits:
    return ProbeLimits(
        max_columns=settings.PORT_MAX_COLUMNS,
        max_uncompressed_bytes=settings.PORT_UPLOAD_MAX_UNCOMPRESSED_BYTES,
        max_expansion=settings.PORT_UPLOAD_MAX_EXPANSION,
        expansion_floor_bytes=settings.PORT_UPLOAD_EXPANSION_FLOOR_BYTES,
    )


def file_check(*, path: Path, file_format: str = "") -> FileCheck:
    """Run products.connectors.file_probe on `path` in a child process capped at
    PORT_UPLOAD_CHECK_MEMORY_BYTES of address space and PORT_UPLOAD_CHECK_TIMEOUT_SECONDS
    of time. Raises FileRefused with a message for people."""
    memory = settings.PORT_UPLOAD_CHECK_MEMORY_BYTES
    timeout = settings.PORT_UPLOAD_CHECK_TIMEOUT_SECONDS
    request = {
        "path": str(path),
        "format": file_format,
        "memory_bytes": memory,
        "limits": asdict(probe_limits()),
    }
    env = {
        **os.environ,
        # One thread each: the numeric libraries' thread pools would reserve address
        # space that the cap counts.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "PYTHONPATH": os.pathsep.join(
            [str(settings.BASE_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "products.connectors.file_probe", json.dumps(request)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=settings.BASE_DIR,
            env=env,
        )
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            # wait4, not wait(): the child's own resource usage (its peak RSS).
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        # An upper bound: on Linux ru_maxrss also counts the parent's memory at fork.
        peak = usage.ru_maxrss * 1024
        out.seek(0)
        output = out.read().decode("utf-8", errors="replace")
        err.seek(0)
        errors = err.read().decode("utf-8", errors="replace")[-2000:]

    try:
        answer = json.loads(output) if output else None
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("peak_rss_bytes"):
        peak = int(answer["peak_rss_bytes"])  # measured by the child itself
    try:
        return _check_answer(
            result=answer,
            errors=errors,
            returncode=process.returncode,
            timed_out=timed_out.is_set(),
            peak=peak,
        )
    except FileRefused as exc:
        exc.peak_rss_bytes = peak  # what the checking process used, even when refused
        raise


def _check_answer(
    *, result: dict | None, errors: str, returncode: int, timed_out: bool, peak: int
) -> FileCheck:
    memory = settings.PORT_UPLOAD_CHECK_MEMORY_BYTES
    timeout = settings.PORT_UPLOAD_CHECK_TIMEOUT_SECONDS
    if timed_out:
        raise FileRefused(
            f"Checking the file took longer than {timeout:,} seconds "
            "(PORT_UPLOAD_CHECK_TIMEOUT_SECONDS): it is too large or too complex to check. "
            "Split it into smaller files."
        )
    memory_words = (
        f"Reading the file needs more memory than the {size_words(memory)} allowed for "
        "checking an upload (PORT_UPLOAD_CHECK_MEMORY_BYTES): some values or row groups "
        "are too large to serve. Write it with smaller values or smaller row groups."
    )
    if result is None:
        logger.warning(
            "file probe exited %s (peak RSS %s) without an answer: %s",
            returncode,
            peak,
            errors,
        )
        if returncode in (
            -signal.SIGKILL,
            -signal.SIGABRT,
            -signal.SIGSEGV,
            -signal.SIGBUS,
        ):
            raise FileRefused(memory_words)
        raise FileRefused("The file could not be checked: its reader stopped unexpectedly.")
    logger.info("file probe: peak RSS %s bytes, answer %s", peak, result.get("ok"))
    if not result["ok"]:
        if result.get("kind") == "memory":
            raise FileRefused(memory_words)
        raise FileRefused(result["error"])
    return FileCheck(
        format=result["format"],
        rows=result["rows"],
        columns=result["columns"],
        notes=result["notes"],
        peak_rss_bytes=peak,
    )


# --- storing -------------------------------------------------------------------------------


@dataclass
class PortFileUpload:
    """What an upload stored: the port, and what the check found."""

    port: OutputPort
    created: bool
    file_name: str
    check: FileCheck
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        check = self.check
        words = (
            f"{self.file_name}: {check.rows:,} row{'s' if check.rows != 1 else ''}, "
            f"{len(check.columns):,} column{'s' if len(check.columns) != 1 else ''} "
            f"({check.format.upper()})."
        )
        if not self.created and (self.columns_added or self.columns_removed):
            changes = []
            if self.columns_added:
                changes.append(f"added {', '.join(self.columns_added)}")
            if self.columns_removed:
                changes.append(f"removed {', '.join(self.columns_removed)}")
            words += f" Columns {'; '.join(changes)}."
        return " ".join([words, *check.notes])

    def as_dict(self) -> dict[str, Any]:
        return {
            "file_name": self.file_name,
            "format": self.check.format,
            "rows": self.check.rows,
            "columns": len(self.check.columns),
            "columns_added": self.columns_added,
            "columns_removed": self.columns_removed,
            "notes": self.check.notes,
        }


def _uploaded_path(uploaded_file, stack: list[Path]) -> Path:
    """The upload as a file on disk (Django's TemporaryUploadedFile already is one)."""
    if hasattr(uploaded_file, "temporary_file_path"):
        return Path(uploaded_file.temporary_file_path())
    handle, name = tempfile.mkstemp(prefix="portal-upload-")
    stack.append(Path(name))
    with os.fdopen(handle, "wb") as out:
        for chunk in uploaded_file.chunks(COPY_CHUNK_BYTES):
            out.write(chunk)
    return Path(name)


def _final_relative_path(port: OutputPort, fmt: str) -> str:
    product = port.product
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    return (
        f"{UPLOADS_DIR}/{product.domain.slug}/{product.slug}/{port.slug}/"
        f"{stamp}-{secrets.token_hex(4)}.{EXTENSIONS[fmt]}"
    )


def _stage(source: Path, final: Path) -> Path:
    """Copy the checked file next to its final place under a temporary name (same
    directory: the rename into place is atomic), flushed to disk."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = final.with_name(f".{final.name}.partial")
    with open(source, "rb") as src, open(staged, "xb") as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
        dst.flush()
        os.fsync(dst.fileno())
    return staged


def _remove_empty_dirs(folder: Path, root: Path) -> None:
    """Remove `folder` and its parents up to (not including) `root` while they are
    empty: a refused upload leaves no trace, not even a directory."""
    root = root.resolve()
    folder = folder.resolve()
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _owned_upload(relative_path: str) -> bool:
    return relative_path.startswith(f"{UPLOADS_DIR}/")


def _delete_previous(relative_path: str) -> None:
    """A replaced version (only files the upload feature wrote; a file an admin put in
    storage by hand stays)."""
    if not relative_path or not _owned_upload(relative_path):
        return
    try:
        path = port_file_path(relative_path)
        path.unlink(missing_ok=True)
    except OSError:
        logger.warning("could not delete the replaced upload %s", relative_path)


def port_file_upload(
    *,
    product: DataProduct,
    by,
    uploaded_file,
    name: str = "",
    slug: str = "",
    description: str = "",
    file_format: str = "",
    port: OutputPort | None = None,
) -> PortFileUpload:
    """Create a file port from an uploaded CSV or Parquet file (`port` None), or store a
    new version of `port`'s file. `file_format` "csv" or "parquet" checks the content is
    that; empty detects it. Raises PermissionDenied, UploadTooLarge and ValidationError
    (on `file`, `name`, `format`); on any of them nothing is stored."""
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied("Only the domain's owners and stewards upload files to ports.")
    if uploaded_file is None:
        raise _refused("Choose a CSV or Parquet file to upload.")
    if file_format and file_format not in EXTENSIONS:
        raise ValidationError({"format": "Choose CSV or Parquet, or leave it empty to detect."})
    if uploaded_file.size > settings.PORT_UPLOAD_MAX_BYTES:
        raise UploadTooLarge()
    file_name = Path(uploaded_file.name or "upload").name

    # Cheap checks first: the port's name and slug, before reading the file.
    if port is None:
        name = (name or "").strip() or Path(file_name).stem.replace("_", " ").strip()
        target = OutputPort(
            product=product,
            name=name[:120],
            slug=(slug or "").strip(),
            description=(description or "").strip(),
            kind=PortKind.FILE,
            file_path=f"{UPLOADS_DIR}/{product.domain.slug}/pending",
            file_format=file_format or "csv",
        )
        _validate_port(target)
    else:
        if port.product_id != product.pk:
            raise ValidationError({"port": "This port belongs to another product."})
        if port.kind != PortKind.FILE:
            raise _refused(
                "This port is a table on a data source: only file ports take an uploaded "
                "file. Add a file port instead."
            )
        target = port

    cleanup: list[Path] = []
    try:
        source = _uploaded_path(uploaded_file, cleanup)
        try:
            detect_format(source)  # the empty file and look-alikes, without a process
            check = file_check(path=source, file_format=file_format)
        except FileRefused as exc:
            raise _refused(str(exc)) from None
        return _store(
            product=product,
            target=target,
            created=port is None,
            source=source,
            check=check,
            file_name=file_name,
        )
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)


def _store(
    *,
    product: DataProduct,
    target: OutputPort,
    created: bool,
    source: Path,
    check: FileCheck,
    file_name: str,
) -> PortFileUpload:
    root = Path(settings.MEDIA_ROOT)
    relative = _final_relative_path(target, check.format)
    final = port_file_path(relative)
    staged = _stage(source, final)
    moved = False
    previous = ""
    try:
        with transaction.atomic():
            if created:
                port = target
            else:
                port = OutputPort.objects.select_for_update().get(pk=target.pk)
                port.product = product
                previous = port.file_path
            port.file_path = relative
            port.file_format = check.format
            _validate_port(port)
            port.save()
            added, removed, _ = schema_apply_columns(
                port=port,
                columns=[
                    ColumnInfo(name=c["name"], data_type=c["type"], nullable=True, position=i)
                    for i, c in enumerate(check.columns)
                ],
            )
            os.replace(staged, final)
            moved = True
    except BaseException as exc:
        staged.unlink(missing_ok=True)
        if moved:
            final.unlink(missing_ok=True)
        _remove_empty_dirs(final.parent, root)
        if isinstance(exc, IntegrityError) and created:
            # Another upload took the same port name between the check and the write.
            raise ValidationError(
                {"name": f"This product already has a port {target.slug!r}."}
            ) from exc
        raise
    if previous and previous != relative:
        transaction.on_commit(lambda: _delete_previous(previous))
    return PortFileUpload(
        port=port,
        created=created,
        file_name=file_name,
        check=check,
        columns_added=[] if created else added,
        columns_removed=[] if created else removed,
    )
