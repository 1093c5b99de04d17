"""The monitors observe stream ports too: whether the stream can be read, how many
messages it holds and how old its subject's last message is (freshness), so freshness
and availability SLOs and incidents work for streams as for tables."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.models import Event
from products.choices import PortKind
from products.models import OutputPort
from products.trust.services.checks import check_create
from products.trust.services.monitors import port_observe
from tests.factories import ProductFactory
from tests.sharing.streams.conftest import open_stream, order

pytestmark = pytest.mark.django_db


@pytest.fixture
def nats_stream(settings):
    yield from open_stream(settings)


@pytest.fixture
def stream_port(nats_stream, domain, owner):
    product = ProductFactory(domain=domain, slug="live-orders", owners=[owner])
    return OutputPort.objects.create(
        product=product,
        name="Orders",
        slug="orders",
        kind=PortKind.STREAM,
        stream_name=nats_stream.name,
        stream_subject=nats_stream.subject,
    )


def test_a_stream_port_is_observed_by_its_message_count_and_last_message(stream_port, nats_stream):
    before = timezone.now()
    nats_stream.publish(order(1), order(2))
    observation = port_observe(port=stream_port)
    assert observation.available and observation.row_count == 2
    assert observation.newest_at >= before.replace(microsecond=0)
    assert 0 <= observation.freshness_lag_seconds < 3600


def test_a_stream_that_is_gone_is_unavailable(stream_port):
    stream_port.stream_name = "SALES_STREAMSTEST_GONE"
    observation = port_observe(port=stream_port)
    assert not observation.available
    assert "SALES_STREAMSTEST_GONE" in observation.error


def test_a_stream_whose_producer_stopped_emits_lag_breached_once_per_stall(
    stream_port, nats_stream, settings
):
    settings.STREAM_LAG_LIMIT_SECONDS = 300
    start = timezone.now()
    nats_stream.publish(order(1))
    port_observe(port=stream_port, now=start + timedelta(seconds=60))
    assert not Event.objects.filter(type="portal.stream.lag_breached").exists()

    port_observe(port=stream_port, now=start + timedelta(minutes=10))
    port_observe(port=stream_port, now=start + timedelta(minutes=11))
    (event,) = Event.objects.filter(type="portal.stream.lag_breached")
    assert event.subject == "sales.live-orders" and event.product_id == stream_port.product_id
    assert event.data["port"] == "orders" and event.data["messages"] == 1
    assert event.data["lag_seconds"] >= 600

    nats_stream.publish(order(2))  # the producer came back, then stopped again
    port_observe(port=stream_port, now=start + timedelta(minutes=30))
    assert Event.objects.filter(type="portal.stream.lag_breached").count() == 2


def test_a_stream_port_takes_slos_not_checks(stream_port, owner):
    """A check reads a table or a file; on a stream port it could only fail to run, so it
    is refused with what watches a stream instead."""
    with pytest.raises(ValidationError) as excinfo:
        check_create(port=stream_port, by=owner, kind="not_null", column="order_id")
    assert "Add an SLO instead" in " ".join(excinfo.value.message_dict["kind"])
