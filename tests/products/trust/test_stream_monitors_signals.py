"""The stream monitors' own figures, on the real NATS server: messages per minute between
observations, the lag of the stream's durable consumers, the new messages that do not match
the port's schema (counted as the governed read counts them), SLOs on both that open an
incident and emit portal.slo.breached as other SLOs do; and all of it on the quality tab, the
SLO form and the API. Times are passed as `now`: no test waits for a clock."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from nats.js.api import AckPolicy, ConsumerConfig

from portal.models import Event
from products.choices import IncidentCause, IncidentStatus, SLOKind
from products.contracts.services.contracts import contract_export
from products.contracts.services.mapping import contract_map
from products.models import Incident
from products.trust.services import monitors
from products.trust.services.evidence import trust_after_observation
from products.trust.services.monitors import port_observe
from products.trust.services.slos import slo_create
from sharing.choices import Channel
from sharing.models import AccessEvent
from tests.sharing.streams.conftest import open_stream, order, stream_product  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

PAGE = "/products/sales/live-orders/"
API = "/api/v1/products/sales.live-orders/slos/"

# Observations at START + minutes, in the past: SLOs are measured up to the present.
START = timezone.now().replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def nats_stream(settings):
    yield from open_stream(settings)


@pytest.fixture
def stream_port(stream_product):  # noqa: F811 - the imported fixture, requested
    """Sales' Live orders' stream port (tests/sharing/streams/conftest.py), with the shared
    schema: order_id bigint not null; country, amount, email, placed_at nullable."""
    return stream_product.ports.get()


def _observe(port, minutes):
    observation = port_observe(port=port, now=START + timedelta(minutes=minutes))
    trust_after_observation(observation=observation)
    return observation


def _durable(stream, name, *, take=0, ack=False):
    """A durable pull consumer `name` on the stream's subject that fetched `take` messages
    and acknowledged them (ack) or not."""

    async def consume():
        subscription = await stream._js.pull_subscribe(
            stream.subject,
            durable=name,
            stream=stream.name,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
        )
        if take:
            for message in await subscription.fetch(take, timeout=2):
                if ack:
                    await message.ack_sync()

    stream._run(consume())


# --- messages per minute -------------------------------------------------------------------


def test_messages_per_minute_comes_from_what_arrived_between_two_observations(
    stream_port, nats_stream
):
    nats_stream.publish(*(order(n) for n in range(3)))
    first = _observe(stream_port, 0)
    assert first.messages_per_minute is None  # nothing to measure from yet
    assert first.stream_last_seq == 3 and first.validated_messages == 3

    nats_stream.publish(*(order(n) for n in range(10)))
    second = _observe(stream_port, 2)
    assert second.messages_per_minute == 5.0
    assert second.stream_last_seq == 13 and second.validated_messages == 10

    third = _observe(stream_port, 7)  # a quiet five minutes
    assert third.messages_per_minute == 0.0 and third.invalid_per_minute == 0.0


def test_messages_on_other_subjects_of_the_stream_are_not_the_ports(
    stream_port, nats_stream, settings
):
    other = f"{nats_stream.subject}-refunds"

    async def widen_and_publish():
        info = await nats_stream._js.stream_info(nats_stream.name)
        info.config.subjects = [nats_stream.subject, other]
        await nats_stream._js.update_stream(info.config)
        for _ in range(4):
            await nats_stream._js.publish(other, b'{"refund": 1}')

    _observe(stream_port, 0)
    nats_stream._run(widen_and_publish())
    nats_stream.publish(order(1), order(2))
    observation = _observe(stream_port, 1)
    assert observation.messages_per_minute == 2.0
    assert observation.validated_messages == 2 and observation.invalid_messages == 0


# --- consumer lag ----------------------------------------------------------------------------


def test_consumer_lag_is_the_durable_consumer_furthest_behind(stream_port, nats_stream):
    nats_stream.publish(*(order(n) for n in range(5)))
    _durable(nats_stream, "billing", take=2, ack=False)  # 2 unacknowledged, 3 not delivered
    _durable(nats_stream, "audit", take=5, ack=True)  # all caught up
    observation = _observe(stream_port, 0)
    assert observation.consumer_lag == 5 and observation.consumer_lag_name == "billing"


def test_a_stream_without_durable_consumers_has_no_consumer_lag(stream_port, nats_stream):
    nats_stream.publish(order(1))
    observation = _observe(stream_port, 0)  # the monitor's own consumer is not counted
    assert observation.consumer_lag is None and observation.consumer_lag_name == ""


# --- schema-invalid messages ------------------------------------------------------------------


INVALID = [
    b"not json at all",
    b"[1, 2, 3]",
    {**order(7), "order_id": "seven"},  # a bigint column sent a word
    {"country": "BE", "amount": 3.5},  # order_id (not nullable) missing
    {**order(8), "amount": "lots"},  # a double column sent a word
]


def test_new_messages_that_do_not_match_the_schema_are_counted_with_a_reason_and_no_value(
    stream_port, nats_stream
):
    _observe(stream_port, 0)
    nats_stream.publish(
        order(1),
        {**order(2), "order_id": "2"},  # a whole number written as text fits a bigint
        {**order(3), "country": None, "extra": True},  # null where nullable, a key more
        *INVALID,
    )
    observation = _observe(stream_port, 2)
    assert observation.validated_messages == 8
    assert observation.invalid_messages == 5
    assert observation.invalid_per_minute == 2.5
    assert observation.invalid_example == "message 4: not JSON"
    later = _observe(stream_port, 3)  # only what is new is checked again
    assert later.validated_messages == 0 and later.invalid_messages == 0


def test_the_monitor_counts_invalid_exactly_the_messages_the_governed_read_does_not_serve(
    stream_port, nats_stream, owner, client_as
):
    nats_stream.publish(order(1), *INVALID, order(2))
    observation = _observe(stream_port, 0)  # the first observation checks the newest too
    response = client_as(owner).get("/api/v1/products/sales.live-orders/stream/", {"from": "1"})
    assert response.status_code == 200
    b"".join(response.streaming_content)
    read = AccessEvent.objects.get(channel=Channel.STREAM)
    assert read.rows == 2
    assert observation.invalid_messages == read.detail["invalid"] == len(INVALID)
    assert "seven" not in observation.invalid_example


def test_an_observation_checks_only_the_newest_messages_and_estimates_the_rate(
    stream_port, nats_stream, monkeypatch
):
    monkeypatch.setattr(monitors, "STREAM_VALIDATE_MESSAGES", 4)
    _observe(stream_port, 0)
    nats_stream.publish(b"old and broken", order(1), b"broken", order(2), order(3), b"[]")
    observation = _observe(stream_port, 1)
    assert observation.messages_per_minute == 6.0
    assert observation.validated_messages == 4  # the newest 4: broken, 2, 3, []
    assert observation.invalid_messages == 2
    assert observation.invalid_per_minute == 3.0  # half of the 6 that arrived


# --- SLOs and incidents -----------------------------------------------------------------------


def test_a_consumer_lag_slo_breach_opens_an_incident_and_recovery_resolves_it(
    stream_port, nats_stream, owner
):
    product = stream_port.product
    slo = slo_create(
        product=product, by=owner, kind=SLOKind.CONSUMER_LAG, target_percent=50, value="3"
    )
    assert slo.unit == "messages"
    nats_stream.publish(*(order(n) for n in range(5)))
    _durable(nats_stream, "billing")  # subscribed, never fetched: 5 behind
    _observe(stream_port, 0)

    incident = Incident.objects.get(product=product, cause=IncidentCause.SLO)
    assert incident.status == IncidentStatus.OPEN
    assert "Consumer lag SLO breached" in incident.title and "at most 3 messages" in incident.title
    (event,) = Event.objects.filter(type="portal.slo.breached")
    assert event.data["kind"] == "consumer_lag" and event.data["incident_id"] == incident.pk

    _durable(nats_stream, "billing", take=5, ack=True)
    _observe(stream_port, 5)
    _observe(stream_port, 10)  # 2 of 3 observations within 3 messages: 67% >= 50%
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert Event.objects.filter(type="portal.slo.breached").count() == 1


def test_an_invalid_messages_slo_breach_opens_an_incident(stream_port, nats_stream, owner):
    product = stream_port.product
    slo_create(
        product=product, by=owner, kind=SLOKind.INVALID_MESSAGES, target_percent=99, value="1"
    )
    _observe(stream_port, 0)
    nats_stream.publish(order(1), order(2))
    _observe(stream_port, 1)  # 0 invalid per minute: met
    assert not Incident.objects.filter(product=product).exists()

    nats_stream.publish(*INVALID)
    _observe(stream_port, 2)  # 5 invalid per minute
    incident = Incident.objects.get(product=product, cause=IncidentCause.SLO)
    assert "Invalid messages SLO breached" in incident.title
    assert "at most 1 messages/min" in incident.title
    (event,) = Event.objects.filter(type="portal.slo.breached")
    assert event.data["kind"] == "invalid_messages" and event.data["good"] == 1


def test_stream_slos_need_a_number_and_a_stream_port(stream_port, product, owner):
    with pytest.raises(ValidationError) as refused:
        slo_create(
            product=stream_port.product,
            by=owner,
            kind=SLOKind.CONSUMER_LAG,
            target_percent=99,
            value="a lot",
        )
    assert "largest number of messages" in str(refused.value.message_dict["value"])
    with pytest.raises(ValidationError) as refused:
        slo_create(
            product=product, by=owner, kind=SLOKind.INVALID_MESSAGES, target_percent=99, value="0"
        )
    assert "measures stream ports: this product has none" in str(refused.value.message_dict["kind"])


# --- the quality tab, the SLO form and the API ----------------------------------------------


@pytest.fixture
def observed(stream_port, nats_stream):
    """Two observations a minute apart: 2 valid and 5 invalid messages arrived between
    them, and a durable consumer `billing` 7 messages behind (1 unacknowledged, 6 not delivered)."""
    start = timezone.now() - timedelta(hours=1)
    port_observe(port=stream_port, now=start)
    nats_stream.publish(order(1), order(2), *INVALID)
    _durable(nats_stream, "billing", take=1)
    observation = port_observe(port=stream_port, now=start + timedelta(minutes=1))
    trust_after_observation(observation=observation)
    return observation


def test_the_quality_tab_shows_each_stream_ports_latest_reading_and_its_charts(
    client, observed, owner
):
    client.force_login(owner)
    content = client.get(f"{PAGE}quality/").content.decode()
    row = content[content.index('id="stream-monitor-orders"') :]
    row = row[: row.index("</tr>")]
    assert "<td>7</td>" in row and "7 messages" in row and "(billing)" in row
    assert "5 of 7 checked" in row and "(5 / min)" in row
    assert "e.g. message 3: not JSON" in row
    section = content[content.index('id="stream-monitors"') :]
    section = section[: section.index("</section>")]
    assert section.count("data-plotly-figure") == 3
    assert "No rate yet" not in section and "No durable consumers seen" not in section


def test_a_product_without_stream_ports_has_no_stream_monitors_nor_stream_slos(
    client, product, owner
):
    client.force_login(owner)
    assert (
        'id="stream-monitors"' not in client.get("/products/sales/orders/quality/").content.decode()
    )
    form = client.get("/products/sales/orders/slos/new/").context["form"]
    assert [value for value, _ in form.fields["kind"].choices] == [
        "freshness",
        "availability",
        "quality",
    ]


def test_owner_adds_a_consumer_lag_slo_on_the_page_and_sees_it_breached(client, observed, owner):
    client.force_login(owner)
    form = client.get(f"{PAGE}slos/new/").context["form"]
    assert SLOKind.CONSUMER_LAG in [value for value, _ in form.fields["kind"].choices]
    response = client.post(
        f"{PAGE}slos/new/", {"kind": "consumer_lag", "target_percent": "99", "value": "5"}
    )
    assert response.status_code == 302
    slo = observed.port.product.slos.get()
    assert (slo.kind, slo.value, slo.unit) == ("consumer_lag", "5", "messages")
    content = client.get(f"{PAGE}quality/").content.decode()
    assert "durable consumers at most 5 messages behind" in content
    assert "Consumer lag SLO breached on Live orders" in content

    response = client.post(
        f"{PAGE}slos/{slo.pk}/edit/",
        {"kind": "consumer_lag", "target_percent": "99", "value": ""},
    )
    assert response.status_code == 400 and "value" in response.context["form"].errors


def test_the_api_takes_and_shows_a_stream_slos_threshold(client_as, observed, owner):
    response = client_as(owner).post(
        API, {"kind": "invalid_messages", "target_percent": 95, "value": "10"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["value"], body["unit"]) == ("invalid_messages", "10", "messages/min")
    assert body["attainment_7d"]["good"] == 1 and body["attainment_7d"]["total"] == 1

    response = client_as(owner).patch(f"{API}{body['id']}/", {"value": "-2"}, format="json")
    assert response.status_code == 400
    assert "largest number of invalid messages per minute" in str(response.json())


def test_stream_slos_go_out_in_the_contract_and_come_back_from_it(stream_port, owner):
    product = stream_port.product
    slo_create(
        product=product, by=owner, kind=SLOKind.CONSUMER_LAG, target_percent=99.5, value="1e3"
    )
    document = contract_export(product=product)  # validated against the ODCS schema
    assert document["slaProperties"] == [
        {"property": "consumerLag", "value": 1000, "unit": "messages", "valueExt": 99.5}
    ]
    (mapped,) = contract_map(document).slos
    assert (mapped.kind, mapped.value, mapped.target_percent) == ("consumer_lag", "1000", 99.5)
