"""What requests and grants share: who manages a product's access, the product's
columns, validating columns, row filters and durations, and writing one audit event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from products.catalog.permissions import can_edit_product, domain_role, user_is_admin
from products.catalog.services.events import product_event_emit
from products.choices import Classification, MembershipRole
from products.models import Column, DataProduct
from sharing.access.filters import (
    FilterError,
    clauses_typed,
    filter_in_words,
    parse_filter,
    unknown_columns,
)
from sharing.models import AccessEvent, AccessGrant, AccessRequest

# Columns a product may let requests for auto-approve.
AUTO_APPROVE_CLASSIFICATIONS = (Classification.PUBLIC, Classification.INTERNAL)


def can_manage_access(*, user, product: DataProduct) -> bool:
    """The domain's owners and stewards, and admins: approve, deny, revoke, see grants."""
    return can_edit_product(user=user, product=product)


def can_grant_directly(*, user, product: DataProduct) -> bool:
    """Admins and the domain's owners grant without a request (stewards only approve)."""
    return user_is_admin(user) or (
        domain_role(user=user, domain=product.domain) == MembershipRole.OWNER
    )


def product_columns(*, product: DataProduct) -> list[Column]:
    """The columns of every port of the product, in port and position order."""
    return list(
        Column.objects.filter(port__product=product).order_by("port__name", "position", "name")
    )


def product_column_names(*, product: DataProduct) -> list[str]:
    return list(dict.fromkeys(column.name for column in product_columns(product=product)))


def clean_columns(
    *, product: DataProduct, columns, field: str = "columns", within: list[str] | None = None
) -> list[str]:
    """Known, de-duplicated column names; [] means every column. `within` (non-empty)
    narrows what may be named (an approval narrows a request, never widens it)."""
    if not columns:
        return []
    if isinstance(columns, str) or not all(isinstance(name, str) for name in columns):
        raise ValidationError({field: "Give a list of column names."})
    names = list(dict.fromkeys(name for name in columns if name))  # names verbatim
    known = product_column_names(product=product)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValidationError({field: f"Unknown column(s): {', '.join(unknown)}."})
    if within:
        outside = [name for name in names if name not in within]
        if outside:
            listed = ", ".join(outside)
            raise ValidationError(
                {field: f"Not part of the request, which can only be narrowed: {listed}."}
            )
    return names


def clean_row_filter(*, product: DataProduct, row_filter) -> list[dict]:
    """A grant's row filter, parsed and checked against the product's columns, stored as
    a list of {"column", "op", "value"}."""
    types = {column.name: column.data_type for column in product_columns(product=product)}
    try:
        clauses = clauses_typed(parse_filter(row_filter), types)
    except FilterError as exc:
        raise ValidationError({"row_filter": str(exc)}) from exc
    unknown = unknown_columns(clauses, product_column_names(product=product))
    if unknown:
        raise ValidationError(
            {"row_filter": f"The filter names unknown column(s): {', '.join(unknown)}."}
        )
    return [clause.as_dict() for clause in clauses]


def clean_duration(*, duration_days, longest: int, longest_why: str) -> int:
    """Days of access: default and maximum `longest`."""
    if duration_days in (None, ""):
        return longest
    try:
        days = int(duration_days)
    except (TypeError, ValueError):
        raise ValidationError({"duration_days": "Give a number of days."}) from None
    if days < 1:
        raise ValidationError({"duration_days": "At least 1 day."})
    if days > longest:
        raise ValidationError({"duration_days": f"At most {longest} days ({longest_why})."})
    return days


def clean_reason(reason: str | None, *, field: str = "reason", what: str = "a reason") -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationError({field: f"Give {what}."})
    return text


def expiry_after(days: int, *, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(days=days)


def audit(
    *,
    action: str,
    by,
    product: DataProduct,
    grant: AccessGrant | None = None,
    request: AccessRequest | None = None,
    columns: list[str] | None = None,
    row_filter: list[dict] | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AccessEvent:
    """One audit event of an access decision: `by` is the actor (None: the portal)."""
    return AccessEvent.objects.create(
        at=at or timezone.now(),
        action=action,
        user=by if getattr(by, "is_authenticated", False) else None,
        product=product,
        product_key=product.key,
        columns=columns or [],
        row_filter=row_filter or [],
        grant=grant,
        request=request,
        detail=detail or {},
    )


def access_event_emit(
    type: str,  # noqa: A002 - CloudEvents' own name
    *,
    product: DataProduct,
    grant: AccessGrant | None = None,
    request: AccessRequest | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """The event of an access decision, in the caller's transaction, for the people it is
    about (the requester; the grantee, or every member of a granted group) and the
    product's managers: who, which columns, the row filter in words. Never a row value."""
    if grant is not None:
        user, group = grant.user, grant.group
        columns, row_filter = grant.columns, grant.row_filter
    else:
        user, group = request.requester, None
        columns, row_filter = request.columns, []
    people = [user] if user is not None else group.user_set.values_list("pk", flat=True)
    product_event_emit(
        type,
        product=product,
        people=people,
        data={
            "grant_id": grant.pk if grant is not None else None,
            "request_id": request.pk if request is not None else getattr(grant, "request_id", None),
            "user": user.get_username() if user is not None else "",
            "group": group.name if group is not None else "",
            "columns": list(columns),
            "row_filter": filter_in_words(row_filter),
            **(data or {}),
        },
    )
