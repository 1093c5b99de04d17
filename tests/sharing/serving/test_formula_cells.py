"""Formulas stay text. XLSX cells are written by type, so text that looks like a formula
("=1+1", "@SUM(A1)") or a link is a text cell, numbers numbers; CSV keeps values as they
are unless the export or share link opts in to neutralisation (a `'` in front of text
cells starting with = + - @, a tab or a carriage return). Read back with openpyxl and
pandas, through the data API, share links and scheduled export runs, on PostgreSQL (whose
COPY fast path cannot rewrite cells) and on a Parquet file (DuckDB)."""

from __future__ import annotations

import io

import openpyxl
import pandas as pd
import pytest
from django.core.files.storage import default_storage

from sharing.choices import ExportStatus
from sharing.exports.services.schedules import export_schedule_create
from sharing.models import ExportSchedule, ShareLink
from sharing.serving.arrow_values import neutralise_formula
from sharing.share_links.services import share_link_create
from tests.factories import export_run_now, parquet_product

pytestmark = pytest.mark.django_db(transaction=True)

RISKY = ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain", "a=b", "http://example.com"]
NEUTRALISED = [
    "'=1+1",
    "'+1",
    "'-2",
    "'@SUM(A1)",
    "'\tx",
    "'\rx",
    "plain",
    "a=b",
    "http://example.com",
]
ROWS = {
    "n": list(range(1, len(RISKY) + 1)),
    "cell": RISKY,
    "amount": [-1.5, 2.0, -3.25, 4.0, 5.0, -6.0, 7.0, 8.0, 9.0],
}


@pytest.fixture
def cells(domain, media_root):
    """sales.cells: a Parquet file (read by DuckDB) of risky text next to numbers."""
    return parquet_product(
        media_root=media_root,
        domain=domain,
        rows=ROWS,
        file_path="formulas/cells.parquet",
        sensitive=(),
        name="Cells",
        slug="cells",
    )


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _csv(body: bytes) -> pd.DataFrame:
    """The CSV's rows as text, in the order of their first column (n or id)."""
    frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    return frame.sort_values(frame.columns[0], key=lambda column: column.astype(int))


def test_the_rule():
    assert [neutralise_formula(text) for text in RISKY] == NEUTRALISED
    assert neutralise_formula("") == ""


def test_xlsx_writes_formula_text_as_text_and_numbers_as_numbers(client, cells, owner):
    client.force_login(owner)
    response = client.get("/api/v1/products/sales.cells/data/", {"format": "xlsx"})
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(_body(response))).active
    rows = list(sheet.iter_rows(min_row=2))
    # (XLSX stores a carriage return as _x000D_, which Excel shows as one and openpyxl
    # leaves as it is.)
    assert [(row[1].data_type, row[1].value) for row in rows] == [
        ("s", text.replace("\r", "_x000D_")) for text in RISKY
    ]
    assert [(row[2].data_type, row[2].value) for row in rows] == [
        ("n", value) for value in ROWS["amount"]
    ]
    assert all(row[0].data_type == "n" for row in rows)
    assert not any(cell.hyperlink for row in rows for cell in row)


