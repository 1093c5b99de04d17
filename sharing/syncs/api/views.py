"""Syncs API: `/api/v1/destinations/` (where syncs write) and `/api/v1/syncs/` (what is
sent where, its runs: dry run, run now, pause, resume, approve or decline a held run,
the rejected records). Views parse input, call sharing.syncs services and selectors (the
same the pages call), and shape output. A sync, run or destination someone may not see
is a 404; who may change what is decided by the services (403)."""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from products.catalog.api.views import _product_or_404
from sharing.models.syncs import Sync, SyncDestination, SyncRun
from sharing.syncs.api.serializers import (
    ReasonInputSerializer,
    SyncDestinationInputSerializer,
    SyncDestinationSerializer,
    SyncInputSerializer,
    SyncRejectedRecordSerializer,
    SyncRunSerializer,
    SyncSerializer,
    SyncUpdateSerializer,
)
from sharing.syncs.destinations.base import DestinationError
from sharing.syncs.selectors import sync_visible_to
from sharing.syncs.services.destinations import (
    destination_can_manage,
    destination_create,
    destination_delete,
    destination_test,
    destination_update,
    destinations_usable_by,
)
from sharing.syncs.services.runs import (
    rejected_records_csv,
    sync_run_approve,
    sync_run_decline,
    sync_run_request,
)
from sharing.syncs.services.syncs import (
    destination_usable_by,
    sync_create,
    sync_delete,
    sync_pause,
    sync_resume,
    sync_update,
)

BAD_INPUT = OpenApiResponse(
    response=OpenApiTypes.OBJECT, description="Bad input: a message per field named."
)
RUN_ID = OpenApiParameter("run_id", OpenApiTypes.INT, OpenApiParameter.PATH)
CSV_FORMAT = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "csv"],
    description="`csv` exports every open rejected record as CSV (so does `Accept: text/csv`).",
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description)


def _api_errors(exc: DjangoValidationError) -> DjangoValidationError:
    """The services name the port `port_slug`; the API names it `port`."""
    if not hasattr(exc, "error_dict") or "port_slug" not in exc.error_dict:
        return exc
    errors = dict(exc.error_dict)
    errors["port"] = errors.pop("port_slug")
    return DjangoValidationError(errors)


