"""Embed API routes, included under `/api/v1/` by sharing.api.urls."""

from rest_framework.routers import SimpleRouter

from sharing.embeds.api.views import EmbedAppViewSet, EmbedViewSet

router = SimpleRouter()
router.register("embeds", EmbedViewSet, basename="embed")
router.register("embed-apps", EmbedAppViewSet, basename="embed-app")

urlpatterns = router.urls
