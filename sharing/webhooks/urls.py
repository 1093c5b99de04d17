"""Webhook pages, in the "sharing" namespace (sharing.urls), under "My webhooks"."""

from django.urls import path

from sharing.webhooks import views

urlpatterns = [
    path("my/webhooks/", views.WebhookListView.as_view(), name="webhook-list"),
    path("my/webhooks/new/", views.WebhookCreateView.as_view(), name="webhook-create"),
    path(
        "my/webhooks/<int:subscription_id>/",
        views.WebhookDetailView.as_view(),
        name="webhook-detail",
    ),
    path(
        "my/webhooks/<int:subscription_id>/<slug:action>/",
        views.WebhookActionView.as_view(),
        name="webhook-action",
    ),
    path(
        "my/webhooks/<int:subscription_id>/dead-letters/<int:delivery_id>/replay/",
        views.WebhookReplayView.as_view(),
        name="webhook-dead-letter-replay",
    ),
]
