"""In-portal notifications: the list, opening one (which marks it read), marking all
read, and the unread-count badge of the bell in the top bar (loaded by HTMX so that
pages do not pay a query for it)."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from portal.core.notifications import (
    notifications_for,
    notifications_mark_read,
    notifications_unread_count,
)
from portal.models import Notification

PAGE_SIZE = 30


class NotificationListView(LoginRequiredMixin, View):
    template_name = "portal/notifications.html"

    def get(self, request):
        unread_only = request.GET.get("unread") == "1"
        page = Paginator(
            notifications_for(user=request.user, unread=unread_only), PAGE_SIZE
        ).get_page(request.GET.get("page"))
        context = {
            "page": page,
            "notifications": page.object_list,
            "unread_only": unread_only,
            "unread_count": notifications_unread_count(user=request.user),
        }
        return render(request, self.template_name, context)


class NotificationOpenView(LoginRequiredMixin, View):
    """GET: mark one of the user's notifications read and go where it points."""

    def get(self, request, notification_id: int):
        notification = Notification.objects.filter(pk=notification_id, user=request.user).first()
        if notification is None:
            raise Http404("No such notification.")
        notifications_mark_read(user=request.user, ids=[notification.pk])
        target = notification.url
        if not target or not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = reverse("portal:notifications")
        return redirect(target)


class NotificationMarkReadView(LoginRequiredMixin, View):
    """POST: mark every unread notification of the user read (or the ids given)."""

    def post(self, request):
        raw = request.POST.getlist("id")
        ids = [int(value) for value in raw if value.isdigit()] if raw else None
        notifications_mark_read(user=request.user, ids=ids)
        if request.headers.get("HX-Request"):
            return NotificationBadgeView().get(request)
        return redirect(reverse("portal:notifications"))


class NotificationBadgeView(LoginRequiredMixin, View):
    """The bell's unread count (an HTMX fragment, polled)."""

    def get(self, request):
        count = notifications_unread_count(user=request.user)
        return render(request, "portal/_notification_badge.html", {"unread_count": count})
