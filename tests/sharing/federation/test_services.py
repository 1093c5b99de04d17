"""Federated queries run as a user would: on one source, across sources, governed."""

from __future__ import annotations

import pytest

from sharing.federation.refusals import QueryRefused
from sharing.federation.services.running import query_rows, query_start
from sharing.models import AccessEvent, FederatedQuery


def run(user, sql, **kwargs):
    return query_rows(query_start(user=user, sql=sql), **kwargs)


@pytest.mark.django_db(transaction=True)
def test_single_source_join_runs_on_postgresql(crm, admin):
    answer = run(
        admin,
        "SELECT c.segment, sum(v.pages) AS pages FROM crm.customers c "
        "JOIN crm.visits v ON v.customer_id = c.customer_id GROUP BY 1 ORDER BY 1",
    )
    assert answer["engine"] == "postgresql"
    assert answer["columns"] == ["segment", "pages"]
    assert answer["rows"] == [["pro", 10], ["retail", 14]]
    assert answer["truncated"] is False


@pytest.mark.django_db(transaction=True)
def test_cross_source_join_in_duckdb(crm, orders, admin):
    answer = run(
        admin,
        "SELECT o.order_id, c.segment FROM sales.orders o JOIN crm.customers c "
        "ON c.country = o.country WHERE c.segment = 'pro' ORDER BY 1, 2",
    )
    assert answer["engine"] == "federated"
    assert answer["rows"] == [[1, "pro"], [3, "pro"], [4, "pro"]]


@pytest.mark.django_db(transaction=True)
def test_narrowed_grantee_sees_masked_and_filtered_rows(crm, orders, narrowed):
    answer = run(narrowed, "SELECT customer_id, email FROM crm.customers ORDER BY 1")
    assert answer["rows"] == [[1, "****"], [3, None]]
    answer = run(
        narrowed,
        "SELECT o.order_id, o.email, c.customer_id FROM sales.orders o "
        "JOIN crm.customers c ON c.country = o.country ORDER BY 1, 3",
    )
    assert answer["rows"] == [[1, "****", 1], [1, "****", 3], [3, None, 1], [3, None, 3]]


@pytest.mark.django_db(transaction=True)
def test_refusals_name_what(crm, orders, narrowed):
    cases = {
        "SELECT * FROM crm.visits": (403, "crm.visits"),
        "SELECT * FROM crm.nothing": (404, "crm.nothing"),
        "SELECT nope FROM crm.customers": (400, "nope"),
        "SELECT * FROM crm.customers WHERE email = 'ann@x'": (403, "email"),
        "SELECT count(*) FROM crm.customers GROUP BY email": (403, "email"),
        "SELECT upper(email) FROM crm.customers": (403, "email"),
        "SELECT email FROM crm.customers ORDER BY 1": (403, "email"),
        "SELECT * FROM (SELECT email AS e FROM crm.customers) s WHERE e IS NULL": (403, "e"),
        "SELECT email FROM crm.customers INTERSECT SELECT 'x'": (403, "INTERSECT"),
        "SELECT 1 FROM crm.customers WHERE 'a' IN "
        "(SELECT email FROM crm.customers UNION ALL SELECT 'b')": (403, "email"),
        "SELECT e FROM crm.customers c(a, b, e, s)": (400, "alias"),
        "SELECT c FROM crm.customers c": (400, "whole row"),
        "DELETE FROM crm.customers": (400, "DELETE"),
        "SELECT pg_read_file('x')": (400, "pg_read_file"),
    }
    for sql, (status, named) in cases.items():
        with pytest.raises(QueryRefused) as refused:
            run(narrowed, sql)
        assert refused.value.status == status, (sql, str(refused.value))
        assert named in str(refused.value), (sql, str(refused.value))


@pytest.mark.django_db(transaction=True)
def test_one_audit_event_per_product_with_the_query_id(crm, orders, admin):
    answer = run(
        admin,
        "SELECT count(*) FROM sales.orders o JOIN crm.customers c ON c.country = o.country "
        "JOIN sales.orders o2 ON o2.order_id = o.order_id",
    )
    events = AccessEvent.objects.filter(channel="query", detail__query_id=answer["query_id"])
    assert sorted(e.product_key for e in events) == ["crm.customers", "sales.orders"]
    record = FederatedQuery.objects.get(pk=answer["query_id"])
    assert record.status == "succeeded" and record.rows == 1


@pytest.mark.django_db(transaction=True)
def test_row_cap_truncates(crm, admin):
    answer = run(admin, "SELECT * FROM crm.visits", limit=2)
    assert len(answer["rows"]) == 2 and answer["truncated"] is True
    answer = run(admin, "SELECT * FROM crm.visits LIMIT 1", limit=2)
    assert len(answer["rows"]) == 1 and answer["truncated"] is False


@pytest.mark.django_db(transaction=True)
def test_a_stream_port_is_refused_by_name(crm, admin):
    from products.choices import PortKind
    from tests.factories import ColumnFactory, OutputPortFactory, ProductFactory

    product = ProductFactory(domain=crm["customers"].domain, name="Live", slug="live")
    port = OutputPortFactory(
        product=product,
        kind=PortKind.STREAM,
        source=None,
        slug="live",
        stream_name="LIVE",
        stream_subject="live.>",
    )
    ColumnFactory(port=port, name="order_id", position=0, data_type="bigint")
    with pytest.raises(QueryRefused) as refused:
        run(admin, "SELECT * FROM crm.live")
    assert refused.value.status == 400 and "stream" in str(refused.value)


@pytest.mark.django_db(transaction=True)
def test_what_a_workbench_user_writes_runs(crm, narrowed):
    union = run(
        narrowed,
        "SELECT customer_id, email FROM crm.customers UNION ALL "
        "SELECT customer_id, email FROM crm.customers ORDER BY customer_id",
    )
    assert union["rows"] == [[1, "****"], [1, "****"], [3, None], [3, None]]
    ranked = run(
        narrowed,
        "SELECT customer_id, ntile(2) OVER (ORDER BY customer_id) AS half, "
        "percent_rank() OVER (ORDER BY customer_id) AS rank FROM crm.customers "
        "ORDER BY 1 FETCH FIRST 5 ROWS ONLY",
    )
    assert ranked["rows"] == [[1, 1, 0.0], [3, 2, 1.0]]


@pytest.mark.django_db(transaction=True)
def test_outputs_are_named_as_postgresql_names_them_on_every_engine(crm, orders, admin):
    sql = (
        "SELECT o.country, count(*), sum(o.amount), o.amount + 1, "
        "CASE WHEN o.amount > 1 THEN 1 END, CAST(o.order_id AS text) "
        "FROM sales.orders o GROUP BY 1, 4, 5, 6 ORDER BY 1 LIMIT 1"
    )
    answer = run(admin, sql)
    assert answer["engine"] == "federated"
    assert answer["columns"] == ["country", "count", "sum", "?column?", "case", "order_id"]
    on_postgres = run(admin, "SELECT count(*), max(segment) FROM crm.customers")
    assert on_postgres["columns"] == ["count", "max"]
