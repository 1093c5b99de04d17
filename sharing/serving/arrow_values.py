"""Arrow values of every read: PostgreSQL numerics as decimals, text for CSV, Python
values for row formats, the declared types of an empty read, and spreadsheet formulas
neutralised. Its own module so that pyarrow (~40 MB with numpy) is loaded only by a
process that serves a read: `sharing.serving.reads` imports it where a read needs it."""

from __future__ import annotations

import io
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

from products.connectors import column_types
from sharing.serving.refusals import ReadRefused

# --- types --------------------------------------------------------------------------------
#
# ADBC reads a PostgreSQL `numeric` as an opaque extension type holding the value's text
# (with the column's typmod in the field's metadata), which no Arrow reader understands
# (pandas' conversion raises KeyError). Every channel turns it into a decimal instead:
# Arrow and Parquet get `decimal128(p, s)` for numeric(p,s) with p <= 38 and
# `decimal256(p, s)` up to 76 digits; row formats (JSON, XLSX, the preview) get Python
# Decimals; CSV keeps the value's own text. An unconstrained `numeric` (no scale) becomes
# UNCONSTRAINED_DECIMAL, decimal(38,18), the rule Spark follows for it: exact for values
# with at most 20 digits before the point and 18 after; a value with more digits after
# the point is rounded half-even to 18, one with more before it, and NaN or infinities
# (which no decimal holds), refuse the Arrow or Parquet read with a message naming the
# column (CSV and JSON serve them as they are).
UNCONSTRAINED_DECIMAL = pa.decimal128(38, 18)
_DECIMAL_CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)  # room for decimal256
NUMERIC_TYPMOD_KEY = b"POSTGRESQL:typmod"


def _numeric_field(field_: pa.Field) -> bool:
    """Is this ADBC's opaque PostgreSQL numeric?"""
    kind = field_.type
    return isinstance(kind, pa.BaseExtensionType) and getattr(kind, "type_name", "") == "numeric"


def numeric_decimal_type(field_: pa.Field) -> pa.DataType:
    """The Arrow decimal a PostgreSQL numeric column is served as (see above)."""
    raw = (field_.metadata or {}).get(NUMERIC_TYPMOD_KEY)
    try:
        typmod = int(raw) if raw is not None else -1
    except ValueError:
        typmod = -1
    if typmod >= 4:
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        if 1 <= precision <= 38 and 0 <= scale <= precision:
            return pa.decimal128(precision, scale)
        if 38 < precision <= 76 and 0 <= scale <= precision:
            return pa.decimal256(precision, scale)
    return UNCONSTRAINED_DECIMAL


def _numeric_text(array: pa.Array) -> pa.Array:
    """The values' text as PostgreSQL writes it (ADBC says nan/inf for NaN/Infinity)."""
    text = array.storage if isinstance(array.type, pa.BaseExtensionType) else array
    text = pc.cast(text, pa.string())
    return pc.replace_substring_regex(
        pc.replace_substring_regex(text, pattern="^nan$", replacement="NaN"),
        pattern="^(-?)inf$",
        replacement="\\1Infinity",
    )


def decimal_array(name: str, array: pa.Array, target: pa.DataType) -> pa.Array:
    """`array` (numeric text) as `target`: Arrow's exact cast, or value by value where
    the cast refuses (more digits after the point than an unconstrained numeric's scale
    keeps: rounded; NaN, infinities, too many digits before the point: refused)."""
    text = _numeric_text(array)
    try:
        return pc.cast(text, target)
    except pa.ArrowInvalid:
        pass
    quantum = Decimal(1).scaleb(-target.scale)
    limit = Decimal(10) ** (target.precision - target.scale)
    values = []
    for value in text.to_pylist():
        if value is None:
            values.append(None)
            continue
        number = Decimal(value)
        if not number.is_finite() or abs(number) >= limit:
            raise ReadRefused(
                400,
                f"Column {name!r} holds {value}, which a decimal({target.precision},"
                f"{target.scale}) cannot hold: read it as CSV or JSON, which keep every "
                "value as it is, or filter those rows out.",
            )
        try:
            values.append(number.quantize(quantum, context=_DECIMAL_CONTEXT))
        except InvalidOperation:  # pragma: no cover - excluded by the limit above
            raise ReadRefused(400, f"Column {name!r} holds {value}: too many digits.") from None
    return pa.array(values, target)


