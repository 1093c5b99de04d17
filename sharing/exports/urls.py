"""Pages of scheduled exports, in the "sharing" namespace (sharing.urls)."""

from django.urls import path

from sharing.exports import views

product = "products/<slug:domain_slug>/<slug:product_slug>/"
schedule = product + "exports/<int:schedule_id>/"

urlpatterns = [
    path(product + "exports/", views.ProductExportsView.as_view(), name="product-exports"),
    path(
        product + "exports/new/",
        views.ExportScheduleCreateView.as_view(),
        name="export-schedule-create",
    ),
    path(schedule, views.ExportScheduleDetailView.as_view(), name="export-schedule-detail"),
    path(schedule + "edit/", views.ExportScheduleEditView.as_view(), name="export-schedule-edit"),
    path(schedule + "end/", views.ExportScheduleEndView.as_view(), name="export-schedule-end"),
    path(schedule + "run/", views.ExportRunNowView.as_view(), name="export-run-now"),
    path(schedule + "runs/", views.ExportRunsView.as_view(), name="export-runs"),
    path(
        product + "export-runs/<int:run_id>/download/",
        views.ExportRunDownloadView.as_view(),
        name="export-run-download",
    ),
    path("exports/cron-preview/", views.CronPreviewView.as_view(), name="export-cron-preview"),
]
