from django.contrib.auth import views as auth_views
from django.urls import path

from portal.site import client_package, notification_views, token_views, views

app_name = "portal"

urlpatterns = [
    path("", views.CatalogView.as_view(is_home=True), name="home"),
    path("search/", views.CatalogView.as_view(), name="search"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="portal/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("my/products/", views.MyProductsView.as_view(), name="my-products"),
    path(
        f"client/{client_package.client_wheel_filename()}",
        client_package.ClientWheelView.as_view(),
        name="client-wheel",
    ),
    path("my/tokens/", token_views.ApiTokenListView.as_view(), name="my-tokens"),
    path(
        "my/tokens/<int:token_id>/revoke/",
        token_views.ApiTokenRevokeView.as_view(),
        name="my-token-revoke",
    ),
    path("my/work/", views.WorkView.as_view(), name="my-work"),
    path("my/work/badge/", views.WorkBadgeView.as_view(), name="my-work-badge"),
    path("notifications/", notification_views.NotificationListView.as_view(), name="notifications"),
    path(
        "notifications/read/",
        notification_views.NotificationMarkReadView.as_view(),
        name="notifications-read",
    ),
    path(
        "notifications/badge/",
        notification_views.NotificationBadgeView.as_view(),
        name="notifications-badge",
    ),
    path(
        "notifications/<int:notification_id>/",
        notification_views.NotificationOpenView.as_view(),
        name="notification-open",
    ),
]
