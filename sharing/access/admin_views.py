"""Pages of admins and domain managers: every grant across the products they manage
(filters, revoke selected, revoke all of a person) and the access audit (paged by
cursor, in words, with its streamed CSV export). Views parse input, call a service or
selector, render."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from portal.core.forms import add_service_errors
from portal.core.people import display_name
from products.catalog.permissions import user_is_admin
from sharing.access.admin_forms import (
    AuditFilterForm,
    GrantFilterForm,
    GrantsRevokeForm,
    PersonRevokeForm,
    audit_cursors,
)
from sharing.access.admin_selectors import (
    GrantFilters,
    can_administer_grants,
    grants_across_products,
    grants_in_scope,
)
from sharing.access.audit_selectors import access_events, audit_page, can_view_audit
from sharing.access.audit_words import event_in_words
from sharing.access.services.grants import (
    can_revoke_in_bulk,
    grants_revocable_for_user,
    grants_revoke_for_user,
    grants_revoke_selected,
)

GRANTS_PAGE_ROWS = 50


def _require_grants_admin(request) -> None:
    if not can_administer_grants(user=request.user):
        raise PermissionDenied(
            "This page is for admins and the owners and stewards of a domain. Your own "
            "access is under My access."
        )


def _grants_url(query: str = "") -> str:
    url = reverse("sharing:grants-admin")
    return f"{url}?{query}" if query else url


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _render_grants(request, query: QueryDict, *, status=200, revoke_form=None):
    """The grants page for the filters and page in `query` (after a refused POST: the
    query string the page was posted from)."""
    filter_form = GrantFilterForm(query)
    filters = filter_form.filters()
    page = Paginator(
        grants_across_products(user=request.user, filters=filters), GRANTS_PAGE_ROWS
    ).get_page(query.get("page"))
    without_page = query.copy()
    without_page.pop("page", None)
    return render(
        request,
        "sharing/grants_admin.html",
        {
            "filter_form": filter_form,
            "filtered": filters != GrantFilters(),
            "page": page,
            "page_query": f"?{without_page.urlencode()}" if without_page else "?",
            "query": query.urlencode(),
            "revoke_form": revoke_form or GrantsRevokeForm(),
            "selected": set(revoke_form.data.getlist("grants")) if revoke_form else set(),
            "person_form": PersonRevokeForm(auto_id="revoke_%s"),  # ids apart from the filters
            "is_admin": user_is_admin(request.user),
            "revokes_in_bulk": can_revoke_in_bulk(user=request.user),
        },
        status=status,
    )


class GrantsAdminView(LoginRequiredMixin, View):
    """GET: the grants, filtered and paged. POST: revoke the ticked ones, with a reason,
    all or none; an id outside the user's scope answers 404 and revokes nothing."""

    def get(self, request):
        _require_grants_admin(request)
        return _render_grants(request, request.GET)

    def post(self, request):
        _require_grants_admin(request)
        form = GrantsRevokeForm(request.POST)
        back = request.POST.get("next_query", "")
        if not form.is_valid():
            return _render_grants(request, QueryDict(back), status=400, revoke_form=form)
        ids = set(form.cleaned_data["grants"])
        grants = list(
            grants_in_scope(user=request.user)
            .filter(pk__in=ids)
            .select_related("product__domain", "user", "group")
        )
        if len(grants) != len(ids):  # a grant outside the page's scope, or none at all
            raise Http404("Some of the selected grants do not exist or are not yours to revoke.")
        try:
            count = grants_revoke_selected(
                grants=grants, by=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return _render_grants(request, QueryDict(back), status=400, revoke_form=form)
        skipped = len(grants) - count
        text = f"Revoked {_plural(count, 'grant')}: access ends now."
        if skipped:
            text += f" {_plural(skipped, 'grant')} had already been revoked."
        messages.success(request, text)
        return redirect(_grants_url(back))


class GrantsRevokePersonView(LoginRequiredMixin, View):
    """GET: whose grants, how many, on which products, and the reason to give.
    POST: revoke them all (grants_revoke_for_user, the API's service)."""

    def _context(self, request, form, person=None):
        grants = []
        if person is not None:
            grants = list(grants_revocable_for_user(user=person, by=request.user))
        return {"form": form, "person": person, "grants": grants}

    def get(self, request):
        _require_grants_admin(request)
        if not can_revoke_in_bulk(user=request.user):
            raise PermissionDenied(
                "Revoking everything a person holds is for admins and domain owners. "
                "Tick their grants on the grants page and revoke those instead."
            )
        form = PersonRevokeForm(request.GET)
        person = form.cleaned_data["person"] if form.is_valid() else None
        status = 200 if person is not None or not request.GET else 400
        return render(
            request,
            "sharing/grants_revoke_person.html",
            self._context(request, form, person),
            status=status,
        )

    def post(self, request):
        _require_grants_admin(request)
        form = PersonRevokeForm(request.POST)
        person = form.cleaned_data["person"] if form.is_valid() else None
        if person is not None:
            expected = request.POST.get("expected", "")
            try:
                count = grants_revoke_for_user(
                    user=person, by=request.user, reason=form.cleaned_data["reason"]
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                name = display_name(person)
                text = f"Revoked {_plural(count, 'grant')} of {name}."
                if expected.isdigit() and int(expected) != count:
                    text += f" ({expected} were listed: the others ended meanwhile or were added.)"
                messages.success(request, text)
                return redirect(_grants_url())
        return render(
            request,
            "sharing/grants_revoke_person.html",
            self._context(request, form, person),
            status=400,
        )


# --- the audit -------------------------------------------------------------------------


def _audit_events(request):
    if not can_view_audit(user=request.user):
        raise PermissionDenied("The audit is for admins and domain owners.")
    form = AuditFilterForm(request.GET)
    return form, access_events(user=request.user, filters=form.filters())


def _query_without(query: QueryDict, *names: str) -> QueryDict:
    query = query.copy()
    for name in names:
        query.pop(name, None)
    return query


class AuditView(LoginRequiredMixin, View):
    def get(self, request):
        form, events = _audit_events(request)
        after, before = audit_cursors(request.GET)
        page = audit_page(events, after=after, before=before)
        for event in page.events:
            event.in_words = event_in_words(event)
        filters = _query_without(request.GET, "after", "before")

        def link(name, cursor):
            if cursor is None:
                return ""
            query = filters.copy()
            query[name] = cursor.encode()
            return f"?{query.urlencode()}"

        return render(
            request,
            "sharing/audit.html",
            {
                "form": form,
                "events": page.events,
                "newer_url": link("before", page.newer),
                "older_url": link("after", page.older),
                "paged": after is not None or before is not None,
                "query": filters.urlencode(),
                "is_admin": user_is_admin(request.user),
                "can_administer_grants": can_administer_grants(user=request.user),
            },
        )


class _Echo:
    def write(self, value: str) -> str:
        return value


AUDIT_CSV_HEADER = [
    "at",
    "action",
    "user",
    "product",
    "channel",
    "columns",
    "row_filter",
    "rows",
    "bytes",
    "client_address",
    "grant_id",
    "request_id",
    "detail",
    "summary",
]


def audit_csv_rows(events) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(AUDIT_CSV_HEADER)
    for event in events.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                event.at.isoformat(),
                event.action,
                event.user.username if event.user else "",
                event.product_key,
                event.channel,
                " ".join(event.columns),
                json.dumps(event.row_filter) if event.row_filter else "",
                "" if event.rows is None else event.rows,
                "" if event.bytes is None else event.bytes,
                event.client_address or "",
                event.grant_id or "",
                event.request_id or "",
                json.dumps(event.detail, sort_keys=True) if event.detail else "",
                event_in_words(event),
            ]
        )


class AuditExportView(LoginRequiredMixin, View):
    """The filtered audit as CSV, streamed (any number of rows, bounded memory)."""

    def get(self, request):
        _, events = _audit_events(request)
        response = StreamingHttpResponse(
            audit_csv_rows(events), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="access-audit-{stamp}.csv"'
        return response
