"""A URLconf with a view that fails, for the 500 page test (tests/portal/site/test_shell.py)."""

from django.urls import include, path


def boom(request):
    raise RuntimeError("a bug in a view")


urlpatterns = [path("boom/", boom), path("", include("portal.urls"))]
