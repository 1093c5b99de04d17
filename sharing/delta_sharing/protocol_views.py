"""The Delta Sharing protocol server under `/delta-sharing/` (the open protocol of
delta-io/delta-sharing, PROTOCOL.md): plain Django views, bearer-token authenticated,
answering the protocol's JSON and newline-delimited JSON, errors as
`{"errorCode", "message"}`. They parse the request and call
`sharing.delta_sharing.protocol`. Not part of the OpenAPI schema of `/api/v1/`: the
protocol is specified by Delta Sharing itself (see docs/sharing.md).

Only parquet response format: a client asking for `responseformat=delta` is answered in
parquet, and says so in the `delta-sharing-capabilities` header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from django.core import signing
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from portal.core.safe_json import JSONRefused, loads_limited
from sharing.delta_sharing import protocol as serving
from sharing.delta_sharing.protocol import ProtocolError
from sharing.serving.views import client_address

NDJSON = "application/x-ndjson; charset=utf-8"
CAPABILITIES = "delta-sharing-capabilities"
VERSION = "delta-table-version"
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def error_response(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"errorCode": code, "message": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="delta-sharing"'
    return response


def protocol_view(methods: list[str]) -> Callable:
    """Bearer authentication, the allowed methods and protocol errors for a view
    `view(request, recipient, **kwargs)`. CSRF does not apply: no cookie is used."""

    def decorate(view):
        @csrf_exempt
        def wrapped(request, **kwargs):
            if request.method not in methods:
                return error_response(
                    405, "METHOD_NOT_ALLOWED", f"Use {' or '.join(methods)} here."
                )
            try:
                recipient = serving.recipient_authenticate(
                    authorization=request.headers.get("Authorization")
                )
                response = view(request, recipient, **kwargs)
            except ProtocolError as exc:
                return error_response(exc.status, exc.code, exc.message)
            response["Cache-Control"] = "no-store"
            return response

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorate


def _listing(request, items: list, *, scope: str) -> JsonResponse:
    chunk, token = serving.page(
        items,
        max_results=request.GET.get("maxResults"),
        page_token=request.GET.get("pageToken"),
        scope=scope,
    )
    body: dict = {"items": chunk}
    if token:
        body["nextPageToken"] = token
    return JsonResponse(body)


def _with_capabilities(request, response: HttpResponse) -> HttpResponse:
    if CAPABILITIES in request.headers:
        response[CAPABILITIES] = "responseformat=parquet"
    return response


def _ndjson(lines: list[dict], *, version: int) -> HttpResponse:
    body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    response = HttpResponse(body, content_type=NDJSON)
    response[VERSION] = str(version)
    return response


@protocol_view(["GET"])
def shares(request, recipient):
    """GET /shares: the recipient's share (a recipient reads one share)."""
    share = recipient.share
    items = [{"name": share.name, "id": serving.share_id(share)}]
    return _listing(request, items, scope=f"shares:{recipient.pk}")


@protocol_view(["GET"])
def share_detail(request, recipient, share: str):
    found = serving.share_get(recipient=recipient, name=share)
    return JsonResponse({"share": {"name": found.name, "id": serving.share_id(found)}})


@protocol_view(["GET"])
def schemas(request, recipient, share: str):
    found = serving.share_get(recipient=recipient, name=share)
    items = [{"name": name, "share": found.name} for name in serving.share_schemas(share=found)]
    return _listing(request, items, scope=f"schemas:{found.pk}")


@protocol_view(["GET"])
def tables(request, recipient, share: str, schema: str):
    found = serving.share_get(recipient=recipient, name=share)
    items = [
        serving.table_item(table, found)
        for table in serving.share_tables(share=found, schema=schema)
    ]
    return _listing(request, items, scope=f"tables:{found.pk}:{schema.lower()}")


@protocol_view(["GET"])
def all_tables(request, recipient, share: str):
    found = serving.share_get(recipient=recipient, name=share)
    items = [serving.table_item(table, found) for table in serving.share_tables(share=found)]
    return _listing(request, items, scope=f"all-tables:{found.pk}")


def _table(recipient, share: str, schema: str, table: str):
    found = serving.share_get(recipient=recipient, name=share)
    return serving.table_get(share=found, schema=schema, name=table)


