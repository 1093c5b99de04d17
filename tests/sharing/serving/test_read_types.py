"""Types survive every read channel, on a PostgreSQL table (numeric with and without a
scale, timestamptz, date, boolean, bigint, text, NULLs; tests/typed_tables.py): the data
API in every format, the Data tab's preview, the notebook client (with the portal's
pandas/pyarrow and with pandas 2.2 / pyarrow 17), scheduled export files, share links
and Delta Sharing's Parquet files. Values are compared with what PostgreSQL holds."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.storage import default_storage
from knox.models import AuthToken

from portal_client import Portal
from sharing.choices import ExportStatus
from sharing.delta_sharing.protocol import ProtocolError, table_query
from sharing.delta_sharing.services import (
    delta_recipient_create,
    delta_share_create,
    delta_share_table_add,
)
from sharing.exports.services.schedules import export_schedule_create
from sharing.share_links.services import share_link_create
from tests.conftest import require_service
from tests.factories import export_run_now
from tests.sharing.serving.typed_tables import COLUMNS, EXPECTED, SCHEMA, TABLE, typed_product

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[3]
COMPAT_PYTHON = ROOT / "var" / "client-compat" / "bin" / "python"
API = "/api/v1/products/sales.readings/data/"
PAGE = "/products/sales/readings/data/"

ARROW_TYPES = {
    "id": pa.int64(),
    "label": pa.string(),
    "amount": pa.decimal128(12, 2),
    "ratio": pa.decimal128(38, 18),  # an unconstrained numeric: the documented rule
    "at": pa.timestamp("us", tz="UTC"),
    "day": pa.date32(),
    "ok": pa.bool_(),
    "big": pa.int64(),
}
# The JSON reads: numbers as numbers (a decimal a double cannot keep as text), ISO 8601.
JSON_ROWS = [
    {
        "id": 1,
        "label": "Gent",
        "amount": 5.0,
        "ratio": 1.5,
        "at": "2026-03-01T10:00:00+00:00",
        "day": "2026-03-05",
        "ok": True,
        "big": 9007199254740993,
    },
    {
        "id": 2,
        "label": "=1+1",
        "amount": -12.5,
        "ratio": 0.1,
        "at": "2026-03-02T11:30:00.250000+00:00",
        "day": None,
        "ok": False,
        "big": -1,
    },
    {
        "id": 3,
        "label": None,
        "amount": None,
        "ratio": "12345678901234567.89",
        "at": None,
        "day": "2026-03-09",
        "ok": None,
        "big": None,
    },
]


def _arrow_rows(table: pa.Table) -> list[dict]:
    """Rows with each decimal compared by value and scale as the column's type gives."""
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def _expected_arrow_rows() -> list[dict]:
    rows = []
    for row in EXPECTED:
        row = dict(row)
        if row["ratio"] is not None:
            row["ratio"] = row["ratio"].quantize(Decimal("1e-18"), context=Context(prec=38))
        rows.append(row)
    return rows


def _assert_arrow(table: pa.Table) -> None:
    assert {f.name: f.type for f in table.schema} == ARROW_TYPES
    rows = _arrow_rows(table)
    assert rows == _expected_arrow_rows()
    assert str(rows[0]["amount"]) == "5.00"  # the column's scale, exactly


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- the data API ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_arrow_and_parquet_reads_carry_decimals(client, readings, owner, fmt):
    client.force_login(owner)
    response = client.get(API, {"format": fmt})
    assert response.status_code == 200
    data = _body(response)
    table = (
        pq.read_table(io.BytesIO(data)) if fmt == "parquet" else pa.ipc.open_stream(data).read_all()
    )
    _assert_arrow(table)
    if fmt == "parquet":
        schema = pq.ParquetFile(io.BytesIO(data)).schema
        amount = schema.column(COLUMNS.index("amount"))
        assert (amount.logical_type.type, amount.precision, amount.scale) == ("DECIMAL", 12, 2)


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_a_read_without_rows_keeps_the_declared_types(client, readings, owner, fmt):
    client.force_login(owner)
    nothing = json.dumps([{"column": "id", "op": "=", "value": 999}])
    response = client.get(API, {"format": fmt, "filter": nothing})
    assert response.status_code == 200
    data = _body(response)
    table = (
        pq.read_table(io.BytesIO(data)) if fmt == "parquet" else pa.ipc.open_stream(data).read_all()
    )
    assert table.num_rows == 0
    assert {f.name: f.type for f in table.schema} == ARROW_TYPES


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_reads_give_numbers_iso_timestamps_and_null(client, readings, owner, fmt):
    client.force_login(owner)
    response = client.get(API, {"format": fmt})
    assert response.status_code == 200
    text = _body(response).decode()
    rows = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    assert sorted(rows, key=lambda row: row["id"]) == JSON_ROWS
    # Written as numbers, not strings; a bigint beyond 2**53 keeps every digit.
    assert '"amount": 5.0' in text or '"amount":5.0' in text
    assert "9007199254740993" in text and '"9007199254740993"' not in text
    # Exactly what PostgreSQL holds, for a reader parsing decimals exactly.
    exact = (
        json.loads(text, parse_float=Decimal)
        if fmt == "json"
        else [json.loads(line, parse_float=Decimal) for line in text.splitlines()]
    )
    by_id = {row["id"]: row for row in exact}
    for row in EXPECTED:
        value = by_id[row["id"]]["amount"]
        assert (None if value is None else Decimal(value)) == row["amount"]
        assert Decimal(by_id[row["id"]]["ratio"]) == row["ratio"]


