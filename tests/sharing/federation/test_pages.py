"""The SQL page, through Django's test client: run, explain, save, download, refusals."""

from __future__ import annotations

import pytest

from sharing.models import SavedQuery
from tests.factories import UserFactory

PAGE = "/sql/"


@pytest.mark.django_db(transaction=True)
def test_page_lists_products_with_masks(crm, orders, narrowed, client):
    client.force_login(narrowed)
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "crm.customers" in html and "sales.orders" in html
    assert "masked" in html  # email, for this grantee
    assert "You have no access to this product" in html  # crm.visits, no grant


@pytest.mark.django_db(transaction=True)
def test_run_shows_the_answer_and_a_chart(crm, admin, client):
    client.force_login(admin)
    response = client.post(
        PAGE,
        {
            "sql": "SELECT segment, count(*) AS customers FROM crm.customers GROUP BY 1 ORDER BY 1",
            "action": "run",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert '<th scope="col">customers</th>' in html
    assert "plotly-chart" in html
    assert "retail" in html


@pytest.mark.django_db(transaction=True)
def test_refusal_is_a_4xx_with_the_message_and_keeps_the_sql(crm, narrowed, client):
    client.force_login(narrowed)
    sql = "SELECT * FROM crm.customers WHERE email = 'x'"
    response = client.post(PAGE, {"sql": sql, "action": "run"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "email" in html and "masked" in html
    assert "WHERE email = &#x27;x&#x27;" in html  # the editor keeps what was written


@pytest.mark.django_db(transaction=True)
def test_explain_in_words(crm, orders, narrowed, client):
    client.force_login(narrowed)
    response = client.post(
        PAGE,
        {
            "sql": "SELECT o.email, c.segment FROM sales.orders o JOIN crm.customers c "
            "ON c.country = o.country",
            "action": "explain",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "What would run" in html and "joined in the portal" in html


@pytest.mark.django_db(transaction=True)
def test_save_share_and_open_by_someone_else(crm, admin, narrowed, client):
    client.force_login(admin)
    response = client.post(
        PAGE,
        {
            "sql": "SELECT * FROM crm.customers",
            "action": "save",
            "name": "All customers",
            "shared": "on",
        },
    )
    assert response.status_code == 302
    saved = SavedQuery.objects.get(name="All customers")
    client.force_login(narrowed)
    page = client.get(f"{PAGE}?saved={saved.pk}").content.decode()
    assert "SELECT * FROM crm.customers</textarea>" in page
    # Run by the grantee: their own access (Belgian rows, email masked).
    answer = client.post(PAGE, {"sql": saved.sql, "action": "run"}).content.decode()
    assert "****" in answer and "bob@x" not in answer and "NL" not in answer
    # Not theirs to delete.
    client.post(f"/sql/saved/{saved.pk}/delete/")
    assert SavedQuery.objects.filter(pk=saved.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_save_refuses_bad_sql_and_blank_names(crm, admin, client):
    client.force_login(admin)
    response = client.post(PAGE, {"sql": "DROP TABLE x", "action": "save", "name": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Give the query a name." in html and "cannot be saved" in html
    assert not SavedQuery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_download_csv(crm, admin, client):
    client.force_login(admin)
    response = client.post(
        PAGE, {"sql": "SELECT customer_id FROM crm.customers ORDER BY 1", "action": "download"}
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode().split() == [
        '"customer_id"',
        "1",
        "2",
        "3",
        "4",
    ]


@pytest.mark.django_db
def test_empty_state_for_someone_without_access(client):
    client.force_login(UserFactory(username="newcomer"))
    html = client.get(PAGE).content.decode()
    assert "cannot read any product yet" in html


def test_signed_out_is_sent_to_sign_in(client, db):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]