@protocol_view(["GET", "HEAD"])
def table_version(request, recipient, share: str, schema: str, table: str):
    """GET .../version (and the deprecated HEAD .../tables/{table}): the version in the
    `delta-table-version` header, an empty body."""
    if request.GET.get("startingTimestamp"):
        raise ProtocolError(
            400,
            "INVALID_PARAMETER_VALUE",
            "startingTimestamp is not supported: this server shares the current version of "
            "each table only, without history.",
        )
    snapshot = serving.table_snapshot(table=_table(recipient, share, schema, table))
    response = HttpResponse(b"")
    response[VERSION] = str(snapshot.version)
    return response


@protocol_view(["GET"])
def table_metadata(request, recipient, share: str, schema: str, table: str):
    snapshot, files = serving.table_metadata(table=_table(recipient, share, schema, table))
    lines = [serving.protocol_line(), serving.metadata_line(snapshot, files)]
    return _with_capabilities(request, _ndjson(lines, version=snapshot.version))


@protocol_view(["POST"])
def table_query(request, recipient, share: str, schema: str, table: str):
    """POST .../query: protocol, metadata and one line per Parquet file, each with a
    short-lived signed URL served by `file_view`."""
    found = _table(recipient, share, schema, table)
    try:
        body = loads_limited(request.body or b"{}", what="The body")
    except JSONRefused as exc:
        if isinstance(exc.__cause__, ValueError | UnicodeDecodeError):
            raise ProtocolError(400, "MALFORMED_REQUEST", "The body is not valid JSON.") from None
        raise ProtocolError(400, "MALFORMED_REQUEST", str(exc)) from None
    if not isinstance(body, dict):
        raise ProtocolError(400, "MALFORMED_REQUEST", "The body must be a JSON object.")
    snapshot, files = serving.table_query(
        table=found, recipient=recipient, body=body, client_address=client_address(request)
    )

    def url_for(token: str) -> str:
        return request.build_absolute_uri(reverse("delta_sharing:file", args=[token]))

    lines = [
        serving.protocol_line(),
        serving.metadata_line(snapshot, files),
        *serving.file_lines(snapshot, files, url_for=url_for, recipient=recipient),
    ]
    return _with_capabilities(request, _ndjson(lines, version=snapshot.version))


@csrf_exempt
@require_http_methods(["GET", "HEAD"])
def file_view(request, token: str):
    """A materialised Parquet file, by signed URL (no bearer token: the client does not
    send it for file URLs). HEAD tells the size; GET answers a single byte range
    (`Range: bytes=a-b`, 206) or the whole file."""
    try:
        path = serving.file_for_token(token)
    except signing.SignatureExpired:
        return error_response(
            403, "PERMISSION_DENIED", "This file URL has expired: query the table again."
        )
    except signing.BadSignature:
        return error_response(403, "PERMISSION_DENIED", "This file URL is not valid.")
    except serving.FileAccessRevoked as exc:
        return error_response(403, "PERMISSION_DENIED", str(exc))
    except FileNotFoundError:
        return error_response(
            404, "RESOURCE_DOES_NOT_EXIST", "This file is gone: query the table again."
        )
    size = path.stat().st_size
    start, length, status = 0, size, 200
    match = RANGE.match(request.headers.get("Range", "").strip())
    if match and (match[1] or match[2]):
        if match[1]:
            start = int(match[1])
            end = min(int(match[2]), size - 1) if match[2] else size - 1
        else:  # the last n bytes
            start = max(size - int(match[2]), 0)
            end = size - 1
        if start >= size or end < start:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        length, status = end - start + 1, 206
    if request.method == "HEAD":
        response = HttpResponse(b"", status=status, content_type="application/octet-stream")
    else:
        response = StreamingHttpResponse(
            serving.read_range(path, start, length),
            status=status,
            content_type="application/octet-stream",
        )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    return response


@csrf_exempt
def not_found(request, rest: str = ""):
    """Anything else under the prefix: the protocol's 404 (e.g. the change data feed,
    which this server does not share)."""
    return error_response(
        404, "RESOURCE_DOES_NOT_EXIST", f"There is no Delta Sharing endpoint /{rest}."
    )
