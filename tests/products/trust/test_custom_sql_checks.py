"""Custom SQL checks run end to end on PostgreSQL and DuckDB: confined to the port at save
time and again at run time, under a time limit, with readers shown fixed sentences. A
failed cast quotes the value it could not convert: that text reaches the domain's members
and admins only, never a reader (no grant, or a grant that masks the column)."""

import json
import time
from datetime import timedelta

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from products.choices import CheckKind, CheckOutcome, CheckRunStatus, Classification, Severity
from products.models import Check, CheckRun
from products.trust.services import checks as check_services
from products.trust.services.check_details import FAILED_MESSAGE, SHAPE_MESSAGE
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from products.trust.services.evidence import trust_after_check_run
from sharing.models import AccessGrant
from tests.factories import (
    ColumnFactory,
    FilePortFactory,
    OutputPortFactory,
    UserFactory,
    metadata_db_connect,
    metadata_db_source,
)

pytestmark = pytest.mark.django_db

SECRET = "secret-7@example.com"  # a value of the confidential column `email`
ROWS = [(1, SECRET, 10.0), (2, "b@example.com", -5.0), (3, "c@example.com", 20.0)]
# The slow check crosses the table (widened to ten rows) with itself nine times: 10**9
# combinations, about a minute without a time limit on either engine.
SLOW_ROWS = 10


def _pg_port(postgres, domain, product):
    with metadata_db_connect() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS custom_sql_test")
        conn.execute("DROP TABLE IF EXISTS custom_sql_test.orders")
        conn.execute(
            "CREATE TABLE custom_sql_test.orders (order_id bigint, email text, amount double"
            " precision)"
        )
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO custom_sql_test.orders VALUES (%s, %s, %s)", ROWS)
    return OutputPortFactory(
        product=product,
        source=metadata_db_source(),
        schema_name="custom_sql_test",
        table_name="orders",
    )


def _parquet_port(media_root, product):
    path = media_root / "custom-sql" / "orders.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "order_id": pa.array([r[0] for r in ROWS], pa.int64()),
                "email": pa.array([r[1] for r in ROWS], pa.string()),
                "amount": pa.array([r[2] for r in ROWS], pa.float64()),
            }
        ),
        path,
    )
    return FilePortFactory(product=product, file_path="custom-sql/orders.parquet")


@pytest.fixture(params=["postgresql", "duckdb"])
def port(request, product, media_root):
    if request.param == "postgresql":
        port = _pg_port(request.getfixturevalue("postgres"), product.domain, product)
    else:
        port = _parquet_port(media_root, product)
    ColumnFactory(port=port, name="order_id", data_type="bigint", position=0)
    ColumnFactory(
        port=port,
        name="email",
        data_type="text",
        position=1,
        classification=Classification.CONFIDENTIAL,
    )
    ColumnFactory(port=port, name="amount", data_type="double", position=2)
    return port


@pytest.fixture
def grantee(product):
    """Reads the product, with the confidential email masked."""
    user = UserFactory(username="grantee")
    AccessGrant.objects.create(
        product=product, user=user, expires_at=timezone.now() + timedelta(days=9)
    )
    return user


def _run(port, owner) -> CheckRun:
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    assert run.status == CheckRunStatus.DONE, run.error
    trust_after_check_run(run=run)
    return run


def _api_views(api_client, user, product, run) -> str:
    """Everything the API shows this user about the run, its checks and incidents."""
    api_client.force_authenticate(user)
    base = f"/api/v1/products/{product.domain.slug}.{product.slug}"
    seen = []
    for url in (f"{base}/check-runs/{run.pk}/", f"{base}/checks/", f"{base}/incidents/"):
        response = api_client.get(url)
        assert response.status_code == 200, (url, response.content)
        seen.append(json.dumps(response.json()))
    return "\n".join(seen)


def _page(client, user, product, run) -> str:
    client.force_login(user)
    url = reverse(
        "products:check-run-detail",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug, "run_id": run.pk},
    )
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def _result(run, name):
    return run.results.select_related("quality_check").get(quality_check__name=name)


