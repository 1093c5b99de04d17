"""Request bodies the API reads: JSON within limits, and YAML.

`LimitedJSONParser` is the API's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES):
a body larger than settings.JSON_MAX_BYTES or nesting deeper than settings.JSON_MAX_DEPTH,
or holding a NUL character, answers 400 with a message, on every endpoint, before any
view code runs (portal.core.safe_json: the same limits as every other JSON a person sends).

`YAMLParser` hands the view the raw bytes of an `application/yaml` body (at most
`max_bytes`, 413 beyond): the service that takes the document parses it (yaml.SafeLoader
only) and reports its problems with their paths, so the parser never interprets it.
"""

from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser, FormParser, JSONParser, MultiPartParser

from portal.core.safe_json import JSONRefused, loads_limited, max_bytes_setting


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def body_too_large(request, limit: int) -> bool:
    """Whether the request announces a body above `limit` bytes (checked before reading)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > limit
    except ValueError:
        return False


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser, bounded: size and nesting are checked before parsing."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = max_bytes_setting()
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise ParseError(f"The JSON body is larger than {limit:,} bytes: send less at a time.")
        try:
            return loads_limited(data, max_bytes=limit, what="The JSON body")
        except JSONRefused as exc:
            raise ParseError(str(exc)) from exc


def _check_form_fields(data) -> None:
    """A form field holding JSON (DRF's JSONField reads form fields as JSON text) is held
    to the same limits as a JSON body; a NUL character is refused in any field."""
    for name, values in data.lists():
        for value in values:
            if not isinstance(value, str):
                continue
            if "\x00" in value or "\x00" in name:
                raise ParseError(f"The field {name[:40]!r} holds a NUL character: remove it.")
            if value.lstrip()[:1] in ("[", "{"):
                try:
                    loads_limited(value, what=f"The field {name[:40]!r}")
                except JSONRefused as exc:
                    if not isinstance(exc.__cause__, ValueError):  # not JSON: the field says
                        raise ParseError(str(exc)) from exc


class LimitedFormParser(FormParser):
    """DRF's form parser; JSON in a field within the JSON limits, no NUL characters."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check_form_fields(data)
        return data


class LimitedMultiPartParser(MultiPartParser):
    """DRF's multipart parser; its text fields are checked like LimitedFormParser's."""

    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _check_form_fields(result.data)
        return result


# The largest YAML body (a data contract) the API reads.
MAX_YAML_BYTES = 1024 * 1024


class YAMLParser(BaseParser):
    media_type = "application/yaml"
    max_bytes = MAX_YAML_BYTES

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        request = (parser_context or {}).get("request")
        too_large = PayloadTooLarge(f"The YAML body is larger than {self.max_bytes // 1024} KiB.")
        if request is not None and body_too_large(request, self.max_bytes):
            raise too_large
        data = stream.read(self.max_bytes + 1) if stream is not None else b""
        if len(data) > self.max_bytes:
            raise too_large
        return data


class LegacyYAMLParser(YAMLParser):
    """The unregistered `application/x-yaml` many tools still send."""

    media_type = "application/x-yaml"
