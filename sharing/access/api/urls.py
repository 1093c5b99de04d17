"""Access API routes, under `/api/v1/` (a SimpleRouter: see products.api.urls)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from products.catalog.api.views import PRODUCT
from sharing.access.api.views import (
    AccessEventListView,
    AccessRequestViewSet,
    GrantsRevokeForUserView,
    GrantViewSet,
    MyAccessView,
)

router = SimpleRouter()
router.register(rf"{PRODUCT}/access-requests", AccessRequestViewSet, basename="access-request")
router.register(rf"{PRODUCT}/grants", GrantViewSet, basename="product-grant")

urlpatterns = [
    *router.urls,
    path(
        "grants/revoke-for-user/", GrantsRevokeForUserView.as_view(), name="grants-revoke-for-user"
    ),
    path("me/access/", MyAccessView.as_view(), name="my-access"),
    path("audit/events/", AccessEventListView.as_view(), name="audit-events"),
]
