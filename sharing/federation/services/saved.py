"""Saved queries: a query kept under a name, shared with everyone or not. A shared query
is only its text: whoever runs it, runs it with their own access."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from sharing.federation.refusals import QueryRefused
from sharing.federation.sql import query_parse
from sharing.models import SavedQuery


@transaction.atomic
def saved_query_save(
    *, owner, name: str, sql: str, shared: bool = False, description: str = ""
) -> SavedQuery:
    """Save (or replace, by name) one of the owner's queries. Raises ValidationError
    naming the field: a blank or long name, SQL that the portal would not run."""
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["Give the query a name."]
    elif len(name) > 200:
        errors["name"] = ["A name has at most 200 characters."]
    try:
        query_parse(sql)
    except QueryRefused as exc:
        errors["sql"] = [f"This query cannot be saved: {exc}"]
    if errors:
        raise ValidationError(errors)
    saved, _ = SavedQuery.objects.update_or_create(
        owner=owner,
        name=name,
        defaults={"sql": sql.strip(), "shared": shared, "description": description.strip()},
    )
    return saved


def saved_query_delete(*, user, saved: SavedQuery) -> None:
    if saved.owner_id != user.pk:
        raise PermissionDenied("Only the person who saved a query deletes it.")
    saved.delete()
