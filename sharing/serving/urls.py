"""Data pages of a product, in the "sharing" namespace (sharing.urls)."""

from django.urls import path

from sharing.serving import views as data_views

product = "products/<slug:domain_slug>/<slug:product_slug>/"

urlpatterns = [
    path(product + "data/", data_views.ProductDataView.as_view(), name="product-data"),
    path(product + "download/", data_views.ProductDownloadView.as_view(), name="product-download"),
    path(
        product + "column-values/",
        data_views.ColumnValuesView.as_view(),
        name="product-column-values",
    ),
]
