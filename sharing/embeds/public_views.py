"""The embed page and its data calls: public, for host applications' viewers.

`/embed/<id>/` is the page a host loads in an iframe with the token in the URL fragment
(`#token=...`: never sent to a server, so never in a log). It holds no data: its script
reads the token and calls `/embed/<id>/data/` with `Authorization: Bearer <token>`, and
draws the answer (a KPI tile in plain HTML first, charts with the partial plotly bundle,
loaded beside the data call). Its `Content-Security-Policy: frame-ancestors` is the
embed's allowed origins.

Every data call verifies the token, the embed (active) and the origin: a cross-origin
call's `Origin` must be an allowed origin (answered with CORS headers); a call from the
embed page itself (same origin) names the page that frames it in `X-Embed-Origin`, which
must be an allowed origin too (frame-ancestors is the browser's guarantee of it).
"""

from __future__ import annotations

import csv
import io

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_http_methods, require_safe

from portal.core.json_values import dumps
from sharing.choices import EmbedChart
from sharing.embeds.refusals import EmbedRefused
from sharing.embeds.services.embeds import origin_normalise
from sharing.embeds.serving import embed_active, embed_answer, embed_view_count
from sharing.embeds.tokens import token_verify
from sharing.models import Embed
from sharing.serving.ratelimit import parse_rate, rate_limit_hit
from sharing.serving.views import client_address

PARENT_ORIGIN_HEADER = "HTTP_X_EMBED_ORIGIN"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _problem(status: int, message: str, *, origin: str | None = None) -> JsonResponse:
    response = JsonResponse({"detail": message, "status": status}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="embed", error="invalid_token"'
    _headers(response, origin)
    return response


def _headers(response: HttpResponse, origin: str | None) -> HttpResponse:
    for header, value in NO_STORE.items():
        response[header] = value
    response["X-Content-Type-Options"] = "nosniff"
    if origin:  # an allowed origin calling across origins
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = "X-Embed-Cache"
    response["Vary"] = "Origin"
    return response


def _own_origin(request) -> str:
    return f"{request.scheme}://{request.get_host()}".lower()


def _origin_check(request, embed: Embed) -> str | None:
    """The cross-origin caller to answer with CORS headers (None: the embed page itself),
    or EmbedRefused(403)."""
    allowed = set(embed.allowed_origins)
    origin = request.META.get("HTTP_ORIGIN")
    if origin and origin.lower() != _own_origin(request):
        try:
            origin = origin_normalise(origin)
        except ValueError:
            origin = None
        if origin not in allowed:
            raise EmbedRefused(403, "This embed may not be shown on your site's origin.")
        return origin
    parent = request.META.get(PARENT_ORIGIN_HEADER, "")
    try:
        parent = origin_normalise(parent) if parent else ""
    except ValueError:
        parent = ""
    if parent not in allowed:
        raise EmbedRefused(
            403,
            "This embed may only be shown on the sites its owners allowed: open it inside "
            "one of them.",
        )
    return None


def _bearer(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _csv(payload: dict, filename: str) -> HttpResponse:
    # Lazy: the formula rule lives with the Arrow values, which import pyarrow.
    from sharing.serving.arrow_values import neutralise_formula

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(payload["columns"])
    for row in payload["rows"]:
        writer.writerow(
            [neutralise_formula(value) if isinstance(value, str) else value for value in row]
        )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


@xframe_options_exempt
@require_http_methods(["GET", "OPTIONS"])
def embed_data(request, embed_id):
    """The embed's data as JSON (`?format=csv` for its CSV, when the embed allows it)."""
    origin = None
    try:
        embed = embed_active(embed_id)
        origin = _origin_check(request, embed)
        if request.method == "OPTIONS":  # a cross-origin caller's preflight
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = "GET"
            response["Access-Control-Allow-Headers"] = "Authorization, X-Embed-Origin"
            response["Access-Control-Max-Age"] = "600"
            return _headers(response, origin)
        hit = rate_limit_hit(
            scope=f"embed:{embed.pk}",
            key=client_address(request) or "unknown",
            rate=parse_rate(settings.EMBED_RATE_LIMIT),
        )
        if not hit.allowed:
            response = _problem(429, "Too many requests: try again shortly.", origin=origin)
            response["Retry-After"] = str(hit.retry_after)
            return response
        token = token_verify(_bearer(request), embed)
        fmt = request.GET.get("format", "json")
        if fmt not in ("json", "csv"):
            raise EmbedRefused(400, "format is json or csv.")
        if fmt == "csv" and not embed.allow_csv:
            raise EmbedRefused(403, "This embed does not offer its data as CSV.")
        answer = embed_answer(embed, token, client_address=client_address(request))
    except EmbedRefused as exc:
        return _problem(exc.status, exc.message, origin=origin)
    embed_view_count(embed, token, download=fmt == "csv")
    if fmt == "csv":
        response = _csv(answer.payload, embed.product.key)
    else:
        response = HttpResponse(
            dumps({**answer.payload, "cached": answer.cached}), content_type="application/json"
        )
    response["X-Embed-Cache"] = "hit" if answer.cached else "miss"
    return _headers(response, origin)


@xframe_options_exempt
@require_safe
def embed_page(request, embed_id):
    """The page a host frames (see the module): no data in it, the token stays in the
    fragment."""
    try:
        embed = embed_active(embed_id)
    except EmbedRefused as exc:
        response = render(
            request, "sharing/embeds/unavailable.html", {"message": exc.message}, status=404
        )
        response._csp_replace = {"frame-ancestors": ["*"]}
        return _headers(response, None)
    chart = embed.chart not in (EmbedChart.KPI, EmbedChart.TABLE)
    context = {
        "embed": embed,
        "data_url": reverse("sharing:embed-data", args=[embed.pk]),
        "draws_chart": chart,
    }
    response = render(request, "sharing/embeds/embed.html", context)
    response._csp_replace = {"frame-ancestors": list(embed.allowed_origins)}
    return _headers(response, None)