# --- destinations ----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        description="The destinations you may send to (registered for every domain or for "
        "a domain you belong to) and those you manage."
    ),
    retrieve=extend_schema(description="A destination (never a secret: only its variable name)."),
    create=extend_schema(
        request=SyncDestinationInputSerializer,
        responses={201: SyncDestinationSerializer, 400: BAD_INPUT},
        description="Register a destination (admins: any domain or none; a domain's "
        "owners: their domain). Credentials come from the environment variable named by "
        "`secret_env`, never from the request.",
    ),
    partial_update=extend_schema(
        request=SyncDestinationInputSerializer,
        responses={200: SyncDestinationSerializer, 400: BAD_INPUT},
        description="Change a destination you manage.",
    ),
    destroy=extend_schema(
        responses={204: None, 400: BAD_INPUT},
        description="Remove a destination you manage; refused while a sync uses it.",
    ),
)
class SyncDestinationViewSet(viewsets.GenericViewSet):
    serializer_class = SyncDestinationSerializer
    queryset = SyncDestination.objects.none()  # for the schema; _visible scopes reads
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_regex = r"[^/]+"

    def _visible(self):
        """Admins: every destination; others: those they may use (which include those
        of the domains they own)."""
        user = self.request.user
        if destination_can_manage(user=user):  # no domain named: admins only
            visible = SyncDestination.objects.all()
        else:
            visible = destinations_usable_by(user=user)
        return visible.select_related("domain", "created_by")

    def get_object(self) -> SyncDestination:
        try:
            return self._visible().get(pk=int(self.kwargs["pk"]))
        except (SyncDestination.DoesNotExist, ValueError):
            raise NotFound("There is no such destination.") from None

    def _managed(self) -> SyncDestination:
        destination = self.get_object()
        if not destination_can_manage(user=self.request.user, destination=destination):
            raise PermissionDenied(
                "Only admins and the owners of the destination's domain change it."
            )
        return destination

    def list(self, request):
        page = self.paginate_queryset(self._visible().order_by("name"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk: str):
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request):
        body = SyncDestinationInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        destination = destination_create(by=request.user, **body.validated_data)
        return Response(self.get_serializer(destination).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk: str):
        destination = self._managed()
        body = SyncDestinationInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        destination = destination_update(
            destination=destination, by=request.user, **body.validated_data
        )
        return Response(self.get_serializer(destination).data)

    def destroy(self, request, pk: str):
        destination_delete(destination=self._managed(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={
            200: _error('{"ok": true, "message": "Reachable: ..."}'),
            400: _error('{"ok": false, "message": "what is wrong, naming the field"}'),
        },
        description="Test the connection: reach the destination and check it is usable "
        "(the table exists, the stream captures the subject...).",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk: str):
        destination = self._managed()
        try:
            message = destination_test(destination=destination)
        except DestinationError as exc:
            return Response(
                {"ok": False, "message": exc.message}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response({"ok": True, "message": message})


# --- syncs -----------------------------------------------------------------------------


class RejectedRecordsNegotiation(DefaultContentNegotiation):
    """`?format=csv` (or `Accept: text/csv`) asks for the CSV export, which the view
    streams itself; everything else, errors included, is JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _wants_csv(request) -> bool:
    if request.query_params.get("format") == "csv":
        return True
    return "text/csv" in request.headers.get("Accept", "")


@extend_schema_view(
    list=extend_schema(
        description="The syncs you may see: yours, those writing to destinations of your "
        "domains, and every sync of the products you manage. `?product=<key>` narrows."
    ),
    retrieve=extend_schema(description="A sync: what it sends where, how, when, its guardrails."),
    create=extend_schema(
        request=SyncInputSerializer,
        responses={201: SyncSerializer, 400: BAD_INPUT},
        description="Create a sync of a product's port to a destination you may use. It "
        "reads with YOUR access at each run (columns, masks, row filter). Refused (400, the "
        "field named) when a column is outside your access, a key column is masked or not "
        "among the columns, a mapping names a field the destination does not have, or the "
        "cron does not parse. `loop_warning` says when the destination feeds this product.",
    ),
    partial_update=extend_schema(
        request=SyncUpdateSerializer,
        responses={200: SyncSerializer, 400: BAD_INPUT},
        description="Change a sync (its creator, the destination domain's owners, admins).",
    ),
    destroy=extend_schema(
        responses={204: None},
        description="Delete the sync, its runs and its state. Nothing is removed from the "
        "destination.",
    ),
)
class SyncViewSet(viewsets.GenericViewSet):
    serializer_class = SyncSerializer
    queryset = Sync.objects.none()  # for the schema; sync_visible_to scopes reads
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_regex = r"[^/]+"

    def get_object(self):
        try:
            return (
                sync_visible_to(user=self.request.user)
                .select_related("product__domain", "destination", "port", "metric", "created_by")
                .get(pk=int(self.kwargs["pk"]))
            )
        except (Sync.DoesNotExist, ValueError):
            raise NotFound("There is no such sync.") from None

    def _run(self, sync) -> SyncRun:
        try:
            return sync.runs.get(pk=int(self.kwargs["run_id"]))
        except (SyncRun.DoesNotExist, ValueError):
            raise NotFound("There is no such run of this sync.") from None

    def _run_response(self, run, code=status.HTTP_200_OK) -> Response:
        return Response(
            SyncRunSerializer(run, context=self.get_serializer_context()).data, status=code
        )

    @extend_schema(
        parameters=[OpenApiParameter("product", OpenApiTypes.STR, description="A product's key.")]
    )
    def list(self, request):
        syncs = sync_visible_to(user=request.user).select_related(
            "product__domain", "destination", "port", "metric", "created_by"
        )
        key = request.query_params.get("product")
        if key:
            syncs = syncs.filter(product=_product_or_404(user=request.user, key=key))
        page = self.paginate_queryset(syncs.order_by("pk"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk: str):
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request):
        body = SyncInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        product = _product_or_404(user=request.user, key=fields.pop("product"))
        destination = self._destination(fields.pop("destination"))
        try:
            sync = sync_create(
                by=request.user,
                product=product,
                destination=destination,
                port_slug=fields.pop("port", None),
                **fields,
            )
        except DjangoValidationError as exc:
            raise _api_errors(exc) from None
        return Response(self.get_serializer(sync).data, status=status.HTTP_201_CREATED)

    def _destination(self, destination_id: int) -> SyncDestination:
        found = SyncDestination.objects.filter(pk=destination_id).first()
        if found is None or not destination_usable_by(user=self.request.user, destination=found):
            raise ValidationError(
                {"destination": [f"There is no destination {destination_id} you may use."]}
            )
        return found

    def partial_update(self, request, pk: str):
        sync = self.get_object()
        body = SyncUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        if "destination" in fields:
            fields["destination"] = self._destination(fields["destination"])
        if "port" in fields:
            fields["port_slug"] = fields.pop("port")
        try:
            sync = sync_update(sync=sync, by=request.user, **fields)
        except DjangoValidationError as exc:
            raise _api_errors(exc) from None
        return Response(self.get_serializer(sync).data)

    def destroy(self, request, pk: str):
        sync_delete(sync=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={202: SyncRunSerializer, 400: BAD_INPUT},
        description="Plan a run and show it (counts and a sample of each kind of change) "
        "without sending anything or changing any state. Answers 202 with the run to poll "
        "(its `url`); it ends `planned` (or `failed`, saying why).",
    )
    @action(detail=True, methods=["post"], url_path="dry-run", url_name="dry-run")
    def dry_run(self, request, pk: str):
        run = sync_run_request(sync=self.get_object(), by=request.user, dry_run=True)
        return self._run_response(run, status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={202: SyncRunSerializer, 400: BAD_INPUT},
        description="Run the sync now: plan, check the guardrails (a tripped one holds "
        "the run for approval), send the changes. Answers 202 with the run to poll.",
    )
    @action(detail=True, methods=["post"])
    def run(self, request, pk: str):
        run = sync_run_request(sync=self.get_object(), by=request.user)
        return self._run_response(run, status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=ReasonInputSerializer,
        responses={200: SyncSerializer},
        description="Pause the sync: no scheduled or after-checks run starts until resumed.",
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk: str):
        body = ReasonInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reason = body.validated_data.get("reason") or f"Paused by {request.user.username}."
        sync = sync_pause(sync=self.get_object(), by=request.user, reason=reason)
        return Response(self.get_serializer(sync).data)

    @extend_schema(
        request=None,
        responses={200: SyncSerializer},
        description="Resume a paused sync (the failure count of the circuit breaker "
        "starts again at zero).",
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk: str):
        sync = sync_resume(sync=self.get_object(), by=request.user)
        return Response(self.get_serializer(sync).data)

    @extend_schema(
        responses=SyncRunSerializer(many=True),
        description="The sync's runs, newest first, each with its status, counts "
        "(planned, added, changed, removed, rejected, skipped, source_rows), duration, "
        "records per second, the reasons it was held and its plan sample.",
    )
    @action(detail=True, methods=["get"])
    def runs(self, request, pk: str):
        runs = self.get_object().runs.select_related("requested_by", "approved_by")
        page = self.paginate_queryset(runs.order_by("-created_at", "-pk"))
        serializer = SyncRunSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)

    @extend_schema(parameters=[RUN_ID], responses=SyncRunSerializer, description="One run.")
    @action(
        detail=True,
        methods=["get"],
        url_path=r"runs/(?P<run_id>[^/]+)",
        url_name="run-detail",
    )
    def run_detail(self, request, pk: str, run_id: str):
        return self._run_response(self._run(self.get_object()))

    @extend_schema(
        parameters=[RUN_ID],
        request=None,
        responses={202: SyncRunSerializer, 400: BAD_INPUT, 403: _error("Not an approver.")},
        description="Approve a held run (the sync's creator, the destination domain's "
        "owners, admins): a new run sends exactly the held plan, no re-planning. Answers "
        "202 with that new run.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"runs/(?P<run_id>[^/]+)/approve",
        url_name="run-approve",
    )
    def run_approve(self, request, pk: str, run_id: str):
        run = sync_run_approve(run=self._run(self.get_object()), by=request.user)
        return self._run_response(run, status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[RUN_ID],
        request=ReasonInputSerializer,
        responses={200: SyncRunSerializer, 400: BAD_INPUT, 403: _error("Not an approver.")},
        description="Decline a held run: nothing of its plan is sent (it is cancelled).",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"runs/(?P<run_id>[^/]+)/decline",
        url_name="run-decline",
    )
    def run_decline(self, request, pk: str, run_id: str):
        body = ReasonInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = sync_run_decline(
            run=self._run(self.get_object()),
            by=request.user,
            reason=body.validated_data.get("reason", ""),
        )
        return self._run_response(run)

    @extend_schema(
        parameters=[RUN_ID, CSV_FORMAT],
        responses={
            200: SyncRejectedRecordSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR, description="Every open rejected record, as CSV."
            ),
        },
        description="The records the destination refused in this run, with its reason "
        "(the dead-letter list; they are retried at the next run).",
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"runs/(?P<run_id>[^/]+)/rejected-records",
        url_name="run-rejected-records",
        content_negotiation_class=RejectedRecordsNegotiation,
    )
    def run_rejected_records(self, request, pk: str, run_id: str):
        sync = self.get_object()
        run = self._run(sync)
        if _wants_csv(request):
            response = StreamingHttpResponse(
                rejected_records_csv(sync=sync), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = (
                f'attachment; filename="sync-{sync.pk}-rejected-records.csv"'
            )
            return response
        page = self.paginate_queryset(run.rejected_records.order_by("-rejected_at", "-pk"))
        return self.get_paginated_response(SyncRejectedRecordSerializer(page, many=True).data)
