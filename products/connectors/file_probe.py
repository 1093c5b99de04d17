"""Check an uploaded CSV or Parquet file before the portal stores it.

It runs in a child process (`python -m products.connectors.file_probe '<request JSON>'`)
whose address space is capped with RLIMIT_AS, so a hostile file (a decompression bomb, a
huge value) can exhaust only that child, never the web process. It reads the file through the same
DuckDB connector that will serve it (memory_limit, no external access), so a file that
passes here is a file the portal can serve. It prints one JSON object:
`{"ok": true, "format", "rows", "columns": [{"name", "type"}], "notes"}` or
`{"ok": false, "error", "kind"}`; `kind` is "refused" or "memory".

No Django settings are read here: the parent passes the limits (products.uploads.services).
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from products.connectors.base import ConnectorError

PARQUET_MAGIC = b"PAR1"
CHUNK_BYTES = 1 << 20
SCAN_BATCH_ROWS = 8192
# DuckDB's threads each reserve address space (stacks, allocator arenas) that the cap
# counts: a fixed count keeps the cap meaning the same on a 2-core and a 64-core host.
DUCKDB_THREADS = 2
MAX_NAME_LENGTH = 255  # Column.name
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
FIRST_LINE_BYTES = 16 << 20  # enough for a header of any column count we accept


class FileRefused(Exception):
    """The file cannot be stored; the message says why and what to do, for people."""


@dataclass(frozen=True)
class ProbeLimits:
    max_columns: int = 1000
    max_uncompressed_bytes: int = 10_000_000_000
    max_expansion: float = 100.0
    expansion_floor_bytes: int = 1_000_000_000
    max_field_bytes: int = 1 << 20


def size_words(nbytes: float) -> str:
    """1_600_310_000 -> "1.6 GB" (decimal units, as people read file sizes)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(nbytes) < 1000 or unit == "TB":
            return f"{int(nbytes)} bytes" if unit == "bytes" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1000
    raise AssertionError("unreachable")


def too_many_columns(count: int, limit: int) -> str:
    """The one message for a file or table wider than the portal takes."""
    return (
        f"{count:,} columns: at most {limit:,}. Split the data into narrower files or "
        "ports, or ask an admin to raise PORT_MAX_COLUMNS."
    )


# --- format ----------------------------------------------------------------------------


def detect_format(path: Path) -> str:
    """ "parquet" or "csv", from the content (never the file name). Refuses an empty file
    and the common look-alikes (a truncated Parquet file, a ZIP/Excel or gzip file)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if size >= 8:
            handle.seek(-4, os.SEEK_END)
        tail = handle.read(4)
    if size == 0:
        raise FileRefused(
            "The file is empty. Upload a CSV file with a header line naming the columns, "
            "or a Parquet file."
        )
    if head.startswith(PARQUET_MAGIC):
        if size < 12 or tail != PARQUET_MAGIC:
            raise FileRefused(
                "The file starts like a Parquet file but does not end like one: it is "
                "truncated (its footer, which describes the columns, is missing). Upload "
                "the complete file."
            )
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        raise FileRefused(
            "The file is a ZIP archive (an Excel workbook is one): export the sheet as "
            "“CSV UTF-8” or upload a Parquet file."
        )
    if head.startswith(b"\x1f\x8b"):
        raise FileRefused("The file is gzip-compressed: upload the uncompressed CSV file.")
    return "csv"


# --- CSV ---------------------------------------------------------------------------------


def _line_at(path: Path, offset: int) -> int:
    """The 1-based line number of a byte offset."""
    line, done = 1, 0
    with open(path, "rb") as handle:
        while done < offset:
            chunk = handle.read(min(CHUNK_BYTES, offset - done))
            if not chunk:
                break
            line += chunk.count(b"\n")
            done += len(chunk)
    return line


def _check_encoding(path: Path) -> None:
    """UTF-8 (a byte-order mark is allowed) or a refusal naming the encoding, the byte
    offset and the line of the first sequence that is not UTF-8."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    for bom, name in (
        (codecs.BOM_UTF32_LE, "UTF-32 (little-endian)"),
        (codecs.BOM_UTF32_BE, "UTF-32 (big-endian)"),
        (codecs.BOM_UTF16_LE, "UTF-16 (little-endian)"),
        (codecs.BOM_UTF16_BE, "UTF-16 (big-endian)"),
    ):
        if head.startswith(bom):
            raise FileRefused(
                f"The file is encoded in {name} (it starts with that byte-order mark), not "
                "UTF-8. Save it as “CSV UTF-8” and upload it again."
            )
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK_BYTES)
            nul = chunk.find(b"\x00")
            if nul >= 0:
                where = offset + nul
                raise FileRefused(
                    f"The file contains a NUL byte at byte offset {where:,} (line "
                    f"{_line_at(path, where):,}): it is not a text CSV file (UTF-16 without "
                    "a byte-order mark, or binary data). Save it as “CSV UTF-8”."
                )
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                where = offset + exc.start
                bad = (
                    chunk[exc.start : exc.start + 1].hex().upper() if exc.start < len(chunk) else ""
                )
                raise FileRefused(
                    "The file is not UTF-8: the byte "
                    + (f"0x{bad} " if bad else "")
                    + f"at byte offset {where:,} (line {_line_at(path, where):,}) does not "
                    "start a valid UTF-8 character. It is probably Latin-1 (ISO-8859-1) or "
                    "Windows-1252: save it as “CSV UTF-8” and upload it again."
                ) from None
            if not chunk:
                return
            offset += len(chunk)