def arrow_decimals(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with every PostgreSQL numeric column as an Arrow decimal (Arrow, Parquet)."""
    if not any(_numeric_field(f) for f in batch.schema):
        return batch
    fields, arrays = [], []
    for field_, array in zip(batch.schema, batch.columns, strict=True):
        if _numeric_field(field_):
            target = numeric_decimal_type(field_)
            array = decimal_array(field_.name, array, target)
            field_ = pa.field(field_.name, target, nullable=True)
        fields.append(field_)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def text_numerics(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with every PostgreSQL numeric column as its exact text (CSV)."""
    return _columns_as_text(batch, _numeric_field, _numeric_text)


def _columns_as_text(batch: pa.RecordBatch, which, text) -> pa.RecordBatch:
    """`batch` with each column whose field `which` picks replaced by `text(array)`."""
    if not any(which(f) for f in batch.schema):
        return batch
    fields, arrays = [], []
    for field_, array in zip(batch.schema, batch.columns, strict=True):
        if which(field_):
            array = text(array)
            field_ = pa.field(field_.name, pa.string(), nullable=True)
        fields.append(field_)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _utc_timestamp_field(field_: pa.Field) -> bool:
    return pa.types.is_timestamp(field_.type) and field_.type.tz == "UTC"


def _utc_timestamp_text(array: pa.Array) -> pa.Array:
    """A UTC timestamp column as the text Arrow's CSV writer gives it
    ('2026-12-01 08:00:00.000000Z'), about ten times faster: the writer looks the zone up
    for every value (1.1 s per 1,000,000), the zone-less cast does not (tests compare
    both, byte for byte)."""
    naive = array.cast(pa.timestamp(array.type.unit))
    return pc.binary_join_element_wise(pc.cast(naive, pa.string()), "Z", "")


# Types whose Arrow CSV text PostgreSQL's COPY reads back as the same value: numbers
# (NaN and infinities as nan / inf, which float8 accepts), text, booleans, decimals, and
# timestamps (UTC, with a Z) and dates.
_COPY_TYPES = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_boolean,
    pa.types.is_decimal,
    pa.types.is_timestamp,
    pa.types.is_date,
)


def copy_csv(batch: pa.RecordBatch) -> bytes | None:
    """`batch` as CSV for PostgreSQL's `COPY ... (FORMAT csv)`: text quoted (the empty
    text as ""), a NULL as nothing, numerics as their exact text; no header. None when a
    column has a type this text does not carry exactly (the caller writes its values one
    by one instead)."""
    import pyarrow.csv as pa_csv  # lazy: only where a batch is copied (a sync run)

    batch = _columns_as_text(text_numerics(batch), _utc_timestamp_field, _utc_timestamp_text)
    for field_ in batch.schema:
        if _numeric_field(field_) or not any(test(field_.type) for test in _COPY_TYPES):
            return None
    sink = io.BytesIO()
    pa_csv.write_csv(batch, sink, pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()


def python_columns(batch: pa.RecordBatch) -> list[list]:
    """The batch's columns as Python values, a PostgreSQL numeric as an exact Decimal
    (NaN and infinities included: JSON and XLSX write them as text)."""
    columns = []
    for field_, array in zip(batch.schema, batch.columns, strict=True):
        if _numeric_field(field_):
            columns.append(
                [None if v is None else Decimal(v) for v in _numeric_text(array).to_pylist()]
            )
        else:
            columns.append(array.to_pylist())
    return columns


_INTEGER_TYPES = {  # (bytes, unsigned) -> Arrow type
    (1, False): pa.int8(),
    (2, False): pa.int16(),
    (4, False): pa.int32(),
    (8, False): pa.int64(),
    (1, True): pa.uint8(),
    (2, True): pa.uint16(),
    (4, True): pa.uint32(),
    (8, True): pa.uint64(),
}
_FLOAT_TYPES = {2: pa.float16(), 4: pa.float32(), 8: pa.float64()}
HUGE_INTEGER = pa.decimal128(38, 0)  # DuckDB's HUGEINT and UHUGEINT in Arrow


def declared_arrow_type(data_type: str) -> pa.DataType:
    """The Arrow type a column of this declared type (read by
    products.connectors.column_types) is served as: the schema of an Arrow or Parquet read
    with no rows, whose types the source's batches cannot tell. Anything else is text."""
    declared = column_types.column_type(data_type)
    kind = declared.kind
    if kind == column_types.DECIMAL:
        precision, scale = declared.precision, declared.scale
        if precision is None or scale is None or scale < 0:
            return UNCONSTRAINED_DECIMAL
        if 1 <= precision <= 38 and scale <= precision:
            return pa.decimal128(precision, scale)
        if 38 < precision <= 76 and scale <= precision:
            return pa.decimal256(precision, scale)
        return UNCONSTRAINED_DECIMAL
    if kind == column_types.INTEGER:
        return _INTEGER_TYPES.get((declared.size, declared.unsigned), HUGE_INTEGER)
    if kind == column_types.FLOAT:
        return _FLOAT_TYPES[declared.size]
    if kind == column_types.BOOLEAN_KIND:
        return pa.bool_()
    if kind == column_types.DATE:
        return pa.date32()
    if kind == column_types.TIMESTAMPTZ:
        return pa.timestamp(declared.unit or "us", tz="UTC")
    if kind == column_types.TIMESTAMP:
        return pa.timestamp(declared.unit or "us")
    if kind == column_types.TIME:
        return pa.time64(declared.unit if declared.unit in ("us", "ns") else "us")
    return pa.string()


# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = "^[=+\\-@\t\r]"


def neutralise_formula(text: str) -> str:
    """`text` with a `'` in front when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def neutralise_formulas(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with every text cell that starts like a formula prefixed with `'`."""
    arrays = []
    for array in batch.columns:
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            risky = pc.fill_null(pc.match_substring_regex(array, _FORMULA_PATTERN), False)
            array = pc.if_else(risky, pc.binary_join_element_wise("'", array, ""), array)
        arrays.append(array)
    schema = pa.schema(
        [f.with_name(neutralise_formula(f.name)) for f in batch.schema], batch.schema.metadata
    )
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
