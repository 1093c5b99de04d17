"""`POST /api/v1/query/`, `POST /api/v1/query/explain/`, `GET /api/v1/query/<id>/`: one
SQL over product keys, governed by each product's access rules (docs/query.md).

Thin views: `query_start` plans the query (or refuses it with a status and a message
naming what is wrong), `query_batches` runs it and writes the audit, and the rows go out
as JSON (`{"columns", "rows", "truncated", "query_id"}`) or streamed as CSV, Parquet or
an Arrow IPC stream (the query's id in `X-Query-Id`; whether it was truncated, once the
stream ended, at `GET /api/v1/query/<id>/`).
"""

from __future__ import annotations

import uuid

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from products.connectors import ConnectorError
from sharing.choices import DataFormat
from sharing.federation.refusals import QueryRefused
from sharing.models import FederatedQuery
from sharing.serving.api.views import NOTEBOOK_CLIENT, DataResponseNegotiation
from sharing.serving.reads import CONTENT_TYPES, EXTENSIONS, encode_batches
from sharing.serving.views import _Prefetched, client_address

QUERY_FORMATS = (DataFormat.JSON, DataFormat.CSV, DataFormat.PARQUET, DataFormat.ARROW)


class QueryInput(serializers.Serializer):
    sql = serializers.CharField(trim_whitespace=False, max_length=100_000)
    format = serializers.ChoiceField(choices=QUERY_FORMATS, default=DataFormat.JSON)
    limit = serializers.IntegerField(required=False, min_value=0)


class ExplainInput(serializers.Serializer):
    sql = serializers.CharField(trim_whitespace=False, max_length=100_000)


def _refused(status: int, message: str) -> Response:
    return Response({"detail": message}, status=status)


def _first_error(serializer) -> str:
    field, errors = next(iter(serializer.errors.items()))
    return f"{field}: {errors[0]}"


def _channel(request) -> str:
    notebook = request.headers.get("X-Portal-Client", "").lower() == NOTEBOOK_CLIENT
    return "notebook" if notebook else "api"


QUERY_RESULT = inline_serializer(
    "QueryResult",
    {
        "columns": serializers.ListField(child=serializers.CharField()),
        "rows": serializers.ListField(child=serializers.ListField()),
        "truncated": serializers.BooleanField(),
        "query_id": serializers.UUIDField(),
        "engine": serializers.CharField(),
    },
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description)


ERRORS = {
    400: _error(
        "SQL the portal does not run (syntax with its position, a write, a "
        "forbidden function, an unknown column), or a query over its cost budget."
    ),
    403: _error(
        "A product or column outside your access, or a masked column used beyond selecting it."
    ),
    404: _error("An unknown product (or one you may not see)."),
    429: _error("More queries than your rate allows."),
    502: _error("A source could not be reached or read."),
    503: _error("Too many queries running on a source."),
    504: _error("The query ran past its time limit and was cancelled on the source."),
}


class QueryView(APIView):
    """Run one read-only SQL query over product keys."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = DataResponseNegotiation

    @extend_schema(
        operation_id="query_run",
        request=QueryInput,
        responses={200: QUERY_RESULT, **ERRORS},
        description=(
            "`sql`: one SELECT over product keys (`domain.product`, or "
            "`domain.product.port`). `format`: json (default), csv, parquet or arrow. "
            "`limit`: at most this many rows (and at most the portal's QUERY_MAX_ROWS); "
            "`truncated` says when there were more."
        ),
    )
    def post(self, request):
        # Here, not at the top: the services load sqlglot, kept out of every process
        # that loads the URLs (tests/portal/test_worker_imports.py).
        from sharing.federation.services.running import query_rows, query_start

        serializer = QueryInput(data=request.data)
        if not serializer.is_valid():
            return _refused(400, _first_error(serializer))
        data = serializer.validated_data
        try:
            running = query_start(
                user=request.user,
                sql=data["sql"],
                channel=_channel(request),
                client_address=client_address(request),
            )
        except QueryRefused as exc:
            return _refused(exc.status, str(exc))
        fmt = data["format"]
        limit = data.get("limit")
        try:
            if fmt == DataFormat.JSON:
                return Response(query_rows(running, limit=limit))
            return streaming_query_response(running, fmt=fmt, limit=limit)
        except QueryRefused as exc:
            return _refused(exc.status, str(exc))
        except ConnectorError as exc:
            return _refused(*_error_answer(exc))


def _error_answer(exc: ConnectorError) -> tuple[int, str]:
    # sqlglot: see QueryView.post
    from sharing.federation.services.running import query_error_message, query_error_status

    return query_error_status(exc), query_error_message(exc)


def streaming_query_response(running, *, fmt: str, limit: int | None):
    """The rows streamed in `fmt`; the first chunk is read first, so a failing query
    answers its error status instead of a truncated 200."""
    from sharing.federation.services.running import query_batches  # sqlglot: see above

    stream = encode_batches(query_batches(running, limit=limit, fmt=fmt), fmt)
    first = next(stream, b"")
    response = StreamingHttpResponse(_Prefetched(first, stream), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="query-{running.id}.{EXTENSIONS[fmt]}"'
    response["X-Query-Id"] = running.id
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


class QueryExplainView(APIView):
    """What a query would run where, under which masks and filters, nothing run."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="query_explain",
        request=ExplainInput,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request):
        from sharing.federation.services.explain import query_explain  # sqlglot: see above

        serializer = ExplainInput(data=request.data)
        if not serializer.is_valid():
            return _refused(400, _first_error(serializer))
        try:
            return Response(query_explain(user=request.user, sql=serializer.validated_data["sql"]))
        except QueryRefused as exc:
            return _refused(exc.status, str(exc))
        except ConnectorError as exc:
            return _refused(*_error_answer(exc))


def _own_query(user, query_id: str) -> FederatedQuery | None:
    """One of `user`'s queries by its id (a UUID); None for anything else."""
    try:
        key = uuid.UUID(str(query_id))
    except ValueError:
        return None
    return FederatedQuery.objects.filter(pk=key, user=user).first()


class QueryCancelView(APIView):
    """Stop one of your running queries: cancelled on its sources within a moment."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="query_cancel",
        request=None,
        responses={
            202: OpenApiTypes.OBJECT,
            404: _error("Not one of your queries."),
            409: _error("The query is not running."),
        },
    )
    def post(self, request, query_id):
        from sharing.federation.services.running import query_cancel  # sqlglot: see QueryView

        if _own_query(request.user, query_id) is None:
            return _refused(404, "No such query of yours.")
        try:
            record = query_cancel(user=request.user, query_id=query_id)
        except QueryRefused as exc:
            return _refused(exc.status, str(exc))
        return Response({"query_id": str(record.pk), "status": "cancelling"}, status=202)


class QueryDetailView(APIView):
    """One of your queries: its status, rows, whether it was truncated."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="query_detail",
        responses={200: OpenApiTypes.OBJECT, 404: _error("Not one of your queries.")},
    )
    def get(self, request, query_id):
        record = _own_query(request.user, query_id)
        if record is None:
            return _refused(404, "No such query of yours.")
        return Response(
            {
                "query_id": str(record.pk),
                "sql": record.sql,
                "status": record.status,
                "engine": record.engine,
                "products": record.products,
                "rows": record.rows,
                "truncated": record.truncated,
                "error": record.error,
                "started_at": record.started_at,
                "finished_at": record.finished_at,
                "duration_ms": record.duration_ms,
            }
        )
