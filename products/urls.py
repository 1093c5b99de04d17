from django.urls import path

from products.catalog import views
from products.feedback import views as feedback_views
from products.retirement import views as retirement_views
from products.trust import views as trust_views
from products.uploads import views as upload_views
from products.usage import views as usage_views

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
    path(product + "ports/relations/", views.PortRelationsView.as_view(), name="port-relations"),
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
    # feedback, announcements, following
    path(product + "feedback/", feedback_views.FeedbackListView.as_view(), name="feedback-list"),
    path(
        product + "feedback/new/",
        feedback_views.FeedbackCreateView.as_view(),
        name="feedback-create",
    ),
    path(
        product + "feedback/<int:thread_id>/",
        feedback_views.FeedbackDetailView.as_view(),
        name="feedback-detail",
    ),
    path(
        product + "feedback/<int:thread_id>/reply/",
        feedback_views.FeedbackReplyView.as_view(),
        name="feedback-reply",
    ),
    path(
        product + "feedback/<int:thread_id>/status/",
        feedback_views.FeedbackStatusView.as_view(),
        name="feedback-status",
    ),
    path(
        product + "feedback/<int:thread_id>/incident/",
        feedback_views.FeedbackIncidentView.as_view(),
        name="feedback-incident",
    ),
    path(
        product + "announcements/",
        feedback_views.AnnouncementListView.as_view(),
        name="announcement-list",
    ),
    path(
        product + "announcements/new/",
        feedback_views.AnnouncementCreateView.as_view(),
        name="announcement-create",
    ),
    path(
        product + "announcements/<int:announcement_id>/end/",
        feedback_views.AnnouncementEndView.as_view(),
        name="announcement-end",
    ),
    path(product + "follow/", feedback_views.ProductFollowView.as_view(), name="product-follow"),
    path(
        product + "unfollow/",
        feedback_views.ProductFollowView.as_view(follow=False),
        name="product-unfollow",
    ),
    path("my/feedback/", feedback_views.MyFeedbackView.as_view(), name="my-feedback"),
    # uploads to file ports
    path(product + "ports/upload/", upload_views.PortUploadView.as_view(), name="port-upload"),
    path(port + "file/", upload_views.PortFileReplaceView.as_view(), name="port-file"),
    path("domains/", views.DomainListView.as_view(), name="domain-list"),
    path("domains/<slug:slug>/", views.DomainDetailView.as_view(), name="domain-detail"),
    # usage and retirement
    path(product + "usage/", usage_views.ProductUsageView.as_view(), name="product-usage"),
    path(
        product + "retirement/",
        retirement_views.ProductRetirementView.as_view(),
        name="product-retirement",
    ),
    *[
        path(
            product + f"retirement/{action}/",
            retirement_views.ProductRetirementView.as_view(action=action),
            name=f"retirement-{action}",
        )
        for action in ("propose", "object", "withdraw", "proceed")
    ],
    path("usage/", usage_views.UsageDashboardView.as_view(), name="usage-dashboard"),
]

# Contracts (ODCS, ODPS): the Contract tab and its actions, and a product from a contract.
from django.urls import re_path  # noqa: E402

from products.contracts import views as contract_views  # noqa: E402

_contract = product + "contract/"
_version = r"(?P<version>[0-9A-Za-z][0-9A-Za-z.+-]*)"
_contract_re = r"^products/(?P<domain_slug>[-\w]+)/(?P<product_slug>[-\w]+)/contract/"
urlpatterns += [
    path(
        "products/new-from-contract/",
        contract_views.ProductFromContractView.as_view(),
        name="product-create-from-contract",
    ),
    path(_contract, contract_views.ProductContractView.as_view(), name="product-contract"),
    path(
        _contract + "import/", contract_views.ContractImportView.as_view(), name="contract-import"
    ),
    path(_contract + "diff/", contract_views.ContractDiffView.as_view(), name="contract-diff"),
    path(
        _contract + "odcs.yaml",
        contract_views.ProductODCSDownloadView.as_view(),
        name="product-odcs-download",
    ),
    path(
        _contract + "odps.yaml",
        contract_views.ProductODPSDownloadView.as_view(),
        name="product-odps-download",
    ),
    re_path(
        _contract_re + _version + r"/odcs\.yaml$",
        contract_views.ContractDownloadView.as_view(),
        name="contract-download",
    ),
    re_path(
        _contract_re + _version + r"/publish/$",
        contract_views.ContractPublishView.as_view(),
        name="contract-publish",
    ),
    re_path(
        _contract_re + _version + r"/delete/$",
        contract_views.ContractDeleteView.as_view(),
        name="contract-delete",
    ),
]
