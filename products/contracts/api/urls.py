"""Contract routes, appended to products.api.urls (namespace `products-api`)."""

from django.urls import re_path

from products.contracts.api import views as contract_views

PRODUCT = r"^products/(?P<product_key>[^/]+)"
VERSION = r"(?P<version>[0-9A-Za-z][0-9A-Za-z.+-]*)"

urlpatterns = [
    re_path(
        r"^contracts/$",
        contract_views.ProductFromContractView.as_view(),
        name="contract-create-product",
    ),
    re_path(
        rf"{PRODUCT}/odcs\.yaml$", contract_views.ProductODCSView.as_view(), name="product-odcs"
    ),
    re_path(
        rf"{PRODUCT}/odps\.yaml$", contract_views.ProductODPSView.as_view(), name="product-odps"
    ),
    re_path(
        rf"{PRODUCT}/contracts/$",
        contract_views.ContractListView.as_view(),
        name="product-contract-list",
    ),
    re_path(
        rf"{PRODUCT}/contracts/diff/$",
        contract_views.ContractDiffView.as_view(),
        name="product-contract-diff",
    ),
    re_path(
        rf"{PRODUCT}/contracts/{VERSION}/$",
        contract_views.ContractDetailView.as_view(),
        name="product-contract-detail",
    ),
    re_path(
        rf"{PRODUCT}/contracts/{VERSION}/odcs\.yaml$",
        contract_views.ContractYAMLView.as_view(),
        name="product-contract-odcs",
    ),
    re_path(
        rf"{PRODUCT}/contracts/{VERSION}/publish/$",
        contract_views.ContractPublishView.as_view(),
        name="product-contract-publish",
    ),
]
