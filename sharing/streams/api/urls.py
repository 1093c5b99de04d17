"""Stream port API routes, included under `/api/v1/` by sharing.api.urls."""

from django.urls import re_path

from products.catalog.api.views import KEY_REGEX
from sharing.streams.api.views import ProductStreamView

urlpatterns = [
    re_path(
        rf"^products/(?P<key>{KEY_REGEX})/stream/$",
        ProductStreamView.as_view(),
        name="api-product-stream",
    ),
]
