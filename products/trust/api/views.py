"""Trust API under `/api/v1/products/<key>/`: checks, check runs, incidents, SLOs and the
trust score. Thin like products.catalog.api.views: the product comes through the visibility rule
(ProductScopedMixin: an invisible product is a 404), writes go to the services, whose
ValidationError and PermissionDenied portal.api.exceptions turns into 400 and 403.

Who may write is asked before a body is parsed (EditorWritesOnly), so a refused request
learns nothing from validation messages; the services ask again.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response

from portal.core.links import api_url
from products.catalog.api.views import PRODUCT_KEY_PARENT, ProductScopedMixin
from products.catalog.permissions import can_edit_product
from products.choices import IncidentStatus
from products.models import Check, CheckRun, Incident, OutputPort, ServiceLevelObjective
from products.trust.api.serializers import (
    CheckCreateSerializer,
    CheckRunDetailSerializer,
    CheckRunRequestSerializer,
    CheckRunSerializer,
    CheckSerializer,
    CheckUpdateSerializer,
    IncidentAcknowledgeSerializer,
    IncidentCommentSerializer,
    IncidentDetailSerializer,
    IncidentResolveSerializer,
    IncidentSerializer,
    SLOCreateSerializer,
    SLOSerializer,
    SLOUpdateSerializer,
    TrustSerializer,
)
from products.trust.selectors import (
    check_get,
    check_run_get,
    check_runs_for_product,
    checks_for_product,
    trust_summary,
)
from products.trust.services.checks import (
    check_create,
    check_delete,
    check_run_request,
    check_update,
)
from products.trust.services.incidents import (
    incident_acknowledge,
    incident_comment,
    incident_events,
    incident_resolve,
    incidents_for_product,
)
from products.trust.services.slo_measures import product_slo_report
from products.trust.services.slos import slo_create, slo_delete, slo_update
from sharing.access.decision import reads_everything

ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
INCIDENT_STATUS = OpenApiParameter(
    "status",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    enum=["unresolved", *IncidentStatus.values],
    description="`open`, `acknowledged`, `resolved`, or `unresolved` (open and acknowledged).",
)


class EditorWritesOnly(BasePermission):
    """Reads for everyone who may see the product; writes for its domain's owners and
    stewards and admins. An invisible product is a 404 before anything else."""

    message = "Only the domain's owners and stewards, and admins, change this product's trust."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        product = view.get_product()  # 404 for a product the user may not see
        return can_edit_product(user=request.user, product=product)


class TrustScopedViewSet(ProductScopedMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, EditorWritesOnly]
    filter_backends: list = []

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if "product_key" in self.kwargs and self.request is not None:
            product = self.get_product()
            user = self.request.user
            context["can_edit"] = can_edit_product(user=user, product=product)
            context["can_read_rows"] = reads_everything(user=user, product=product)
        return context

    def object_id(self) -> int:
        try:
            return int(self.kwargs["pk"])
        except (TypeError, ValueError):
            raise NotFound() from None

    def port_from_body(self, slug: str | None, *, candidates=None) -> OutputPort:
        """The port a body names, or the only candidate port when it names none."""
        product = self.get_product()
        ports = list(OutputPort.objects.filter(product=product).order_by("name"))
        if slug:
            for port in ports:
                if port.slug == slug:
                    port.product = product
                    return port
            raise ValidationError({"port": [f"{product.key} has no output port {slug!r}."]})
        pool = [p for p in ports if candidates is None or p.pk in candidates]
        if len(pool) == 1:
            pool[0].product = product
            return pool[0]
        if not ports:
            raise ValidationError({"port": ["The product has no output port yet."]})
        raise ValidationError(
            {"port": ["Name the port (its slug): " + ", ".join(p.slug for p in ports) + "."]}
        )


# --- checks ----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[PRODUCT_KEY_PARENT]),
    retrieve=extend_schema(parameters=[PRODUCT_KEY_PARENT, ID]),
    create=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=CheckCreateSerializer,
        responses={201: CheckSerializer},
    ),
    partial_update=extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID],
        request=CheckUpdateSerializer,
        responses=CheckSerializer,
    ),
    destroy=extend_schema(parameters=[PRODUCT_KEY_PARENT, ID], responses={204: None}),
)
class CheckViewSet(TrustScopedViewSet):
    """Validation checks on the product's output ports, each with its latest result."""

    serializer_class = CheckSerializer
    queryset = Check.objects.none()  # for the schema; get_product() scopes reads

    def get_check(self) -> Check:
        try:
            return check_get(product=self.get_product(), check_id=self.object_id())
        except Check.DoesNotExist:
            raise NotFound(f"{self.get_product().key} has no check {self.kwargs['pk']}.") from None

    def _read_back(self, check_id: int) -> dict:
        checks = checks_for_product(product=self.get_product(), check_ids=[check_id])
        if not checks:
            raise NotFound(f"{self.get_product().key} has no check {check_id}.")
        return self.get_serializer(checks[0]).data

    def list(self, request, product_key: str):
        page = self.paginate_queryset(checks_for_product(product=self.get_product()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, product_key: str, pk: str):
        return Response(self._read_back(self.object_id()))

    def create(self, request, product_key: str):
        body = CheckCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        port = self.port_from_body(fields.pop("port", None))
        check = check_create(port=port, by=request.user, **fields)
        data = self._read_back(check.pk)
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})

    def partial_update(self, request, product_key: str, pk: str):
        check = self.get_check()
        body = CheckUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        check = check_update(check=check, by=request.user, **body.validated_data)
        return Response(self._read_back(check.pk))

    def destroy(self, request, product_key: str, pk: str):
        check_delete(check=self.get_check(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- check runs ------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[PRODUCT_KEY_PARENT]),
    retrieve=extend_schema(parameters=[PRODUCT_KEY_PARENT, ID], responses=CheckRunDetailSerializer),
    create=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=CheckRunRequestSerializer,
        responses={202: CheckRunSerializer},
        description="Run the checks of a port now. Answers 202 with the run; poll its "
        "`url` (also the Location header) until `is_finished`. A run already queued or "
        "running for the port is returned instead of a new one.",
    ),
)
class CheckRunViewSet(TrustScopedViewSet):
    """Runs of the product's checks, newest first; a run's results carry failing-row
    samples only for people who may read the product's rows."""

    serializer_class = CheckRunSerializer
    queryset = CheckRun.objects.none()  # for the schema; get_product() scopes reads

    def get_serializer_class(self):
        return CheckRunDetailSerializer if self.action == "retrieve" else CheckRunSerializer

    def list(self, request, product_key: str):
        product = self.get_product()
        page = self.paginate_queryset(check_runs_for_product(product=product))
        for run in page:
            run.port.product = product
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, product_key: str, pk: str):
        try:
            run = check_run_get(product=self.get_product(), run_id=self.object_id())
        except CheckRun.DoesNotExist:
            raise NotFound(f"{self.get_product().key} has no check run {pk}.") from None
        return Response(self.get_serializer(run).data)

    def create(self, request, product_key: str):
        body = CheckRunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        product = self.get_product()
        with_checks = set(
            Check.objects.filter(port__product=product, enabled=True).values_list(
                "port_id", flat=True
            )
        )
        port = self.port_from_body(body.validated_data.get("port"), candidates=with_checks)
        check_ids = body.validated_data.get("checks") or []
        if check_ids:
            known = set(port.checks.filter(pk__in=check_ids).values_list("pk", flat=True))
            missing = sorted(set(check_ids) - known)
            if missing:
                raise ValidationError(
                    {"checks": [f"The port has no check with id {', '.join(map(str, missing))}."]}
                )
        elif port.pk not in with_checks:
            raise ValidationError({"port": ["This port has no enabled check to run."]})
        run = check_run_request(port=port, by=request.user, check_ids=check_ids)
        run.port = port
        data = CheckRunSerializer(run, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


# --- incidents -------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[PRODUCT_KEY_PARENT, INCIDENT_STATUS]),
    retrieve=extend_schema(parameters=[PRODUCT_KEY_PARENT, ID], responses=IncidentDetailSerializer),
)
class IncidentViewSet(TrustScopedViewSet):
    """What broke, newest first; an incident's timeline; owners and stewards
    acknowledge, comment and resolve."""

    serializer_class = IncidentSerializer
    queryset = Incident.objects.none()  # for the schema; get_product() scopes reads

    def get_serializer_class(self):
        return IncidentSerializer if self.action == "list" else IncidentDetailSerializer

    def get_incident(self) -> Incident:
        product = self.get_product()
        try:
            incident = incidents_for_product(product=product).get(pk=self.object_id())
        except Incident.DoesNotExist:
            raise NotFound(f"{product.key} has no incident {self.kwargs['pk']}.") from None
        incident.product = product
        return incident

    def _detail(self, incident: Incident) -> Response:
        incident = self.get_incident()  # read back: fresh status and events
        incident.event_list = list(incident_events(incident=incident))
        return Response(
            IncidentDetailSerializer(incident, context=self.get_serializer_context()).data
        )

    def list(self, request, product_key: str):
        product = self.get_product()
        wanted = request.query_params.get("status") or None
        if wanted and wanted not in ("unresolved", *IncidentStatus.values):
            raise ValidationError({"status": ["Use open, acknowledged, resolved or unresolved."]})
        page = self.paginate_queryset(incidents_for_product(product=product, status=wanted))
        for incident in page:
            incident.product = product
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, product_key: str, pk: str):
        return self._detail(self.get_incident())

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID],
        request=IncidentAcknowledgeSerializer,
        responses=IncidentDetailSerializer,
        description="Say the owners are on it (with an optional note).",
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, product_key: str, pk: str):
        incident = self.get_incident()
        body = IncidentAcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        incident_acknowledge(incident=incident, by=request.user, **body.validated_data)
        return self._detail(incident)

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID],
        request=IncidentCommentSerializer,
        responses={201: IncidentDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def comment(self, request, product_key: str, pk: str):
        incident = self.get_incident()
        body = IncidentCommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        incident_comment(incident=incident, by=request.user, body=body.validated_data["body"])
        response = self._detail(incident)
        response.status_code = status.HTTP_201_CREATED
        return response

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID],
        request=IncidentResolveSerializer,
        responses=IncidentDetailSerializer,
        description="Resolve by hand, saying how (`note` is required).",
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, product_key: str, pk: str):
        incident = self.get_incident()
        body = IncidentResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        incident_resolve(incident=incident, by=request.user, note=body.validated_data["note"])
        return self._detail(incident)


