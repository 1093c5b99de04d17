"""Scheduled-exports API: schedules of a product, a schedule (change, end, run now, its
runs), a run (status, download). Views parse input, call the services and selectors the
pages call, and shape output. A product, schedule or run someone may not see is a 404."""

from django.core.exceptions import PermissionDenied
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

from products.catalog.api.views import PRODUCT_KEY_PARENT, ProductScopedMixin
from sharing.choices import FILE_FORMATS, DataFormat
from sharing.exports.api.serializers import (
    ExportRunSerializer,
    ExportScheduleInputSerializer,
    ExportScheduleSerializer,
)
from sharing.exports.selectors import (
    export_run_get,
    export_runs_of,
    export_schedule_get,
    export_schedules_for,
)
from sharing.exports.services.runs import (
    ExportFileRefused,
    export_file_download,
    export_run_request,
    export_schedule_create,
    export_schedule_end,
    export_schedule_update,
)
from sharing.models import ExportRun, ExportSchedule
from sharing.serving.reads import CONTENT_TYPES
from sharing.serving.views import client_address

RUN_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A run's id.")
BAD_INPUT = OpenApiResponse(
    response=OpenApiTypes.OBJECT, description="Bad input: a message per field named."
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description)


@extend_schema_view(
    list=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        description="The product's export schedules: all of them for its domain's owners, "
        "stewards, members and admins; your own for everyone else.",
    ),
    create=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=ExportScheduleInputSerializer,
        responses={201: ExportScheduleSerializer, 400: BAD_INPUT},
        description="Schedule an export of the product's rows you may read. Every run "
        "reads with your access at that time (columns, row filter, masking), plus the "
        "schedule's own columns, row filter and masked columns. A cron or time zone that "
        "does not parse answers 400 naming the field.",
    ),
)
class ProductExportScheduleViewSet(ProductScopedMixin, viewsets.GenericViewSet):
    serializer_class = ExportScheduleSerializer
    queryset = ExportSchedule.objects.none()  # for the schema; the selector scopes reads
    filter_backends: list = []

    def list(self, request, product_key: str):
        product = self.get_product()
        page = self.paginate_queryset(export_schedules_for(user=request.user, product=product))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, product_key: str):
        product = self.get_product()
        body = ExportScheduleInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        schedule = export_schedule_create(product=product, by=request.user, **body.validated_data)
        return Response(self.get_serializer(schedule).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    retrieve=extend_schema(description="An export schedule, with its next three run times."),
    partial_update=extend_schema(
        request=ExportScheduleInputSerializer,
        responses={200: ExportScheduleSerializer, 400: BAD_INPUT},
        description="Change a schedule (its creator, or the domain's owners and stewards, "
        "or admins). Runs keep reading with the creator's access.",
    ),
    destroy=extend_schema(
        responses={204: None},
        description="End the schedule: it runs no more. Its runs and their files stay "
        "(files until retention would have pruned them).",
    ),
)
class ExportScheduleViewSet(viewsets.GenericViewSet):
    serializer_class = ExportScheduleSerializer
    queryset = ExportSchedule.objects.none()  # for the schema; the selector scopes reads
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_object(self) -> ExportSchedule:
        try:
            return export_schedule_get(user=self.request.user, schedule_id=int(self.kwargs["pk"]))
        except (ExportSchedule.DoesNotExist, ValueError):
            raise NotFound("There is no such export schedule.") from None

    def retrieve(self, request, pk: str):
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request, pk: str):
        schedule = self.get_object()
        body = ExportScheduleInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        schedule = export_schedule_update(schedule=schedule, by=request.user, **body.validated_data)
        return Response(self.get_serializer(schedule).data)

    def destroy(self, request, pk: str):
        export_schedule_end(schedule=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={202: ExportRunSerializer, 400: BAD_INPUT},
        description="Run the export now. Answers 202 with the run to poll (a run already "
        "queued or running for the schedule is answered instead).",
    )
    @action(detail=True, methods=["post"])
    def run(self, request, pk: str):
        run = export_run_request(schedule=self.get_object(), by=request.user)
        return Response(
            ExportRunSerializer(run, context=self.get_serializer_context()).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        responses=ExportRunSerializer(many=True),
        description="The schedule's runs, newest first: status, rows, bytes, SHA-256, "
        "start, end, error.",
    )
    @action(detail=True, methods=["get"])
    def runs(self, request, pk: str):
        page = self.paginate_queryset(export_runs_of(schedule=self.get_object()))
        serializer = ExportRunSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)


class ExportRunViewSet(viewsets.GenericViewSet):
    serializer_class = ExportRunSerializer
    queryset = ExportRun.objects.none()  # for the schema; the selector scopes reads
    filter_backends: list = []
    # Any id reaches get_object, so a malformed one (`0.5`) answers the API's JSON 404
    # rather than the router's page for an unknown URL.
    lookup_value_regex = r"[^/]+"

    def get_object(self) -> ExportRun:
        try:
            return export_run_get(user=self.request.user, run_id=int(self.kwargs["pk"]))
        except (ExportRun.DoesNotExist, ValueError):
            raise NotFound("There is no such export run.") from None

    @extend_schema(
        parameters=[RUN_ID], description="An export run: its status and, once finished, its file."
    )
    def retrieve(self, request, pk: str):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        parameters=[RUN_ID],
        responses={
            # One content type per file format a schedule writes.
            **{
                (200, CONTENT_TYPES[fmt].split(";")[0]): OpenApiResponse(
                    response=OpenApiTypes.BINARY,
                    description=f"The {DataFormat(fmt).label} file, as an attachment; header "
                    "`Repr-Digest` carries its SHA-256.",
                )
                for fmt in FILE_FORMATS
            },
            403: _error("Your access does not cover what the file holds; `detail` says why."),
            404: _error("No such run, or one without a file."),
            410: _error("The file was removed by the schedule's retention."),
        },
        description="Download the run's file. It holds what the schedule's creator could "
        "read when it ran; your own access now must cover it (admins and members of the "
        "owning domain: always; others: every column in it, unmasked where it is, and no "
        "row filter it was not filtered by). Each download writes an audit event.",
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk: str):
        run = self.get_object()
        try:
            return export_file_download(
                run=run, user=request.user, client_address=client_address(request)
            )
        except ExportFileRefused as exc:
            if exc.status == 403:
                raise PermissionDenied(exc.message) from None
            return Response({"detail": exc.message}, status=exc.status)
