from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("portal.api.urls")),
    path("", include("portal.site.urls")),
    path("", include("products.urls")),
    path("", include("sharing.urls")),
    path("delta-sharing/", include("sharing.delta_sharing.protocol_urls")),
    path("", include("products.definitions.urls")),
]
