"""The Data tab's "Use in Python" card: the install line of the client the portal serves,
a snippet of this product with the reader's own columns, port and row filter (in words),
a copy button and a link to create a token; and the snippet reads what the page shows."""

from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.test import Client

from portal.api.tokens import api_token_create
from portal.site.client_package import client_wheel_filename
from tests.factories import ColumnFactory, FilePortFactory
from tests.sharing.readers import NARROW_COLUMNS, PAGE, make_reader

INSTALL = f"pip install http://testserver/client/{client_wheel_filename()}"


def card(client: Client, user, **params) -> dict[str, str]:
    client.force_login(user)
    page = client.get(PAGE, params).content.decode()
    found = {}
    for name in ("notebook-install", "notebook-snippet"):
        match = re.search(
            rf'<pre class="code-snippet" id="{name}"><code>(.*?)</code></pre>', page, re.S
        )
        found[name] = html_lib.unescape(match.group(1)) if match else ""
    found["page"] = page
    return found


def test_a_narrowed_grantee_gets_their_columns_and_filter(client, orders):
    shown = card(client, make_reader("narrow_grant", orders))
    assert shown["notebook-install"] == INSTALL
    assert shown["notebook-snippet"] == (
        "from portal_client import Portal\n"
        "\n"
        'portal = Portal("http://testserver")  # your token from PORTAL_TOKEN\n'
        "# Your grant serves only rows where country is BE.\n"
        "orders = portal.read(\n"
        '    "sales.orders",\n'
        '    columns=["order_id", "country", "email"],\n'
        ")"
    )
    page = shown["page"]
    assert 'data-copy-from="notebook-snippet"' in page and "js/copy.js" in page
    assert (
        'href="/my/tokens/?name=Notebook%3A+Orders&amp;next=%2Fproducts%2Fsales%2Forders%2Fdata%2F">'
        "Create a token</a>"
    ) in page


def test_a_full_grant_reads_every_column_and_is_told_of_masking(client, orders):
    snippet = card(client, make_reader("full_grant", orders))["notebook-snippet"]
    assert "columns=" not in snippet
    assert "# Served masked (****): email, iban." in snippet
    assert snippet.endswith('orders = portal.read("sales.orders")')


def test_a_member_gets_the_plain_read(client, orders, member):
    snippet = card(client, member)["notebook-snippet"]
    assert "#" not in snippet.split("\n", 3)[-1]  # no filter, no masking
    assert snippet.endswith('orders = portal.read("sales.orders")')


@pytest.mark.parametrize("kind", ["expired", "revoked", "no_grant"])
def test_no_card_without_access(client, orders, kind):
    shown = card(client, make_reader(kind, orders))
    assert shown["notebook-snippet"] == ""
    assert "Use in Python" not in shown["page"]


def test_the_chosen_port_is_named_when_there_are_several(client, orders, member, media_root):
    pq.write_table(pa.table({"refund_id": [7, 8]}), media_root / "matrix" / "refunds.parquet")
    port = FilePortFactory(
        product=orders, name="Refunds", slug="refunds", file_path="matrix/refunds.parquet"
    )
    ColumnFactory(port=port, name="refund_id", position=0)
    assert 'port="orders"' in card(client, member)["notebook-snippet"]
    assert 'port="refunds"' in card(client, member, port="refunds")["notebook-snippet"]


@pytest.mark.django_db(transaction=True)
def test_the_snippet_reads_what_the_grant_allows(orders, live_server, monkeypatch):
    """The narrowed grantee's snippet, run with the real client on a live portal, gives
    their three columns and only the rows of their filter."""
    reader = make_reader("narrow_grant", orders)
    snippet = card(Client(), reader)["notebook-snippet"]
    _, token = api_token_create(user=reader, name="card test", lifetime=timedelta(days=7))
    monkeypatch.setenv("PORTAL_TOKEN", token)
    namespace: dict = {}
    exec(snippet.replace("http://testserver", live_server.url), namespace)  # noqa: S102
    frame = namespace["orders"]
    assert list(frame.columns) == NARROW_COLUMNS
    assert set(frame["country"]) == {"BE"} and len(frame) == 2
