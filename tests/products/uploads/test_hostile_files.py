"""Hostile files and values (issue 8, part 4).

Uploads through the page and the API of malformed CSV, wrong encodings, 10,000 columns,
Parquet bombs and corrupt footers are refused with a message a person can act on, within
a memory cap, leaving nothing stored (no file under MEDIA_ROOT, no temporary file, no
port, no column). NaN and infinite values are kept as data and served as valid output on
every path: the preview page, the JSON / JSON-lines / XLSX reads, range checks, on file
ports and on PostgreSQL `double precision` columns. Sources wider than PORT_MAX_COLUMNS
are refused by the schema refresh.

Every hostile file is generated here for real (the Parquet bomb in chunks, so this test
stays small in memory).
"""

from __future__ import annotations

import html
import io
import json
import resource
from pathlib import Path

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from products.catalog.services.ports import output_port_create
from products.catalog.services.schema_refresh import schema_refresh_execute, schema_refresh_request
from products.choices import (
    CheckKind,
    CheckOutcome,
    CheckRunStatus,
    LifecycleStatus,
    PortKind,
    RunStatus,
    SourceKind,
)
from products.connectors.file_probe import FileRefused
from products.models import Column, OutputPort, StorageAllowance
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from products.uploads.services import UploadTooLarge, file_check, port_file_upload
from tests.factories import (
    ColumnFactory,
    DataSourceFactory,
    FilePortFactory,
    OutputPortFactory,
    ProductFactory,
)

CHANNELS = ["page", "api"]


# --- hostile files, made for real ---------------------------------------------------------


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _wide_csv(folder: Path, columns: int = 10_000) -> Path:
    header = ",".join(f"c{i}" for i in range(columns))
    values = ",".join(str(i) for i in range(columns))
    return _write(folder, "wide.csv", f"{header}\n{values}\n".encode())


def _wide_parquet(folder: Path, columns: int = 10_000) -> Path:
    path = folder / "wide.parquet"
    pq.write_table(pa.table({f"c{i}": pa.array([i], pa.int32()) for i in range(columns)}), path)
    return path


def _zeros_bomb(folder: Path, rows: int = 200_000_000) -> Path:
    """200 million zeros, stored PLAIN (no dictionary) and zstd-compressed: about 0.6 MB
    on disk whose footer declares 1.6 GB uncompressed. Written a million rows at a time."""
    path = folder / "bomb.parquet"
    chunk = pa.table({"v": pa.array(np.zeros(1_000_000, dtype="int64"))})
    with pq.ParquetWriter(
        path, chunk.schema, compression="zstd", use_dictionary=False, write_statistics=False
    ) as writer:
        for _ in range(rows // chunk.num_rows):
            writer.write_table(chunk, row_group_size=10_000_000)
    return path


def _memory_bomb(folder: Path, rows: int = 4000) -> Path:
    """A footer that looks harmless (1 MB uncompressed) over a dictionary of one 1 MB
    string referenced by every row: reading the rows decodes 4 GB."""
    path = folder / "dictionary-bomb.parquet"
    value = pa.array(["x" * (1 << 20)])
    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype="int32")), value)
    pq.write_table(pa.table({"s": column}), path, compression="zstd")
    return path


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


NAN_TABLE = pa.table(
    {
        "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
        "price": pa.array([1.5, float("nan"), float("inf"), float("-inf"), None], pa.float64()),
    }
)
NAN_CSV = b"id,price\n1,1.5\n2,NaN\n3,inf\n4,-Infinity\n5,\n"


@pytest.fixture(scope="module")
def big_files(tmp_path_factory) -> dict[str, Path]:
    """The files that take a few seconds to make, made once."""
    folder = tmp_path_factory.mktemp("hostile-big")
    return {
        "wide.csv": _wide_csv(folder),
        "wide.parquet": _wide_parquet(folder),
        "bomb.parquet": _zeros_bomb(folder),
        "dictionary-bomb.parquet": _memory_bomb(folder),
    }


