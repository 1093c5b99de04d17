"""Delta Sharing pages (the protocol itself is under /delta-sharing/)."""

from django.urls import path

from sharing.delta_sharing import views

share = "delta-shares/<slug:name>/"

urlpatterns = [
    path("delta-shares/", views.DeltaShareListView.as_view(), name="delta-share-list"),
    path(share, views.DeltaShareDetailView.as_view(), name="delta-share-detail"),
    path(share + "delete/", views.DeltaShareDeleteView.as_view(), name="delta-share-delete"),
    path(share + "tables/", views.DeltaShareTableAddView.as_view(), name="delta-share-table-add"),
    path(
        share + "tables/<int:table_id>/remove/",
        views.DeltaShareTableRemoveView.as_view(),
        name="delta-share-table-remove",
    ),
    path(
        share + "recipients/",
        views.DeltaRecipientCreateView.as_view(),
        name="delta-recipient-create",
    ),
    path(
        share + "recipients/<int:recipient_id>/revoke/",
        views.DeltaRecipientRevokeView.as_view(),
        name="delta-recipient-revoke",
    ),
]
