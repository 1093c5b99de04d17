"""Share-link pages.

Signed in: the "Share" form of a product's Data tab (and of an export run's file), the
page that shows a new link's URL once, and "My share links" with revocation.

Public, under `/s/<token>/`: the landing page and the download, without sign-in. Every
answer there is rate limited per client address, carries `Referrer-Policy: no-referrer`,
`Cache-Control: no-store` and `X-Robots-Tag: noindex`, and an unusable token (unknown,
expired, revoked, used up, or its creator lost access) gets one and the same 404 page.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.decorators.http import require_GET, require_safe

from portal.core.forms import add_service_errors
from products.catalog.scope import product_header, product_page
from products.catalog.selectors import port_for
from sharing.access.filters import filter_phrases
from sharing.choices import Channel, DataFormat
from sharing.exports.services.files import ExportFileRefused, export_file_serve_audit
from sharing.models import ExportRun, ShareLink
from sharing.serving.ratelimit import parse_rate, rate_limit_hit
from sharing.serving.reads import ReadRefused
from sharing.serving.views import client_address, streaming_read_response
from sharing.share_links.forms import ShareLinkForm
from sharing.share_links.services import (
    MAX_DAYS,
    export_file_available,
    share_decision,
    share_link_consume,
    share_link_create,
    share_link_detail,
    share_link_file,
    share_link_plan,
    share_link_release,
    share_link_resolve,
    share_link_revoke,
    share_link_status,
    share_links_of_user,
)

MY_LINKS_ROWS = 500
PUBLIC_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}
UNREADABLE = (
    "The data could not be read just now. Try again later, or tell the person who sent "
    "you the link."
)


# --- public pages ---------------------------------------------------------------------


def _not_found() -> HttpResponse:
    # Rendered without the request: the same bytes whatever made the token unusable.
    return HttpResponse(render_to_string("sharing/share_link_not_found.html"), status=404)


def _problem(status: int, title: str, message: str) -> HttpResponse:
    body = render_to_string(
        "sharing/share_link_problem.html", {"status": status, "title": title, "message": message}
    )
    return HttpResponse(body, status=status)


def public_share_link(view):
    """Rate limit per client address, then the headers every `/s/` answer carries."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        hit = rate_limit_hit(
            scope="share-link",
            key=client_address(request) or "unknown",
            rate=parse_rate(settings.SHARE_LINK_RATE_LIMIT),
        )
        if not hit.allowed:
            response = _problem(
                429,
                "Too many requests",
                f"Too many requests from your address. Try again in {hit.retry_after} "
                f"second{'s' if hit.retry_after != 1 else ''}.",
            )
            response["Retry-After"] = str(hit.retry_after)
        else:
            response = view(request, *args, **kwargs)
        for header, value in PUBLIC_HEADERS.items():
            response[header] = value
        return response

    return wrapped


@public_share_link
@require_safe
def share_link_landing(request, token: str):
    link = share_link_resolve(token)
    if link is None:
        return _not_found()
    context = {
        "link": link,
        "product_name": link.product.name,
        "format_label": DataFormat(link.format).label,
        "downloads_left": (
            None if link.max_downloads is None else link.max_downloads - link.download_count
        ),
        "file": share_link_file(link=link) if link.export_run_id else None,
    }
    return render(request, "sharing/share_link_landing.html", context)


@public_share_link
@require_GET  # not HEAD: a use is a download
def share_link_download(request, token: str):
    link = share_link_resolve(token)
    if link is None:
        return _not_found()
    address = client_address(request)
    if link.export_run_id:
        return _serve_export_file(link, address)
    try:
        plan = share_link_plan(link=link)
    except ReadRefused:
        return _not_found()  # the creator's access no longer covers the link
    if not share_link_consume(link=link):
        return _not_found()  # used up (or revoked) while we looked

    def refused(status: int, message: str) -> HttpResponse:
        share_link_release(link=link)  # nothing was served
        if status == 400:
            return _problem(400, "This file cannot be made", message)
        return _problem(502 if status >= 500 else status, "Not available", UNREADABLE)

    response = streaming_read_response(
        plan, fmt=link.format, client_address=address, refused=refused
    )
    return response


def _serve_export_file(link: ShareLink, address: str | None) -> HttpResponse:
    """The export file, through the same serve-and-audit as a signed-in download."""
    if not share_link_consume(link=link):
        return _not_found()
    try:
        return export_file_serve_audit(
            run=link.export_run,
            user=None,
            client_address=address,
            channel=Channel.SHARE_LINK,
            detail={**share_link_detail(link), "basis": "export_file"},
        )
    except ExportFileRefused:
        share_link_release(link=link)
        return _not_found()


# --- signed-in pages ------------------------------------------------------------------


