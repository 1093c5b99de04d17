from django.urls import include, path

from sharing.embeds.public_views import embed_data, embed_page

urlpatterns = [
    path("embed/<uuid:embed_id>/", embed_page, name="embed"),
    path("embed/<uuid:embed_id>/data/", embed_data, name="embed-data"),
    path("", include("sharing.embeds.page_urls")),
]
