"""Syncs API routes, under `/api/v1/` (included by sharing.api.urls)."""

from rest_framework.routers import SimpleRouter

from sharing.syncs.api.views import SyncDestinationViewSet, SyncViewSet

router = SimpleRouter()
router.register(r"destinations", SyncDestinationViewSet, basename="sync-destination")
router.register(r"syncs", SyncViewSet, basename="sync")

urlpatterns = router.urls
