"""copy_csv: an Arrow batch as the CSV PostgreSQL's COPY reads (a sync's table
destinations). UTC timestamps take a faster path than Arrow's CSV writer; its text must be
the writer's, byte for byte."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from sharing.serving.arrow_values import copy_csv

SECONDS = [
    0,
    -1,  # 1969-12-31 23:59:59
    951_782_400,  # 2000-02-29, a leap day
    1_774_746_000,  # 2026-03-29 01:00 UTC, Europe's DST change
    -62_135_596_800,  # 0001-01-01
    253_402_300_799,  # 9999-12-31 23:59:59
    None,
]
SUBSECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def writer_csv(batch: pa.RecordBatch) -> str:
    sink = io.BytesIO()
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    pa_csv.write_csv(batch, sink, options)
    return sink.getvalue().decode()


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_utc_timestamps_are_written_as_the_arrow_csv_writer_writes_them(unit):
    scale = SUBSECOND[unit]
    values = [None if v is None else v * scale for v in SECONDS]
    values += [None if v is None else v * scale - 1 for v in SECONDS]  # a tick before
    if unit == "ns":  # nanoseconds reach only 1677-2262
        values = [v for v in values if v is None or abs(v) < 2**63 - scale]
    batch = pa.record_batch(
        [pa.array(range(len(values))), pa.array(values, pa.timestamp(unit, tz="UTC"))],
        names=["n", "at"],
    )
    ours = copy_csv(batch).decode()
    assert rows(ours) == rows(writer_csv(batch))
    assert "2000-02-29 00:00:00" in ours and "Z" in ours
    null_rows = [line for line in ours.splitlines() if line.endswith(",")]
    assert null_rows and all(line.count('"') == 0 for line in null_rows)  # NULL, not ""


def test_timestamps_in_another_zone_keep_the_writers_local_text_and_offset():
    batch = pa.record_batch(
        [pa.array([0, None], pa.timestamp("us", tz="Europe/Paris"))], names=["at"]
    )
    ours = copy_csv(batch).decode()
    assert ours == writer_csv(batch)
    assert ours.startswith("1970-01-01 01:00:00.000000+0100")
