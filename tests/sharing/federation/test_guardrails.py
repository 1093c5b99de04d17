"""Guardrails of federated queries on a real PostgreSQL source: time limit and cancel
stop the statement on the source (pg_stat_activity says so), the cost budget refuses
before anything runs, the per-person rate, the per-source concurrency, the answer cache."""

from __future__ import annotations

import threading

import psycopg
import pytest
import redis
from django.db import connection

from products.connectors import ConnectorError
from sharing.federation.refusals import QueryRefused
from sharing.federation.services.running import (
    query_cancel,
    query_error_status,
    query_rows,
    query_start,
)
from sharing.models import FederatedQuery
from tests.conftest import pg_info, wait_for

# With `many_visits`, a billion combinations for PostgreSQL to count: minutes.
SLOW = "SELECT count(*) FROM crm.visits a, crm.visits b, crm.visits c WHERE a.pages >= 0"

live = pytest.mark.django_db(transaction=True)


@pytest.fixture
def many_visits(crm, postgres, settings):
    """1,000 visits (a slow query's material) and a cost budget that lets it run."""
    settings.QUERY_COST_BUDGET = 1e30
    with psycopg.connect(**pg_info(postgres), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO federation_test.visits SELECT i, i FROM generate_series(1, 1000) i"
        )
        conn.execute("ANALYZE federation_test.visits")


def portal_sessions(postgres, label: str | None = None) -> list[tuple]:
    """Active statements of federated queries on the source (the test database)."""
    with psycopg.connect(**pg_info(postgres), autocommit=True) as conn:
        return conn.execute(
            "SELECT application_name, state FROM pg_stat_activity "
            "WHERE application_name LIKE %s AND state = 'active'",
            [label or "portal-query-%"],
        ).fetchall()


@live
def test_time_limit_cancels_the_statement_on_the_source(many_visits, admin, settings, postgres):
    settings.QUERY_TIMEOUT_SECONDS = 1
    settings.QUERY_CACHE_SECONDS = 0
    running = query_start(user=admin, sql=SLOW)
    with pytest.raises(ConnectorError) as failed:
        query_rows(running)
    assert query_error_status(failed.value) == 504
    assert not portal_sessions(postgres, running.label)
    assert FederatedQuery.objects.get(pk=running.id).status == "failed"


@live
def test_cancel_stops_the_statement_on_the_source(many_visits, admin, settings, postgres):
    settings.QUERY_TIMEOUT_SECONDS = 60
    settings.QUERY_CACHE_SECONDS = 0
    running = query_start(user=admin, sql=SLOW)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["answer"] = query_rows(running)
        except ConnectorError as exc:
            outcome["error"] = str(exc)
        finally:
            connection.close()  # this thread's own: back to the pool the live server uses

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: portal_sessions(postgres, running.label), message="the query never started")
    query_cancel(user=admin, query_id=running.id)
    thread.join(timeout=30)
    assert outcome == {"error": "The query was cancelled."}
    assert not portal_sessions(postgres, running.label)
    assert FederatedQuery.objects.get(pk=running.id).status == "cancelled"
    with pytest.raises(QueryRefused) as refused:
        query_cancel(user=admin, query_id=running.id)
    assert refused.value.status == 409


@live
def test_cancel_is_only_for_the_owner(crm, admin, narrowed):
    running = query_start(user=admin, sql="SELECT 1 AS one FROM crm.visits")
    with pytest.raises(QueryRefused) as refused:
        query_cancel(user=narrowed, query_id=running.id)
    assert refused.value.status == 404


@live
def test_cost_budget_refuses_before_running(many_visits, admin, settings, postgres):
    settings.QUERY_COST_BUDGET = 10
    settings.QUERY_CACHE_SECONDS = 0
    running = query_start(user=admin, sql=SLOW)
    with pytest.raises(QueryRefused, match="budget") as refused:
        query_rows(running)
    assert refused.value.status == 400
    assert not portal_sessions(postgres, running.label)


@live
def test_rate_limit_per_person(crm, admin, settings):
    settings.QUERY_RATE_LIMIT = "2/min"
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("portal:ratelimit:query:*"):
        client.delete(key)
    for _ in range(2):
        query_start(user=admin, sql="SELECT 1 AS one FROM crm.visits")
    with pytest.raises(QueryRefused) as refused:
        query_start(user=admin, sql="SELECT 1 AS one FROM crm.visits")
    assert refused.value.status == 429 and "wait" in str(refused.value)


@live
def test_source_concurrency(many_visits, admin, settings, postgres):
    settings.QUERY_SOURCE_CONCURRENCY = 1
    settings.QUERY_TIMEOUT_SECONDS = 60
    settings.QUERY_CACHE_SECONDS = 0
    slow = query_start(user=admin, sql=SLOW)

    def run() -> None:
        try:
            with pytest.raises(ConnectorError):
                query_rows(slow)
        finally:
            connection.close()  # as above

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for(lambda: portal_sessions(postgres, slow.label), message="never started")
        with pytest.raises(QueryRefused) as refused:
            query_rows(query_start(user=admin, sql="SELECT count(*) FROM crm.customers"))
        assert refused.value.status == 503
    finally:
        query_cancel(user=admin, query_id=slow.id)
        thread.join(timeout=30)
    assert not portal_sessions(postgres, slow.label)


@live
def test_answers_are_cached_until_the_data_changes(crm, admin, settings, postgres):
    settings.QUERY_CACHE_SECONDS = 60
    sql = "SELECT count(*) AS n FROM crm.visits"
    first = query_rows(query_start(user=admin, sql=sql))
    second = query_rows(query_start(user=admin, sql=sql))
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["rows"] == first["rows"] == [[5]]
    with psycopg.connect(**pg_info(postgres), autocommit=True) as conn:
        conn.execute("INSERT INTO federation_test.visits VALUES (9, 1)")
    # PostgreSQL publishes its row counters within about a second of the commit.
    wait_for(
        lambda: query_rows(query_start(user=admin, sql=sql))["rows"] == [[6]],
        timeout=10,
        interval=0.5,
        message="the cache kept the old answer",
    )