def test_a_failed_cast_never_shows_its_value_to_readers(
    port, product, owner, member, admin_user, outsider, grantee, api_client, client
):
    check_create(
        port=port,
        by=owner,
        name="email is a number",
        kind=CheckKind.CUSTOM_SQL,
        params={"sql": "SELECT count(*) FROM {table} WHERE CAST(email AS int) > 0"},
    )
    run = _run(port, owner)
    result = _result(run, "email is a number")

    assert result.outcome == CheckOutcome.ERROR
    assert result.message == FAILED_MESSAGE
    assert SECRET not in result.message
    assert SECRET in result.details["technical_detail"]  # the driver's own words, kept
    for reader in (outsider, grantee):
        assert SECRET not in _api_views(api_client, reader, product, run), reader.username
        assert SECRET not in _page(client, reader, product, run), reader.username
        assert escape(FAILED_MESSAGE) in _page(client, reader, product, run)
    for insider in (member, admin_user):
        assert SECRET in _api_views(api_client, insider, product, run), insider.username
        assert SECRET in _page(client, insider, product, run), insider.username


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT max(email) FROM {table}",
        "SELECT count(*), max(email) FROM {table}",
        "SELECT email FROM {table}",
        "SELECT count(*) FROM {table} WHERE amount < 0 UNION ALL SELECT 7 FROM {table}",
        "SELECT -count(*) FROM {table}",
        "SELECT avg(amount) FROM {table}",
    ],
)
def test_an_answer_of_another_shape_gives_the_fixed_message(port, owner, sql):
    check_create(port=port, by=owner, name="shape", kind=CheckKind.CUSTOM_SQL, params={"sql": sql})
    result = _result(_run(port, owner), "shape")

    assert (result.outcome, result.message) == (CheckOutcome.ERROR, SHAPE_MESSAGE)
    stored = json.dumps([result.message, result.details, result.sample, result.observed_value])
    assert SECRET not in stored and "8.33" not in stored  # no value, even for members


def test_a_check_on_a_confidential_column_keeps_its_figures_for_the_domain(
    port, product, owner, member, outsider, grantee, api_client, client
):
    check_create(
        port=port,
        by=owner,
        name="long emails",
        kind=CheckKind.CUSTOM_SQL,
        severity=Severity.ERROR,
        params={"sql": "SELECT count(*) FROM {table} WHERE length(email) > 13"},
    )
    check_create(
        port=port,
        by=owner,
        name="refunds",
        kind=CheckKind.CUSTOM_SQL,
        severity=Severity.WARN,
        params={"sql": "SELECT count(*) FROM {table} WHERE amount < 0"},
    )
    run = _run(port, owner)
    confidential, plain = _result(run, "long emails"), _result(run, "refunds")
    figures = "1 failing row of 3 (33.3%)."

    assert confidential.outcome == CheckOutcome.FAIL and confidential.failing_rows == 1
    assert confidential.message.startswith("The check failed.")
    assert confidential.details["member_message"] == figures
    assert plain.message == figures  # no confidential column: counts are metadata

    base = f"/api/v1/products/{product.domain.slug}.{product.slug}"
    for reader in (outsider, grantee):
        api_client.force_authenticate(reader)
        results = {
            r["check_name"]: r
            for r in api_client.get(f"{base}/check-runs/{run.pk}/").json()["results"]
        }
        hidden = results["long emails"]
        assert [hidden[k] for k in ("observed_value", "failing_rows", "failing_percent")] == [
            None,
            None,
            None,
        ]
        assert "1 failing row" not in json.dumps(hidden)
        assert results["refunds"]["failing_rows"] == 1
        [incident] = api_client.get(f"{base}/incidents/").json()["results"]
        assert "1 failing row" not in json.dumps(incident)  # opened from the reader's message
        [listed] = [
            c
            for c in api_client.get(f"{base}/checks/").json()["results"]
            if c["name"] == "long emails"
        ]
        assert "1 failing row" not in json.dumps(listed)
        page = _page(client, reader, product, run)
        assert page.count(figures) == 1  # the refunds check's, not the confidential one's
    api_client.force_authenticate(member)
    results = {
        r["check_name"]: r for r in api_client.get(f"{base}/check-runs/{run.pk}/").json()["results"]
    }
    assert results["long emails"]["failing_rows"] == 1
    assert results["long emails"]["message"] == figures
    assert _page(client, member, product, run).count(figures) == 2


def test_the_statement_time_limit_stops_a_slow_check(port, owner, monkeypatch):
    monkeypatch.setattr(check_services, "CUSTOM_SQL_TIMEOUT_SECONDS", 0.5)
    names = [f"t{i}" for i in range(9)]
    sql = (
        "SELECT count(*) FROM "
        + ", ".join(f"{{table}} {name}" for name in names)
        + " WHERE ("
        + " + ".join(f"{name}.order_id * {i + 2}" for i, name in enumerate(names))
        + ") % 7 = 1"  # nothing an optimiser can answer from statistics
    )
    check_create(port=port, by=owner, name="slow", kind=CheckKind.CUSTOM_SQL, params={"sql": sql})
    _widen(port)
    started = time.monotonic()
    result = _result(_run(port, owner), "slow")
    elapsed = time.monotonic() - started

    assert result.outcome == CheckOutcome.ERROR
    assert result.message == "The check's query was stopped after its time limit (0.5 s)."
    assert elapsed < 15


