"""`GET /api/v1/products/<key>/data/`: a product's rows, governed and streamed.

A thin view: the product comes through the visibility rule (404 like any other endpoint),
`read_plan` asks the one access decision and shapes the read, `read_stream` streams it
and writes the audit event. Refusals answer `{"detail": message}` with their status.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from products.catalog.api.views import PRODUCT_KEY, _product_or_404
from sharing.choices import Channel, DataFormat
from sharing.serving.reads import CONTENT_TYPES, MAX_ROWS, ReadRefused, read_plan
from sharing.serving.views import client_address, streaming_read_response

NOTEBOOK_CLIENT = "notebook"  # the X-Portal-Client header sent by portal_client


class DataResponseNegotiation(BaseContentNegotiation):
    """`format` here names the data format, not a DRF renderer: errors are always JSON
    and the data's content type follows `format`."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _refused(status: int, message: str) -> Response:
    return Response({"detail": message}, status=status)


DATA_DESCRIPTION = f"""
The product's rows that you may read, streamed: the columns, rows and masking come from
your access (admins and members of the owning domain read everything; others need an
active grant, whose row filter always applies and whose confidential and restricted
columns are served as `****` unless the grant names them).

- `columns`: comma-separated column names (default: every column you may read). An
  unknown column answers 400 naming it; a column outside your access answers 403.
- `filter`: a JSON list of clauses `{{"column", "op", "value"}}` that must all hold, with
  `op` one of `=`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in` (a list value), `is null`,
  `is not null` (no value). A malformed filter answers 400 saying what is wrong; a filter
  on a column outside your access, or on a masked column, answers 403.
- `limit`: at most this many rows (an integer, 0 or more). Above {MAX_ROWS:,} it is
  clamped to {MAX_ROWS:,}, and the response says so in the header `X-Limit-Clamped`
  (the maximum applied). Larger reads are scheduled exports.
- `format`: `csv` (default), `json` (an array of objects), `parquet`, or `arrow` (an Arrow
  IPC stream, `{CONTENT_TYPES[DataFormat.ARROW]}`).
- `port`: the output port's slug (default: the product's first port by name).

Every read served writes one audit event (who, product, channel, columns, filter, rows,
bytes, client address). The client address is the connecting peer: behind a reverse proxy
it is the proxy's address (X-Forwarded-For is not trusted). Send `X-Portal-Client:
notebook` from the notebook client to record the read on the notebook channel.
""".strip()

JSON_ROWS = OpenApiResponse(
    response={"type": "array", "items": {"type": "object", "additionalProperties": True}},
    description="The rows as a JSON array of objects (column name -> value).",
)
BINARY = OpenApiResponse(
    response=OpenApiTypes.BINARY,
    description="The rows, streamed in the requested format, as an attachment named "
    "`<key>.<extension>`. Header `X-Limit-Clamped` when the limit was clamped.",
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description)


class ProductDataView(APIView):
    """A product's rows in CSV, JSON, Parquet or an Arrow IPC stream."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = DataResponseNegotiation

    @extend_schema(
        operation_id="products_data_retrieve",
        description=DATA_DESCRIPTION,
        parameters=[
            PRODUCT_KEY,
            OpenApiParameter("columns", OpenApiTypes.STR, description="Comma-separated."),
            OpenApiParameter("filter", OpenApiTypes.STR, description="A JSON list of clauses."),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("format", OpenApiTypes.STR, enum=DataFormat.values, default="csv"),
            OpenApiParameter("port", OpenApiTypes.STR, description="An output port's slug."),
        ],
        responses={(200, CONTENT_TYPES[fmt].split(";")[0]): BINARY for fmt in DataFormat.values}
        | {(200, CONTENT_TYPES[DataFormat.JSON]): JSON_ROWS}
        | {
            400: _error("Bad input: format, limit, columns or filter; `detail` says what."),
            401: _error("Not signed in."),
            403: _error(
                "No access, or columns or a filter outside your access; or the data "
                "source refused the portal's own account."
            ),
            404: _error(
                "No such product (or one you may not see), no such port, or a port whose "
                "table, file or columns its source does not have."
            ),
            502: _error("The data source could not be reached or read."),
        },
    )
    def get(self, request, key: str):
        product = _product_or_404(user=request.user, key=key)
        params = request.query_params
        fmt = params.get("format") or DataFormat.CSV
        if fmt not in DataFormat.values:
            return _refused(400, f"Unknown format {fmt!r}: use {', '.join(DataFormat.values)}.")
        limit = params.get("limit")
        if limit not in (None, ""):
            try:
                limit = int(limit)
            except ValueError:
                return _refused(400, f"The limit must be an integer, not {limit!r}.")
        else:
            limit = None
        # As written: read_plan matches each against the port's columns (see there).
        columns = [name for name in params.get("columns", "").split(",") if name.strip()]
        notebook = request.headers.get("X-Portal-Client", "").lower() == NOTEBOOK_CLIENT
        try:
            plan = read_plan(
                user=request.user,
                product=product,
                channel=Channel.NOTEBOOK if notebook else Channel.API,
                port_slug=params.get("port") or None,
                columns=columns or None,
                filter=params.get("filter") or None,
                limit=limit,
            )
        except ReadRefused as exc:
            return _refused(exc.status, exc.message)
        return streaming_read_response(
            plan, fmt=fmt, client_address=client_address(request), refused=_refused
        )
