"""Data serving API routes, included under `/api/v1/` by sharing.api.urls."""

from django.urls import re_path

from products.catalog.api.views import KEY_REGEX
from sharing.serving.api.views import ProductDataView

urlpatterns = [
    re_path(
        rf"^products/(?P<key>{KEY_REGEX})/data/$",
        ProductDataView.as_view(),
        name="api-product-data",
    ),
]
