"""Catalog API viewsets. They parse input, call a selector or service, and shape output;
the rules live in products.catalog.selectors, products.services and products.catalog.permissions.

Visibility is applied in one place per kind of object: a product is fetched through
product_get_visible_by_key (ProductScopedMixin does this for everything under
`/products/<key>/`), so a product the user may not see answers 404 exactly like one that
does not exist. Writes go to services, which raise PermissionDenied (403) and
ValidationError (400); portal.api.exceptions turns those into API responses.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response

from products.catalog.api.filters import CatalogSearchFilterBackend, ProductFilterSet
from products.catalog.api.serializers import (
    ColumnSerializer,
    ColumnUpdateSerializer,
    DataSourceCreateSerializer,
    DataSourceSerializer,
    DomainDetailSerializer,
    DomainSerializer,
    OutputPortCreateSerializer,
    OutputPortSerializer,
    OutputPortUpdateSerializer,
    ProductCreateSerializer,
    ProductSerializer,
    ProductUpdateSerializer,
    SchemaRefreshRunSerializer,
    search_matches,
)
from products.catalog.permissions import user_is_admin
from products.catalog.selectors import (
    SEARCH_WINDOW,
    domain_list,
    domain_team,
    port_for,
    port_latest_refresh_runs,
    product_get_visible_by_key,
    product_ports,
    products_visible,
    schema_refresh_run_get_visible,
)
from products.catalog.services.ports import (
    column_update,
    data_source_create,
    output_port_create,
    output_port_update,
)
from products.catalog.services.products import (
    product_create,
    product_deprecate,
    product_publish,
    product_retire,
    product_update,
)
from products.catalog.services.schema_refresh import schema_refresh_request
from products.models import Column, DataProduct, DataSource, Domain, OutputPort, SchemaRefreshRun

PRODUCT_KEY = OpenApiParameter(
    "key",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The product's key `<domain-slug>.<product-slug>`, e.g. `sales.orders`.",
)
PRODUCT_KEY_PARENT = OpenApiParameter(
    "product_key",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The product's key `<domain-slug>.<product-slug>`, e.g. `sales.orders`.",
)
PORT_SLUG = OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH)
PORT_SLUG_PARENT = OpenApiParameter("port_slug", OpenApiTypes.STR, OpenApiParameter.PATH)
COLUMN_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)

# Any product key, including malformed ones: those answer a JSON 404 from the view rather
# than an HTML 404 from the URL resolver.
KEY_REGEX = r"[^/]+"
# The route prefix of everything under one product, shared by every feature's API routes.
PRODUCT = rf"products/(?P<product_key>{KEY_REGEX})"


def _product_or_404(*, user, key: str) -> DataProduct:
    try:
        return product_get_visible_by_key(user=user, key=key)
    except DataProduct.DoesNotExist:
        # The same answer for a missing product and one the user may not see.
        raise NotFound(f"There is no data product {key!r}.") from None


def product_named_in_body(*, user, key: str, field: str = "product") -> DataProduct:
    """The product a request body names by key, or a 400 on that field: the same answer
    for a missing product and one the user may not see."""
    try:
        return product_get_visible_by_key(user=user, key=key)
    except DataProduct.DoesNotExist:
        raise ValidationError({field: [f"There is no data product {key!r}."]}) from None


class ProductScopedMixin:
    """Base of the views under `/products/<product_key>/`: the product comes through the
    visibility rule once per request."""

    def get_product(self) -> DataProduct:
        if not hasattr(self, "_product"):
            self._product = _product_or_404(user=self.request.user, key=self.kwargs["product_key"])
        return self._product

    def get_port(self) -> OutputPort:
        if not hasattr(self, "_port"):
            slug = self.kwargs.get("port_slug") or self.kwargs["slug"]
            self._port = self.load_port(slug)
        return self._port

    def load_port(self, slug: str) -> OutputPort:
        product = self.get_product()
        port = port_for(product=product, slug=slug, with_columns=True) if slug else None
        if port is None:
            raise NotFound(f"{product.key} has no output port {slug!r}.")
        return port


# --- domains ---------------------------------------------------------------------------


class DomainViewSet(viewsets.ReadOnlyModelViewSet):
    """Domains and their teams: readable by every signed-in user."""

    serializer_class = DomainSerializer
    lookup_field = "slug"
    filter_backends: list = []

    def get_queryset(self):
        return domain_list()

    def get_serializer_class(self):
        return DomainDetailSerializer if self.action == "retrieve" else DomainSerializer

    def get_object(self) -> Domain:
        try:
            domain = domain_list().get(slug=self.kwargs["slug"])
        except Domain.DoesNotExist:
            raise NotFound(f"There is no domain {self.kwargs['slug']!r}.") from None
        domain.team_members = list(domain_team(domain=domain))
        return domain


# --- products --------------------------------------------------------------------------


@extend_schema_view(
    retrieve=extend_schema(parameters=[PRODUCT_KEY]),
    update=extend_schema(
        parameters=[PRODUCT_KEY],
        request=ProductUpdateSerializer,
        responses=ProductSerializer,
    ),
    partial_update=extend_schema(
        parameters=[PRODUCT_KEY],
        request=ProductUpdateSerializer,
        responses=ProductSerializer,
    ),
    create=extend_schema(request=ProductCreateSerializer, responses={201: ProductSerializer}),
)
class ProductViewSet(viewsets.GenericViewSet):
    """Data products. The list is the catalog search (`product_search`); a product is
    addressed by its key `<domain-slug>.<product-slug>`."""

    serializer_class = ProductSerializer
    filterset_class = ProductFilterSet
    filter_backends = [CatalogSearchFilterBackend]
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX

    def get_queryset(self):
        return products_visible(user=self.request.user)

    def get_object(self) -> DataProduct:
        return _product_or_404(user=self.request.user, key=self.kwargs["key"])

    def _respond(self, product: DataProduct, *, status_code: int = status.HTTP_200_OK):
        # Read back through the selector: fresh values, tags and owners prefetched.
        product = _product_or_404(user=self.request.user, key=product.key)
        data = self.get_serializer(product).data
        headers = {"Location": data["url"]} if status_code == status.HTTP_201_CREATED else {}
        return Response(data, status=status_code, headers=headers)

    def list(self, request):
        products, ranking = CatalogSearchFilterBackend().search(request, self.get_queryset(), self)
        page = self.paginate_queryset(products.prefetch_related("owners"))
        items = self.get_serializer(page, many=True).data
        if request.query_params.get("q", "").strip():
            # Why each product matched: the reasons the search page shows under a result.
            for product, item in zip(page, items, strict=True):
                item["search_matches"] = search_matches(ranking.matches.get(product.pk, ()))
        response = self.get_paginated_response(items)
        response.data["did_you_mean"] = ranking.suggestion or None
        # A broad `q` ranks a bounded window of matches: its count is then "at least".
        response.data["count_is_lower_bound"] = (
            bool(request.query_params.get("q", "").strip())
            and response.data["count"] >= SEARCH_WINDOW
        )
        return response

    def retrieve(self, request, key: str):
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request):
        body = ProductCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        product = product_create(by=request.user, **body.validated_data)
        return self._respond(product, status_code=status.HTTP_201_CREATED)

    def update(self, request, key: str, partial: bool = False):
        product = self.get_object()
        body = ProductUpdateSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        product = product_update(product=product, by=request.user, **body.validated_data)
        return self._respond(product)

    def partial_update(self, request, key: str):
        return self.update(request, key, partial=True)

    @extend_schema(
        parameters=[PRODUCT_KEY],
        request=None,
        responses=ProductSerializer,
        description="Publish a draft or deprecated product. Needs a description, an owner "
        "and an output port.",
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, key: str):
        return self._respond(product_publish(product=self.get_object(), by=request.user))

    @extend_schema(parameters=[PRODUCT_KEY], request=None, responses=ProductSerializer)
    @action(detail=True, methods=["post"])
    def deprecate(self, request, key: str):
        return self._respond(product_deprecate(product=self.get_object(), by=request.user))

    @extend_schema(parameters=[PRODUCT_KEY], request=None, responses=ProductSerializer)
    @action(detail=True, methods=["post"])
    def retire(self, request, key: str):
        return self._respond(product_retire(product=self.get_object(), by=request.user))


# --- output ports and columns ----------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[PRODUCT_KEY_PARENT]),
    retrieve=extend_schema(parameters=[PRODUCT_KEY_PARENT, PORT_SLUG]),
    create=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=OutputPortCreateSerializer,
        responses={201: OutputPortSerializer},
    ),
    partial_update=extend_schema(
        parameters=[PRODUCT_KEY_PARENT, PORT_SLUG],
        request=OutputPortUpdateSerializer,
        responses=OutputPortSerializer,
    ),
)
class OutputPortViewSet(ProductScopedMixin, viewsets.GenericViewSet):
    """A product's output ports, with their columns and latest schema refresh."""

    serializer_class = OutputPortSerializer
    queryset = OutputPort.objects.none()  # for the schema; get_product() scopes reads
    lookup_field = "slug"
    filter_backends: list = []

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if "product_key" in self.kwargs and self.request is not None:
            context["latest_runs"] = port_latest_refresh_runs(product=self.get_product())
        return context

    def _respond(self, port: OutputPort, *, status_code: int = status.HTTP_200_OK):
        # Read back through the selector: fresh values, source and columns prefetched.
        data = self.get_serializer(self.load_port(port.slug)).data
        headers = {"Location": data["url"]} if status_code == status.HTTP_201_CREATED else {}
        return Response(data, status=status_code, headers=headers)

    def list(self, request, product_key: str):
        product = self.get_product()
        page = self.paginate_queryset(product_ports(product=product))
        for port in page:
            port.product = product
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, product_key: str, slug: str):
        return Response(self.get_serializer(self.get_port()).data)

    def create(self, request, product_key: str):
        product = self.get_product()
        body = OutputPortCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        port = output_port_create(product=product, by=request.user, **body.validated_data)
        return self._respond(port, status_code=status.HTTP_201_CREATED)

    def partial_update(self, request, product_key: str, slug: str):
        port = self.get_port()
        body = OutputPortUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        port = output_port_update(port=port, by=request.user, **body.validated_data)
        return self._respond(port)

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, PORT_SLUG],
        request=None,
        responses={202: SchemaRefreshRunSerializer},
        description="Queue a schema refresh of the port; poll the returned run's `url` "
        "until `is_finished`. A refresh already queued or running is returned instead.",
    )
    @action(detail=True, methods=["post"], url_path="schema-refresh")
    def schema_refresh(self, request, product_key: str, slug: str):
        run = schema_refresh_request(port=self.get_port(), by=request.user)
        run.port = self.get_port()
        data = SchemaRefreshRunSerializer(run, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


@extend_schema_view(
    list=extend_schema(parameters=[PRODUCT_KEY_PARENT, PORT_SLUG_PARENT]),
    retrieve=extend_schema(parameters=[PRODUCT_KEY_PARENT, PORT_SLUG_PARENT, COLUMN_NAME]),
    partial_update=extend_schema(
        parameters=[PRODUCT_KEY_PARENT, PORT_SLUG_PARENT, COLUMN_NAME],
        request=ColumnUpdateSerializer,
        responses=ColumnSerializer,
    ),
)
class ColumnViewSet(ProductScopedMixin, viewsets.GenericViewSet):
    """A port's columns. Name, type and nullability come from the source (schema
    refresh); people write the description and classification."""

    serializer_class = ColumnSerializer
    queryset = Column.objects.none()  # for the schema; get_port() scopes reads
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    filter_backends: list = []

    def get_column(self) -> Column:
        port = self.get_port()
        try:
            return port.columns.get(name=self.kwargs["name"])
        except Column.DoesNotExist:
            raise NotFound(f"Port {port.slug!r} has no column {self.kwargs['name']!r}.") from None

    def list(self, request, product_key: str, port_slug: str):
        # The port's columns came prefetched (in position order) with the port.
        page = self.paginate_queryset(self.get_port().columns.all())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, product_key: str, port_slug: str, name: str):
        return Response(self.get_serializer(self.get_column()).data)

    def partial_update(self, request, product_key: str, port_slug: str, name: str):
        column = self.get_column()
        body = ColumnUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        column = column_update(column=column, by=request.user, **body.validated_data)
        return Response(self.get_serializer(column).data)