# --- SLOs ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[PRODUCT_KEY_PARENT]),
    retrieve=extend_schema(parameters=[PRODUCT_KEY_PARENT, ID]),
    create=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=SLOCreateSerializer,
        responses={201: SLOSerializer},
    ),
    partial_update=extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID],
        request=SLOUpdateSerializer,
        responses=SLOSerializer,
    ),
    destroy=extend_schema(parameters=[PRODUCT_KEY_PARENT, ID], responses={204: None}),
)
class SLOViewSet(TrustScopedViewSet):
    """Service level objectives with their 7- and 30-day attainment and error budget."""

    serializer_class = SLOSerializer
    queryset = ServiceLevelObjective.objects.none()  # for the schema
    pagination_class = None  # at most one SLO per kind

    def _slos(self) -> list[ServiceLevelObjective]:
        product = self.get_product()
        slos = []
        for report in product_slo_report(product=product):
            slo = report.slo
            slo.product = product
            slo.attainments = report.windows
            slos.append(slo)
        return slos

    def _one(self, slo_id: int) -> ServiceLevelObjective:
        for slo in self._slos():
            if slo.pk == slo_id:
                return slo
        raise NotFound(f"{self.get_product().key} has no SLO {slo_id}.")

    def get_slo(self) -> ServiceLevelObjective:
        product = self.get_product()
        try:
            slo = product.slos.get(pk=self.object_id())
        except ServiceLevelObjective.DoesNotExist:
            raise NotFound(f"{product.key} has no SLO {self.kwargs['pk']}.") from None
        slo.product = product
        return slo

    def list(self, request, product_key: str):
        return Response(self.get_serializer(self._slos(), many=True).data)

    def retrieve(self, request, product_key: str, pk: str):
        return Response(self.get_serializer(self._one(self.object_id())).data)

    def create(self, request, product_key: str):
        body = SLOCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        slo = slo_create(product=self.get_product(), by=request.user, **body.validated_data)
        data = self.get_serializer(self._one(slo.pk)).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})

    def partial_update(self, request, product_key: str, pk: str):
        slo = self.get_slo()
        body = SLOUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        slo_update(slo=slo, by=request.user, **body.validated_data)
        return Response(self.get_serializer(self._one(slo.pk)).data)

    def destroy(self, request, product_key: str, pk: str):
        slo_delete(slo=self.get_slo(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- trust score -----------------------------------------------------------------------


class TrustView(ProductScopedMixin, GenericAPIView):
    """The product's latest trust score (0 to 100), its four components each with the
    evidence it was computed from and where to find it, and the last 30 days' history."""

    serializer_class = TrustSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[PRODUCT_KEY_PARENT], responses=TrustSerializer)
    def get(self, request, product_key: str):
        product = self.get_product()
        summary = trust_summary(product=product)

        def api(route: str) -> str:
            return api_url(request, f"products-api:{route}", product_key=product.key)

        api_urls = {
            "quality": api("product-check-list"),
            "reliability": api("product-slo-list"),
            "documentation": api_url(request, "products-api:product-detail", key=product.key),
            "support": api("product-incident-list"),
        }
        components = [
            {
                "name": component.name,
                "label": component.label,
                "score": component.score,
                "evidence": component.evidence,
                "evidence_url": api_urls[component.name],
                "page_url": request.build_absolute_uri(component.page_url),
            }
            for component in summary.components
        ]
        latest = summary.latest
        data = {
            "product": product.key,
            "score": latest.score if latest else None,
            "computed_at": latest.computed_at if latest else None,
            "components": components,
            "evidence": latest.evidence if latest else {},
            "history": summary.history,
            "how_computed_url": request.build_absolute_uri(summary.how_computed_url),
        }
        return Response(TrustSerializer(data).data)