def test_csv_read_keeps_postgresql_text(client, readings, owner):
    client.force_login(owner)
    response = client.get(API, {"format": "csv"})
    assert response.status_code == 200
    frame = pd.read_csv(io.BytesIO(_body(response)), dtype=str, keep_default_na=False)
    rows = sorted(frame.to_dict("records"), key=lambda row: int(row["id"]))
    assert [row["amount"] for row in rows] == ["5.00", "-12.50", ""]
    assert [row["ratio"] for row in rows] == ["1.5", "0.1", "12345678901234567.89"]
    assert [row["label"] for row in rows] == ["Gent", "=1+1", ""]  # as it is: no prefix
    assert [row["big"] for row in rows] == ["9007199254740993", "-1", ""]
    assert [row["ok"] for row in rows][:2] == ["t", "f"]  # PostgreSQL's own text


def test_the_data_tab_previews_exact_values(client, readings, owner):
    client.force_login(owner)
    response = client.get(PAGE)
    assert response.status_code == 200
    columns = [column["name"] for column in response.context["columns"]]
    assert columns == COLUMNS
    rows = sorted(
        (dict(zip(columns, row, strict=True)) for row in response.context["rows"]),
        key=lambda row: row["id"],
    )
    assert rows == EXPECTED
    assert all(type(row["amount"]) is Decimal for row in rows if row["amount"] is not None)
    html = response.content.decode()
    assert "-12.50" in html and "12345678901234567.89" in html


def test_a_numeric_nan_refuses_an_arrow_read_and_keeps_csv_and_json(
    postgres, domain, owner, client
):
    nan = f"INSERT INTO {SCHEMA}.{TABLE} (id, amount, ratio) VALUES (4, 'NaN', 'NaN')"
    with typed_product(postgres, domain, slug="nans", extra_sql=(nan,)):
        client.force_login(owner)
        api = "/api/v1/products/sales.nans/data/"
        refused = client.get(api, {"format": "parquet"})
        assert refused.status_code == 400
        assert "'amount'" in refused.json()["detail"] and "NaN" in refused.json()["detail"]
        rows = json.loads(_body(client.get(api, {"format": "json"})))
        assert [row["amount"] for row in rows if row["id"] == 4] == ["NaN"]
        text = _body(client.get(api, {"format": "csv"})).decode()
        assert "4,,NaN,NaN" in text


def test_an_unconstrained_numeric_rounds_beyond_18_places_and_refuses_beyond_20_digits(
    postgres, domain, owner, client
):
    third = f"INSERT INTO {SCHEMA}.{TABLE} (id, ratio) VALUES (4, 1::numeric / 3)"
    with typed_product(postgres, domain, slug="thirds", extra_sql=(third,)):
        client.force_login(owner)
        api = "/api/v1/products/sales.thirds/data/"
        table = pq.read_table(io.BytesIO(_body(client.get(api, {"format": "parquet"}))))
        ratios = dict(zip(table["id"].to_pylist(), table["ratio"].to_pylist(), strict=True))
        assert ratios[4] == Decimal("0.333333333333333333")  # PostgreSQL: 20 threes
        rows = json.loads(_body(client.get(api, {"format": "json"})), parse_float=Decimal)
        # JSON keeps PostgreSQL's own digits (as a string: a double would lose them).
        assert [row["ratio"] for row in rows if row["id"] == 4] == ["0.33333333333333333333"]
    huge = f"INSERT INTO {SCHEMA}.{TABLE} (id, ratio) VALUES (4, 1e21)"
    with typed_product(postgres, domain, slug="huge", extra_sql=(huge,)):
        refused = client.get("/api/v1/products/sales.huge/data/", {"format": "arrow"})
        assert refused.status_code == 400
        assert "decimal(38,18)" in refused.json()["detail"]