# --- schema refresh runs ---------------------------------------------------------------


@extend_schema_view(
    retrieve=extend_schema(
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)]
    )
)
class SchemaRefreshRunViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A schema refresh run, to poll until it is finished."""

    serializer_class = SchemaRefreshRunSerializer
    queryset = SchemaRefreshRun.objects.none()  # for the schema; get_object() scopes reads
    filter_backends: list = []

    def get_object(self) -> SchemaRefreshRun:
        try:
            return schema_refresh_run_get_visible(
                user=self.request.user, run_id=int(self.kwargs["pk"])
            )
        except (SchemaRefreshRun.DoesNotExist, ValueError):
            raise NotFound("There is no such schema refresh run.") from None


# --- data sources ----------------------------------------------------------------------


class AdminWritesOnly(BasePermission):
    """Reads for every signed-in user; writes for admins (asked before the body is
    parsed, so a refused request learns nothing from validation messages)."""

    message = "Only admins register data sources."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or user_is_admin(request.user)


@extend_schema_view(
    create=extend_schema(request=DataSourceCreateSerializer, responses={201: DataSourceSerializer})
)
class DataSourceViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Registered data sources: names, kinds and descriptions, never connection secrets."""

    serializer_class = DataSourceSerializer
    permission_classes = [IsAuthenticated, AdminWritesOnly]
    filter_backends: list = []

    def get_queryset(self):
        return DataSource.objects.order_by("name")

    def create(self, request):
        body = DataSourceCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        source = data_source_create(by=request.user, **body.validated_data)
        return Response(self.get_serializer(source).data, status=status.HTTP_201_CREATED)
