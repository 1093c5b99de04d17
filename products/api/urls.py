"""Catalog API routes, included under `/api/v1/` by portal.api.urls.

A SimpleRouter, not the DefaultRouter: its format-suffix routes (`.json`) would read the
dot of a product key (`sales.orders`) as a format.
"""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from products.catalog.api.views import (
    PRODUCT,
    ColumnViewSet,
    DataSourceViewSet,
    DomainViewSet,
    OutputPortViewSet,
    ProductViewSet,
    SchemaRefreshRunViewSet,
)
from products.feedback.api.views import (
    AnnouncementViewSet,
    FeedbackThreadViewSet,
    FollowViewSet,
    ProductFeedbackViewSet,
)
from products.retirement.api import views as retirement_views
from products.trust.api.views import (
    CheckRunViewSet,
    CheckViewSet,
    IncidentViewSet,
    SLOViewSet,
    TrustView,
)
from products.uploads.api.views import PortFileReplaceView, PortUploadView
from products.usage.api import views as usage_views

app_name = "products-api"


router = SimpleRouter()
router.register("domains", DomainViewSet, basename="domain")
router.register("products", ProductViewSet, basename="product")
router.register(rf"{PRODUCT}/ports", OutputPortViewSet, basename="product-port")
router.register(
    rf"{PRODUCT}/ports/(?P<port_slug>[-\w]+)/columns", ColumnViewSet, basename="port-column"
)
router.register(rf"{PRODUCT}/checks", CheckViewSet, basename="product-check")
router.register(rf"{PRODUCT}/check-runs", CheckRunViewSet, basename="product-check-run")
router.register(rf"{PRODUCT}/incidents", IncidentViewSet, basename="product-incident")
router.register(rf"{PRODUCT}/slos", SLOViewSet, basename="product-slo")
router.register(rf"{PRODUCT}/feedback", ProductFeedbackViewSet, basename="product-feedback")
router.register(rf"{PRODUCT}/announcements", AnnouncementViewSet, basename="product-announcement")
router.register("feedback", FeedbackThreadViewSet, basename="feedback-thread")
router.register("schema-refresh-runs", SchemaRefreshRunViewSet, basename="schema-refresh-run")
router.register("sources", DataSourceViewSet, basename="data-source")

urlpatterns = [
    # Before the router: `ports/upload/` would otherwise read as the port "upload"
    # (a reserved slug, see products.catalog.services.ports).
    re_path(rf"^{PRODUCT}/ports/upload/$", PortUploadView.as_view(), name="port-upload"),
    re_path(
        rf"^{PRODUCT}/ports/(?P<port_slug>[-\w]+)/file/$",
        PortFileReplaceView.as_view(),
        name="port-file",
    ),
    *router.urls,
    re_path(rf"^{PRODUCT}/trust/$", TrustView.as_view(), name="product-trust"),
    re_path(
        rf"^{PRODUCT}/follow/$",
        FollowViewSet.as_view({"get": "retrieve", "post": "create", "delete": "destroy"}),
        name="product-follow",
    ),
]

# Contracts (ODCS import/export, versions, ODPS): products.contracts.api.urls.
from products.contracts.api.urls import urlpatterns as contract_urlpatterns  # noqa: E402

urlpatterns += contract_urlpatterns
# usage and retirement
urlpatterns += [
    re_path(rf"^{PRODUCT}/usage/$", usage_views.ProductUsageView.as_view(), name="product-usage"),
    re_path(r"^usage/$", usage_views.UsageDashboardView.as_view(), name="usage-dashboard"),
    re_path(
        rf"^{PRODUCT}/retirement/$",
        retirement_views.RetirementView.as_view(),
        name="product-retirement",
    ),
    re_path(
        rf"^{PRODUCT}/retirement/objections/$",
        retirement_views.RetirementObjectionsView.as_view(),
        name="product-retirement-objections",
    ),
    re_path(
        rf"^{PRODUCT}/retirement/withdraw/$",
        retirement_views.RetirementWithdrawView.as_view(),
        name="product-retirement-withdraw",
    ),
    re_path(
        rf"^{PRODUCT}/retirement/proceed/$",
        retirement_views.RetirementProceedView.as_view(),
        name="product-retirement-proceed",
    ),
]
