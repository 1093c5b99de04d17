"""What the portal client raises (and warns), one class per answer a caller handles
differently. All errors are PortalError, so `except PortalError` catches every refusal."""

from __future__ import annotations


class PortalError(Exception):
    """The portal refused or failed a request. `status` is the HTTP status (None when the
    portal could not be reached or the client is not configured); `detail` is the
    portal's own explanation, as it wrote it."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class PortalConfigError(PortalError):
    """PORTAL_URL or PORTAL_TOKEN is missing or malformed."""


class PortalAuthError(PortalError):
    """401: the token is missing, wrong or expired. Get a new one."""


class PortalPermissionError(PortalError):
    """403: you are signed in but may not read this (no grant, expired or revoked grant,
    a column or filter outside your grant). `detail` says which."""


class PortalNotFound(PortalError):
    """404: no such product (or port), or not one you can see."""


class PortalRequestError(PortalError):
    """400: the request is malformed (unknown column, bad filter, bad limit). `detail`
    says what to fix."""


class PortalLimitClamped(UserWarning):
    """The portal served fewer rows than asked: the limit was above its maximum per read."""


def error_for_status(status: int, detail: str, *, what: str) -> PortalError:
    """The exception for an HTTP error answer to `what` (e.g. "reading sales.orders")."""
    if status == 401:
        return PortalAuthError(
            f"The portal did not accept your token while {what}: {detail} "
            "Create a new token on the portal's API tokens page (/my/tokens/) and set "
            "PORTAL_TOKEN.",
            status=status,
            detail=detail,
        )
    if status == 403:
        return PortalPermissionError(
            f"Permission denied while {what}: {detail}", status=status, detail=detail
        )
    if status == 404:
        return PortalNotFound(f"Not found while {what}: {detail}", status=status, detail=detail)
    if status == 400:
        return PortalRequestError(
            f"The portal refused the request while {what}: {detail}", status=status, detail=detail
        )
    return PortalError(
        f"The portal answered {status} while {what}: {detail}", status=status, detail=detail
    )
