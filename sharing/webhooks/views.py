"""Webhook pages: "My webhooks" (each subscription's health), the form that creates one
(its secret shown once), and a subscription's page (delivery log, dead letters and their
replay, test event, pause and resume, secret rotation, deletion). They call the services
and selectors the API calls; someone else's subscription is a 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views import View

from portal.core.forms import add_service_errors
from sharing.models import WebhookSubscription
from sharing.webhooks.forms import WebhookSubscriptionForm
from sharing.webhooks.selectors import (
    event_type_groups,
    webhook_attempts_of,
    webhook_dead_letters_of,
    webhook_health,
    webhook_subscription_get,
    webhook_subscriptions_for,
)
from sharing.webhooks.services import (
    webhook_dead_letters_replay,
    webhook_secret_rotate,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_update,
    webhook_test_send,
)

LOG_ROWS = 50
DEAD_ROWS = 100


def _subscription(request, subscription_id: int) -> WebhookSubscription:
    try:
        return webhook_subscription_get(user=request.user, subscription_id=subscription_id)
    except WebhookSubscription.DoesNotExist:
        raise Http404("There is no such webhook subscription.") from None


def _secret_page(request, subscription, secret: str, *, rotated: bool):
    return render(
        request,
        "sharing/webhooks/webhook_secret.html",
        {"subscription": subscription, "secret": secret, "rotated": rotated},
    )


class WebhookListView(LoginRequiredMixin, View):
    def get(self, request):
        subscriptions = list(webhook_subscriptions_for(user=request.user)[:200])
        health = webhook_health(subscriptions=subscriptions)
        for subscription in subscriptions:
            subscription.health = health[subscription.pk]
        return render(
            request, "sharing/webhooks/webhook_list.html", {"subscriptions": subscriptions}
        )


class WebhookCreateView(LoginRequiredMixin, View):
    def _render(self, request, form):
        return render(
            request,
            "sharing/webhooks/webhook_form.html",
            {"form": form, "groups": event_type_groups()},
        )

    def get(self, request):
        return self._render(request, WebhookSubscriptionForm())

    def post(self, request):
        form = WebhookSubscriptionForm(request.POST)
        if form.is_valid():
            try:
                created = webhook_subscription_create(owner=request.user, **form.cleaned_data)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                return _secret_page(request, created.subscription, created.secret, rotated=False)
        return self._render(request, form)


class WebhookDetailView(LoginRequiredMixin, View):
    def get(self, request, subscription_id: int):
        subscription = _subscription(request, subscription_id)
        context = {
            "subscription": subscription,
            "health": webhook_health(subscriptions=[subscription])[subscription.pk],
            "attempts": list(webhook_attempts_of(subscription=subscription)[:LOG_ROWS]),
            "dead_letters": list(webhook_dead_letters_of(subscription=subscription)[:DEAD_ROWS]),
        }
        return render(request, "sharing/webhooks/webhook_detail.html", context)


class WebhookActionView(LoginRequiredMixin, View):
    """POST-only buttons of a subscription's page."""

    def post(self, request, subscription_id: int, action: str):
        subscription = _subscription(request, subscription_id)
        by = request.user
        if action == "pause":
            webhook_subscription_update(subscription=subscription, by=by, active=False)
            messages.success(request, "Paused: events wait until you resume.")
        elif action == "resume":
            webhook_subscription_update(subscription=subscription, by=by, active=True)
            messages.success(request, "Resumed: the events that waited are being sent in order.")
        elif action == "test":
            webhook_test_send(subscription=subscription, by=by)
            messages.success(request, "A test event is on its way: see the delivery log.")
        elif action == "rotate-secret":
            rotated = webhook_secret_rotate(subscription=subscription, by=by)
            return _secret_page(request, subscription, rotated.secret, rotated=True)
        elif action == "replay-all":
            count = webhook_dead_letters_replay(subscription=subscription, by=by)
            messages.success(request, f"{count} dead letter{'s' if count != 1 else ''} sent again.")
        elif action == "delete":
            webhook_subscription_delete(subscription=subscription, by=by)
            messages.success(request, f"Deleted “{subscription.name}”: nothing more is sent.")
            return redirect("sharing:webhook-list")
        else:
            raise Http404("There is no such action.")
        return redirect("sharing:webhook-detail", subscription_id=subscription.pk)


class WebhookReplayView(LoginRequiredMixin, View):
    def post(self, request, subscription_id: int, delivery_id: int):
        subscription = _subscription(request, subscription_id)
        count = webhook_dead_letters_replay(
            subscription=subscription, by=request.user, delivery_ids=[delivery_id]
        )
        if count:
            messages.success(request, "The dead letter is sent again.")
        else:
            messages.error(request, "That delivery is not a dead letter any more.")
        return redirect("sharing:webhook-detail", subscription_id=subscription.pk)
