"""Serving rows: one plan per read from the access decision; one pushed-down query;
streamed formats; masking; one audit event per read served."""

import io
import json
from datetime import timedelta

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from sharing.choices import Channel
from sharing.models import AccessEvent, AccessGrant
from sharing.serving.reads import ReadRefused, read_plan, read_rows, read_stream
from tests.factories import parquet_product
from tests.sharing.readers import SERVING_ROWS as ROWS


@pytest.fixture
def product(domain, media_root):
    product = parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="serving/orders.parquet"
    )
    return product


def _grant(product, user, **fields):
    return AccessGrant.objects.create(
        product=product, user=user, expires_at=timezone.now() + timedelta(days=30), **fields
    )


def _csv(chunks) -> pa.Table:
    # An empty field is a null (CSV has no other way to say it).
    options = pa_csv.ConvertOptions(strings_can_be_null=True)
    return pa_csv.read_csv(io.BytesIO(b"".join(chunks)), convert_options=options)


def test_member_reads_everything_unmasked(product, member):
    plan = read_plan(user=member, product=product, channel=Channel.API)
    table = _csv(read_stream(plan, fmt="csv", client_address="10.0.0.1"))
    assert table.column_names == list(ROWS)
    assert table.column("email").to_pylist() == ["a@x", "b@x", None, "d@x"]
    event = AccessEvent.objects.get()
    assert (event.user, event.rows, event.channel, event.client_address) == (
        member,
        4,
        "api",
        "10.0.0.1",
    )
    assert event.bytes > 0


def test_grantee_gets_granted_columns_rows_and_masking(product, outsider):
    _grant(product, outsider, row_filter=[{"column": "country", "op": "=", "value": "BE"}])
    plan = read_plan(user=outsider, product=product, channel=Channel.API)
    table = _csv(read_stream(plan, fmt="csv"))
    assert table.column("order_id").to_pylist() == [1, 3]
    assert table.column("email").to_pylist() == ["****", None]  # confidential: masked


def test_a_grant_naming_a_sensitive_column_unmasks_it(product, outsider):
    _grant(product, outsider, columns=["order_id", "email"])
    plan = read_plan(user=outsider, product=product, channel=Channel.API)
    assert plan.columns == ["order_id", "email"]
    assert read_rows(plan)[1][0] == (1, "a@x")
    with pytest.raises(ReadRefused) as refused:
        read_plan(user=outsider, product=product, channel=Channel.API, columns=["amount"])
    assert refused.value.status == 403 and "amount" in refused.value.message


def test_no_grant_expired_and_revoked_are_refused(product, outsider):
    with pytest.raises(ReadRefused) as refused:
        read_plan(user=outsider, product=product, channel=Channel.API)
    assert refused.value.status == 403
    grant = _grant(product, outsider)
    grant.expires_at = timezone.now() - timedelta(seconds=1)
    grant.save()
    with pytest.raises(ReadRefused, match="expired"):
        read_plan(user=outsider, product=product, channel=Channel.API)
    grant.expires_at = timezone.now() + timedelta(days=1)
    grant.revoked_at = timezone.now()
    grant.save()
    with pytest.raises(ReadRefused, match="revoked"):
        read_plan(user=outsider, product=product, channel=Channel.API)
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "arrow"])
def test_every_format_round_trips(product, member, fmt):
    plan = read_plan(
        user=member,
        product=product,
        channel=Channel.API,
        columns=["order_id", "country"],
        filter='[{"column": "amount", "op": ">=", "value": 20}]',
        limit=2,
    )
    body = b"".join(read_stream(plan, fmt=fmt))
    if fmt == "csv":
        rows = _csv([body]).to_pylist()
    elif fmt == "json":
        rows = json.loads(body)
    elif fmt == "parquet":
        rows = pq.read_table(io.BytesIO(body)).to_pylist()
    else:
        rows = pa.ipc.open_stream(body).read_all().to_pylist()
    assert rows == [{"order_id": 2, "country": "NL"}, {"order_id": 3, "country": "BE"}]


@pytest.mark.parametrize(
    "kwargs, status, words",
    [
        ({"columns": ["nope"]}, 400, "nope"),
        ({"filter": "not json"}, 400, "not valid JSON"),
        ({"filter": '[{"column": "ghost", "op": "=", "value": 1}]'}, 400, "ghost"),
        ({"filter": '[{"column": "amount", "op": "LIKE", "value": 1}]'}, 400, "LIKE"),
        ({"limit": -1}, 400, "limit"),
    ],
)
def test_bad_input_is_refused_with_a_reason(product, member, kwargs, status, words):
    with pytest.raises(ReadRefused) as refused:
        read_plan(user=member, product=product, channel=Channel.API, **kwargs)
    assert refused.value.status == status
    assert words in refused.value.message


def test_injection_in_values_is_served_as_a_plain_value(product, member):
    plan = read_plan(
        user=member,
        product=product,
        channel=Channel.API,
        filter=[{"column": "country", "op": "=", "value": "BE' OR '1'='1"}],
    )
    assert read_rows(plan)[1] == []


def test_limit_above_the_maximum_is_clamped(product, member):
    plan = read_plan(user=member, product=product, channel=Channel.API, limit=10**9, max_rows=3)
    assert plan.limit_clamped and plan.limit == 3
    assert len(read_rows(plan)[1]) == 3


@pytest.mark.parametrize("fmt", ["csv", "arrow"])
def test_postgres_serves_filtered_masked_rows(pg_product, outsider, fmt):
    _grant(
        pg_product, outsider, row_filter=[{"column": "country", "op": "in", "value": ["BE", "FR"]}]
    )
    plan = read_plan(
        user=outsider,
        product=pg_product,
        channel=Channel.API,
        filter=[{"column": "amount", "op": ">", "value": 15}],
    )
    body = b"".join(read_stream(plan, fmt=fmt))
    table = _csv([body]) if fmt == "csv" else pa.ipc.open_stream(body).read_all()
    assert table.column("order_id").to_pylist() == [3, 4]
    assert table.column("email").to_pylist() == [None, "****"]
    assert AccessEvent.objects.get().rows == 2


def test_json_lines_have_one_object_per_row(product, member):
    plan = read_plan(user=member, product=product, channel=Channel.API)
    lines = b"".join(read_stream(plan, fmt="jsonl")).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        dict(zip(ROWS, values, strict=True)) for values in zip(*ROWS.values(), strict=True)
    ]


def test_xlsx_holds_the_rows_under_a_header(product, outsider):
    import openpyxl

    _grant(product, outsider, row_filter=[{"column": "country", "op": "=", "value": "BE"}])
    plan = read_plan(user=outsider, product=product, channel=Channel.API)
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(read_stream(plan, fmt="xlsx"))))
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows == [tuple(ROWS), (1, "BE", "****", 10), (3, "BE", None, 30)]
    assert AccessEvent.objects.get().rows == 2


def test_xlsx_beyond_a_sheet_is_refused_before_writing(domain, media_root, member, monkeypatch):
    import sharing.serving.reads as serving

    monkeypatch.setattr(serving, "XLSX_MAX_ROWS", 3)  # a sheet of three rows, for the test
    product = parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="serving/big.parquet"
    )
    plan = read_plan(user=member, product=product, channel=Channel.API)
    with pytest.raises(ReadRefused, match="XLSX sheet holds at most") as refused:
        next(read_stream(plan, fmt="xlsx"))
    assert refused.value.status == 400
    event = AccessEvent.objects.get()
    assert (event.rows, event.bytes) == (0, 0) and "XLSX" in event.detail["error"]
