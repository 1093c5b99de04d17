"""The Arrow side of Delta Sharing's files (sharing.delta_sharing.protocol): the Delta
(Spark) type of each Arrow column read, the conversion of every batch to the Arrow types
of that schema, and the Parquet parts they are written to. Its own module so that pyarrow
(~40 MB with numpy) is loaded only by a process that writes a table's files, not by every
process that loads the protocol's URLs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sharing.serving.arrow_values import decimal_array, numeric_decimal_type

Convert = Callable[[pa.Array], pa.Array] | None

_SIMPLE_TYPES: list[tuple[Callable[[pa.DataType], bool], str, pa.DataType]] = [
    (pa.types.is_boolean, "boolean", pa.bool_()),
    (pa.types.is_int8, "byte", pa.int8()),
    (pa.types.is_int16, "short", pa.int16()),
    (pa.types.is_int32, "integer", pa.int32()),
    (pa.types.is_int64, "long", pa.int64()),
    (pa.types.is_uint8, "short", pa.int16()),
    (pa.types.is_uint16, "integer", pa.int32()),
    (pa.types.is_uint32, "long", pa.int64()),
    (pa.types.is_float16, "float", pa.float32()),
    (pa.types.is_float32, "float", pa.float32()),
    (pa.types.is_float64, "double", pa.float64()),
    (pa.types.is_date, "date", pa.date32()),
    (pa.types.is_string, "string", pa.string()),
    (pa.types.is_large_string, "string", pa.string()),
    (pa.types.is_binary, "binary", pa.binary()),
    (pa.types.is_large_binary, "binary", pa.binary()),
    (pa.types.is_fixed_size_binary, "binary", pa.binary()),
]
_CASTABLE_TO_TEXT = (pa.types.is_null, pa.types.is_time, pa.types.is_string_view)


def _python_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def as_text(array: pa.Array) -> pa.Array:
    """Any column as text: Arrow's cast where it means something, else str()/JSON."""
    kind = array.type
    if isinstance(kind, pa.BaseExtensionType):
        if kind.extension_name == "arrow.uuid":
            return pa.array(
                [None if v is None else str(uuid.UUID(bytes=v)) for v in array.storage.to_pylist()],
                pa.string(),
            )
        array, kind = array.storage, kind.storage_type
    if any(test(kind) for test in _CASTABLE_TO_TEXT) or pa.types.is_string(kind):
        return pc.cast(array, pa.string())
    return pa.array([_python_text(v) for v in array.to_pylist()], pa.string())


def _cast_to(target: pa.DataType, *, safe: bool = True) -> Convert:
    return lambda array: pc.cast(array, target, safe=safe)


def delta_type_of(field: pa.Field) -> tuple[Any, pa.DataType, Convert]:
    """The Delta type a column is served as, the Arrow type written to Parquet, and the
    conversion of the read Arrow array to it (None: as read)."""
    kind = field.type
    if isinstance(kind, pa.BaseExtensionType):
        if getattr(kind, "type_name", "") == "numeric":
            # As in every other channel (sharing.serving.reads): numeric(p,s) is decimal(p,s),
            # an unconstrained numeric decimal(38,18); Delta's decimals stop at 38 digits.
            target = numeric_decimal_type(field)
            if pa.types.is_decimal128(target):
                return (
                    f"decimal({target.precision},{target.scale})",
                    target,
                    lambda a: decimal_array(field.name, a, target),
                )
        return "string", pa.string(), as_text
    if pa.types.is_dictionary(kind):
        delta, target, inner = delta_type_of(pa.field(field.name, kind.value_type))
        value_type = kind.value_type
        return (
            delta,
            target,
            lambda a: (inner or (lambda x: x))(pc.cast(a, value_type)),
        )
    for test, delta, target in _SIMPLE_TYPES:
        if test(kind):
            return delta, target, None if kind == target else _cast_to(target)
    if pa.types.is_uint64(kind):
        return "decimal(20,0)", pa.decimal128(20, 0), _cast_to(pa.decimal128(20, 0))
    if pa.types.is_timestamp(kind):
        # Delta's `timestamp` is an instant: written adjusted to UTC (Spark reads it so),
        # a timestamp without a time zone taken as UTC. (`timestamp_ntz` would keep it
        # naive, but the Python client cannot read that type.)
        target = pa.timestamp("us", tz="UTC")
        return "timestamp", target, None if kind == target else _cast_to(target, safe=False)
    if pa.types.is_decimal(kind):
        if 1 <= kind.precision <= 38 and 0 <= kind.scale <= kind.precision:
            target = pa.decimal128(kind.precision, kind.scale)
            return (
                f"decimal({kind.precision},{kind.scale})",
                target,
                None if kind == target else _cast_to(target),
            )
        return "string", pa.string(), as_text
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        element, element_target, element_convert = delta_type_of(kind.value_field)
        if element_convert is None and element_target == kind.value_type:
            target = pa.list_(kind.value_type)
            delta = {"type": "array", "elementType": element, "containsNull": True}
            return delta, target, None if kind == target else _cast_to(target)
        return "string", pa.string(), as_text
    if pa.types.is_struct(kind):
        fields = []
        for child in kind:
            child_delta, child_target, child_convert = delta_type_of(child)
            if child_convert is not None or child_target != child.type:
                return "string", pa.string(), as_text
            fields.append(
                {"name": child.name, "type": child_delta, "nullable": True, "metadata": {}}
            )
        return {"type": "struct", "fields": fields}, kind, None
    return "string", pa.string(), as_text


