"""Upload pages: a new file port from a CSV or Parquet file, and a new version of a file
port's file. Both call products.uploads.services.port_file_upload, like the API.

The body is read through PortUploadHandler (streamed to a temporary file, stopped at
PORT_UPLOAD_MAX_BYTES), which must be installed before anything reads it. Django's CSRF
middleware reads the body of a POST, so these views are exempt from the middleware and
run the same CSRF check themselves once the handler is in place (the pattern Django's
documentation gives for upload handlers).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from portal.core.forms import add_service_errors
from products.catalog.personal_data import personal_data_message
from products.catalog.scope import product_page, product_page_port
from products.connectors.file_probe import size_words
from products.models import DataProduct, OutputPort
from products.uploads.forms import PortFileReplaceForm, PortUploadForm
from products.uploads.services import UploadTooLarge, port_file_upload, upload_handler_install

TEMPLATE = "products/port_upload.html"

SERVICE_FIELD_NAMES = {"format": "file_format", "port": "file"}


def _context(*, product: DataProduct, form, port: OutputPort | None = None) -> dict:
    return {
        "product": product,
        "port": port,
        "form": form,
        "max_bytes": settings.PORT_UPLOAD_MAX_BYTES,
        "max_size": size_words(settings.PORT_UPLOAD_MAX_BYTES),
        "max_columns": settings.PORT_MAX_COLUMNS,
    }


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        exc = ValidationError(
            {
                SERVICE_FIELD_NAMES.get(field, field): errors
                for field, errors in exc.error_dict.items()
            }
        )
    add_service_errors(form, exc)


@method_decorator(csrf_exempt, name="dispatch")
class _UploadPageView(LoginRequiredMixin, View):
    form_class = PortUploadForm

    def get(self, request, domain_slug: str, product_slug: str, port_slug: str = ""):
        product = product_page(request, domain_slug, product_slug, edit=True)
        port = product_page_port(product, port_slug) if port_slug else None
        return render(
            request, TEMPLATE, _context(product=product, port=port, form=self.form_class())
        )

    def post(self, request, domain_slug: str, product_slug: str, port_slug: str = ""):
        # Who may upload is decided before the body is read.
        product = product_page(request, domain_slug, product_slug, edit=True)
        port = product_page_port(product, port_slug) if port_slug else None
        handler = upload_handler_install(request)
        return csrf_protect(self._post)(request, product=product, port=port, handler=handler)

    def _post(self, request, *, product: DataProduct, port: OutputPort | None, handler):
        form = self.form_class(request.POST, request.FILES)
        status = 400
        if handler.too_large:
            form.is_valid()
            form.add_error("file", UploadTooLarge().message)
            status = 413
        elif form.is_valid():
            data = form.cleaned_data
            try:
                upload = port_file_upload(
                    product=product,
                    by=request.user,
                    uploaded_file=data["file"],
                    name=data.get("name", ""),
                    description=data.get("description", ""),
                    file_format=data["file_format"],
                    port=port,
                )
            except UploadTooLarge as exc:
                form.add_error("file", exc.message)
                status = 413
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                verb = "Added file port" if upload.created else "Stored a new version of"
                messages.success(request, f"{verb} {upload.port.name} from {upload.summary()}")
                flagged = personal_data_message(upload.port.columns.all())
                if flagged:
                    messages.warning(request, flagged)
                return redirect(f"{product.get_absolute_url()}#port-{upload.port.slug}")
        return render(
            request, TEMPLATE, _context(product=product, port=port, form=form), status=status
        )


class PortUploadView(_UploadPageView):
    """A new file port from an uploaded file."""

    form_class = PortUploadForm


class PortFileReplaceView(_UploadPageView):
    """A new version of a file port's file."""

    form_class = PortFileReplaceForm
