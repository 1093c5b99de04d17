"""Delta Sharing management API routes, under `/api/v1/delta-shares/`."""

from rest_framework.routers import SimpleRouter

from sharing.delta_sharing.api.views import DeltaShareViewSet

router = SimpleRouter()
router.register("delta-shares", DeltaShareViewSet, basename="delta-share")

urlpatterns = router.urls
