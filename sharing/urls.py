from django.urls import include, path

app_name = "sharing"
urlpatterns = [
    path("", include("sharing.access.urls")),
    path("", include("sharing.access.admin_urls")),
    path("", include("sharing.serving.urls")),
    path("", include("sharing.share_links.urls")),
    path("", include("sharing.delta_sharing.urls")),
]
urlpatterns += [path("", include("sharing.exports.urls"))]
urlpatterns += [path("", include("sharing.webhooks.urls"))]
urlpatterns += [path("", include("sharing.syncs.urls"))]
urlpatterns += [path("", include("sharing.federation.urls"))]
urlpatterns += [path("", include("sharing.embeds.urls"))]
