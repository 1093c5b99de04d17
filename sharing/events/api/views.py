"""The events API: the replay (`GET /api/v1/events/`) and the stream
(`GET /api/v1/events/stream/`, Server-Sent Events). Both parse the same filters
(sharing.events.selectors.event_filters_parse) and read through the one visibility rule
(events_visible_to); authentication is the API's (token or session)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from portal.core.events import event_envelope
from sharing.events.api.serializers import EventPageSerializer
from sharing.events.selectors import (
    EVENTS_PAGE_MAX,
    event_filters_parse,
    events_after,
    events_latest_position,
)
from sharing.events.sse import event_stream_response

# Outbox ids one replay page looks through (visible to the caller or not).

FILTER_PARAMETERS = [
    OpenApiParameter(
        "after",
        OpenApiTypes.INT,
        description="Only events with a sequence above this. Not given: the replay starts "
        "at the oldest event, the stream at the newest (live only).",
    ),
    OpenApiParameter(
        "type",
        OpenApiTypes.STR,
        many=True,
        description="Event types, repeated or comma-separated; `portal.access.*` takes every "
        "type under a prefix. Unknown types are refused with the list of known ones.",
    ),
    OpenApiParameter("product", OpenApiTypes.STR, description="A product key, e.g. sales.orders."),
    OpenApiParameter("domain", OpenApiTypes.STR, description="A domain slug, e.g. sales."),
]


def _filters(request):
    params = request.query_params
    return event_filters_parse(
        user=request.user,
        after=params.get("after"),
        types=params.getlist("type"),
        product=params.get("product"),
        domain=params.get("domain"),
        limit=params.get("limit"),
        last_event_id=request.headers.get("Last-Event-ID"),
    )


class EventListView(GenericAPIView):
    """The events you may see, oldest first, after a sequence: a cursor page (no count)."""

    pagination_class = None
    serializer_class = EventPageSerializer

    @extend_schema(
        operation_id="events_list",
        parameters=[
            *FILTER_PARAMETERS,
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                description=f"Events per page, 1-{EVENTS_PAGE_MAX} (100).",
            ),
        ],
        responses={200: EventPageSerializer, 400: OpenApiResponse(description="Bad filter.")},
        description="Replay the events you may see (the same rule as the stream and webhooks), "
        "as CloudEvents 1.0 envelopes in sequence order. Follow `next` until it is null, then "
        "ask again later with after=`last_sequence`.",
    )
    def get(self, request):
        filters = _filters(request)
        # Up to the newest position (docs/events.md, "Order, and a late commit"): positions
        # follow commits, so a cursor handed out never jumps over a later commit.
        settled = max(events_latest_position(), filters.after or 0)
        events = events_after(
            user=request.user, filters=filters, limit=filters.limit + 1, up_to=settled
        )
        if len(events) > filters.limit:
            events = events[: filters.limit]
            last, more = events[-1].position, True
        else:  # every event up to `settled` was looked at, visible or not
            last, more = settled, False
        next_url = None
        if more:
            next_url = replace_query_param(request.build_absolute_uri(), "after", last)
        return Response(
            {
                "next": next_url,
                "last_sequence": last,
                "results": [event_envelope(event) for event in events],
            }
        )


class EventStreamRenderer(BaseRenderer):
    """Lets `Accept: text/event-stream` (what EventSource sends) through content
    negotiation; the stream itself is written by sharing.events.sse. A refusal (400, 401,
    503) rendered for such a client is its JSON body."""

    media_type = "text/event-stream"
    format = "event-stream"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


class EventStreamView(GenericAPIView):
    """Server-Sent Events of the events you may see."""

    pagination_class = None
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        operation_id="events_stream",
        parameters=[
            *FILTER_PARAMETERS,
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                description="Resume after this sequence (EventSource sends it when it reconnects).",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                description="`id:` the sequence, `event:` the type, `data:` the envelope JSON; "
                "a comment every ~15 s keeps the connection open; the server ends a "
                "connection after a while and the client resumes with Last-Event-ID."
            ),
            400: OpenApiResponse(description="Bad filter."),
            503: OpenApiResponse(
                description="This server's stream slots are full: retry after Retry-After seconds."
            ),
        },
        description="Follow events live as Server-Sent Events; the same filters as the replay.",
    )
    def get(self, request):
        return event_stream_response(request=request, filters=_filters(request))
