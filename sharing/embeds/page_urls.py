"""The portal's own pages of embeds (signed in), in the "sharing" namespace: see
sharing.embeds.views. An application or key an action names comes in the form's body
(`app`, `key`), so every route here takes the embed's id alone."""

from django.urls import path

from sharing.embeds import views

product = "products/<slug:domain_slug>/<slug:product_slug>/"
embed = "embeds/<uuid:embed_id>/"

urlpatterns = [
    path(product + "embeds/", views.ProductEmbedsView.as_view(), name="product-embeds"),
    path(product + "embeds/new/", views.EmbedCreateView.as_view(), name="embed-create"),
    path("embeds/how-they-work/", views.EmbedDocsView.as_view(), name="embed-docs"),
    path(embed, views.EmbedDetailView.as_view(), name="embed-detail"),
    path(embed + "disable/", views.EmbedDisableView.as_view(), name="embed-disable"),
    path(embed + "enable/", views.EmbedEnableView.as_view(), name="embed-enable"),
    path(embed + "deny-token/", views.EmbedTokenDenyView.as_view(), name="embed-token-deny"),
    path(embed + "apps/new/", views.EmbedAppCreateView.as_view(), name="embed-app-create"),
    path(embed + "apps/remove/", views.EmbedAppDeleteView.as_view(), name="embed-app-delete"),
    path(embed + "keys/new/", views.EmbedKeyAddView.as_view(), name="embed-key-add"),
    path(embed + "keys/remove/", views.EmbedKeyRemoveView.as_view(), name="embed-key-remove"),
]
