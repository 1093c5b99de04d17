from django.urls import include, path

app_name = "sharing"
urlpatterns = [
    path("", include("sharing.access_urls")),
    path("", include("sharing.data_urls")),
]
urlpatterns += [path("", include("sharing.export_urls"))]
