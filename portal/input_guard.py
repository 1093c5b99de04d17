"""One guard in front of every route: input no view can use is refused before any view
or query runs.

- A NUL character (raw, or `%00` once decoded) in the path, in a query parameter's name
  or value, or in a field of a form body (`application/x-www-form-urlencoded`) answers
  400. PostgreSQL's text cannot hold it, so it could only ever fail later, as a 500.
- A JSON or form body announcing more than settings.JSON_MAX_BYTES (JSON) or
  DATA_UPLOAD_MAX_MEMORY_SIZE (forms) bytes answers 400 before it is read.
- A path longer than MAX_PATH_CHARS (2,048) or a query string longer than
  MAX_QUERY_BYTES (64 KiB) answers 414 URI Too Long; one query parameter's name or
  value longer than MAX_PARAMETER_CHARS (4,096) answers 400 naming the parameter.
  (gunicorn's default `limit_request_line`, 4,094 bytes, refuses longer request lines
  with its own 414 before Django sees them; these limits hold behind any server.)

The answer is JSON `{"detail": message}` under /api/ (and, for Delta Sharing clients,
`{"errorCode": "MALFORMED_REQUEST", "message": ..., "detail": ...}` under
/delta-sharing/), a plain page elsewhere.

Multipart bodies are left to their views: parsing them here would read uploads before
the upload views install their own handlers (products.uploads.services). Their text
fields go through Django forms and DRF serializers, whose CharFields refuse NUL.
JSON bodies are bounded by their parser (portal.api.parsers, portal.core.safe_json).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.html import escape

from portal.core.safe_json import max_bytes_setting

MAX_PATH_CHARS = 2048
MAX_QUERY_BYTES = 64 * 1024
MAX_PARAMETER_CHARS = 4096
NUL = "\x00"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
FORM_METHODS = ("POST", "PUT", "PATCH", "DELETE")
JSON_PREFIXES = ("/api/",)
DELTA_SHARING_PREFIX = "/delta-sharing/"


class InputRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _shown(name: str) -> str:
    """A parameter name as a message quotes it: NULs visible, long names cut."""
    text = name.replace(NUL, "\\0")
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _check_fields(items, *, where: str) -> None:
    for name, values in items:
        if NUL in name:
            raise InputRefused(
                400, f"A {where} name holds a NUL character (%00), which no name can hold."
            )
        if len(name) > MAX_PARAMETER_CHARS:
            raise InputRefused(
                400, f"A {where} name is longer than {MAX_PARAMETER_CHARS:,} characters."
            )
        for value in values:
            if NUL in value:
                raise InputRefused(
                    400,
                    f"The {where} {_shown(name)} holds a NUL character (%00), which no "
                    "value can hold: remove it.",
                )
            if where == "query parameter" and len(value) > MAX_PARAMETER_CHARS:
                raise InputRefused(
                    400,
                    f"The query parameter {_shown(name)} is {len(value):,} characters "
                    f"long; at most {MAX_PARAMETER_CHARS:,} are read. Send long filters "
                    "in fewer clauses, or use a scheduled export.",
                )


def input_problem(request: HttpRequest) -> InputRefused | None:
    """Why the request is refused before routing, or None."""
    path = request.path_info
    if NUL in path or NUL in request.path:
        return InputRefused(400, "The address holds a NUL character (%00): remove it.")
    if len(path) > MAX_PATH_CHARS:
        return InputRefused(414, f"The address is longer than {MAX_PATH_CHARS:,} characters.")
    query = request.META.get("QUERY_STRING", "")
    if len(query) > MAX_QUERY_BYTES:
        return InputRefused(
            414,
            f"The query string is longer than {MAX_QUERY_BYTES:,} bytes: send less at a time.",
        )
    content_type = request.content_type or ""
    is_json = content_type == "application/json" or content_type.endswith("+json")
    if is_json or content_type == FORM_CONTENT_TYPE:
        limit = max_bytes_setting() if is_json else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return InputRefused(
                400, f"The request body is larger than {limit:,} bytes: send less at a time."
            )
    try:
        if query:
            _check_fields(request.GET.lists(), where="query parameter")
        if content_type == FORM_CONTENT_TYPE and request.method in FORM_METHODS:
            # Django parses POST forms; a PUT or PATCH form is parsed here the same way.
            form = (
                request.POST
                if request.method == "POST"
                else QueryDict(request.body, encoding=request.encoding)
            )
            _check_fields(form.lists(), where="form field")
    except InputRefused as refused:
        return refused
    return None


def refusal_response(request: HttpRequest, refused: InputRefused) -> HttpResponse:
    path = request.path_info
    if path.startswith(DELTA_SHARING_PREFIX):
        return JsonResponse(
            {
                "errorCode": "MALFORMED_REQUEST",
                "message": refused.message,
                "detail": refused.message,
            },
            status=refused.status,
        )
    if path.startswith(JSON_PREFIXES):
        return JsonResponse({"detail": refused.message}, status=refused.status)
    title = "Address too long" if refused.status == 414 else "Bad request"
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><main><h1>{title}</h1>"
        f"<p>{escape(refused.message)}</p><p><a href='/'>Back to the portal</a></p>"
        "</main></body></html>"
    )
    return HttpResponse(page, status=refused.status, content_type="text/html; charset=utf-8")


class InputGuardMiddleware:
    """Refuse NUL characters, over-long URLs and bodies before any view or query."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = input_problem(request)
        if refused is not None:
            return refusal_response(request, refused)
        return self.get_response(request)
