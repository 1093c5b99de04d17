"""Scheduled-exports API routes, under `/api/v1/` (included by sharing.api.urls)."""

from rest_framework.routers import SimpleRouter

from products.catalog.api.views import PRODUCT
from sharing.exports.api.views import (
    ExportRunViewSet,
    ExportScheduleViewSet,
    ProductExportScheduleViewSet,
)

router = SimpleRouter()
router.register(
    rf"{PRODUCT}/export-schedules", ProductExportScheduleViewSet, basename="product-export-schedule"
)
router.register(r"export-schedules", ExportScheduleViewSet, basename="export-schedule")
router.register(r"export-runs", ExportRunViewSet, basename="export-run")

urlpatterns = router.urls