# --- the notebook client -------------------------------------------------------------------


def _token(user) -> str:
    return AuthToken.objects.create(user)[1]


def _assert_frame(frame: pd.DataFrame) -> None:
    frame = frame.sort_values("id").reset_index(drop=True)
    assert str(frame["amount"].dtype) == "float64"
    assert str(frame["ratio"].dtype) == "float64"
    assert frame["amount"].tolist()[:2] == [5.0, -12.5] and math.isnan(frame["amount"][2])
    assert frame["ratio"].tolist() == [1.5, 0.1, 12345678901234567.89]
    assert str(frame["at"].dtype).startswith("datetime64[") and "UTC" in str(frame["at"].dtype)
    assert frame["at"][0] == pd.Timestamp("2026-03-01T10:00:00Z")
    assert frame["id"].tolist() == [1, 2, 3]
    # A bigint with a NULL is float64 in pandas (NaN for the NULL); without, int64.
    assert str(frame["big"].dtype) == "float64" and math.isnan(frame["big"][2])
    assert frame["ok"].tolist()[:2] == [True, False]
    assert frame["label"].tolist()[:2] == ["Gent", "=1+1"]
    assert frame["day"].tolist()[0] == date(2026, 3, 5)


def test_the_notebook_client_reads_decimals_as_numbers(live_server, readings, owner):
    portal = Portal(url=live_server.url, token=_token(owner))
    _assert_frame(portal.read("sales.readings"))
    exact = portal.read("sales.readings", decimals="decimal").sort_values("id")
    assert exact["amount"].tolist()[:2] == [Decimal("5.00"), Decimal("-12.50")]
    assert portal.read_arrow("sales.readings").schema.field("amount").type == pa.decimal128(12, 2)
    whole = portal.read("sales.readings", filters=[("big", "is not null")]).sort_values("id")
    assert str(whole["big"].dtype) == "int64"
    assert whole["big"].tolist() == [9007199254740993, -1]  # every digit of a bigint
    with pytest.raises(ValueError, match="decimals"):
        portal.read("sales.readings", decimals="double")