def _sniff_delimiter(path: Path) -> str:
    """The separator of the header line: the candidate appearing most often outside
    double quotes (a comma when the line has none: a one-column file)."""
    with open(path, "rb") as handle:
        first = handle.readline(FIRST_LINE_BYTES).decode("utf-8-sig", errors="replace")
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in first:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties: the earlier candidate wins
    return best if counts[best] else ","


def _header_problems(header: list[str], limits: ProbeLimits) -> None:
    if len(header) > limits.max_columns:
        raise FileRefused(
            f"The header line names {too_many_columns(len(header), limits.max_columns)}"
        )
    empty = [str(i) for i, name in enumerate(header, 1) if not name]
    if empty:
        raise FileRefused(
            f"The header line has no name for column{'s' if len(empty) > 1 else ''} "
            f"{', '.join(empty[:10])}{'…' if len(empty) > 10 else ''} (counting from 1). Name "
            "every column in the first line."
        )
    seen: dict[str, int] = {}
    duplicates = []
    for i, name in enumerate(header, 1):
        if name in seen:
            duplicates.append(f"“{name}” (columns {seen[name]} and {i})")
        else:
            seen[name] = i
    if duplicates:
        raise FileRefused(
            "The header line names the same column twice: "
            + "; ".join(duplicates[:10])
            + ". Column names must be unique."
        )
    long = [name for name in header if len(name) > MAX_NAME_LENGTH]
    if long:
        raise FileRefused(
            f"A column name is longer than {MAX_NAME_LENGTH} characters: “{long[0][:40]}…”."
        )


def _check_csv_structure(path: Path, limits: ProbeLimits) -> tuple[list[str], int, str]:
    """Read every record with Python's strict CSV parser: the header's names, the number
    of data rows, the separator. Refuses malformed records naming their line."""
    delimiter = _sniff_delimiter(path)
    csv.field_size_limit(limits.max_field_bytes)
    with open(path, encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text, delimiter=delimiter, quotechar='"', strict=True)
        start = 1
        try:
            header = next(reader, None)
            if header is None or not any(field.strip() for field in header):
                raise FileRefused(
                    "The file has no header line: its first line must name the columns, "
                    "separated by commas."
                )
            header = [name.strip() for name in header]
            _header_problems(header, limits)
            rows = 0
            start = reader.line_num + 1
            for record in reader:
                if record and len(record) != len(header):
                    lines = (
                        f"line {start:,}"
                        if reader.line_num == start
                        else f"lines {start:,}–{reader.line_num:,}"
                    )
                    name = DELIMITER_NAMES[delimiter]
                    raise FileRefused(
                        f"Malformed CSV at {lines}: {len(record):,} field"
                        f"{'s' if len(record) != 1 else ''} where the header has "
                        f"{len(header):,} (the separator is the {name}). Quote values that "
                        f"contain a {name}, and give every row the same number of fields."
                    )
                if record:
                    rows += 1
                start = reader.line_num + 1
        except csv.Error as exc:
            reason = str(exc)
            if "unexpected end of data" in reason or "EOF inside string" in reason:
                detail = (
                    "a quoted value starts here and its closing double quote is missing "
                    "(the file ends inside it)"
                )
            elif "expected after" in reason:
                detail = (
                    "a closing double quote is followed by more text; to put a double "
                    'quote inside a quoted value, write it twice ("")'
                )
            elif "field larger than field limit" in reason:
                detail = f"a value is longer than {size_words(limits.max_field_bytes)}"
            else:
                detail = reason
            raise FileRefused(f"Malformed CSV at line {start:,}: {detail}.") from None
    return header, rows, delimiter


