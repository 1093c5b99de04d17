"""The one reading of a declared column type (products.connectors.column_types): every
spelling a source gives (PostgreSQL, DuckDB, Spark, Arrow and Parquet), with sizes,
precisions, arrays and time zones, and what the three rules built on it make of it:
the family checks compare by, the value a filter binds, the Arrow type of an empty read."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pytest

from products.connectors.column_types import (
    ColumnType,
    column_type,
    is_single_precision,
    numeric_kind,
    temporal_kind,
    type_family,
    typed_value,
)
from sharing.access.filters import FilterError, clauses_typed, parse_filter, value_converter
from sharing.serving.arrow_values import declared_arrow_type

READS = [
    # decimals: precision and scale, unconstrained, every engine's spelling
    ("numeric(12,2)", ColumnType("decimal", "numeric", precision=12, scale=2)),
    ("NUMERIC ( 12 , 2 )", ColumnType("decimal", "numeric", precision=12, scale=2)),
    ("numeric", ColumnType("decimal", "numeric")),
    ("DECIMAL(38,0)", ColumnType("decimal", "decimal", precision=38, scale=0)),
    ("dec(5)", ColumnType("decimal", "dec", precision=5, scale=0)),
    ("decimal128(12, 2)", ColumnType("decimal", "decimal128", precision=12, scale=2)),
    ("decimal256(50,3)", ColumnType("decimal", "decimal256", precision=50, scale=3)),
    # integers: bytes (int8 is PostgreSQL's and DuckDB's 8-byte integer), unsigned
    ("integer", ColumnType("integer", "integer", size=4)),
    ("int8", ColumnType("integer", "int8", size=8)),
    ("INT64", ColumnType("integer", "int64", size=8)),
    ("TINYINT", ColumnType("integer", "tinyint", size=1)),
    ("HUGEINT", ColumnType("integer", "hugeint", size=16)),
    ("UBIGINT", ColumnType("integer", "ubigint", size=8, unsigned=True)),
    ("uint8", ColumnType("integer", "uint8", size=1, unsigned=True)),
    ("bigserial", ColumnType("integer", "bigserial", size=8)),
    # floats: PostgreSQL's float(p) by its binary digits; DuckDB's FLOAT is 4 bytes
    ("double precision", ColumnType("float", "double precision", size=8)),
    ("DOUBLE", ColumnType("float", "double", size=8)),
    ("FLOAT", ColumnType("float", "float", size=4)),
    ("float(24)", ColumnType("float", "float", size=4)),
    ("float(53)", ColumnType("float", "float", size=8)),
    ("real", ColumnType("float", "real", size=4)),
    ("float32", ColumnType("float", "float32", size=4)),
    # text, whatever its length, schema or collation behaviour
    ("character varying(20)", ColumnType("text", "character varying")),
    ("VARCHAR", ColumnType("text", "varchar")),
    ("bpchar", ColumnType("text", "bpchar")),
    ("citext", ColumnType("text", "citext")),
    ("public.citext", ColumnType("text", "citext")),
    ("name", ColumnType("text", "name")),
    ("large_string", ColumnType("text", "large_string")),
    ("boolean", ColumnType("boolean", "boolean")),
    ("BOOL", ColumnType("boolean", "bool")),
    # dates, times, timestamps: time zones, precisions and units
    ("date", ColumnType("date", "date")),
    ("date32[day]", ColumnType("date", "date32")),
    ("time", ColumnType("time", "time")),
    ("time(3) without time zone", ColumnType("time", "time without time zone")),
    ("time with time zone", ColumnType("timetz", "time with time zone")),
    ("TIMETZ", ColumnType("timetz", "timetz")),
    ("time64[us]", ColumnType("time", "time64", unit="us")),
    ("timestamp with time zone", ColumnType("timestamptz", "timestamp with time zone")),
    ("timestamp(3) with time zone", ColumnType("timestamptz", "timestamp with time zone")),
    ("TIMESTAMP  WITH\tTIME ZONE", ColumnType("timestamptz", "timestamp with time zone")),
    ("timestamptz", ColumnType("timestamptz", "timestamptz")),
    ("timestamp(6) without time zone", ColumnType("timestamp", "timestamp without time zone")),
    ("TIMESTAMP_NS", ColumnType("timestamp", "timestamp_ns", unit="ns")),
    ("timestamp_ntz", ColumnType("timestamp", "timestamp_ntz")),
    ("timestamp[us, tz=UTC]", ColumnType("timestamptz", "timestamp", unit="us")),
    ("timestamp[ms]", ColumnType("timestamp", "timestamp", unit="ms")),
    ("datetime", ColumnType("timestamp", "datetime")),
    # the rest
    ("uuid", ColumnType("uuid", "uuid")),
    ("interval", ColumnType("interval", "interval")),
    ("interval day to second", ColumnType("interval", "interval day to second")),
    ("jsonb", ColumnType("other", "jsonb")),
    ("STRUCT(a INTEGER, b VARCHAR)", ColumnType("other", "struct")),
    ("ENUM('a', 'b')", ColumnType("other", "enum")),
    ('"MyType"', ColumnType("other", '"mytype"')),
    ("", ColumnType("other", "")),
]


@pytest.mark.parametrize(("declared", "expected"), READS, ids=[r[0] or "empty" for r in READS])
def test_every_spelling_reads_as_its_type(declared, expected):
    assert column_type(declared) == expected


@pytest.mark.parametrize(
    ("declared", "element"),
    [
        ("integer[]", "integer"),
        ("INTEGER[3]", "integer"),
        ("text[][]", "text"),
        ("character varying(20)[]", "text"),
        ("timestamp with time zone[]", "timestamptz"),
        ("DECIMAL(12,2)[]", "decimal"),
        ("array<int>", "integer"),
        ("list<item: int64>", "integer"),
        ("fixed_size_list<item: double>[3]", "float"),
    ],
)
def test_arrays_are_arrays_of_their_element_never_the_element(declared, element):
    read = column_type(declared)
    assert read.kind == "array" and read.element.kind == element
    assert type_family(declared) == "other"
    assert value_converter(declared) is None  # a filter value is compared as given
    assert declared_arrow_type(declared) == pa.string()


@pytest.mark.parametrize(
    ("declared", "family", "number", "temporal"),
    [
        ("numeric(12,2)", "numeric", "decimal", None),
        ("BIGINT", "numeric", "integer", None),
        ("float8", "numeric", "float", None),
        ("character varying(20)", "text", None, None),
        ("boolean", "boolean", None, None),
        ("date", "temporal", None, "date"),
        ("timestamp(3) with time zone", "temporal", None, "timestamptz"),
        ("TIMESTAMP_NS", "temporal", None, "timestamp"),
        # Compared as their text by checks, as before: a time of day, and text whose
        # own comparison is not its exact text (citext ignores case).
        ("time", "other", None, None),
        ("time with time zone", "other", None, None),
        ("citext", "other", None, None),
        ("name", "other", None, None),
        ("uuid", "other", None, None),
        ("interval", "other", None, None),
    ],
)
def test_checks_compare_by_family(declared, family, number, temporal):
    assert type_family(declared) == family
    assert numeric_kind(declared) == number
    assert temporal_kind(declared) == temporal


def test_single_precision_is_a_four_byte_float_whatever_its_spelling():
    assert [is_single_precision(t) for t in ("real", "FLOAT", "float4", "float(10)")] == [True] * 4
    assert not any(is_single_precision(t) for t in ("double precision", "float(53)", "numeric"))


def test_listed_values_fit_the_declared_decimal_whatever_its_spelling():
    assert typed_value("5", "NUMERIC ( 12 , 2 )") == Decimal("5")
    assert typed_value("5.25", "decimal128(12, 2)") == Decimal("5.25")
    with pytest.raises(ValueError, match="2 after the point"):
        typed_value("5.125", "numeric(12,2)")
    with pytest.raises(ValueError, match="does not fit"):
        typed_value("12345", "dec(5,2)")
    # A negative scale (PostgreSQL 15) names no digit count here: the database decides.
    assert typed_value("500", "numeric(5,-2)") == Decimal("500")


@pytest.mark.parametrize(
    ("declared", "value", "bound"),
    [
        ("bigint", "42", 42),
        ("INT64", 7.0, 7),
        ("numeric(12,2)", "1.50", Decimal("1.50")),
        ("dec", 2, Decimal(2)),
        ("DOUBLE", "0.5", 0.5),
        ("boolean", "TRUE", True),
        ("date", "2024-02-29", date(2024, 2, 29)),
        ("time(3) with time zone", "12:30", time(12, 30)),
        ("TIME", "08:00:01", time(8, 0, 1)),
        ("timestamp(3) with time zone", "2024-01-01T10:00:00+01:00", None),
        ("TIMESTAMP_NS", "2024-01-01 10:00", datetime(2024, 1, 1, 10, 0)),
        ("citext", 5, "5"),
        ("name", "pg_class", "pg_class"),
        ("nvarchar(10)", "x", "x"),
    ],
)
def test_filters_bind_values_of_the_declared_type(declared, value, bound):
    [clause] = clauses_typed(
        parse_filter([{"column": "c", "op": "=", "value": value}]), {"c": declared}
    )
    if bound is None:
        assert isinstance(clause.value, datetime) and clause.value.utcoffset() is not None
    else:
        assert clause.value == bound and type(clause.value) is type(bound)


@pytest.mark.parametrize(
    ("declared", "value"),
    [("UBIGINT", "many"), ("dec(5)", "x"), ("time", "noon"), ("timestamptz", "yesterday")],
)
def test_filters_refuse_values_that_do_not_fit_naming_the_declared_type(declared, value):
    with pytest.raises(FilterError, match=re.escape(f"({declared}); {value!r}")):
        clauses_typed(parse_filter([{"column": "c", "op": "=", "value": value}]), {"c": declared})


@pytest.mark.parametrize("declared", ["uuid", "interval", "jsonb", "ENUM('a')", "integer[]", ""])
def test_filters_pass_other_types_as_given(declared):
    [clause] = clauses_typed(
        parse_filter([{"column": "c", "op": "=", "value": "v"}]), {"c": declared}
    )
    assert clause.value == "v"


@pytest.mark.parametrize(
    ("declared", "arrow"),
    [
        ("numeric(12,2)", pa.decimal128(12, 2)),
        ("NUMERIC(50, 4)", pa.decimal256(50, 4)),
        ("numeric", pa.decimal128(38, 18)),
        ("numeric(80,2)", pa.decimal128(38, 18)),
        ("numeric(5,-2)", pa.decimal128(38, 18)),
        ("DECIMAL(18,3)", pa.decimal128(18, 3)),
        ("smallint", pa.int16()),
        ("int8", pa.int64()),
        ("INTEGER", pa.int32()),
        ("UTINYINT", pa.uint8()),
        ("HUGEINT", pa.decimal128(38, 0)),
        ("real", pa.float32()),
        ("FLOAT", pa.float32()),
        ("double precision", pa.float64()),
        ("boolean", pa.bool_()),
        ("date", pa.date32()),
        ("timestamp with time zone", pa.timestamp("us", tz="UTC")),
        ("timestamp(3) with time zone", pa.timestamp("us", tz="UTC")),
        ("timestamp without time zone", pa.timestamp("us")),
        ("TIMESTAMP_NS", pa.timestamp("ns")),
        ("time", pa.time64("us")),
        ("text", pa.string()),
        ("citext", pa.string()),
        ("uuid", pa.string()),
        ("interval", pa.string()),
        ("STRUCT(a INTEGER)", pa.string()),
    ],
)
def test_an_empty_read_declares_the_arrow_type_a_full_one_has(declared, arrow):
    assert declared_arrow_type(declared) == arrow
