"""The Data tab of a product: preview, masking, the grant's row filter in words, download
buttons, a port switcher; or why not and where to ask. Queries are pinned."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sharing.models import AccessEvent
from tests.factories import ColumnFactory, FilePortFactory
from tests.sharing.readers import DOWNLOAD, PAGE, make_reader


def test_the_product_tabs_link_to_the_data_tab(client, orders, outsider):
    client.force_login(outsider)
    html = client.get(orders.get_absolute_url()).content.decode()
    assert f'href="{PAGE}"' in html
    response = client.get(PAGE)
    assert f'<a href="{PAGE}" aria-current="page">Data</a>' in response.content.decode()


def test_grantee_sees_masking_the_row_filter_in_words_and_downloads(client, orders):
    client.force_login(make_reader("full_grant", orders))
    html = client.get(PAGE).content.decode()
    assert html.count('<span class="pill">masked</span>') == 2  # email and iban
    assert "<td>****</td>" in html
    assert f'href="{DOWNLOAD}?format=csv&amp;port=orders"' in html
    assert f'href="{DOWNLOAD}?format=parquet&amp;port=orders"' in html

    client.force_login(make_reader("narrow_grant", orders))
    response = client.get(PAGE)
    html = response.content.decode()
    assert "Only rows where <strong>country is BE</strong>." in html
    assert "Your grant covers 3 of 5 columns." in html
    assert "masked" not in [c["masked"] and "masked" for c in response.context["columns"]]


def test_member_reads_everything_and_is_told_so(client, orders, member):
    client.force_login(member)
    html = client.get(PAGE).content.decode()
    assert "Member of the Sales domain." in html
    assert "You read every column and every row, unmasked." in html
    assert 'pill">masked' not in html
    # Number columns' headers align right, as their cells do; text columns' do not.
    assert '<th scope="col" class="num"><code>order_id</code></th>' in html
    assert '<th scope="col" class="num"><code>amount</code></th>' in html
    assert '<th scope="col"><code>country</code></th>' in html


def test_no_access_says_why_and_where_to_ask(client, orders):
    client.force_login(make_reader("expired", orders))
    html = client.get(PAGE).content.decode()
    assert "Your access to this product has expired. Request access again." in html
    assert 'href="/products/sales/orders/access/#request-access"' in html
    assert "Download" not in html


def test_port_switcher_reads_the_chosen_port(client, orders, member, media_root):
    path = media_root / "matrix" / "refunds.parquet"
    pq.write_table(pa.table({"refund_id": [7, 8]}), path)
    port = FilePortFactory(
        product=orders, name="Refunds", slug="refunds", file_path="matrix/refunds.parquet"
    )
    ColumnFactory(port=port, name="refund_id", position=0)
    client.force_login(member)
    html = client.get(PAGE).content.decode()  # the first port by name
    assert f'href="{PAGE}?port=refunds"' in html
    assert "<code>order_id</code>" in html
    response = client.get(PAGE, {"port": "refunds"})
    assert response.context["rows"] == [(7,), (8,)]
    assert 'aria-current="true">Refunds</a>' in response.content.decode()
    response = client.get(PAGE, {"port": "nope"})
    assert "This product has no output port &#x27;nope&#x27;." in response.content.decode()
    assert AccessEvent.objects.filter(detail__port="refunds").count() == 1


def test_unknown_download_format_is_400(client, orders, member):
    client.force_login(member)
    response = client.get(DOWNLOAD, {"format": "json"})
    assert response.status_code == 400
    assert "csv or parquet" in response.content.decode()


@pytest.mark.parametrize("kind", ["member", "narrow_grant", "no_grant"])
def test_data_tab_query_count_is_pinned(
    client,
    orders,
    kind,
    django_assert_max_num_queries,
):
    client.force_login(make_reader(kind, orders))
    client.get(PAGE)  # warm the session
    # 19: the product header also shows active announcements (one query), since issue 7;
    # 20: and its deciders' count of pending requests on the Access tab, since issue 15;
    # 21: the top bar's links by what the person can use (portal_display.main_nav).
    with django_assert_max_num_queries(21):
        assert client.get(PAGE).status_code == 200


def test_data_rows_render_each_value_as_the_template_would(settings):
    """The preview's rows come from one tag (portal_tags.data_rows): each value reads as
    `{{ value }}` would show it (escaped, local time, localized), None as "null"."""
    import datetime
    from decimal import Decimal

    from django.template import Context, Template

    settings.TIME_ZONE = "Europe/Brussels"
    rows = [
        ("<b>bold</b>", None, 3.5, Decimal("12.30")),
        (
            datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC),
            datetime.date(2026, 1, 2),
            7,
            "a&b",
        ),
    ]
    # Numbers right-aligned (class "num"): 3.5, 12.30 and 7 here.
    numbers = {3.5, Decimal("12.30"), 7}
    cells = [[(value, value in numbers) for value in row] for row in rows]
    loop = Template(
        "{% for row in cells %}<tr>{% for value, num in row %}"
        '<td{% if num %} class="num"{% endif %}>{% if value is None %}'
        '<span class="muted">null</span>{% else %}{{ value }}{% endif %}</td>{% endfor %}'
        "</tr>{% endfor %}"
    ).render(Context({"cells": cells}))
    tag = Template("{% load portal_tags %}{% data_rows rows %}").render(Context({"rows": rows}))
    assert tag.replace("\n", "") == loop
    assert "&lt;b&gt;bold&lt;/b&gt;" in tag and "a&amp;b" in tag
    assert "4:04" in tag  # 03:04 UTC shown in Brussels time
