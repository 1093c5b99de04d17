"""Glossary and metrics API under `/api/v1/`: thin views over the selectors in
products.definitions.selectors and the services in products.definitions.services.glossary and
products.definitions.services.metrics (the same the pages call). A term or metric one may not see is
a 404 like a missing one; services raise ValidationError (400) and PermissionDenied (403),
turned into responses by portal.api.exceptions.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from products.catalog.api.views import KEY_REGEX, _product_or_404
from products.catalog.selectors import port_for
from products.choices import MetricGrain, TermStatus
from products.definitions.api.serializers import (
    MetricCreateSerializer,
    MetricSerializer,
    MetricValuesSerializer,
    TermCreateSerializer,
    TermDetailSerializer,
    TermLinkSerializer,
    TermNoteSerializer,
    TermSerializer,
    TermUpdateSerializer,
    TermVersionSerializer,
)
from products.definitions.selectors import (
    TermFilters,
    metric_get_visible,
    metric_search,
    term_get_visible_by_key,
    term_search,
    term_usage,
)
from products.definitions.services.glossary import (
    term_create,
    term_link_column,
    term_link_product,
    term_status_change,
    term_unlink_column,
    term_unlink_product,
    term_update,
)
from products.definitions.services.metrics import MetricRefused, metric_create, metric_evaluate
from products.models import Column, Domain, GlossaryTerm, Metric
from sharing.choices import Channel
from sharing.serving.api.views import NOTEBOOK_CLIENT
from sharing.serving.views import client_address

TERM_KEY = OpenApiParameter(
    "key",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The term's key `<domain-slug>.<term-slug>`, e.g. `sales.net-revenue`.",
)
METRIC_KEY = OpenApiParameter(
    "key",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The metric's key `<domain-slug>.<name>`, e.g. `sales.revenue`.",
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description)


# --- glossary ----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "q",
                OpenApiTypes.STR,
                description="Words in name, synonyms or definition; names first.",
            ),
            OpenApiParameter("domain", OpenApiTypes.STR, description="A domain's slug."),
            OpenApiParameter("status", OpenApiTypes.STR, enum=TermStatus.values),
        ]
    ),
    retrieve=extend_schema(parameters=[TERM_KEY], responses=TermDetailSerializer),
    create=extend_schema(request=TermCreateSerializer, responses={201: TermDetailSerializer}),
    partial_update=extend_schema(
        parameters=[TERM_KEY], request=TermUpdateSerializer, responses=TermDetailSerializer
    ),
)
class GlossaryTermViewSet(viewsets.GenericViewSet):
    """The business glossary. Terms are proposed by members of their domain (as drafts),
    approved or deprecated by its owners and stewards; every change adds a version."""

    serializer_class = TermSerializer
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX
    filter_backends: list = []
    queryset = GlossaryTerm.objects.none()  # for the schema; the selectors scope reads

    def get_object(self) -> GlossaryTerm:
        try:
            return term_get_visible_by_key(user=self.request.user, key=self.kwargs["key"])
        except GlossaryTerm.DoesNotExist:
            raise NotFound(f"There is no glossary term {self.kwargs['key']!r}.") from None

    def _detail(self, term: GlossaryTerm, *, status_code: int = status.HTTP_200_OK):
        term = term_get_visible_by_key(user=self.request.user, key=term.key)
        term.usage = term_usage(term=term, user=self.request.user)
        data = TermDetailSerializer(term, context=self.get_serializer_context()).data
        headers = {"Location": data["url"]} if status_code == status.HTTP_201_CREATED else {}
        return Response(data, status=status_code, headers=headers)

    def list(self, request):
        params = request.query_params
        filters = TermFilters(
            q=" ".join(params.get("q", "").split())[:200],
            domain=params.get("domain", ""),
            status=params.get("status", ""),
        )
        page = self.paginate_queryset(term_search(user=request.user, filters=filters))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, key: str):
        return self._detail(self.get_object())

    def create(self, request):
        body = TermCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        try:
            domain = Domain.objects.get(slug=data.pop("domain"))
        except Domain.DoesNotExist:
            return Response(
                {"domain": ["There is no such domain."]}, status=status.HTTP_400_BAD_REQUEST
            )
        term = term_create(domain=domain, by=request.user, **data)
        return self._detail(term, status_code=status.HTTP_201_CREATED)

    def partial_update(self, request, key: str):
        term = self.get_object()
        body = TermUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        return self._detail(term_update(term=term, by=request.user, **body.validated_data))

    def _status(self, request, action_name: str):
        body = TermNoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        term = term_status_change(
            term=self.get_object(),
            by=request.user,
            action=action_name,
            note=body.validated_data.get("note", ""),
        )
        return self._detail(term)

    @extend_schema(
        parameters=[TERM_KEY],
        request=TermNoteSerializer,
        responses={
            200: TermDetailSerializer,
            400: _error("Already approved."),
            403: _error("Only the owning domain's owners and stewards, and admins, approve."),
        },
        description="Approve a draft (or reinstate a deprecated term).",
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, key: str):
        return self._status(request, "approve")

    @extend_schema(
        parameters=[TERM_KEY],
        request=TermNoteSerializer,
        responses={200: TermDetailSerializer},
        description="Deprecate a term (owners and stewards of its domain, admins).",
    )
    @action(detail=True, methods=["post"])
    def deprecate(self, request, key: str):
        return self._status(request, "deprecate")

    @extend_schema(
        parameters=[TERM_KEY],
        responses=TermVersionSerializer(many=True),
        description="Every version of the term, newest first: who changed what, when, why.",
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def versions(self, request, key: str):
        versions = self.get_object().versions.select_related("changed_by").order_by("-number")
        return Response(TermVersionSerializer(versions, many=True).data)

    def _link(self, request, *, linking: bool):
        term = self.get_object()
        body = TermLinkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        product = _product_or_404(user=request.user, key=data["product"])
        if data.get("column"):
            port = port_for(product=product, slug=data.get("port"))
            if port is None:
                raise NotFound(f"{product.key} has no output port {data.get('port', '')!r}.")
            column = Column.objects.filter(port=port, name=data["column"]).first()
            if column is None:
                raise NotFound(
                    f"Port {port.slug} of {product.key} has no column {data['column']!r}."
                )
            column.port = port
            service = term_link_column if linking else term_unlink_column
            service(term=term, column=column, by=request.user)
        else:
            service = term_link_product if linking else term_unlink_product
            service(term=term, product=product, by=request.user)
        return self._detail(term)

    @extend_schema(
        parameters=[TERM_KEY],
        request=TermLinkSerializer,
        responses={200: TermDetailSerializer},
        description="Say that a product (or one of its columns) uses the term. The "
        "product's editors only; a deprecated term cannot be linked.",
    )
    @action(detail=True, methods=["post"])
    def link(self, request, key: str):
        return self._link(request, linking=True)

    @extend_schema(
        parameters=[TERM_KEY], request=TermLinkSerializer, responses={200: TermDetailSerializer}
    )
    @action(detail=True, methods=["post"])
    def unlink(self, request, key: str):
        return self._link(request, linking=False)


# --- metrics -----------------------------------------------------------------------------

VALUES_DESCRIPTION = """
The metric's values, computed by one query on the product's source with your access: no
read access to the product is a 403; your grant's row filter always applies; a column the
evaluation reads (the measure's, the metric's fixed filters', the dimensions, time column
and filters you ask for) outside your grant, or masked by it, is a 403 naming it.

