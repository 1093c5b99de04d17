"""The portal's own 404 and 500 pages under DEBUG=1 too (`make run`), so a newcomer who
mistypes an address sees a page that helps them on, not Django's debug page listing
every route. DEBUG_PAGES=1 brings the debug pages back for whoever wants them.

Without DEBUG Django already renders templates/404.html and 500.html: this middleware
then does nothing. It sits last in MIDDLEWARE, so the pages it renders know the user
(the top bar) and CommonMiddleware still redirects `/path` to `/path/` first.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import Resolver404, resolve
from django.views import defaults

logger = logging.getLogger("django.request")

# The exceptions Django answers with a 4xx page of its own, DEBUG or not.
CLIENT_ERRORS = (BadRequest, PermissionDenied, SuspiciousOperation, MultiPartParserError)


def friendly_pages_wanted() -> bool:
    """Under DEBUG, unless DEBUG_PAGES asks for Django's debug pages."""
    return settings.DEBUG and not getattr(settings, "DEBUG_PAGES", False)


class FriendlyErrorPagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if friendly_pages_wanted():
            try:
                resolve(request.path_info, getattr(request, "urlconf", None))
            except Resolver404 as exc:
                return defaults.page_not_found(request, exc)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not friendly_pages_wanted():
            return None
        if isinstance(exception, Http404):
            return defaults.page_not_found(request, exception)
        if _is_server_error(exception):
            logger.error(
                "Internal Server Error: %s",
                request.path,
                exc_info=exception,
                extra={"status_code": 500, "request": request},
            )
            return defaults.server_error(request)
        return None


def _is_server_error(exception: Exception) -> bool:
    """What Django itself answers with a 4xx (permission denied, bad request, suspicious
    input, a broken upload) keeps its answer; everything else is a 500."""
    return not isinstance(exception, CLIENT_ERRORS)
