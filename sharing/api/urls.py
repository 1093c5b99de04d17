from django.urls import include, path

urlpatterns = [
    path("", include("sharing.api.access_urls")),
    path("", include("sharing.api.data_urls")),
]
urlpatterns += [path("", include("sharing.api.export_urls"))]