def _hostile(name: str, folder: Path, big_files: dict[str, Path]) -> Path:
    if name in big_files:
        return big_files[name]
    good = _parquet_bytes(pa.table({"id": list(range(1000)), "name": ["x"] * 1000}))
    made = {
        "ragged.csv": b"id,price\n1,2\n2,3,4\n3,5\n",
        "unterminated.csv": b'id,name\n1,"abc\n2,def\n',
        "stray-quote.csv": b'id,name\n1,"ab"c\n',
        "latin-1.csv": "id,name\n1,café\n".encode("latin-1"),
        "utf-16.csv": "id,name\n1,café\n".encode("utf-16"),
        "empty.csv": b"",
        "duplicate-header.csv": b"id,name,id\n1,a,2\n",
        "empty-header.csv": b"id,,name\n1,2,3\n",
        "no-header.csv": b"1,2\n3,4\n",
        "truncated.parquet": good[:-100],
        "corrupt-footer.parquet": b"PAR1" + b"\x00" * 64 + (1000).to_bytes(4, "little") + b"PAR1",
        "garbled-footer.parquet": good[:-40] + b"\xff" * 32 + good[-8:],
        "workbook.csv": b"PK\x03\x04" + b"\x00" * 100,
    }
    return _write(folder, name, made[name])


