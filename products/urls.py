from django.urls import path

from products import views

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
    path("domains/", views.DomainListView.as_view(), name="domain-list"),
    path("domains/<slug:slug>/", views.DomainDetailView.as_view(), name="domain-detail"),
]
