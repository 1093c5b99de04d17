"""What the scheduled-export tests share: a product with a Parquet source, grants, and
reading an export's file back with pyarrow or pandas."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.core.files.storage import default_storage
from django.utils import timezone

from sharing.models import AccessGrant, ExportRun
from tests.factories import parquet_product

ROWS = {
    "order_id": [1, 2, 3, 4, 5, 6],
    "country": ["BE", "NL", "BE", "FR", "NL", "BE"],
    "email": ["a@x", "b@x", None, "d@x", "e@x", "f@x"],
    "amount": [10.5, 20.0, 30.25, 40.0, 50.0, 60.75],
}


def orders_product(*, domain, media_root):
    """sales.orders: a Parquet file port; `email` is confidential (masked for grantees
    whose grant does not name it)."""
    return parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="export-src/orders.parquet"
    )


def grant(product, user, **fields) -> AccessGrant:
    return AccessGrant.objects.create(
        product=product, user=user, expires_at=timezone.now() + timedelta(days=30), **fields
    )


def read_back(run: ExportRun) -> dict[str, list]:
    """The run's file, read with pyarrow (CSV, Parquet, JSON lines) or pandas (XLSX), as
    column -> values."""
    fmt = run.detail["written"]["format"]
    with default_storage.open(run.file_name, "rb") as handle:
        data = handle.read()
    if fmt == "csv":
        options = pa_csv.ConvertOptions(strings_can_be_null=True)
        return pa_csv.read_csv(io.BytesIO(data), convert_options=options).to_pydict()
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data)).to_pydict()
    if fmt == "jsonl":
        rows = [json.loads(line) for line in data.decode().splitlines()]
        names = run.detail["written"]["columns"]
        return {name: [row[name] for row in rows] for name in names}
    if fmt == "xlsx":
        import pandas as pd

        frame = pd.read_excel(io.BytesIO(data), engine="openpyxl")
        return {
            name: [None if pd.isna(v) else v for v in frame[name].tolist()]
            for name in frame.columns
        }
    raise AssertionError(fmt)


def files_of(schedule_id: int) -> list[Path]:
    folder = Path(default_storage.path(f"exports/{schedule_id}"))
    return sorted(folder.iterdir()) if folder.is_dir() else []


def table_of(rows: dict) -> pa.Table:
    return pa.table(rows)