def delta_field(name: str, delta_type, description: str) -> dict:
    return {
        "name": name,
        "type": delta_type,
        "nullable": True,
        "metadata": {"comment": description} if description else {},
    }


class Conformer:
    """Converts the batches of one read to the Arrow types matching their Delta schema."""

    def __init__(self, schema: pa.Schema, descriptions: dict[str, str]) -> None:
        planned = [delta_type_of(field) for field in schema]
        self.converts = [convert for _, _, convert in planned]
        self.schema = pa.schema(
            [
                pa.field(field.name, target)
                for field, (_, target, _) in zip(schema, planned, strict=True)
            ]
        )
        self.delta_schema = {
            "type": "struct",
            "fields": [
                delta_field(field.name, delta, descriptions.get(field.name, ""))
                for field, (delta, _, _) in zip(schema, planned, strict=True)
            ],
        }

    def conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        columns = [
            convert(column) if convert else column
            for column, convert in zip(batch.columns, self.converts, strict=True)
        ]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


class PartWriter:
    """Parquet parts of at most `file_rows` rows, in row groups of `row_group_rows`."""

    def __init__(
        self, folder: Path, schema: pa.Schema, *, row_group_rows: int, file_rows: int
    ) -> None:
        self.folder = folder
        self.schema = schema
        self.row_group_rows, self.file_rows = row_group_rows, file_rows
        self.parts: list[dict] = []
        self.writer: pq.ParquetWriter | None = None
        self.part_rows = 0
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        while self.pending_rows >= self._room():
            self._flush(self._room())

    def _room(self) -> int:
        return min(self.row_group_rows, self.file_rows - self.part_rows)

    def _flush(self, rows: int) -> None:
        table = pa.Table.from_batches(self.pending, schema=self.schema)
        head, rest = table.slice(0, rows), table.slice(rows)
        if self.writer is None:
            name = f"part-{len(self.parts):05d}.parquet"
            self.writer = pq.ParquetWriter(self.folder / name, self.schema, compression="zstd")
            self.parts.append({"name": name, "rows": 0})
        self.writer.write_table(head, row_group_size=rows)
        self.parts[-1]["rows"] += head.num_rows
        self.part_rows += head.num_rows
        self.pending = rest.to_batches()
        self.pending_rows = rest.num_rows
        if self.part_rows >= self.file_rows:
            self._close_part()

    def _close_part(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.parts[-1]["size"] = (self.folder / self.parts[-1]["name"]).stat().st_size
        self.writer = None
        self.part_rows = 0

    def close(self) -> list[dict]:
        if self.pending_rows:
            self._flush(self.pending_rows)
        self._close_part()
        return self.parts
