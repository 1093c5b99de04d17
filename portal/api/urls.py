from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from portal.api.auth import TokenObtainView
from portal.api.docs import APIDocsView
from portal.site.api import NotificationViewSet

notifications = SimpleRouter()
notifications.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", APIDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("products.api.urls")),
    path("", include("sharing.api.urls")),
    path("", include(notifications.urls)),
    path("", include("products.definitions.api.urls")),
]