def _widen(port):
    """Ten rows instead of three, so that nine copies make 10**9 combinations."""
    rows = [(i, f"u{i}@example.com", float(i)) for i in range(SLOW_ROWS)]
    if port.source_id:
        cfg = metadata_db_source().__dict__
        with psycopg.connect(
            host=cfg["host"],
            port=cfg["port"],
            dbname=cfg["database"],
            user=cfg["username"] or None,
            autocommit=True,
        ) as conn:
            conn.execute("TRUNCATE custom_sql_test.orders")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO custom_sql_test.orders VALUES (%s, %s, %s)", rows)
    else:
        from django.conf import settings

        pq.write_table(
            pa.table(
                {
                    "order_id": pa.array([r[0] for r in rows], pa.int64()),
                    "email": pa.array([r[1] for r in rows], pa.string()),
                    "amount": pa.array([r[2] for r in rows], pa.float64()),
                }
            ),
            f"{settings.MEDIA_ROOT}/{port.file_path}",
        )


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        (
            "SELECT count(*) FROM {table} WHERE length(query_to_xml('select 1', true, true, ''))"
            " > 0",
            "query_to_xml()",
        ),
        (
            "SELECT count(*) FROM {table} WHERE email IN (SELECT username FROM auth_user)",
            "auth_user",
        ),
        ("SELECT count(*) FROM read_parquet('/etc/passwd')", "read_parquet"),
    ],
)
def test_the_check_service_refuses_at_save_time_naming_the_construct(port, owner, sql, named):
    with pytest.raises(ValidationError) as refused:
        check_create(
            port=port, by=owner, name="bad", kind=CheckKind.CUSTOM_SQL, params={"sql": sql}
        )
    assert named in refused.value.message_dict["params"][0]


def test_the_api_refuses_a_query_outside_the_port(port, product, owner, api_client):
    api_client.force_authenticate(owner)
    response = api_client.post(
        f"/api/v1/products/{product.domain.slug}.{product.slug}/checks/",
        {
            "kind": "custom_sql",
            "port": port.slug,
            "params": {"sql": "SELECT count(*) FROM {table}, pg_catalog.pg_user"},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "pg_catalog.pg_user" in json.dumps(response.json())


def test_a_check_saved_under_older_rules_is_refused_when_it_runs(port, owner):
    # Written before the allow-list (or by hand): it would read the portal's users.
    Check.objects.create(
        port=port,
        name="old",
        kind=CheckKind.CUSTOM_SQL,
        params={"sql": "SELECT count(*) FROM {table} WHERE email IN (SELECT email FROM auth_user)"},
    )
    result = _result(_run(port, owner), "old")
    assert result.outcome == CheckOutcome.ERROR
    assert "auth_user" in result.message and "not the port's table" in result.message


def test_a_contract_import_refuses_a_query_outside_the_port(domain, owner):
    from products.contracts.services.contracts import ContractInvalid, contract_import
    from tests.products.contracts.helpers import contract_yaml, documented_product

    product = documented_product(domain=domain, owner=owner)
    before = Check.objects.filter(port__product=product).count()
    text = contract_yaml(
        version="2.0.0",
        quality=(
            "    quality:\n"
            "      - type: sql\n"
            "        query: SELECT count(*) FROM ${object} WHERE length(query_to_xml("
            "'select * from auth_user', true, true, '')::text) > 0\n"
            "        mustBe: 0\n"
        ),
    )
    with pytest.raises(ContractInvalid) as refused:
        contract_import(product=product, by=owner, text=text)
    problems = {p.path: p.message for p in refused.value.problems}
    assert "query_to_xml()" in problems["$.schema[0].quality[0]"]
    assert Check.objects.filter(port__product=product).count() == before


def test_the_check_form_refuses_a_query_outside_the_port_beside_its_field(
    port, product, owner, client
):
    client.force_login(owner)
    page = f"/products/{product.domain.slug}/{product.slug}/checks/new/"
    sql = "SELECT count(*) FROM {table} WHERE email IN (SELECT usename FROM pg_catalog.pg_user)"
    response = client.post(
        page,
        {
            "port": port.pk,
            "kind": "custom_sql",
            "sql": sql,
            "severity": "error",
            "tolerance_percent": "0",
        },
    )
    assert response.status_code == 400
    assert "pg_catalog.pg_user" in " ".join(response.context["form"].errors["sql"])
    assert not Check.objects.filter(port=port).exists()
