"""Events API routes, under `/api/v1/`."""

from django.urls import path

from sharing.events.api.views import EventListView, EventStreamView

urlpatterns = [
    path("events/", EventListView.as_view(), name="events-list"),
    path("events/stream/", EventStreamView.as_view(), name="events-stream"),
]
