"""The portal's own pages of embeds (signed in): see sharing.embeds.views."""

urlpatterns: list = []
