"""Glossary and metrics API routes, included under `/api/v1/` by portal.api.urls.

A SimpleRouter, like products.api.urls: keys hold a dot (`sales.revenue`) that format
suffix routes would read as a format.
"""

from rest_framework.routers import SimpleRouter

from products.definitions.api.views import GlossaryTermViewSet, MetricViewSet

app_name = "definitions-api"

router = SimpleRouter()
router.register("glossary/terms", GlossaryTermViewSet, basename="term")
router.register("metrics", MetricViewSet, basename="metric")

urlpatterns = router.urls
