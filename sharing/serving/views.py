"""Data pages of a product: the Data tab (a preview of the first rows the reader may see,
download buttons, the "Use in Python" card, or why not and how to ask) and the streaming
download.

Like every data path, they go through sharing.serving.reads: `read_plan` asks the one access
decision which columns and rows may be read, and `read_stream` / `read_rows` serve them
and write one audit event per read.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from portal.core.json_values import is_number, non_finite_as_text
from products.catalog.scope import product_header, product_page
from products.catalog.selectors import product_ports
from products.choices import PortKind
from products.connectors import ConnectorError, RelationMissing
from products.connectors.nats_stream import port_stream_facts
from products.models import DataProduct
from sharing.access.decision import can_share
from sharing.access.filters import clause_in_words
from sharing.choices import Channel, DataFormat
from sharing.serving.column_values import column_distinct_values
from sharing.serving.notebook import notebook_read_snippet
from sharing.serving.reads import (
    CONTENT_TYPES,
    EXTENSIONS,
    MAX_ROWS,
    PREVIEW_ROWS,
    ReadPlan,
    ReadRefused,
    read_plan,
    read_rows,
    read_stream,
)
from sharing.serving.source_errors import DATA_MISSING, shows_source_detail, source_error_message

DOWNLOAD_FORMATS = (DataFormat.CSV, DataFormat.PARQUET)


def client_address(request) -> str | None:
    """The address recorded in the audit: the connecting peer (REMOTE_ADDR). Behind a
    reverse proxy that is the proxy's address; X-Forwarded-For is not trusted, since any
    client can send it."""
    return request.META.get("REMOTE_ADDR") or None


class _Prefetched:
    """The stream with its first chunk already read. Closing it closes the stream (the
    server closes the response even when the client went away), so the read's audit event
    is written then, not whenever the generator is garbage-collected."""

    def __init__(self, first: bytes, stream: Iterator[bytes]) -> None:
        self.first = first
        self.stream = stream

    def __iter__(self) -> Iterator[bytes]:
        if self.first:
            yield self.first
        yield from self.stream

    def close(self) -> None:
        self.stream.close()


def port_missing_message(plan: ReadPlan, exc: RelationMissing) -> str:
    return (
        f"The output port {plan.port.name!r} points at data its source does not have "
        f"({exc}). The product's owners and stewards can point the port at an existing "
        "table or file and refresh its schema."
    )


def streaming_read_response(
    plan: ReadPlan, *, fmt: str, client_address: str | None, refused
) -> StreamingHttpResponse:
    """The plan's rows streamed in `fmt`, named `<product key>.<extension>`.

    The first chunk is read before the response starts, so a source that cannot be read
    answers an error status instead of a truncated 200. `refused(status, message)` makes
    the error response of the caller (JSON for the API, a page for the site)."""
    stream = read_stream(plan, fmt=fmt, client_address=client_address)
    try:
        first = next(stream, b"")
    except ReadRefused as exc:
        return refused(exc.status, exc.message)
    except RelationMissing as exc:
        # The port points at a table, file or column the source does not have: nothing
        # to serve until an editor points it elsewhere (not an outage: no 5xx).
        if not shows_source_detail(user=plan.user, product=plan.product):
            return refused(404, DATA_MISSING)
        return refused(404, port_missing_message(plan, exc))
    except ConnectorError as exc:
        message = source_error_message(user=plan.user, product=plan.product, exc=exc)
        return refused(exc.status, message)  # 502, or 403 when the source refused the portal

    response = StreamingHttpResponse(_Prefetched(first, stream), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{plan.product.key}.{EXTENSIONS[fmt]}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    if plan.limit_clamped:
        response["X-Limit-Clamped"] = str(plan.limit)
    return response


def _data_url(product: DataProduct) -> str:
    return reverse(
        "sharing:product-data",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
    )


def _numeric_columns(rows, width: int) -> list[bool]:
    """Which columns hold numbers (their headers align right, as their cells do)."""
    return [any(is_number(row[i]) for row in rows) for i in range(width)]


def _notebook_card(request, plan: ReadPlan, *, several_ports: bool) -> dict:
    """The "Use in Python" card: the client's install line, this reader's read of this
    port as code, and a link to create a token named for it."""
    product = plan.product
    base_url = request.build_absolute_uri("/").rstrip("/")
    wheel_url = request.build_absolute_uri(reverse("portal:client-wheel"))
    return {
        "client_install": f"pip install {wheel_url}",
        "notebook_snippet": notebook_read_snippet(
            base_url=base_url,
            product_key=product.key,
            product_slug=product.slug,
            columns=plan.columns if plan.decision.columns is not None else None,
            port_slug=plan.port.slug if several_ports else None,
            row_filter_words=[clause_in_words(c) for c in plan.decision.row_filter],
            masked=[name for name in plan.columns if name in plan.masked],
        ),
        "token_create_url": reverse("portal:my-tokens")
        + "?"
        + urlencode({"name": f"Notebook: {product.name}", "next": request.get_full_path()}),
    }


class ProductDataView(LoginRequiredMixin, TemplateView):
    """The Data tab: the first rows the reader may see, their masking and row filter, and
    the download buttons; or why the reader may not read them and where to ask."""

    template_name = "sharing/data_preview.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        product = product_page(request, kwargs["domain_slug"], kwargs["product_slug"])
        ports = list(product_ports(product=product))  # with their columns
        context.update(
            ports=ports,
            data_url=_data_url(product),
            preview_rows=PREVIEW_ROWS,
            **product_header(product=product, active_tab="data", crumb="Data"),
        )
        try:
            # The access decision is taken here, once, like on every other data path.
            plan = read_plan(
                user=request.user,
                product=product,
                channel=Channel.PREVIEW,
                port_slug=request.GET.get("port") or None,
                limit=PREVIEW_ROWS,
            )
        except ReadRefused as exc:
            if exc.status == 403:
                context["denied_reason"] = exc.message
            else:
                context["problem"] = exc.message
            return context
        if plan.port.kind == PortKind.STREAM:  # a live tail instead of rows and downloads
            context.update(
                port=plan.port,
                plan=plan,
                decision=plan.decision,
                row_filter_words=[clause_in_words(c) for c in plan.decision.row_filter],
                stream_facts=port_stream_facts(plan.port),
                stream_url=reverse("api-product-stream", kwargs={"key": product.key})
                + "?"
                + urlencode({"format": "sse", "from": "-20", "port": plan.port.slug}),
                columns=[{"name": name, "masked": name in plan.masked} for name in plan.columns],
            )
            return context
        port_columns = {port.pk: len(port.columns.all()) for port in ports}
        context.update(
            port=plan.port,
            plan=plan,
            decision=plan.decision,
            row_filter_words=[clause_in_words(c) for c in plan.decision.row_filter],
            download_url=reverse(
                "sharing:product-download",
                kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
            ),
            download_formats=[(fmt.value, fmt.label) for fmt in DOWNLOAD_FORMATS],
            all_column_count=port_columns.get(plan.port.pk),
        )
        context.update(_notebook_card(request, plan, several_ports=len(ports) > 1))
        if can_share(user=request.user, product=product):
            context["share_url"] = reverse(
                "sharing:share-link-create",
                kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
            )
        try:
            columns, rows = read_rows(plan, client_address=client_address(request))
        except ConnectorError as exc:
            context["problem"] = source_error_message(user=request.user, product=product, exc=exc)
            return context
        context.update(
            columns=[
                {"name": name, "masked": name in plan.masked, "numeric": numeric}
                for name, numeric in zip(columns, _numeric_columns(rows, len(columns)), strict=True)
            ],
            # NaN and infinities read as in the JSON reads: NaN, Infinity, -Infinity.
            rows=[tuple(non_finite_as_text(value) for value in row) for row in rows],
        )
        return context


class ProductDownloadView(LoginRequiredMixin, View):
    """`?format=csv|parquet&port=<slug>`: every row the reader may read, streamed."""

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        fmt = request.GET.get("format") or DataFormat.CSV
        if fmt not in DOWNLOAD_FORMATS:
            return _page_refusal(400, "Unknown download format: use csv or parquet.")
        try:
            plan = read_plan(
                user=request.user,
                product=product,
                channel=Channel.DOWNLOAD,
                port_slug=request.GET.get("port") or None,
                max_rows=MAX_ROWS,
            )
        except ReadRefused as exc:
            return _page_refusal(exc.status, exc.message)
        return streaming_read_response(
            plan, fmt=fmt, client_address=client_address(request), refused=_page_refusal
        )


def _page_refusal(status: int, message: str):
    if status == 403:
        raise PermissionDenied(message)
    if status == 404:
        raise Http404(message)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class ColumnValuesView(LoginRequiredMixin, View):
    """GET `?column=<name>[&port=<slug>]`: the column's distinct values when few, for the
    row-filter builder (JSON `{"values": [...]}`, `null` when many or masked). Read with
    the viewer's access, like every read; a product they may not see is a 404."""

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        column = request.GET.get("column", "")
        try:
            values = column_distinct_values(
                user=request.user,
                product=product,
                column=column,
                port_slug=request.GET.get("port") or None,
            )
        except ReadRefused as exc:
            return JsonResponse({"error": exc.message}, status=exc.status)
        try:
            return JsonResponse({"values": values})
        except TypeError:  # values JSON cannot carry (bytes): typed by hand
            return JsonResponse({"values": None})
