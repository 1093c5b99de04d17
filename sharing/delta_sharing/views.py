"""Delta Sharing pages: the shares a person manages, one share (its tables, recipients,
and how recipients read), and the page right after a recipient is created, the only one
that offers its profile file. Views parse input, call `sharing.delta_sharing.services`
(as the API does) and render."""

from __future__ import annotations

import json
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views import View

from portal.core.forms import add_service_errors
from sharing.delta_sharing.forms import DeltaRecipientForm, DeltaShareForm, DeltaShareTableForm
from sharing.delta_sharing.services import (
    can_use_delta_sharing,
    delta_profile,
    delta_recipient_create,
    delta_recipient_revoke,
    delta_share_create,
    delta_share_delete,
    delta_share_get,
    delta_share_recipients,
    delta_share_table_add,
    delta_share_table_remove,
    delta_share_tables,
    delta_shares_of,
    shareable_ports,
)
from sharing.models import DeltaRecipient, DeltaShare, DeltaShareTable


def _endpoint(request) -> str:
    return request.build_absolute_uri(reverse("delta_sharing:root", kwargs={"rest": ""}))


def _share(request, name: str) -> DeltaShare:
    try:
        return delta_share_get(user=request.user, name=name)
    except DeltaShare.DoesNotExist:
        raise Http404("No share of that name that you manage.") from None


def _detail_url(share: DeltaShare) -> str:
    return reverse("sharing:delta-share-detail", kwargs={"name": share.name})


def _render_list(request, *, form=None, status=200):
    user = request.user
    return render(
        request,
        "sharing/delta_share_list.html",
        {
            "shares": list(delta_shares_of(user=user).order_by("name")),
            "can_create": can_use_delta_sharing(user=user),
            "form": form or DeltaShareForm(),
            "endpoint": _endpoint(request),
        },
        status=status,
    )


class DeltaShareListView(LoginRequiredMixin, View):
    def get(self, request):
        return _render_list(request)

    def post(self, request):
        form = DeltaShareForm(request.POST)
        if form.is_valid():
            try:
                share = delta_share_create(by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Share {share.name} created: add tables and recipients.")
                return redirect(_detail_url(share))
        return _render_list(request, form=form, status=400)


def _render_detail(request, share: DeltaShare, *, status=200, **forms):
    ports = list(shareable_ports(user=request.user))
    now = timezone.now()
    recipients = list(delta_share_recipients(share=share))
    for recipient in recipients:
        recipient.expired = recipient.expires_at <= now
    return render(
        request,
        "sharing/delta_share_detail.html",
        {
            "share": share,
            "tables": list(delta_share_tables(share=share)),
            "recipients": recipients,
            "ports": ports,
            "table_form": forms.get("table_form") or DeltaShareTableForm(ports=ports),
            "recipient_form": forms.get("recipient_form") or DeltaRecipientForm(),
            "endpoint": _endpoint(request),
        },
        status=status,
    )


class DeltaShareDetailView(LoginRequiredMixin, View):
    def get(self, request, name: str):
        return _render_detail(request, _share(request, name))


class DeltaShareDeleteView(LoginRequiredMixin, View):
    def post(self, request, name: str):
        share = _share(request, name)
        delta_share_delete(share=share, by=request.user)
        messages.success(request, f"Share {share.name} deleted: its recipients read nothing now.")
        return redirect("sharing:delta-share-list")


class DeltaShareTableAddView(LoginRequiredMixin, View):
    def post(self, request, name: str):
        share = _share(request, name)
        form = DeltaShareTableForm(request.POST, ports=list(shareable_ports(user=request.user)))
        if form.is_valid():
            try:
                table = delta_share_table_add(share=share, by=request.user, **form.service_kwargs())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request, f"Recipients can read {share.name}.{table.schema}.{table.name} now."
                )
                return redirect(_detail_url(share))
        return _render_detail(request, share, status=400, table_form=form)


class DeltaShareTableRemoveView(LoginRequiredMixin, View):
    def post(self, request, name: str, table_id: int):
        share = _share(request, name)
        table = DeltaShareTable.objects.filter(share=share, pk=table_id).first()
        if table is None:
            raise Http404("The share has no such table.")
        table.share = share
        delta_share_table_remove(table=table, by=request.user)
        messages.success(request, f"Table {table.schema}.{table.name} removed from the share.")
        return redirect(_detail_url(share))


def _profile_download(share: DeltaShare, recipient: DeltaRecipient, profile: dict) -> dict:
    text = json.dumps(profile, indent=2)
    return {
        "href": "data:application/json;charset=utf-8," + quote(text),
        "filename": f"{share.name}-{slugify(recipient.name) or 'recipient'}.share",
    }


class DeltaRecipientCreateView(LoginRequiredMixin, View):
    """POST: create the recipient and answer the only page offering its profile file (the
    token is not stored: it cannot be shown again)."""

    def post(self, request, name: str):
        share = _share(request, name)
        form = DeltaRecipientForm(request.POST)
        if form.is_valid():
            try:
                recipient, token = delta_recipient_create(
                    share=share, by=request.user, **form.service_kwargs()
                )
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):  # the service's expires_at is the form's day
                    exc = ValidationError(
                        {
                            "expires_on" if field == "expires_at" else field: errors
                            for field, errors in exc.error_dict.items()
                        }
                    )
                add_service_errors(form, exc)
            else:
                profile = delta_profile(
                    recipient=recipient, token=token, endpoint=_endpoint(request)
                )
                response = render(
                    request,
                    "sharing/delta_recipient_created.html",
                    {
                        "share": share,
                        "recipient": recipient,
                        "download": _profile_download(share, recipient, profile),
                        "first_table": delta_share_tables(share=share).first(),
                    },
                )
                response["Cache-Control"] = "no-store"
                return response
        return _render_detail(request, share, status=400, recipient_form=form)


class DeltaRecipientRevokeView(LoginRequiredMixin, View):
    def post(self, request, name: str, recipient_id: int):
        share = _share(request, name)
        recipient = DeltaRecipient.objects.filter(share=share, pk=recipient_id).first()
        if recipient is None:
            raise Http404("The share has no such recipient.")
        recipient.share = share
        try:
            delta_recipient_revoke(recipient=recipient, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{recipient.name} revoked: their token answers 401 now.")
        return redirect(_detail_url(share))
