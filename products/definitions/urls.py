"""Pages of the glossary and the metrics, in the "definitions" namespace (portal.urls)."""

from django.urls import path

from products.definitions import views

app_name = "definitions"

term = "glossary/<slug:domain_slug>/<slug:term_slug>/"
product = "products/<slug:domain_slug>/<slug:product_slug>/"

urlpatterns = [
    path("glossary/", views.TermListView.as_view(), name="term-list"),
    path("glossary/new/", views.TermCreateView.as_view(), name="term-create"),
    path(term, views.TermDetailView.as_view(), name="term-detail"),
    path(term + "edit/", views.TermEditView.as_view(), name="term-edit"),
    path(term + "approve/", views.TermStatusView.as_view(action="approve"), name="term-approve"),
    path(
        term + "deprecate/",
        views.TermStatusView.as_view(action="deprecate"),
        name="term-deprecate",
    ),
    path(product + "glossary/", views.ProductTermsView.as_view(), name="product-terms"),
    path(
        product + "ports/<slug:port_slug>/columns/<int:column_id>/glossary/",
        views.ColumnTermsView.as_view(),
        name="column-terms",
    ),
    path("metrics/", views.MetricListView.as_view(), name="metric-list"),
    path("metrics/new/", views.MetricCreateView.as_view(), name="metric-create"),
    path("metrics/<str:key>/", views.MetricDetailView.as_view(), name="metric-detail"),
]
