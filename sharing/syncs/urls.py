"""Pages of syncs, in the "sharing" namespace (sharing.urls)."""

from django.urls import path

from sharing.syncs import views

product = "products/<slug:domain_slug>/<slug:product_slug>/"
sync = product + "syncs/<int:sync_id>/"
run = sync + "runs/<int:run_id>/"
destination = "syncs/destinations/<int:destination_id>/"

urlpatterns = [
    path(product + "syncs/", views.ProductSyncsView.as_view(), name="product-syncs"),
    path(product + "syncs/new/", views.SyncCreateView.as_view(), name="sync-create"),
    path(sync, views.SyncDetailView.as_view(), name="sync-detail"),
    path(sync + "edit/", views.SyncEditView.as_view(), name="sync-edit"),
    path(sync + "delete/", views.SyncDeleteView.as_view(), name="sync-delete"),
    path(sync + "pause/", views.SyncPauseView.as_view(), name="sync-pause"),
    path(sync + "resume/", views.SyncResumeView.as_view(), name="sync-resume"),
    path(sync + "run/", views.SyncRunNowView.as_view(), name="sync-run-now"),
    path(sync + "dry-run/", views.SyncRunNowView.as_view(dry_run=True), name="sync-dry-run"),
    path(sync + "runs/", views.SyncRunsView.as_view(), name="sync-runs"),
    path(sync + "rejected.csv", views.SyncRejectedCsvView.as_view(), name="sync-rejected-csv"),
    path(run + "approve/", views.SyncRunApproveView.as_view(), name="sync-run-approve"),
    path(run + "decline/", views.SyncRunDeclineView.as_view(), name="sync-run-decline"),
    path("syncs/destinations/", views.DestinationListView.as_view(), name="sync-destinations"),
    path(
        "syncs/destinations/new/",
        views.DestinationCreateView.as_view(),
        name="sync-destination-create",
    ),
    path(destination, views.DestinationEditView.as_view(), name="sync-destination-edit"),
    path(destination + "test/", views.DestinationTestView.as_view(), name="sync-destination-test"),
    path(
        destination + "delete/",
        views.DestinationDeleteView.as_view(),
        name="sync-destination-delete",
    ),
]
