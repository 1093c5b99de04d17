from django.urls import include, path

urlpatterns = [
    path("", include("sharing.access.api.urls")),
    path("", include("sharing.serving.api.urls")),
    path("", include("sharing.share_links.api.urls")),
    path("", include("sharing.delta_sharing.api.urls")),
    path("", include("sharing.streams.api.urls")),
    path("", include("sharing.events.api.urls")),
]
urlpatterns += [path("", include("sharing.exports.api.urls"))]
urlpatterns += [path("", include("sharing.webhooks.api.urls"))]
urlpatterns += [path("", include("sharing.syncs.api.urls"))]
urlpatterns += [path("", include("sharing.federation.api.urls"))]
urlpatterns += [path("", include("sharing.embeds.api.urls"))]
