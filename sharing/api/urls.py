from django.urls import include, path

urlpatterns = [
    path("", include("sharing.api.access_urls")),
    path("", include("sharing.api.data_urls")),
    path("", include("sharing.api.share_link_urls")),
    path("", include("sharing.api.delta_share_urls")),
]
urlpatterns += [path("", include("sharing.api.export_urls"))]