- `dimensions`: comma-separated, among the metric's declared dimensions (another: 400
  naming it).
- `grain`: `day`, `week` (from Monday) or `month`: one row per period (`period` is its
  first day); needs a time column.
- `start`, `end`: dates `YYYY-MM-DD`, both included (UTC).
- `filters`: a JSON list of `{"column", "op", "value"}` on declared dimensions or the
  time column, as the data endpoint's `filter`.

`rows` are `{"period"?, <dimension>..., "value"}` ordered by period and dimensions, at
most 10,000 (`truncated` says when there were more). Each evaluation writes one audit
event (channel `api`, or `notebook` with the header `X-Portal-Client: notebook`).
""".strip()


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "q", OpenApiTypes.STR, description="Words in key, name or description."
            ),
            OpenApiParameter("product", OpenApiTypes.STR, description="A product's key."),
        ]
    ),
    retrieve=extend_schema(parameters=[METRIC_KEY]),
    create=extend_schema(request=MetricCreateSerializer, responses={201: MetricSerializer}),
)
class MetricViewSet(viewsets.GenericViewSet):
    """Metrics: defined once over a product's output port, evaluated where the data lives."""

    serializer_class = MetricSerializer
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX
    filter_backends: list = []
    queryset = Metric.objects.none()  # for the schema; the selectors scope reads

    def get_object(self) -> Metric:
        try:
            return metric_get_visible(user=self.request.user, key=self.kwargs["key"])
        except Metric.DoesNotExist:
            raise NotFound(f"There is no metric {self.kwargs['key']!r}.") from None

    def list(self, request):
        params = request.query_params
        metrics = metric_search(
            user=request.user, q=params.get("q", ""), product_key=params.get("product", "")
        )
        page = self.paginate_queryset(metrics)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, key: str):
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request):
        body = MetricCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        product = _product_or_404(user=request.user, key=data.pop("product"))
        port_slug = data.pop("port", None)
        port = port_for(product=product, slug=port_slug)
        if port is None:
            message = (
                f"{product.key} has no output port {port_slug!r}."
                if port_slug
                else f"{product.key} has no output port yet: add one first."
            )
            return Response({"port": [message]}, status=status.HTTP_400_BAD_REQUEST)
        metric = metric_create(by=request.user, port=port, **data)
        metric = metric_get_visible(user=request.user, key=metric.key)
        data = self.get_serializer(metric).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})

    @extend_schema(
        parameters=[
            METRIC_KEY,
            OpenApiParameter("dimensions", OpenApiTypes.STR, description="Comma-separated."),
            OpenApiParameter("grain", OpenApiTypes.STR, enum=MetricGrain.values),
            OpenApiParameter("start", OpenApiTypes.DATE),
            OpenApiParameter("end", OpenApiTypes.DATE),
            OpenApiParameter("filters", OpenApiTypes.STR, description="A JSON list of clauses."),
        ],
        responses={
            200: MetricValuesSerializer,
            400: _error(
                "Bad query: an undeclared dimension, a grain, a date or a filter; "
                "`detail` names it."
            ),
            403: _error(
                "No read access to the product, or a column outside it; or the data "
                "source refused the portal's own account."
            ),
            404: _error("No such metric (or one you may not see), or its port's table is missing."),
            502: _error("The data source could not be read."),
        },
        description=VALUES_DESCRIPTION,
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def values(self, request, key: str):
        metric = self.get_object()
        params = request.query_params
        notebook = request.headers.get("X-Portal-Client", "").lower() == NOTEBOOK_CLIENT
        try:
            result = metric_evaluate(
                metric=metric,
                user=request.user,
                channel=Channel.NOTEBOOK if notebook else Channel.API,
                dimensions=params.get("dimensions") or None,
                grain=params.get("grain") or None,
                start=params.get("start") or None,
                end=params.get("end") or None,
                filters=params.get("filters") or None,
                client_address=client_address(request),
            )
        except MetricRefused as exc:
            return Response({"detail": exc.message}, status=exc.status)
        query = result.query
        return Response(
            {
                "metric": metric.key,
                "name": metric.name,
                "grain": query.grain,
                "dimensions": list(query.dimensions),
                "start": query.start,
                "end": query.end,
                "filters": [clause.as_dict() for clause in query.filters],
                "columns": result.columns,
                "rows": result.rows,
                "truncated": result.truncated,
            }
        )