# --- Parquet -----------------------------------------------------------------------------


def _check_parquet_footer(path: Path, limits: ProbeLimits) -> tuple[list[str], int]:
    """Read the footer only (no data page is decompressed): refuse what it declares
    beyond the limits. Returns the column names and the declared row count."""
    # Lazy: pyarrow (~40 MB) only where Arrow or Parquet is served.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
        names = metadata.schema.to_arrow_schema().names
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FileRefused(
            "The Parquet file's footer (which describes its columns) is corrupt or "
            f"truncated: {_first_line(exc)}. Write the file again and upload the complete file."
        ) from None
    if metadata.num_columns > limits.max_columns:
        words = too_many_columns(metadata.num_columns, limits.max_columns)
        raise FileRefused(f"The Parquet file declares {words}")
    by_groups = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    by_chunks = 0
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        for j in range(group.num_columns):
            by_chunks += group.column(j).total_uncompressed_size
    declared = max(by_groups, by_chunks)
    stored = path.stat().st_size
    if declared > limits.max_uncompressed_bytes:
        raise FileRefused(
            f"The Parquet file declares {size_words(declared)} uncompressed: at most "
            f"{size_words(limits.max_uncompressed_bytes)} (PORT_UPLOAD_MAX_UNCOMPRESSED_BYTES). "
            "Split it into smaller files."
        )
    expansion = declared / max(stored, 1)
    if declared > limits.expansion_floor_bytes and expansion > limits.max_expansion:
        raise FileRefused(
            f"The Parquet file declares {size_words(declared)} uncompressed from "
            f"{size_words(stored)} stored ({expansion:,.0f} times larger): above "
            f"{size_words(limits.expansion_floor_bytes)}, a file may expand at most "
            f"{limits.max_expansion:,.0f} times. It is refused as a likely decompression "
            "bomb (“zip bomb”)."
        )
    _header_problems(names, limits)
    return names, metadata.num_rows


# --- reading through the serving connector -----------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]


