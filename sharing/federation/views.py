"""The SQL page (`/sql/`): an editor with a browser of the products the reader may query,
the answer as a table and a chart, EXPLAIN in words, the reader's history and saved
queries. Every run goes through the same services as the API (query_start,
query_batches): the same governance, guardrails and audit."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from products.connectors import ConnectorError
from sharing.choices import DataFormat
from sharing.federation.charts import result_chart
from sharing.federation.refusals import QueryRefused
from sharing.federation.selectors import query_browser, query_history, saved_queries_for
from sharing.models import FederatedQuery, SavedQuery
from sharing.serving.views import client_address

PAGE_ROWS = 1_000  # the page shows at most this many rows; downloads take the API's cap
EXAMPLE = "SELECT *\nFROM sales.orders\nLIMIT 100"


def _context(request, **extra) -> dict:
    browser = query_browser(user=request.user)
    readable = [product for product in browser if product.readable]
    example = f"SELECT *\nFROM {readable[0].key}\nLIMIT 100" if readable else ""
    context = {
        "browser": browser,
        "readable_count": len(readable),
        "history": query_history(user=request.user),
        "saved": saved_queries_for(user=request.user),
        "sql": example,
        "page_rows": PAGE_ROWS,
    }
    context.update(extra)
    return context


class SqlPageView(LoginRequiredMixin, View):
    template_name = "sharing/sql.html"

    def get(self, request):
        context = _context(request)
        source = request.GET.get("query")
        saved_id = request.GET.get("saved")
        if source:
            record = FederatedQuery.objects.filter(user=request.user, pk=source).first()
            if record is not None:
                context["sql"] = record.sql
        elif saved_id and saved_id.isdigit():
            saved = saved_queries_for(user=request.user).filter(pk=saved_id).first()
            if saved is not None:
                context["sql"] = saved.sql
                context["saved_name"] = saved.name
        return render(request, self.template_name, context)

    def post(self, request):
        sql = request.POST.get("sql", "")
        action = request.POST.get("action", "run")
        if action == "save":
            return self._save(request, sql)
        if action == "download":
            return self._download(request, sql)
        context = _context(request, sql=sql)
        if not sql.strip():
            context["error"] = "Write a query first."
            return render(request, self.template_name, context, status=400)
        # Here, not at the top: the services load sqlglot, which no process that only
        # loads the URLs should (tests/portal/test_worker_imports.py).
        from sharing.federation.services.explain import query_explain
        from sharing.federation.services.running import (
            query_error_message,
            query_error_status,
            query_rows,
            query_start,
        )

        try:
            if action == "explain":
                context["explain"] = query_explain(user=request.user, sql=sql)
            else:
                running = query_start(
                    user=request.user,
                    sql=sql,
                    channel="web",
                    client_address=client_address(request),
                )
                answer = query_rows(running, limit=PAGE_ROWS)
                context["answer"] = answer
                context["chart"] = result_chart(answer["columns"], answer["rows"])
        except QueryRefused as exc:
            context["error"] = str(exc)
            return render(request, self.template_name, context, status=exc.status)
        except ConnectorError as exc:
            context["error"] = query_error_message(exc)
            return render(request, self.template_name, context, status=query_error_status(exc))
        return render(request, self.template_name, context)

    def _save(self, request, sql: str):
        from sharing.federation.services.saved import saved_query_save  # sqlglot: see post

        try:
            saved = saved_query_save(
                owner=request.user,
                name=request.POST.get("name", ""),
                sql=sql,
                shared=request.POST.get("shared") == "on",
            )
        except ValidationError as exc:
            context = _context(
                request,
                sql=sql,
                save_errors=exc.message_dict,
                saved_name=request.POST.get("name", ""),
            )
            return render(request, self.template_name, context, status=400)
        messages.success(
            request,
            f"Saved as “{saved.name}”"
            + (
                ": everyone can open it, and runs it with their own access."
                if saved.shared
                else "."
            ),
        )
        return redirect(f"{request.path}?saved={saved.pk}")

    def _download(self, request, sql: str):
        from sharing.federation.api.views import streaming_query_response
        from sharing.federation.services.running import (  # sqlglot: see post
            query_error_message,
            query_error_status,
            query_start,
        )

        try:
            running = query_start(
                user=request.user, sql=sql, channel="web", client_address=client_address(request)
            )
            return streaming_query_response(running, fmt=DataFormat.CSV, limit=None)
        except QueryRefused as exc:
            context = _context(request, sql=sql, error=str(exc))
            return render(request, self.template_name, context, status=exc.status)
        except ConnectorError as exc:
            context = _context(request, sql=sql, error=query_error_message(exc))
            return render(request, self.template_name, context, status=query_error_status(exc))


class SavedQueryDeleteView(LoginRequiredMixin, View):
    def post(self, request, saved_id: int):
        from sharing.federation.services.saved import saved_query_delete  # sqlglot: see above

        saved = get_object_or_404(SavedQuery, pk=saved_id)
        try:
            saved_query_delete(user=request.user, saved=saved)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Deleted “{saved.name}”.")
        return redirect("sharing:sql")
