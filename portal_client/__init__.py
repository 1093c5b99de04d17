"""A small client for the data-product portal: `Portal().read("sales.orders")` returns a
pandas DataFrame of the rows you may read. See portal_client/README.md."""

from portal_client.client import Portal, __version__, filter_clauses
from portal_client.errors import (
    PortalAuthError,
    PortalConfigError,
    PortalError,
    PortalLimitClamped,
    PortalNotFound,
    PortalPermissionError,
    PortalRequestError,
)

__all__ = [
    "Portal",
    "PortalAuthError",
    "PortalConfigError",
    "PortalError",
    "PortalLimitClamped",
    "PortalNotFound",
    "PortalPermissionError",
    "PortalRequestError",
    "__version__",
    "filter_clauses",
]