def _duckdb_reason(exc: BaseException) -> str:
    """The lines of a DuckDB error that help a person (not its tuning advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [lines[0]] if lines else [exc.__class__.__name__]
    useful += [
        line
        for line in lines[1:]
        if line.startswith(("Error when converting", "Could not convert", "Original Line"))
    ]
    return " ".join(useful)[:600]


class MemoryCapReached(Exception):
    pass


def _is_memory_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or any(
        words in text
        for words in ("Out of Memory", "bad_alloc", "failed to map segment", "Cannot allocate")
    )


def _scan(path: Path, fmt: str) -> tuple[list[dict[str, str]], int, dict[str, dict[str, int]]]:
    """Every row, read in small batches through the connector that will serve the file:
    its columns, the row count, and the NaN / infinite values per float column."""
    # Lazy: pyarrow (~40 MB) only where Arrow or Parquet is served.
    import pyarrow as pa
    import pyarrow.compute as pc

    # Lazy: this module imports duckdb.
    from products.connectors.duckdb import DuckDBConnector

    connector = DuckDBConnector(
        file_path=str(path), file_format=fmt, label="the file", threads=DUCKDB_THREADS
    )
    non_finite: dict[str, dict[str, int]] = {}
    rows = 0
    try:
        with connector:
            columns = connector.describe()
            sql = f"SELECT * FROM {connector.relation_sql()}"
            for batch in connector.arrow_batches(sql, [], batch_rows=SCAN_BATCH_ROWS):
                rows += batch.num_rows
                for field, column in zip(batch.schema, batch.columns, strict=True):
                    if not pa.types.is_floating(field.type):
                        continue
                    nan = pc.sum(pc.is_nan(column)).as_py() or 0
                    inf = pc.sum(pc.is_inf(column)).as_py() or 0
                    if nan or inf:
                        counts = non_finite.setdefault(field.name, {"nan": 0, "infinite": 0})
                        counts["nan"] += nan
                        counts["infinite"] += inf
    except ConnectorError as exc:
        cause = exc.__cause__ or exc
        if _is_memory_error(cause) or _is_memory_error(exc):
            raise MemoryCapReached(str(exc)) from exc
        raise FileRefused(
            f"DuckDB, which serves file ports, cannot read the file: {_duckdb_reason(cause)}"
        ) from None
    except (MemoryError, pa.ArrowMemoryError) as exc:
        raise MemoryCapReached(str(exc)) from exc
    described = [{"name": c.name, "type": c.data_type} for c in columns]
    return described, rows, non_finite


def probe(path: Path, limits: ProbeLimits, *, expected_format: str = "") -> dict[str, Any]:
    """Everything the portal needs to know before storing the file, or FileRefused."""
    fmt = detect_format(path)
    if expected_format and expected_format != fmt:
        detected = "a Parquet file" if fmt == "parquet" else "not a Parquet file (no PAR1 marks)"
        raise FileRefused(
            f"You chose {expected_format.upper()} but the file is {detected}. Choose "
            "“Detect from content” or the right format."
        )
    notes: list[str] = []
    if fmt == "csv":
        _check_encoding(path)
        header, expected_rows, delimiter = _check_csv_structure(path, limits)
        if delimiter != ",":
            notes.append(f"Values are separated by a {DELIMITER_NAMES[delimiter]}.")
    else:
        header, expected_rows = _check_parquet_footer(path, limits)

    columns, rows, non_finite = _scan(path, fmt)
    names = [c["name"] for c in columns]
    if len(names) > limits.max_columns:
        raise FileRefused(f"The file has {too_many_columns(len(names), limits.max_columns)}")
    if fmt == "parquet" and names != header:
        raise FileRefused(
            "DuckDB (which serves file ports) reads other columns than the file's schema "
            f"declares: {', '.join(names[:5])}{'…' if len(names) > 5 else ''}. Write the "
            "file again with unique, non-empty column names."
        )
    if names != header:
        raise FileRefused(
            "The first line must be a header naming the columns, separated by commas, and "
            "DuckDB (which serves file ports) reads it differently: it sees "
            f"{', '.join(names[:5])}{'…' if len(names) > 5 else ''}. Make sure the first line "
            "names every column and that values with separators are quoted."
        )
    if rows != expected_rows:
        raise FileRefused(
            f"The file reads as {rows:,} rows through DuckDB but {expected_rows:,} by "
            "its structure: it is ambiguous (quotes or separators). Quote every value that "
            "contains a separator, a quote or a line break."
        )
    for name, counts in non_finite.items():
        parts = []
        if counts["nan"]:
            parts.append(f"{counts['nan']:,} NaN")
        if counts["infinite"]:
            parts.append(f"{counts['infinite']:,} infinite")
        notes.append(
            f"Column {name} has {' and '.join(parts)} value(s): kept as data; JSON reads "
            'show them as "NaN", "Infinity" and "-Infinity".'
        )
    return {"format": fmt, "rows": rows, "columns": columns, "notes": notes}


def own_peak_rss() -> int:
    """This process's peak resident memory in bytes since it started the probe. Linux's
    VmHWM belongs to the address space made at exec; getrusage's ru_maxrss would include
    the web process's memory at fork time."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str]) -> int:
    request = json.loads(argv[1])
    memory = int(request.get("memory_bytes") or 0)
    if memory:
        # Before pyarrow and DuckDB are imported: every allocation of this process counts.
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    limits = ProbeLimits(**request.get("limits", {}))
    try:
        result = {
            "ok": True,
            **probe(Path(request["path"]), limits, expected_format=request.get("format", "")),
        }
    except FileRefused as exc:
        result = {"ok": False, "kind": "refused", "error": str(exc)}
    except MemoryCapReached as exc:
        result = {"ok": False, "kind": "memory", "error": _first_line(exc)}
    except MemoryError:
        result = {"ok": False, "kind": "memory", "error": "MemoryError"}
    except Exception as exc:  # noqa: BLE001 - any other failure is a refusal with its reason
        if _is_memory_error(exc):
            result = {"ok": False, "kind": "memory", "error": _first_line(exc)}
        else:
            result = {
                "ok": False,
                "kind": "refused",
                "error": f"The file cannot be read: {_first_line(exc)}",
            }
    result["peak_rss_bytes"] = own_peak_rss()
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