def _share_context(request, product, *, port_slug: str | None, run: ExportRun | None) -> dict:
    """What the Share form needs: the sharer's decision, the port, its columns within the
    sharer's access, the sharer's own row filter in words."""
    decision = share_decision(user=request.user, product=product)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
    ports = list(product.ports.order_by("name").prefetch_related("columns"))
    port = None
    if run is None:
        # The port asked for, or the first by name when there is no such port.
        port = port_for(product=product, slug=port_slug, ports=ports) or port_for(
            product=product, ports=ports
        )
        if port is None:
            raise Http404("This product has no output port to share.")
    columns = sorted(port.columns.all(), key=lambda c: (c.position, c.name)) if port else []
    column_types = {c.name: c.data_type for c in columns if decision.allows_column(c.name)}
    allowed = list(column_types)
    return {
        **product_header(product=product, active_tab="data", crumb="Share"),
        "decision": decision,
        "ports": ports,
        "port": port,
        "run": run,
        "allowed_columns": allowed,
        # The filter builder offers the columns the sharer may filter on (masked ones
        # cannot be filtered on), with their few values read with the sharer's access.
        "filter_columns": {
            name: data_type
            for name, data_type in column_types.items()
            if name not in decision.masked
        },
        "masked_columns": sorted(set(allowed) & decision.masked),
        "row_filter_words": filter_phrases(decision.row_filter),
        "max_days": MAX_DAYS,
        "data_url": reverse(
            "sharing:product-data",
            kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
        ),
    }


def _export_run(product, run_id: str | None) -> ExportRun | None:
    if not run_id:
        return None
    run = (
        ExportRun.objects.select_related("schedule__port")
        .filter(pk=int(run_id) if run_id.isdigit() else 0, schedule__product=product)
        .first()
    )
    if run is None or not export_file_available(run):
        raise Http404("No such export file to share: the run failed or its file was removed.")
    return run


def _share_form(context: dict, data=None) -> ShareLinkForm:
    product = context["product"]
    return ShareLinkForm(
        data,
        columns=context["allowed_columns"],
        export_file=context["run"] is not None,
        column_types=context["filter_columns"],
        values_url=reverse(
            "sharing:product-column-values",
            kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
        ),
    )


class ShareLinkCreateView(LoginRequiredMixin, View):
    """`?port=<slug>` (a live link) or `?export_run=<id>` (that run's file)."""

    def _context(self, request, domain_slug, product_slug):
        product = product_page(request, domain_slug, product_slug)
        params = request.POST if request.method == "POST" else request.GET
        run = _export_run(product, params.get("export_run"))
        return _share_context(request, product, port_slug=params.get("port") or None, run=run)

    def get(self, request, domain_slug: str, product_slug: str):
        context = self._context(request, domain_slug, product_slug)
        context["form"] = _share_form(context)
        return render(request, "sharing/share_link_form.html", context)

    def post(self, request, domain_slug: str, product_slug: str):
        context = self._context(request, domain_slug, product_slug)
        run, port = context["run"], context["port"]
        form = _share_form(context, request.POST)
        if form.is_valid():
            try:
                link, token = share_link_create(
                    by=request.user,
                    product=context["product"],
                    port_slug=port.slug if port else None,
                    export_run=run,
                    **form.service_kwargs(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                url = request.build_absolute_uri(
                    reverse("sharing:share-link-landing", kwargs={"token": token})
                )
                response = render(
                    request,
                    "sharing/share_link_created.html",
                    {**context, "link": link, "share_url": url},
                    status=201,
                )
                response["Cache-Control"] = "no-store"  # the token is on this page only
                return response
        context["form"] = form
        return render(request, "sharing/share_link_form.html", context, status=400)


class MyShareLinksView(LoginRequiredMixin, View):
    def get(self, request):
        now = timezone.now()
        links = list(share_links_of_user(user=request.user)[:MY_LINKS_ROWS])
        for link in links:
            link.status = share_link_status(link, now=now)
            link.filter_words = filter_phrases(link.row_filter)
        return render(
            request,
            "sharing/my_share_links.html",
            {
                "links": links,
                "active_count": sum(link.status == "active" for link in links),
                "max_rows": MY_LINKS_ROWS,
            },
        )


class ShareLinkRevokeView(LoginRequiredMixin, View):
    def post(self, request, link_id: int):
        link = ShareLink.objects.select_related("product__domain").filter(pk=link_id).first()
        if link is None:
            raise Http404("No such share link.")
        try:
            share_link_revoke(link=link, by=request.user, reason=request.POST.get("reason", ""))
        except PermissionDenied:
            raise Http404("No such share link.") from None
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, f"Revoked: the link {link.token_hint}… to {link.product.name} is dead."
            )
        return redirect("sharing:my-share-links")
