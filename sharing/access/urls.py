from django.urls import path

from sharing.access import views as access_views

product = "products/<slug:domain_slug>/<slug:product_slug>/access/"

urlpatterns = [
    path(product, access_views.ProductAccessView.as_view(), name="product-access"),
    path(
        product + "request/",
        access_views.AccessRequestCreateView.as_view(),
        name="access-request-create",
    ),
    *[
        path(
            product + f"requests/<int:request_id>/{action}/",
            access_views.AccessRequestDecideView.as_view(action=action),
            name=f"access-request-{action}",
        )
        for action in ("approve", "deny", "cancel")
    ],
    path(product + "grants/new/", access_views.GrantCreateView.as_view(), name="grant-create"),
    path(
        product + "grants/<int:grant_id>/revoke/",
        access_views.GrantRevokeView.as_view(),
        name="grant-revoke",
    ),
    path("my/access/", access_views.MyAccessView.as_view(), name="my-access"),
]
