"""Stream ports (kind `stream`): a JetStream stream and subject on the portal's NATS
server, named within the domain's prefix, with a schema learnt from sampled messages."""

import pytest
from django.core.exceptions import ValidationError

from products.catalog.services.ports import output_port_create, stream_prefix
from products.catalog.services.schema_refresh import (
    schema_refresh_execute,
    schema_refresh_request,
)
from products.choices import MembershipRole, PortKind, RunStatus
from tests.factories import DomainFactory, MembershipFactory, ProductFactory, UserFactory
from tests.sharing.streams.conftest import open_stream

pytestmark = pytest.mark.django_db


@pytest.fixture
def nats_stream(settings):
    yield from open_stream(settings)


@pytest.fixture
def product(domain, owner):
    return ProductFactory(domain=domain, name="Live orders", slug="live-orders", owners=[owner])


def test_the_prefix_of_a_domain_s_streams(domain):
    assert stream_prefix(domain) == "SALES_"
    assert stream_prefix(DomainFactory(slug="supply-chain")) == "SUPPLY_CHAIN_"


def test_an_owner_adds_a_stream_port_and_its_schema_is_learnt_from_messages(
    product, owner, nats_stream
):
    nats_stream.publish(
        {"order_id": 1, "country": "BE", "amount": 10, "placed_at": "2026-12-05T10:00:00Z"},
        {"order_id": 2, "country": None, "amount": 12.5, "placed_at": "2026-12-05T10:01:00Z"},
        {"order_id": 3, "amount": 1, "tags": ["a"], "paid": True, "placed_at": "2026-12-05"},
        b"not json",
    )
    port = output_port_create(
        product=product,
        by=owner,
        name="Orders",
        kind=PortKind.STREAM,
        stream_name=nats_stream.name,
        stream_subject=nats_stream.subject,
        relation_must_exist=True,
    )
    assert port.location == f"stream {nats_stream.name}: {nats_stream.subject}"
    run = schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    columns = {c.name: (c.data_type, c.nullable) for c in port.columns.all()}
    assert columns == {
        "order_id": ("bigint", False),
        "country": ("text", True),
        "amount": ("double", False),  # whole and fractional numbers: double
        "placed_at": ("text", False),  # a timestamp and a date: text
        "tags": ("json", True),
        "paid": ("boolean", True),
    }


def test_a_stream_that_is_not_there_is_refused_when_it_must_exist(product, owner, nats_stream):
    with pytest.raises(ValidationError) as caught:
        output_port_create(
            product=product,
            by=owner,
            name="Orders",
            kind=PortKind.STREAM,
            stream_name="SALES_STREAMSTEST_MISSING",
            stream_subject=nats_stream.subject,
            relation_must_exist=True,
        )
    assert "There is no stream SALES_STREAMSTEST_MISSING" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        output_port_create(
            product=product,
            by=owner,
            name="Orders",
            kind=PortKind.STREAM,
            stream_name=nats_stream.name,
            stream_subject="streamstest.other",
            relation_must_exist=True,
        )
    assert "does not carry the subject streamstest.other" in str(caught.value)


@pytest.mark.parametrize(
    ("stream_name", "subject", "field", "words"),
    [
        ("MARKETING_CLICKS", "marketing.clicks", "stream_name", "starts with SALES_"),
        ("SALES_ORDERS", "portal.events.>", "stream_subject", "portal's events"),
        ("SALES ORDERS", "sales.orders", "stream_name", "letters, digits"),
        ("SALES_ORDERS", "sales..orders", "stream_subject", "dot-separated"),
        ("SALES_ORDERS", "", "stream_subject", "dot-separated"),
    ],
)
def test_a_steward_names_only_streams_of_their_domain(domain, stream_name, subject, field, words):
    """The attacker: a steward of Sales naming Marketing's stream, or the portal's events."""
    steward = UserFactory(username="sales-steward")
    MembershipFactory(domain=domain, user=steward, role=MembershipRole.STEWARD)
    product = ProductFactory(domain=domain, slug="taken")
    with pytest.raises(ValidationError) as caught:
        output_port_create(
            product=product,
            by=steward,
            name="Clicks",
            kind=PortKind.STREAM,
            stream_name=stream_name,
            stream_subject=subject,
        )
    assert words in " ".join(caught.value.message_dict[field])
