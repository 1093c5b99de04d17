"""Federated SQL API routes, included under `/api/v1/` by sharing.api.urls."""

from django.urls import path

from sharing.federation.api.views import (
    QueryCancelView,
    QueryDetailView,
    QueryExplainView,
    QueryView,
)

urlpatterns = [
    path("query/", QueryView.as_view(), name="api-query"),
    path("query/explain/", QueryExplainView.as_view(), name="api-query-explain"),
    path("query/<str:query_id>/", QueryDetailView.as_view(), name="api-query-detail"),
    path("query/<str:query_id>/cancel/", QueryCancelView.as_view(), name="api-query-cancel"),
]
