"""The demo's shared SQL queries: after seeding, both are listed on the SQL page and run
(on the demo's warehouse) for an admin; the viewer, without grants, is refused by name;
seeding again saves nothing twice."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from products.demo.queries import QUERIES
from sharing.federation.refusals import QueryRefused
from sharing.federation.services.running import query_rows, query_start
from sharing.models import SavedQuery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("demo_settings")]


def test_shared_queries_run_with_each_reader_s_access(client):
    call_command("seed_demo", "--rows-scale", "0.05", stdout=StringIO())
    users = get_user_model().objects
    saved = list(SavedQuery.objects.filter(shared=True).order_by("name"))
    assert [query.name for query in saved] == sorted(name for _, name, _ in QUERIES)
    admin = users.get(username="admin")
    for query in saved:
        answer = query_rows(query_start(user=admin, sql=query.sql))
        assert answer["rows"], query.name
        assert all(row[1] > 0 for row in answer["rows"]), query.name
    with pytest.raises(QueryRefused) as refused:
        query_start(user=users.get(username="viewer"), sql=saved[0].sql)
    assert refused.value.status == 403
    client.force_login(users.get(username="analyst"))
    page = client.get("/sql/").content.decode()
    assert all(query.name in page for query in saved)

    call_command("seed_demo", "--rows-scale", "0.05", stdout=StringIO())
    assert SavedQuery.objects.count() == len(QUERIES)
