from django.urls import include, path

app_name = "sharing"
urlpatterns = [
    path("", include("sharing.access_urls")),
    path("", include("sharing.data_urls")),
    path("", include("sharing.share_link_urls")),
    path("", include("sharing.delta_share_urls")),
]
urlpatterns += [path("", include("sharing.export_urls"))]
