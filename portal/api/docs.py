"""The interactive API docs (Swagger UI from drf-spectacular-sidecar's static files)
within the Content Security Policy: drf-spectacular's split view serves the set-up script
as a file of its own, and our template moves its inline <style> into a static file."""

from drf_spectacular.views import SpectacularSwaggerSplitView


class APIDocsView(SpectacularSwaggerSplitView):
    template_name = "portal/swagger_ui.html"
