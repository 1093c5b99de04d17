"""Share-link API routes, included under `/api/v1/` by sharing.api.urls."""

from rest_framework.routers import SimpleRouter

from sharing.api.share_link_views import ShareLinkViewSet

router = SimpleRouter()
router.register("share-links", ShareLinkViewSet, basename="share-link")

urlpatterns = router.urls
