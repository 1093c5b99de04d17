"""Services raise Django's ValidationError and PermissionDenied; the API answers them as
400 (a message per field) and 403, like DRF's own exceptions."""

from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler


def _api_field(field: str) -> str:
    # Model-wide errors (unique constraints...) use DRF's key, not Django's "__all__".
    return api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field


def _as_drf(exc: Exception) -> Exception:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(
                {_api_field(field): list(messages) for field, messages in exc.message_dict.items()}
            )
        return exceptions.ValidationError({"detail": exc.messages})
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, ObjectDoesNotExist):
        return exceptions.NotFound()
    return exc


def api_exception_handler(exc, context):
    return exception_handler(_as_drf(exc), context)
