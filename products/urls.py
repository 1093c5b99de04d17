from django.urls import path

from products import trust_views, usage_views, views

app_name = "products"

product = "products/<slug:domain_slug>/<slug:product_slug>/"
port = product + "ports/<slug:port_slug>/"

urlpatterns = [
    path("products/new/", views.ProductCreateView.as_view(), name="product-create"),
    path(product, views.ProductDetailView.as_view(), name="product-detail"),
    path(product + "edit/", views.ProductEditView.as_view(), name="product-edit"),
    path(
        product + "publish/",
        views.ProductLifecycleView.as_view(action="publish"),
        name="product-publish",
    ),
    path(
        product + "deprecate/",
        views.ProductLifecycleView.as_view(action="deprecate"),
        name="product-deprecate",
    ),
    path(
        product + "retire/",
        views.ProductLifecycleView.as_view(action="retire"),
        name="product-retire",
    ),
    path(product + "ports/new/", views.OutputPortCreateView.as_view(), name="port-create"),
    path(port + "edit/", views.OutputPortEditView.as_view(), name="port-edit"),
    path(port + "schema/", views.PortSchemaView.as_view(), name="port-schema"),
    path(port + "refresh/", views.PortRefreshView.as_view(), name="port-refresh"),
    path(
        port + "columns/<int:column_id>/edit/",
        views.ColumnEditView.as_view(),
        name="column-edit",
    ),
    # trust: the quality tab, checks and runs, SLOs, incidents
    path(product + "quality/", trust_views.ProductQualityView.as_view(), name="product-quality"),
    path(product + "checks/new/", trust_views.CheckCreateView.as_view(), name="check-create"),
    path(
        product + "checks/<int:check_id>/edit/",
        trust_views.CheckEditView.as_view(),
        name="check-edit",
    ),
    path(
        product + "checks/<int:check_id>/delete/",
        trust_views.CheckDeleteView.as_view(),
        name="check-delete",
    ),
    path(port + "checks/", trust_views.PortChecksView.as_view(), name="port-checks"),
    path(port + "checks/run/", trust_views.PortChecksRunView.as_view(), name="port-checks-run"),
    path(
        product + "check-runs/<int:run_id>/",
        trust_views.CheckRunDetailView.as_view(),
        name="check-run-detail",
    ),
    path(product + "slos/new/", trust_views.SLOCreateView.as_view(), name="slo-create"),
    path(product + "slos/<int:slo_id>/edit/", trust_views.SLOEditView.as_view(), name="slo-edit"),
    path(
        product + "slos/<int:slo_id>/delete/",
        trust_views.SLODeleteView.as_view(),
        name="slo-delete",
    ),
    path(
        product + "incidents/<int:incident_id>/",
        trust_views.IncidentDetailView.as_view(),
        name="incident-detail",
    ),
    *[
        path(
            product + f"incidents/<int:incident_id>/{action}/",
            trust_views.IncidentDetailView.as_view(action=action),
            name=f"incident-{action}",
        )
        for action in ("acknowledge", "comment", "resolve")
    ],
    path("trust-score/", trust_views.TrustScoreDocsView.as_view(), name="trust-score-docs"),
    path("domains/", views.DomainListView.as_view(), name="domain-list"),
    path("domains/<slug:slug>/", views.DomainDetailView.as_view(), name="domain-detail"),
    # usage and retirement
    path(product + "usage/", usage_views.ProductUsageView.as_view(), name="product-usage"),
    path(
        product + "retirement/",
        usage_views.ProductRetirementView.as_view(),
        name="product-retirement",
    ),
    *[
        path(
            product + f"retirement/{action}/",
            usage_views.ProductRetirementView.as_view(action=action),
            name=f"retirement-{action}",
        )
        for action in ("propose", "object", "withdraw", "proceed")
    ],
    path("usage/", usage_views.UsageDashboardView.as_view(), name="usage-dashboard"),
]
