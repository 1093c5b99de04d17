"""The Delta Sharing protocol, included at `delta-sharing/` (the profile's endpoint).
Paths have no trailing slash: the protocol's clients append `/shares...` to the
endpoint. Anything else under the prefix answers the protocol's 404."""

from django.urls import path, re_path

from sharing.delta_sharing import protocol_views as views

app_name = "delta_sharing"

share = "shares/<str:share>"
table = share + "/schemas/<str:schema>/tables/<str:table>"

urlpatterns = [
    path("shares", views.shares, name="shares"),
    path(share, views.share_detail, name="share"),
    path(share + "/schemas", views.schemas, name="schemas"),
    path(share + "/schemas/<str:schema>/tables", views.tables, name="tables"),
    path(share + "/all-tables", views.all_tables, name="all-tables"),
    path(table, views.table_version, name="table-head"),  # HEAD (deprecated protocol)
    path(table + "/version", views.table_version, name="table-version"),
    path(table + "/metadata", views.table_metadata, name="table-metadata"),
    path(table + "/query", views.table_query, name="table-query"),
    path("files/<str:token>/", views.file_view, name="file"),
    re_path(r"^(?P<rest>.*)$", views.not_found, name="root"),
]
