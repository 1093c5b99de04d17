from django.urls import path

from sharing.access import admin_views

urlpatterns = [
    path("access/grants/", admin_views.GrantsAdminView.as_view(), name="grants-admin"),
    path(
        "access/grants/revoke-person/",
        admin_views.GrantsRevokePersonView.as_view(),
        name="grants-revoke-person",
    ),
    path("audit/", admin_views.AuditView.as_view(), name="audit"),
    path("audit/export.csv", admin_views.AuditExportView.as_view(), name="audit-export"),
]
