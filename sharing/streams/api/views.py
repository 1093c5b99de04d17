"""`GET /api/v1/products/<key>/stream/`: a stream port's messages, governed, as NDJSON or
Server-Sent Events.

A thin view: the product through the visibility rule (404 like any other endpoint),
`stream_subscribe` decides, plans and opens the subscription (refusals answer
`{"detail": message}` with their status before anything is streamed), and the
subscription's chunks are the response.
"""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from products.catalog.api.views import PRODUCT_KEY, _product_or_404
from products.connectors.base import ConnectorError, RelationMissing
from sharing.serving.api.views import DataResponseNegotiation
from sharing.serving.source_errors import shows_source_detail, source_error_message
from sharing.serving.views import client_address
from sharing.streams.reads import (
    CONTENT_TYPES,
    NDJSON,
    SSE,
    STREAM_FORMATS,
    ReadRefused,
    stream_start_parse,
    stream_subscribe,
)

STREAM_DESCRIPTION = """
The messages of a product's stream port that you may read, as they arrive: the same
access as every channel (granted columns only, confidential and restricted columns as
`****` unless your grant names them, the grant's row filter applied to every message).

- `from`: a message's sequence number, a time in ISO 8601 (UTC unless it has an offset),
  `-n` (the last n messages), `new` (only messages published from now), or nothing (the
  oldest message the stream still holds). An SSE client's `Last-Event-ID` resumes after
  that message.
- `format`: `ndjson` (default; one `{"seq": n, "data": {...}}` per line) or `sse`
  (`id:` the sequence, `data:` the message; `event: end` or `event: error` last).
- `follow`: `1` keeps the subscription open for new messages (default for `sse`), `0`
  ends at the stream's last message when you subscribed (default for `ndjson`).
- `limit`: end after this many messages. `columns`, `filter`, `port` as for `/data/`.

Messages that do not match the port's schema are counted (audit, monitors), never served.
When your access is revoked, expires or changes, the subscription ends before the next
message with an error line (`{"error": ...}`) or event. One audit event per subscription.
""".strip()


def _refused(status: int, message: str) -> Response:
    return Response({"detail": message}, status=status)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description)


class ProductStreamView(APIView):
    """A stream port's messages as NDJSON or Server-Sent Events."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = DataResponseNegotiation

    @extend_schema(
        operation_id="products_stream_retrieve",
        description=STREAM_DESCRIPTION,
        parameters=[
            PRODUCT_KEY,
            OpenApiParameter("from", OpenApiTypes.STR),
            OpenApiParameter("format", OpenApiTypes.STR, enum=STREAM_FORMATS, default=NDJSON),
            OpenApiParameter("follow", OpenApiTypes.BOOL),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("columns", OpenApiTypes.STR, description="Comma-separated."),
            OpenApiParameter("filter", OpenApiTypes.STR, description="A JSON list of clauses."),
            OpenApiParameter("port", OpenApiTypes.STR, description="A stream port's slug."),
        ],
        responses={
            (200, CONTENT_TYPES[NDJSON]): OpenApiResponse(response=OpenApiTypes.STR),
            (200, CONTENT_TYPES[SSE]): OpenApiResponse(response=OpenApiTypes.STR),
            400: _error("Bad input (from, format, limit, columns, filter) or not a stream port."),
            401: _error("Not signed in."),
            403: _error("No access, or columns or a filter outside your access."),
            404: _error("No such product, port or stream."),
            502: _error("The NATS server could not be reached."),
        },
    )
    def get(self, request, key: str):
        product = _product_or_404(user=request.user, key=key)
        params = request.query_params
        fmt = params.get("format") or NDJSON
        if fmt not in STREAM_FORMATS:
            return _refused(400, f"Unknown format {fmt!r}: use ndjson or sse.")
        follow_text = params.get("follow", "")
        if follow_text not in ("", "0", "1", "true", "false"):
            return _refused(400, "follow is 1 (keep following new messages) or 0.")
        follow = fmt == SSE if follow_text == "" else follow_text in ("1", "true")
        limit = params.get("limit") or None
        if limit is not None:
            if not limit.isdigit():
                return _refused(400, f"The limit must be a whole number, not {limit[:20]!r}.")
            limit = int(limit)
        columns = [name for name in params.get("columns", "").split(",") if name.strip()]
        try:
            start = stream_start_parse(
                params.get("from"), resume_after=request.headers.get("Last-Event-ID")
            )
            subscription = stream_subscribe(
                user=request.user,
                product=product,
                port_slug=params.get("port") or None,
                columns=columns or None,
                filter=params.get("filter") or None,
                start=start,
                limit=limit,
                follow=follow,
                client_address=client_address(request),
            )
        except ReadRefused as exc:
            return _refused(exc.status, exc.message)
        except RelationMissing as exc:
            if shows_source_detail(user=request.user, product=product):
                return _refused(404, f"This port's stream is not on the NATS server: {exc}")
            return _refused(404, "This port's stream has no data yet.")
        except ConnectorError as exc:
            return _refused(502, source_error_message(user=request.user, product=product, exc=exc))
        response = StreamingHttpResponse(
            subscription.chunks(fmt=fmt), content_type=CONTENT_TYPES[fmt]
        )
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # a proxy must pass each message on
        response["X-Content-Type-Options"] = "nosniff"
        return response
