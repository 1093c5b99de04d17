from django.urls import path

from sharing.federation.views import SavedQueryDeleteView, SqlPageView

urlpatterns = [
    path("sql/", SqlPageView.as_view(), name="sql"),
    path(
        "sql/saved/<int:saved_id>/delete/", SavedQueryDeleteView.as_view(), name="sql-saved-delete"
    ),
]
