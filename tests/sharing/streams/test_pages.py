"""The Data tab of a stream port: the reader's access and a live tail fed by the API's
Server-Sent Events (static/js/stream_tail.js), instead of a preview and downloads."""

import pytest

from sharing.access.services.grants import grant_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/products/sales/live-orders/data/"


def test_the_data_tab_of_a_stream_port_is_a_live_tail_with_the_streams_retention(
    client, stream_product, nats_stream, owner
):
    nats_stream.publish({"order_id": 1})
    client.force_login(owner)
    page = client.get(PAGE).content.decode()
    assert (
        'data-stream-tail="/api/v1/products/sales.live-orders/stream/?format=sse&amp;from=-20&amp;port=orders"'
        in page
    )
    assert "It holds 1 message (limits retention)" in page
    assert "Download" not in page


def test_a_grantee_sees_the_masked_columns_and_the_row_filter(client, stream_product, owner):
    reader = UserFactory(username="reader")
    grant_create(
        product=stream_product,
        by=owner,
        user=reader,
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
        reason="Belgian orders",
    )
    client.force_login(reader)
    page = client.get(PAGE).content.decode()
    assert '<code>email</code> <span class="pill">masked</span>' in page
    assert "Only rows where <strong>country is BE</strong>" in page


def test_someone_without_access_is_told_to_ask(client, stream_product, outsider):
    client.force_login(outsider)
    page = client.get(PAGE).content.decode()
    assert "You cannot read this product’s rows" in page
    assert "data-stream-tail" not in page


def test_the_overview_and_the_port_form_show_the_stream(client, stream_product, nats_stream, owner):
    client.force_login(owner)
    overview = client.get("/products/sales/live-orders/").content.decode()
    assert f"stream {nats_stream.name}: {nats_stream.subject}" in overview
    form = client.get("/products/sales/live-orders/ports/orders/edit/").content.decode()
    assert f'value="{nats_stream.name}"' in form and f'value="{nats_stream.subject}"' in form
    response = client.post(
        "/products/sales/live-orders/ports/orders/edit/",
        {
            "name": "Orders",
            "kind": "stream",
            "stream_name": "MARKETING_CLICKS",
            "stream_subject": nats_stream.subject,
        },
    )
    assert response.status_code == 400  # the form again, saying why
    assert "starts with SALES_" in response.content.decode()
