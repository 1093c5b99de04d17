"""Share-link pages, in the "sharing" namespace (sharing.urls). `/s/<token>/` is public."""

from django.urls import path

from sharing.share_links import views as share_link_views

product = "products/<slug:domain_slug>/<slug:product_slug>/"

urlpatterns = [
    path(
        product + "share/", share_link_views.ShareLinkCreateView.as_view(), name="share-link-create"
    ),
    path("my/share-links/", share_link_views.MyShareLinksView.as_view(), name="my-share-links"),
    path(
        "my/share-links/<int:link_id>/revoke/",
        share_link_views.ShareLinkRevokeView.as_view(),
        name="share-link-revoke",
    ),
    path("s/<str:token>/", share_link_views.share_link_landing, name="share-link-landing"),
    path(
        "s/<str:token>/download", share_link_views.share_link_download, name="share-link-download"
    ),
]
