"""Share-link API routes, included under `/api/v1/` by sharing.api.urls."""

from rest_framework.routers import SimpleRouter

from sharing.share_links.api.views import ShareLinkViewSet

router = SimpleRouter()
router.register("share-links", ShareLinkViewSet, basename="share-link")

urlpatterns = router.urls