COMPAT_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])  # the client of this checkout
import pandas, pyarrow
from portal_client import Portal
frame = Portal(url=sys.argv[2], token=sys.argv[3]).read("sales.readings")
frame = frame.sort_values("id").reset_index(drop=True)
print(json.dumps({
    "versions": [pandas.__version__, pyarrow.__version__],
    "dtypes": {name: str(dtype) for name, dtype in frame.dtypes.items()},
    "amount": [None if v != v else v for v in frame["amount"].tolist()],
    "ratio": frame["ratio"].tolist(),
    "at": [None if v is pandas.NaT else v.isoformat() for v in frame["at"]],
    "big": str(frame["big"].dtype),
    "whole": Portal(url=sys.argv[2], token=sys.argv[3]).read(
        "sales.readings", filters=[("big", "is not null")]
    ).sort_values("id")["big"].tolist(),
}))
"""


def test_the_notebook_client_works_with_pandas_2_2_and_pyarrow_17(live_server, readings, owner):
    if not COMPAT_PYTHON.exists():
        require_service("the client-compat virtualenv", "run `make client-compat`")
    completed = subprocess.run(
        [str(COMPAT_PYTHON), "-c", COMPAT_SCRIPT, str(ROOT), live_server.url, _token(owner)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    pandas_version, pyarrow_version = result["versions"]
    assert pandas_version.startswith("2.2.") and pyarrow_version.startswith("17.")
    assert result["dtypes"]["amount"] == "float64" and result["dtypes"]["ratio"] == "float64"
    assert result["amount"] == [5.0, -12.5, None]
    assert result["ratio"] == [1.5, 0.1, 12345678901234567.89]
    assert result["at"][:2] == ["2026-03-01T10:00:00+00:00", "2026-03-02T11:30:00.250000+00:00"]
    assert result["big"] == "float64"  # with its NULL
    assert result["whole"] == [9007199254740993, -1]
    assert sys.executable != str(COMPAT_PYTHON)  # truly another interpreter


# --- export files, share links, Delta Sharing ---------------------------------------------


def _export(product, owner, fmt: str) -> bytes:
    schedule = export_schedule_create(
        product=product, by=owner, name=f"types {fmt}", cron="0 6 * * *", format=fmt
    )
    run = export_run_now(schedule=schedule, by=owner)
    assert run.status == ExportStatus.SUCCEEDED, run.error
    with default_storage.open(run.file_name, "rb") as handle:
        return handle.read()


def test_export_files_keep_the_types(readings, owner):
    _assert_arrow(pq.read_table(io.BytesIO(_export(readings, owner, "parquet"))))

    frame = pd.read_csv(io.BytesIO(_export(readings, owner, "csv")), dtype=str)
    assert frame.sort_values("id")["amount"].tolist()[:2] == ["5.00", "-12.50"]

    sheet = openpyxl.load_workbook(io.BytesIO(_export(readings, owner, "xlsx"))).active
    header = [cell.value for cell in sheet[1]]
    assert header == COLUMNS
    rows = {
        row[0].value: {n: c for n, c in zip(header, row, strict=True)}
        for row in sheet.iter_rows(min_row=2)
    }
    first, second = rows[1], rows[2]
    assert (first["amount"].data_type, first["amount"].value) == ("n", 5)
    assert (second["amount"].data_type, second["amount"].value) == ("n", -12.5)
    assert (first["big"].data_type, first["ok"].data_type) == ("n", "b")
    assert first["ok"].value is True and second["ok"].value is False
    assert first["at"].value == datetime(2026, 3, 1, 10, 0)  # UTC, as a sheet holds no zone
    assert first["day"].value == datetime(2026, 3, 5) and first["day"].number_format == "yyyy-mm-dd"
    assert (second["label"].data_type, second["label"].value) == ("s", "=1+1")
    assert rows[3]["amount"].value is None and rows[3]["label"].value is None


def test_a_share_link_serves_decimals(client, readings, owner):
    _, token = share_link_create(by=owner, product=readings, format="parquet")
    response = client.get(f"/s/{token}/download")
    assert response.status_code == 200
    _assert_arrow(pq.read_table(io.BytesIO(_body(response))))


def test_delta_sharing_files_carry_decimals(readings, owner):
    share = delta_share_create(by=owner, name="types")
    table = delta_share_table_add(share=share, by=owner, product=readings, schema="ops")
    recipient, _ = delta_recipient_create(share=share, by=owner, name="Acme")
    _, files = table_query(table=table, recipient=recipient, body={}, client_address=None)
    fields = {f["name"]: f["type"] for f in files.schema["fields"]}
    assert fields == {
        "id": "long",
        "label": "string",
        "amount": "decimal(12,2)",
        "ratio": "decimal(38,18)",
        "at": "timestamp",
        "day": "date",
        "ok": "boolean",
        "big": "long",
    }
    parts = [pq.read_table(files.directory / part["name"]) for part in files.files]
    _assert_arrow(pa.concat_tables(parts))
    assert files.rows == 3


def test_delta_sharing_refuses_a_numeric_nan_saying_why(postgres, domain, owner):
    nan = f"INSERT INTO {SCHEMA}.{TABLE} (id, amount) VALUES (4, 'NaN')"
    with typed_product(postgres, domain, slug="nans", extra_sql=(nan,)) as product:
        share = delta_share_create(by=owner, name="nans")
        table = delta_share_table_add(share=share, by=owner, product=product, schema="ops")
        recipient, _ = delta_recipient_create(share=share, by=owner, name="Acme")
        with pytest.raises(ProtocolError) as refused:
            table_query(table=table, recipient=recipient, body={}, client_address=None)
        assert refused.value.status == 400
        assert "'amount'" in refused.value.message and "NaN" in refused.value.message


def test_expected_rows_are_what_postgresql_holds(readings, postgres):
    """The fixture's expectations are PostgreSQL's own values (read with psycopg)."""
    with postgres.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute(f"SELECT {', '.join(COLUMNS)} FROM {SCHEMA}.{TABLE} ORDER BY id")
        held = [dict(zip(COLUMNS, row, strict=True)) for row in cur.fetchall()]
    for row in held:
        if row["at"] is not None:
            row["at"] = row["at"].astimezone(UTC)
    assert held == EXPECTED
