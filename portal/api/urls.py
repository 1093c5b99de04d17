from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from portal.api.auth import TokenObtainView
from portal.api.docs import APIDocsView

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", APIDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("products.api.urls")),
    path("", include("sharing.api.urls")),
]