def test_xlsx_of_a_postgresql_table_keeps_formula_text(client, readings, owner):
    client.force_login(owner)
    response = client.get("/api/v1/products/sales.readings/data/", {"format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(_body(response))).active
    labels = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}
    assert (labels[2].data_type, labels[2].value) == ("s", "=1+1")
    amounts = {row[0].value: row[2] for row in sheet.iter_rows(min_row=2)}
    assert (amounts[1].data_type, amounts[1].value) == ("n", 5)


def test_csv_keeps_values_as_they_are_by_default(client, cells, readings, owner):
    client.force_login(owner)
    body = _body(client.get("/api/v1/products/sales.cells/data/", {"format": "csv"}))
    assert _csv(body)["cell"].tolist() == RISKY
    body = _body(client.get("/api/v1/products/sales.readings/data/", {"format": "csv"}))
    assert _csv(body)["label"].tolist()[1] == "=1+1"


@pytest.mark.parametrize("product_key", ["cells", "readings"])
def test_a_share_link_neutralises_formulas_when_asked(client, cells, readings, owner, product_key):
    product = cells if product_key == "cells" else readings
    _, plain = share_link_create(by=owner, product=product, format="csv")
    link, safe = share_link_create(
        by=owner, product=product, format="csv", neutralise_formulas=True
    )
    assert link.neutralise_formulas is True
    as_is = _csv(_body(client.get(f"/s/{plain}/download")))
    neutralised = _csv(_body(client.get(f"/s/{safe}/download")))
    if product_key == "cells":
        assert as_is["cell"].tolist() == RISKY
        assert neutralised["cell"].tolist() == NEUTRALISED
        # Numbers are numbers, negative ones included: never prefixed.
        assert neutralised["amount"].tolist()[0] == "-1.5"
    else:
        # PostgreSQL: the Arrow path instead of COPY, with the same values otherwise.
        assert as_is["label"].tolist() == ["Gent", "=1+1", ""]
        assert neutralised["label"].tolist() == ["Gent", "'=1+1", ""]
        assert neutralised["amount"].tolist() == ["5.00", "-12.50", ""]
        assert neutralised["ratio"].tolist() == as_is["ratio"].tolist()


def _export_csv(product, owner, **fields) -> tuple[ExportSchedule, pd.DataFrame]:
    schedule = export_schedule_create(
        product=product, by=owner, name="csv", cron="0 6 * * *", format="csv", **fields
    )
    run = export_run_now(schedule=schedule, by=owner)
    assert run.status == ExportStatus.SUCCEEDED, run.error
    assert run.detail["written"]["neutralise_formulas"] is schedule.neutralise_formulas
    with default_storage.open(run.file_name, "rb") as handle:
        return schedule, _csv(handle.read())


def test_a_scheduled_export_neutralises_formulas_when_asked(cells, readings, owner):
    _, as_is = _export_csv(cells, owner)
    assert as_is["cell"].tolist() == RISKY
    _, neutralised = _export_csv(cells, owner, neutralise_formulas=True)
    assert neutralised["cell"].tolist() == NEUTRALISED
    _, from_postgres = _export_csv(readings, owner, neutralise_formulas=True)
    assert from_postgres["label"].tolist() == ["Gent", "'=1+1", ""]


def test_the_api_takes_and_shows_the_choice(api_client, cells, owner):
    api_client.force_authenticate(owner)
    response = api_client.post(
        "/api/v1/share-links/",
        {"product": "sales.cells", "format": "csv", "neutralise_formulas": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["neutralise_formulas"] is True
    assert ShareLink.objects.get().neutralise_formulas is True

    response = api_client.post(
        "/api/v1/products/sales.cells/export-schedules/",
        {"name": "Nightly", "cron": "0 6 * * *", "format": "csv", "neutralise_formulas": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["neutralise_formulas"] is True
    schedule = ExportSchedule.objects.get()
    assert schedule.neutralise_formulas is True
    changed = api_client.patch(
        f"/api/v1/export-schedules/{schedule.pk}/", {"neutralise_formulas": False}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["neutralise_formulas"] is False


def test_the_pages_offer_the_choice(client, cells, owner):
    client.force_login(owner)
    share_page = client.get("/products/sales/cells/share/")
    assert 'name="neutralise_formulas"' in share_page.content.decode()
    response = client.post(
        "/products/sales/cells/share/",
        {
            "columns": ["n", "cell", "amount"],
            "format": "csv",
            "expires_in_days": 7,
            "neutralise_formulas": "on",
        },
    )
    assert response.status_code in (201, 302), response.content[:500]
    assert ShareLink.objects.get().neutralise_formulas is True

    new_export = client.get("/products/sales/cells/exports/new/")
    assert 'name="neutralise_formulas"' in new_export.content.decode()