# (file, status, words the refusal must contain)
REFUSALS = [
    ("ragged.csv", 400, ["line 3", "3 fields where the header has 2"]),
    ("unterminated.csv", 400, ["line 2", "closing double quote is missing"]),
    ("stray-quote.csv", 400, ["line 2", 'write it twice ("")']),
    ("latin-1.csv", 400, ["not UTF-8", "0xE9", "byte offset 13", "line 2", "Latin-1"]),
    ("utf-16.csv", 400, ["UTF-16 (little-endian)", "byte-order mark", "CSV UTF-8"]),
    ("empty.csv", 400, ["The file is empty"]),
    ("duplicate-header.csv", 400, ["“id” (columns 1 and 3)"]),
    ("empty-header.csv", 400, ["no name for column 2"]),
    ("no-header.csv", 400, ["must be a header naming the columns"]),
    ("wide.csv", 400, ["10,000 columns: at most 1,000"]),
    ("wide.parquet", 400, ["10,000 columns: at most 1,000"]),
    ("bomb.parquet", 400, ["declares 1.6 GB uncompressed", "zip bomb"]),
    ("dictionary-bomb.parquet", 400, ["needs more memory than the 1.0 GB allowed"]),
    ("truncated.parquet", 400, ["truncated"]),
    ("corrupt-footer.parquet", 400, ["footer", "corrupt or truncated"]),
    ("garbled-footer.parquet", 400, ["footer", "corrupt or truncated"]),
    ("workbook.csv", 400, ["ZIP archive", "CSV UTF-8"]),
]


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture
def upload_tmp(settings, tmp_path) -> Path:
    """Where Django writes uploads while they arrive: must be empty after every request."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


def _stored(media_root: Path) -> tuple[frozenset, int, int]:
    files = frozenset(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())
    return files, OutputPort.objects.count(), Column.objects.count()


def _page_url(product, port=None) -> str:
    if port is not None:
        return reverse("products:port-file", args=[product.domain.slug, product.slug, port.slug])
    return reverse("products:port-upload", args=[product.domain.slug, product.slug])


def _api_url(product, port=None) -> str:
    if port is not None:
        return f"/api/v1/products/{product.key}/ports/{port.slug}/file/"
    return f"/api/v1/products/{product.key}/ports/upload/"


def _upload(channel, user, product, path: Path, port=None, **fields):
    """Upload `path` through the page or the API as `user`: (status, text, json or None)."""
    with open(path, "rb") as handle:
        if channel == "page":
            client = Client()
            client.force_login(user)
            data = {
                "file": handle,
                **{("file_format" if k == "format" else k): v for k, v in fields.items()},
            }
            response = client.post(_page_url(product, port), data)
            return response.status_code, html.unescape(response.content.decode()), None
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_authenticate(user)
        data = {"file": handle, **fields}
        url = _api_url(product, port)
        if port is None:
            response = client.post(url, data, format="multipart")
        else:
            response = client.put(url, data, format="multipart")
        body = response.json() if response.content else None
        return response.status_code, " ".join(_messages(body)), body


def _messages(body) -> list[str]:
    """Every message of an API answer ({"field": ["message"]} or {"detail": "message"})."""
    if isinstance(body, str):
        return [body]
    if isinstance(body, dict):
        return [m for value in body.values() for m in _messages(value)]
    if isinstance(body, list):
        return [m for value in body for m in _messages(value)]
    return []


# --- refusals: status, message, nothing stored -----------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(("name", "status", "words"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_hostile_upload_is_refused_with_a_message_and_nothing_stored(
    channel, name, status, words, owner, product, media_root, upload_tmp, tmp_path, big_files
):
    path = _hostile(name, tmp_path, big_files)
    before = _stored(media_root)

    code, text, body = _upload(channel, owner, product, path)

    assert code == status, text[:2000]
    for word in words:
        assert word in text, f"{word!r} not in the answer: {text[:3000]}"
    if channel == "api":
        assert list(body) == ["file"]  # the field is named
    assert _stored(media_root) == before
    assert list(upload_tmp.iterdir()) == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_hostile_new_version_leaves_the_port_and_its_file_as_they_were(
    channel, owner, product, media_root, upload_tmp, tmp_path
):
    good = _write(tmp_path, "orders.csv", b"id,amount\n1,10\n2,20\n")
    assert _upload("api", owner, product, good, name="Orders file")[0] == 201
    port = OutputPort.objects.get(product=product)
    column = port.columns.get(name="amount")
    column.description = "Euros, VAT included."
    column.save()
    before = _stored(media_root)

    code, text, _ = _upload(
        channel, owner, product, _write(tmp_path, "bad.csv", b"id,amount\n1,10,3\n"), port=port
    )

    assert code == 400 and "line 2" in text
    port.refresh_from_db()
    assert _stored(media_root) == before
    assert (media_root / port.file_path).read_bytes() == good.read_bytes()
    assert list(port.columns.values_list("name", "description")) == [
        ("id", ""),
        ("amount", "Euros, VAT included."),
    ]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("size", [5_000, 200_000], ids=["streamed-past", "declared-above"])
def test_an_upload_above_the_size_limit_is_413_and_nothing_is_written(
    channel, size, settings, owner, product, media_root, upload_tmp, tmp_path
):
    settings.PORT_UPLOAD_MAX_BYTES = 1_000
    path = _write(tmp_path, "big.csv", b"id\n" + b"1\n" * (size // 2))
    before = _stored(media_root)

    code, text, body = _upload(channel, owner, product, path)

    assert code == 413, text[:1000]
    assert "larger than 1.0 KB" in text and "PORT_UPLOAD_MAX_BYTES" in text
    assert _stored(media_root) == before
    assert list(upload_tmp.iterdir()) == []


def test_the_service_refuses_an_oversized_file_it_is_handed(settings, owner, product):
    settings.PORT_UPLOAD_MAX_BYTES = 10
    with pytest.raises(UploadTooLarge):
        port_file_upload(
            product=product,
            by=owner,
            uploaded_file=SimpleUploadedFile("a.csv", b"id\n1\n2\n3\n4\n"),
        )
    assert not OutputPort.objects.exists()


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_chosen_format_that_the_content_contradicts_is_refused(
    channel, owner, product, media_root, tmp_path
):
    path = _write(tmp_path, "orders.parquet", b"id,name\n1,a\n")
    code, text, _ = _upload(channel, owner, product, path, format="parquet")
    assert code == 400 and "You chose PARQUET but the file is not a Parquet file" in text
    assert not OutputPort.objects.exists()


def test_columns_beyond_the_setting_are_refused_at_its_value(settings, owner, product, tmp_path):
    settings.PORT_MAX_COLUMNS = 5
    path = _wide_csv(tmp_path, columns=6)
    code, text, _ = _upload("api", owner, product, path)
    assert code == 400 and "6 columns: at most 5" in text


def test_declared_size_above_the_absolute_cap_is_refused(settings, owner, product, tmp_path):
    settings.PORT_UPLOAD_MAX_UNCOMPRESSED_BYTES = 100_000
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"v": np.arange(100_000)}), path, compression="none")
    code, text, _ = _upload("api", owner, product, path)
    assert code == 400
    assert "uncompressed: at most 100.0 KB (PORT_UPLOAD_MAX_UNCOMPRESSED_BYTES)" in text


# --- the memory cap -------------------------------------------------------------------------------


def test_the_check_runs_in_a_child_process_under_the_memory_cap(settings, big_files):
    """The dictionary bomb declares 1 MB but decodes to 4 GB: the child process checking
    it stays under its cap and refuses it; the web process does not grow."""
    cap = settings.PORT_UPLOAD_CHECK_MEMORY_BYTES
    web_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    with pytest.raises(FileRefused) as refused:
        file_check(path=big_files["dictionary-bomb.parquet"])

    assert "needs more memory than the 1.0 GB allowed" in str(refused.value)
    assert 0 < refused.value.peak_rss_bytes < cap
    web_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert web_after - web_before < 256 * 1024 * 1024  # 4 GB decoded here would show


def test_the_cap_is_the_child_processes_address_space(settings, tmp_path):
    """A cap too small even to load the reader refuses a harmless file: the limit is
    really applied to the child (not only DuckDB's own memory_limit)."""
    path = _write(tmp_path, "small.csv", b"id,name\n1,a\n")
    assert file_check(path=path).rows == 1
    settings.PORT_UPLOAD_CHECK_MEMORY_BYTES = 150_000_000
    with pytest.raises(FileRefused) as refused:
        file_check(path=path)
    assert "needs more memory than the 150.0 MB allowed" in str(refused.value)


def test_a_check_that_takes_too_long_is_stopped(settings, big_files):
    settings.PORT_UPLOAD_CHECK_TIMEOUT_SECONDS = 0
    with pytest.raises(FileRefused) as refused:
        file_check(path=big_files["wide.csv"])
    assert "took longer than 0 seconds" in str(refused.value)


# --- success, replacing, and what is (not) left behind -------------------------------------------


def test_an_upload_creates_a_file_port_with_its_columns(
    owner, product, media_root, upload_tmp, tmp_path, django_capture_on_commit_callbacks
):
    path = _write(tmp_path, "daily_orders.csv", b"id;amount;country\n1;10.5;BE\n2;20;NL\n")
    before = _stored(media_root)[0]

    code, _, body = _upload("api", owner, product, path)

    assert code == 201, body
    port = OutputPort.objects.get(product=product)
    assert (port.name, port.slug, port.kind, port.file_format) == (
        "daily orders",
        "daily-orders",
        PortKind.FILE,
        "csv",
    )
    assert list(port.columns.values_list("name", "data_type")) == [
        ("id", "BIGINT"),
        ("amount", "DOUBLE"),
        ("country", "VARCHAR"),
    ]
    assert body["upload"] == {
        "file_name": "daily_orders.csv",
        "format": "csv",
        "rows": 2,
        "columns": 3,
        "columns_added": [],
        "columns_removed": [],
        "notes": ["Values are separated by a semicolon."],
    }
    new_files = _stored(media_root)[0] - before
    assert new_files == {port.file_path}
    assert port.file_path.startswith("uploads/sales/orders/daily-orders/")
    assert (media_root / port.file_path).read_bytes() == path.read_bytes()
    assert list(upload_tmp.iterdir()) == []


def test_a_new_version_keeps_documentation_and_deletes_the_old_file(
    owner, product, media_root, tmp_path, django_capture_on_commit_callbacks
):
    first = _write(tmp_path, "v1.csv", b"id,amount,old\n1,10,x\n")
    _upload("api", owner, product, first, name="Orders file")
    port = OutputPort.objects.get(product=product)
    old_path = media_root / port.file_path
    port.columns.filter(name="amount").update(description="Euros.")

    second = tmp_path / "v2.parquet"
    pq.write_table(pa.table({"id": [1, 2], "amount": [1.0, 2.0], "new": ["a", "b"]}), second)
    with django_capture_on_commit_callbacks(execute=True):
        code, _, body = _upload("api", owner, product, second, port=port)

    assert code == 200, body
    port.refresh_from_db()
    assert port.file_format == "parquet" and port.file_path.endswith(".parquet")
    assert body["upload"]["columns_added"] == ["new"]
    assert body["upload"]["columns_removed"] == ["old"]
    assert dict(port.columns.values_list("name", "description")) == {
        "id": "",
        "amount": "Euros.",
        "new": "",
    }
    assert not old_path.exists()
    assert (media_root / port.file_path).read_bytes() == second.read_bytes()


def test_the_page_uploads_and_says_what_it_stored(owner, product, tmp_path):
    client = Client()
    client.force_login(owner)
    page = client.get(_page_url(product))
    assert page.status_code == 200
    assert b'enctype="multipart/form-data"' in page.content
    assert b"at most 1,000 columns" in page.content

    path = _write(tmp_path, "orders.csv", NAN_CSV)
    with open(path, "rb") as handle:
        response = client.post(_page_url(product), {"file": handle, "name": "Prices"}, follow=True)

    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert "Added file port Prices from orders.csv: 5 rows, 2 columns (CSV)." in text
    assert "Column price has 1 NaN and 2 infinite value(s)" in text
    port = OutputPort.objects.get(product=product)
    assert "Upload new version" in text
    assert client.get(_page_url(product, port)).status_code == 200


def test_the_page_checks_csrf_after_taking_the_upload(owner, product, tmp_path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    path = _write(tmp_path, "orders.csv", b"id\n1\n")
    with open(path, "rb") as handle:
        refused = client.post(_page_url(product), {"file": handle})
    assert refused.status_code == 403
    assert not OutputPort.objects.exists()

    token = client.get(_page_url(product)).cookies["csrftoken"].value
    with open(path, "rb") as handle:
        accepted = client.post(_page_url(product), {"file": handle, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert OutputPort.objects.filter(product=product).count() == 1


def test_the_api_checks_csrf_for_session_requests(owner, product, tmp_path):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    path = _write(tmp_path, "orders.csv", b"id\n1\n")
    with open(path, "rb") as handle:
        response = client.post(_api_url(product), {"file": handle}, format="multipart")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not OutputPort.objects.exists()


def test_only_editors_upload(member, outsider, product, domain, tmp_path):
    path = _write(tmp_path, "orders.csv", b"id\n1\n")
    draft = ProductFactory(domain=domain, slug="draft", status=LifecycleStatus.DRAFT)
    for channel in CHANNELS:
        for user in (member, outsider):  # a member of the domain, and someone outside it
            code, text, _ = _upload(channel, user, product, path)
            assert code == 403, (channel, text[:500])
            assert "owners and stewards" in text
        code, _, _ = _upload(channel, outsider, draft, path)  # a draft: not visible to them
        assert code == 404
    anonymous = Client().post(_page_url(product), {"file": SimpleUploadedFile("a.csv", b"id\n")})
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    from rest_framework.test import APIClient

    api = APIClient().post(_api_url(product), {"file": SimpleUploadedFile("a.csv", b"id\n")})
    assert api.status_code in (401, 403)
    assert not OutputPort.objects.exists()


def test_a_table_port_does_not_take_a_file(owner, product, tmp_path):
    port = OutputPortFactory(product=product, slug="table")
    path = _write(tmp_path, "orders.csv", b"id\n1\n")
    for channel in CHANNELS:
        code, text, _ = _upload(channel, owner, product, path, port=port)
        assert code == 400 and "only file ports take an uploaded file" in text


def test_a_taken_or_reserved_port_name_is_refused_before_the_file_is_read(owner, product, tmp_path):
    FilePortFactory(product=product, name="Orders", slug="orders", file_path="x.csv")
    path = _write(tmp_path, "orders.csv", b"id\n1\n")
    code, text, body = _upload("api", owner, product, path)
    assert code == 400 and body == {"name": ["This product already has a port 'orders'."]}
    code, _, body = _upload("api", owner, product, path, name="Upload")
    assert code == 400 and "reserved" in body["name"][0]


def test_a_database_failure_removes_the_stored_file(owner, product, media_root, tmp_path):
    """The database refuses the column rows (a trigger, as a real failure would): the
    file renamed into place in the same transaction is removed, nothing is half-written."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL triggers")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_column() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF NEW.name = 'explode' THEN RAISE EXCEPTION 'disk full'; END IF; "
            "RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_column BEFORE INSERT ON products_column "
            "FOR EACH ROW EXECUTE FUNCTION refuse_column()"
        )
    before = _stored(media_root)
    with pytest.raises(Exception, match="disk full"):
        port_file_upload(
            product=product,
            by=owner,
            uploaded_file=SimpleUploadedFile("failing_write.csv", b"id,explode\n1,2\n"),
        )
    assert _stored(media_root) == before
    # Not even the port's directory is left.
    assert not (media_root / "uploads" / "sales" / "orders" / "failing-write").exists()
    assert not OutputPort.objects.filter(product=product).exists()


# --- NaN and infinite values, served everywhere --------------------------------------------------


def _strict_json(text: str):
    def refuse(word):
        raise AssertionError(f"invalid JSON constant {word}")

    return json.loads(text, parse_constant=refuse)


EXPECTED_PRICES = [1.5, "NaN", "Infinity", "-Infinity", None]


def _assert_served_everywhere(owner, product, port):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(owner)
    base = f"/api/v1/products/{product.key}/data/?port={port.slug}"

    rows = _strict_json(b"".join(api.get(base + "&format=json").streaming_content).decode())
    assert [row["price"] for row in rows] == EXPECTED_PRICES
    lines = b"".join(api.get(base + "&format=jsonl").streaming_content).decode().splitlines()
    assert [_strict_json(line)["price"] for line in lines] == EXPECTED_PRICES

    xlsx = api.get(base + "&format=xlsx")
    assert xlsx.status_code == 200
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(xlsx.streaming_content))).active
    prices = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert prices == EXPECTED_PRICES

    csv_text = b"".join(api.get(base + "&format=csv").streaming_content).decode().lower()
    assert "nan" in csv_text and "inf" in csv_text

    client = Client()
    client.force_login(owner)
    page = client.get(
        reverse("sharing:product-data", args=[product.domain.slug, product.slug]),
        {"port": port.slug},
    )
    assert page.status_code == 200
    text = page.content.decode()
    for word in ("NaN", "Infinity", "-Infinity"):
        assert f"<td>{word}</td>" in text

    check = check_create(
        port=port,
        by=owner,
        name="price range",
        kind=CheckKind.RANGE,
        column="price",
        params={"min": 0, "max": 10},
    )
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    assert run.status == CheckRunStatus.DONE, run.error
    result = run.results.get(quality_check=check)
    # NaN orders above +Infinity in DuckDB and PostgreSQL alike: outside [0, 10].
    assert (result.outcome, result.observed_value) == (CheckOutcome.FAIL, 3)
    assert sorted(map(str, (r["price"] for r in result.sample))) == sorted(
        ["NaN", "Infinity", "-Infinity"]
    )
    detail = api.get(f"/api/v1/products/{product.key}/check-runs/{run.pk}/")
    assert detail.status_code == 200
    _strict_json(detail.content.decode())


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_nan_and_infinity_in_an_uploaded_file_are_served_as_valid_output(
    fmt, owner, product, tmp_path
):
    if fmt == "parquet":
        path = tmp_path / "prices.parquet"
        pq.write_table(NAN_TABLE, path)
    else:
        path = _write(tmp_path, "prices.csv", NAN_CSV)

    code, _, body = _upload("api", owner, product, path)

    assert code == 201, body
    assert body["upload"]["notes"][-1].startswith("Column price has 1 NaN and 2 infinite value(s)")
    port = OutputPort.objects.get(product=product)
    assert dict(port.columns.values_list("name", "data_type"))["price"] == "DOUBLE"
    _assert_served_everywhere(owner, product, port)


def _pg_info() -> dict:
    cfg = connection.settings_dict
    info = dict(
        host=cfg["HOST"] or "localhost",
        port=int(cfg["PORT"] or 5432),
        dbname=cfg["NAME"],
        user=cfg["USER"] or None,
    )
    return {k: v for k, v in info.items() if v}


def _pg_source():
    info = _pg_info()
    return DataSourceFactory(
        kind=SourceKind.POSTGRESQL,
        path="",
        host=info["host"],
        port=info["port"],
        database=info["dbname"],
        username=info.get("user", ""),
    )


def test_nan_and_infinity_in_a_postgresql_double_precision_column_serve_fine(
    postgres, owner, product
):
    with psycopg.connect(**_pg_info(), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS hostile_test")
        conn.execute("DROP TABLE IF EXISTS hostile_test.prices")
        conn.execute("CREATE TABLE hostile_test.prices (id bigint, price double precision)")
        conn.execute(
            "INSERT INTO hostile_test.prices VALUES (1, 1.5), (2, 'NaN'), (3, 'Infinity'),"
            " (4, '-Infinity'), (5, NULL)"
        )
    port = OutputPortFactory(
        product=product, source=_pg_source(), schema_name="hostile_test", table_name="prices"
    )
    run = schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert list(port.columns.values_list("name", "data_type")) == [
        ("id", "bigint"),
        ("price", "double precision"),
    ]
    _assert_served_everywhere(owner, product, port)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e999", "-1e999"])
def test_a_filter_value_that_is_not_a_finite_number_is_refused(value, owner, product, tmp_path):
    from rest_framework.test import APIClient

    path = tmp_path / "prices.parquet"
    pq.write_table(NAN_TABLE, path)
    _upload("api", owner, product, path)
    api = APIClient()
    api.force_authenticate(owner)
    clause = f'[{{"column": "price", "op": "<", "value": {value}}}]'
    response = api.get(f"/api/v1/products/{product.key}/data/", {"filter": clause})
    assert response.status_code == 400
    assert "finite number" in response.json()["detail"]


@pytest.mark.parametrize("params", [{"min": 1e999}, {"max": -1e999}, {"max_age_hours": 1e999}])
def test_check_parameters_that_are_not_finite_are_refused(params, owner, product):
    port = FilePortFactory(product=product, file_path="x.parquet")
    ColumnFactory(port=port, name="price")
    kind = CheckKind.FRESHNESS if "max_age_hours" in params else CheckKind.RANGE
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(owner)
    body = json.dumps(
        {"port": port.slug, "kind": kind, "column": "price", "params": params}
    ).replace("Infinity", "1e999")
    response = api.post(
        f"/api/v1/products/{product.key}/checks/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content  # DRF's JSONField refuses it
    assert list(response.json()) == ["params"]
    with pytest.raises(ValidationError) as refused:  # and so does the service, for any caller
        check_create(port=port, by=owner, kind=kind, column="price", params=params)
    assert "must be a finite number" in refused.value.message_dict["params"][0]
    assert not port.checks.exists()


# --- sources too wide for the portal -------------------------------------------------------------


def test_schema_refresh_refuses_a_duckdb_table_of_10000_columns(owner, product, tmp_path):
    path = tmp_path / "wide.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE wide AS SELECT " + ", ".join(f"{i} AS c{i}" for i in range(10_000))
        )
    port = OutputPortFactory(
        product=product,
        source=DataSourceFactory(kind=SourceKind.DUCKDB, path=str(path)),
        schema_name="main",
        table_name="wide",
    )
    run = schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
    assert run.status == RunStatus.FAILED
    assert "10,000 columns: at most 1,000" in run.error
    assert not Column.objects.filter(port=port).exists()


def test_schema_refresh_refuses_a_wide_file_placed_in_storage(owner, product, media_root):
    folder = media_root / "placed"
    folder.mkdir(exist_ok=True)
    _wide_parquet(folder, columns=1_500)
    # An admin placed it there and made the folder available to the domain.
    StorageAllowance.objects.get_or_create(domain=product.domain, path="placed")
    port = output_port_create(
        product=product,
        by=owner,
        name="Placed",
        kind=PortKind.FILE,
        file_path="placed/wide.parquet",
        file_format="parquet",
    )
    run = schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
    assert run.status == RunStatus.FAILED and "1,500 columns: at most 1,000" in run.error
    assert not Column.objects.filter(port=port).exists()


def test_schema_refresh_refuses_a_postgresql_table_wider_than_the_setting(
    postgres, settings, owner, product
):
    settings.PORT_MAX_COLUMNS = 1_000
    columns = ", ".join(f"c{i} int" for i in range(1_200))  # PostgreSQL allows 1,600
    with psycopg.connect(**_pg_info(), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS hostile_test")
        conn.execute("DROP TABLE IF EXISTS hostile_test.wide")
        conn.execute(f"CREATE TABLE hostile_test.wide ({columns})")
    port = OutputPortFactory(
        product=product, source=_pg_source(), schema_name="hostile_test", table_name="wide"
    )
    run = schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
    assert run.status == RunStatus.FAILED and "1,200 columns: at most 1,000" in run.error
    assert not Column.objects.filter(port=port).exists()
