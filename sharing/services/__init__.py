"""Writes and workflows of access: requests, grants, revocation, the access review.
Pages, API views and tasks call these."""

from sharing.services.grants import (
    access_review,
    grant_create,
    grant_expiry_notice,
    grant_revoke,
    grants_revoke_for_user,
)
from sharing.services.requests import (
    access_request_approve,
    access_request_cancel,
    access_request_create,
    access_request_deny,
)

__all__ = [
    "access_request_approve",
    "access_request_cancel",
    "access_request_create",
    "access_request_deny",
    "access_review",
    "grant_create",
    "grant_expiry_notice",
    "grant_revoke",
    "grants_revoke_for_user",
]
