"""Uploading a file to a file port through the API (multipart/form-data):

- `POST /api/v1/products/<key>/ports/upload/`: a new file port from a CSV or Parquet file;
- `PUT /api/v1/products/<key>/ports/<slug>/file/`: a new version of a file port's file.

Thin views over products.uploads.services.port_file_upload, the service the pages call.
The upload streams to a temporary file through PortUploadHandler, installed before DRF
reads the body (authentication reads it for the CSRF check of session requests), and
stopped at PORT_UPLOAD_MAX_BYTES (413). Refusals: 400 naming the field, 403, 404, 413;
on any of them nothing is stored.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from products.catalog.api.views import PORT_SLUG_PARENT, PRODUCT_KEY_PARENT, ProductScopedMixin
from products.catalog.permissions import can_edit_product
from products.catalog.selectors import port_latest_refresh_runs
from products.uploads.api.serializers import (
    PortFileReplaceSerializer,
    PortUploadResultSerializer,
    PortUploadSerializer,
)
from products.uploads.services import (
    PortFileUpload,
    UploadTooLarge,
    port_file_upload,
    upload_handler_install,
)

LIMITS = (
    "The file streams to disk and is checked in a separate process under a memory cap, "
    "through the DuckDB reader that will serve it: CSV must be UTF-8 with a header line "
    "of unique, non-empty names and the same number of fields on every line; at most "
    "PORT_MAX_COLUMNS columns; Parquet footers may not declare more than "
    "PORT_UPLOAD_MAX_UNCOMPRESSED_BYTES uncompressed, nor expand more than "
    "PORT_UPLOAD_MAX_EXPANSION times above PORT_UPLOAD_EXPANSION_FLOOR_BYTES. NaN and "
    "infinite floats are kept as data. A refused file leaves nothing stored."
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description)


REFUSALS = {
    400: _error("The file or a field is refused; the field's name says which and why."),
    403: _error("Only the domain's owners and stewards, and admins, upload files."),
    404: _error("No such product (or one you may not see), or no such port."),
    413: _error("The upload is larger than PORT_UPLOAD_MAX_BYTES; `detail` says so."),
}


class _PortUploadView(ProductScopedMixin, APIView):
    parser_classes = [MultiPartParser, FormParser]

    def initialize_request(self, request, *args, **kwargs):
        self.upload_handler = upload_handler_install(request)
        return super().initialize_request(request, *args, **kwargs)

    def _editable_product(self):
        product = self.get_product()
        # Asked before the body is used: a refused user learns nothing from validation.
        if not can_edit_product(user=self.request.user, product=product):
            raise PermissionDenied("Only the domain's owners and stewards upload files to ports.")
        return product

    def _too_large(self) -> Response:
        return Response(
            {"detail": UploadTooLarge().message}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )

    def _body(self, serializer_class):
        data = self.request.data  # parses the body through the capped handler
        if self.upload_handler.too_large:
            return None
        body = serializer_class(data=data)
        body.is_valid(raise_exception=True)
        return body.validated_data

    def _respond(self, upload: PortFileUpload, status_code: int) -> Response:
        port = self.load_port(upload.port.slug)  # fresh, with its columns
        context = {
            "request": self.request,
            "upload": upload,
            "latest_runs": port_latest_refresh_runs(product=self.get_product()),
        }
        data = PortUploadResultSerializer(port, context=context).data
        headers = {"Location": data["url"]} if status_code == status.HTTP_201_CREATED else {}
        return Response(data, status=status_code, headers=headers)


class PortUploadView(_PortUploadView):
    """A new file port from an uploaded CSV or Parquet file."""

    @extend_schema(
        operation_id="products_ports_upload_create",
        parameters=[PRODUCT_KEY_PARENT],
        request={"multipart/form-data": PortUploadSerializer},
        responses={201: PortUploadResultSerializer, **REFUSALS},
        description="Create a file port from an uploaded file. " + LIMITS,
    )
    def post(self, request, product_key: str):
        product = self._editable_product()
        data = self._body(PortUploadSerializer)
        if data is None:
            return self._too_large()
        try:
            upload = port_file_upload(
                product=product,
                by=request.user,
                uploaded_file=data["file"],
                name=data.get("name", ""),
                slug=data.get("slug", ""),
                description=data.get("description", ""),
                file_format=data.get("format", ""),
            )
        except UploadTooLarge:
            return self._too_large()
        return self._respond(upload, status.HTTP_201_CREATED)


class PortFileReplaceView(_PortUploadView):
    """A new version of a file port's file."""

    @extend_schema(
        operation_id="products_ports_file_update",
        parameters=[PRODUCT_KEY_PARENT, PORT_SLUG_PARENT],
        request={"multipart/form-data": PortFileReplaceSerializer},
        responses={200: PortUploadResultSerializer, **REFUSALS},
        description="Replace the file of a file port with a new version. The port's "
        "columns follow the new file; descriptions and classifications of columns that "
        "remain are kept. The previous version is deleted once the new one is stored. " + LIMITS,
    )
    def put(self, request, product_key: str, port_slug: str):
        product = self._editable_product()
        port = self.get_port()
        data = self._body(PortFileReplaceSerializer)
        if data is None:
            return self._too_large()
        try:
            upload = port_file_upload(
                product=product,
                by=request.user,
                uploaded_file=data["file"],
                file_format=data.get("format", ""),
                port=port,
            )
        except UploadTooLarge:
            return self._too_large()
        return self._respond(upload, status.HTTP_200_OK)
