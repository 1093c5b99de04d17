"""Pages of scheduled exports: a product's Exports tab (its schedules), the schedule form
with its cron helper, a schedule's page (settings, "run now" with progress, run history
with downloads), the download itself, and the cron preview fragment.

Like every page: a product, schedule or run the user may not see is a 404; the services
decide who may change what (403) and what is valid (400, errors beside their field). The
API calls the same services and selectors.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from portal.core.forms import add_service_errors
from products.catalog.scope import QUEUED_TOO_LONG_SECONDS, product_header, product_page
from products.catalog.selectors import product_ports
from sharing.access.decision import access_decide
from sharing.access.filters import filter_phrases
from sharing.choices import ExportStatus
from sharing.exports.charts import export_runs_chart
from sharing.exports.forms import CRON_PRESETS, ExportScheduleForm
from sharing.exports.selectors import (
    RECENT_RUNS,
    export_latest_runs,
    export_run_get,
    export_runs_of,
    export_schedule_get,
    export_schedules_for,
)
from sharing.exports.services.runs import (
    ExportFileRefused,
    cron_preview,
    export_file_download,
    export_file_refusal,
    export_run_duration,
    export_run_request,
    export_schedule_can_change,
    export_schedule_can_create,
    export_schedule_create,
    export_schedule_end,
    export_schedule_next_runs,
    export_schedule_update,
)
from sharing.models import ExportRun, ExportSchedule
from sharing.serving.views import client_address


def _slugs(product) -> dict:
    return {"domain_slug": product.domain.slug, "product_slug": product.slug}


def exports_url(product) -> str:
    return reverse("sharing:product-exports", kwargs=_slugs(product))


def schedule_url(schedule: ExportSchedule) -> str:
    return reverse(
        "sharing:export-schedule-detail",
        kwargs={**_slugs(schedule.product), "schedule_id": schedule.pk},
    )


def _schedule(request, domain_slug: str, product_slug: str, schedule_id: int) -> ExportSchedule:
    product = product_page(request, domain_slug, product_slug)
    try:
        schedule = export_schedule_get(user=request.user, schedule_id=schedule_id)
    except ExportSchedule.DoesNotExist:
        raise Http404("No such export schedule.") from None
    if schedule.product_id != product.pk:
        raise Http404("No such export schedule.")
    return schedule


def _tab_context(product) -> dict:
    return product_header(product=product, active_tab="exports", crumb="Exports")


class ProductExportsView(LoginRequiredMixin, View):
    """The Exports tab: the schedules the user may see, with their next and last runs."""

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        schedules = list(export_schedules_for(user=request.user, product=product))
        latest = export_latest_runs(schedules=schedules)
        for schedule in schedules:
            schedule.next_runs = export_schedule_next_runs(schedule)
            schedule.last_run = latest.get(schedule.pk)
        context = {
            **_tab_context(product),
            "schedules": schedules,
            "can_create": export_schedule_can_create(user=request.user, product=product),
            "has_ports": product.ports.exists(),
        }
        return render(request, "sharing/product_exports.html", context)


class _ScheduleFormView(LoginRequiredMixin, View):
    template_name = "sharing/export_schedule_form.html"

    @staticmethod
    def _columns(product, creator) -> tuple[list, dict[str, str], dict[str, str]]:
        """The ports, the columns the creator may export (in port order) with their
        declared types, and those of them a row filter may name (masked columns are
        exported as **** but cannot be filtered on)."""
        ports = list(product_ports(product=product))
        decision = access_decide(user=creator, product=product)
        types: dict[str, str] = {}
        for port in ports:
            for column in port.columns.all():
                if decision.allows_column(column.name):
                    types.setdefault(column.name, column.data_type)
        filterable = {name: kind for name, kind in types.items() if name not in decision.masked}
        return ports, types, filterable

    @staticmethod
    def _form(product, ports, columns, filterable, data=None, **kwargs) -> ExportScheduleForm:
        return ExportScheduleForm(
            data,
            ports=ports,
            columns=list(columns),
            column_types=filterable,
            values_url=reverse("sharing:product-column-values", kwargs=_slugs(product)),
            **kwargs,
        )

    def _render(self, request, product, form, schedule=None, status=200):
        context = {
            **_tab_context(product),
            "form": form,
            "schedule": schedule,
            "presets": CRON_PRESETS,
        }
        return render(request, self.template_name, context, status=status)


class ExportScheduleCreateView(_ScheduleFormView):
    def _product(self, request, domain_slug, product_slug):
        product = product_page(request, domain_slug, product_slug)
        if not export_schedule_can_create(user=request.user, product=product):
            raise PermissionDenied(
                "Scheduled exports read with your own access: request access to this "
                "product's data first."
            )
        return product

    def get(self, request, domain_slug: str, product_slug: str):
        product = self._product(request, domain_slug, product_slug)
        ports, columns, filterable = self._columns(product, request.user)
        if not ports:
            messages.error(request, "This product has no output port yet: nothing to export.")
            return redirect(exports_url(product))
        form = self._form(
            product, ports, columns, filterable, initial={"name": f"{product.name} export"}
        )
        return self._render(request, product, form)

    def post(self, request, domain_slug: str, product_slug: str):
        product = self._product(request, domain_slug, product_slug)
        ports, columns, filterable = self._columns(product, request.user)
        form = self._form(product, ports, columns, filterable, request.POST)
        if form.is_valid():
            try:
                schedule = export_schedule_create(
                    product=product, by=request.user, **form.service_fields()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Export “{schedule.name}” scheduled. Press “Run now” to get a first file "
                    "without waiting.",
                )
                return redirect(schedule_url(schedule))
        return self._render(request, product, form, status=400)


class ExportScheduleEditView(_ScheduleFormView):
    def _editable(self, request, domain_slug, product_slug, schedule_id):
        schedule = _schedule(request, domain_slug, product_slug, schedule_id)
        if not export_schedule_can_change(user=request.user, schedule=schedule):
            raise PermissionDenied(
                "Only the schedule's creator and the domain's owners and stewards change it."
            )
        if schedule.ended_at is not None:
            raise PermissionDenied("This schedule has ended; create a new one.")
        return schedule

    def get(self, request, domain_slug: str, product_slug: str, schedule_id: int):
        schedule = self._editable(request, domain_slug, product_slug, schedule_id)
        ports, columns, filterable = self._columns(schedule.product, schedule.created_by)
        form = self._form(
            schedule.product,
            ports,
            columns,
            filterable,
            initial=ExportScheduleForm.initial_for(schedule, list(columns)),
        )
        return self._render(request, schedule.product, form, schedule)

    def post(self, request, domain_slug: str, product_slug: str, schedule_id: int):
        schedule = self._editable(request, domain_slug, product_slug, schedule_id)
        ports, columns, filterable = self._columns(schedule.product, schedule.created_by)
        form = self._form(schedule.product, ports, columns, filterable, request.POST)
        if form.is_valid():
            try:
                export_schedule_update(schedule=schedule, by=request.user, **form.service_fields())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Saved “{form.cleaned_data['name']}”.")
                return redirect(schedule_url(schedule))
        return self._render(request, schedule.product, form, schedule, status=400)


class ExportScheduleEndView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, schedule_id: int):
        schedule = _schedule(request, domain_slug, product_slug, schedule_id)
        export_schedule_end(schedule=schedule, by=request.user)
        messages.success(
            request,
            f"Ended “{schedule.name}”: it runs no more. Its files stay downloadable below.",
        )
        return redirect(schedule_url(schedule))


def runs_context(*, request, schedule: ExportSchedule, polling: bool = False) -> dict:
    """What a schedule's run history shows: its latest runs, with whether the user may
    download each file (one access decision for all), and whether the page should poll."""
    runs = list(export_runs_of(schedule=schedule)[:RECENT_RUNS])
    decision = access_decide(user=request.user, product=schedule.product)
    for run in runs:
        run.duration = export_run_duration(run)
        run.written = run.detail.get("written") or {}
        run.download_refusal = (
            export_file_refusal(run=run, decision=decision)
            if run.status == ExportStatus.SUCCEEDED and not run.pruned_at
            else None
        )
        run.elapsed = (timezone.now() - run.started_at).total_seconds() if run.started_at else None
    active = next(
        (run for run in runs if run.status in (ExportStatus.QUEUED, ExportStatus.RUNNING)), None
    )
    waiting_long = (
        active is not None
        and active.status == ExportStatus.QUEUED
        and (timezone.now() - active.created_at).total_seconds() > QUEUED_TOO_LONG_SECONDS
    )
    return {
        "product": schedule.product,
        "schedule": schedule,
        "runs": runs,
        "active": active,
        "polling": active is not None,
        "waiting_long": waiting_long,
        "can_change": export_schedule_can_change(user=request.user, schedule=schedule),
    }


class ExportScheduleDetailView(LoginRequiredMixin, View):
    """A schedule: what it exports and when, "run now", and its run history."""

    def get(self, request, domain_slug: str, product_slug: str, schedule_id: int):
        schedule = _schedule(request, domain_slug, product_slug, schedule_id)
        runs = runs_context(request=request, schedule=schedule)
        context = {
            **_tab_context(schedule.product),
            **runs,
            "chart": export_runs_chart(runs["runs"], tz=schedule.timezone),
            "next_runs": export_schedule_next_runs(schedule),
            "row_filter_words": filter_phrases(schedule.row_filter),
        }
        return render(request, "sharing/export_schedule_detail.html", context)


class ExportRunsView(LoginRequiredMixin, View):
    """GET: the run history block; the page polls it every second while a run is queued
    or running."""

    def get(self, request, domain_slug: str, product_slug: str, schedule_id: int):
        schedule = _schedule(request, domain_slug, product_slug, schedule_id)
        return render(
            request, "sharing/_export_runs.html", runs_context(request=request, schedule=schedule)
        )


class ExportRunNowView(LoginRequiredMixin, View):
    """POST: run the export now; answers the run history block (HTMX), which then polls,
    or goes back to the schedule's page."""

    def post(self, request, domain_slug: str, product_slug: str, schedule_id: int):
        schedule = _schedule(request, domain_slug, product_slug, schedule_id)
        try:
            export_run_request(schedule=schedule, by=request.user)
        except ValidationError as exc:
            if request.headers.get("HX-Request"):
                return HttpResponse(" ".join(exc.messages), status=400)
            messages.error(request, " ".join(exc.messages))
            return redirect(schedule_url(schedule))
        if request.headers.get("HX-Request"):
            return render(
                request,
                "sharing/_export_runs.html",
                runs_context(request=request, schedule=schedule),
            )
        messages.info(request, "Export queued: it appears below when it is written.")
        return redirect(schedule_url(schedule))


