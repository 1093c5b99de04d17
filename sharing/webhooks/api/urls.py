"""Webhooks API routes, under `/api/v1/` (included by sharing.api.urls)."""

from rest_framework.routers import SimpleRouter

from sharing.webhooks.api.views import WebhookSubscriptionViewSet

router = SimpleRouter()
router.register(r"webhooks", WebhookSubscriptionViewSet, basename="webhook")

urlpatterns = router.urls