class ExportRunDownloadView(LoginRequiredMixin, View):
    def get(self, request, domain_slug: str, product_slug: str, run_id: int):
        product = product_page(request, domain_slug, product_slug)
        try:
            run = export_run_get(user=request.user, run_id=run_id)
        except ExportRun.DoesNotExist:
            raise Http404("No such export run.") from None
        if run.schedule.product_id != product.pk:
            raise Http404("No such export run.")
        try:
            return export_file_download(
                run=run, user=request.user, client_address=client_address(request)
            )
        except ExportFileRefused as exc:
            if exc.status == 403:
                raise PermissionDenied(exc.message) from None
            if exc.status == 404:
                raise Http404(exc.message) from None
            return HttpResponse(exc.message, status=exc.status, content_type="text/plain")


class CronPreviewView(LoginRequiredMixin, View):
    """GET `?cron=&timezone=`: the next three times the schedule would fire, in its time
    zone (the form's cron helper), or what is wrong with the expression (400)."""

    def get(self, request):
        cron = request.GET.get("cron", "")
        tz = request.GET.get("timezone") or "UTC"
        try:
            times = cron_preview(cron=cron, tz=tz)
        except ValidationError as exc:
            error = " ".join(
                message for messages_ in exc.message_dict.values() for message in messages_
            )
            return render(
                request, "sharing/_cron_preview.html", {"error": error, "cron": cron}, status=400
            )
        return render(
            request, "sharing/_cron_preview.html", {"times": times, "tz": tz, "cron": cron}
        )
