"""Trust pages of a product: the quality tab (trust score and its evidence, charts,
checks and runs, SLOs, incidents), the check and SLO forms, incident pages, and the
page explaining how the trust score is computed.

Like every product page, the product comes through products.catalog.scope (one the user
may not see is a 404); the services decide who may change what (a refusal is a 403) and
what is valid (errors beside their field).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from portal.core.cron import cron_describe, cron_next_runs
from portal.core.forms import add_service_errors
from portal.core.markdown import render_markdown
from products.catalog.permissions import can_edit_product, require_product_editor
from products.catalog.scope import (
    QUEUED_TOO_LONG_SECONDS,
    product_header,
    product_page,
    product_page_port,
)
from products.catalog.selectors import port_for, product_ports
from products.choices import (
    COLUMN_CHECKS,
    ROW_LEVEL_CHECKS,
    CheckKind,
    CheckOutcome,
    CheckRunStatus,
    IncidentStatus,
    SLOKind,
)
from products.models import (
    Check,
    CheckRun,
    DataProduct,
    Incident,
    OutputPort,
    ServiceLevelObjective,
)
from products.trust import charts as trust_charts
from products.trust.forms import (
    KIND_PARAM_FIELDS,
    CheckForm,
    IncidentAcknowledgeForm,
    IncidentCommentForm,
    IncidentResolveForm,
    SLOForm,
    attach_service_errors,
)
from products.trust.selectors import (
    check_get,
    check_run_get,
    check_runs_for_product,
    checks_for_product,
    port_latest_check_runs,
    quality_url,
    results_of_runs,
    stream_monitor_readings,
    trust_figures,
    trust_header_context,
    trust_summary,
)
from products.trust.services.checks import (
    check_create,
    check_delete,
    check_effective_schedule,
    check_run_request,
    check_update,
)
from products.trust.services.incidents import (
    incident_acknowledge,
    incident_comment,
    incident_detail_for,
    incident_events,
    incident_resolve,
    incidents_for_product,
)
from products.trust.services.monitors import STREAM_VALIDATE_MESSAGES
from products.trust.services.slos import slo_create, slo_delete, slo_kinds_for, slo_update
from sharing.access.decision import reads_everything

# After a run finishes, its effects (incidents, SLOs, the trust score) follow within
# moments; the page keeps polling until the score is recomputed, at most this long.
SETTLE_SECONDS = 10
RECENT_RUNS = 10
RESOLVED_INCIDENTS_SHOWN = 10
TRUST_DOC = Path(settings.BASE_DIR) / "docs" / "trust-score.md"


def _slugs(product: DataProduct) -> dict:
    return {"domain_slug": product.domain.slug, "product_slug": product.slug}


def next_runs(check: Check) -> list:
    if not check.enabled:
        return []
    try:
        return cron_next_runs(check_effective_schedule(check), count=3)
    except ValueError:
        return []


def _run_settled(run: CheckRun | None, product: DataProduct) -> bool:
    """A run is settled when it is finished and the trust score has caught up with it (or
    long enough has passed that it will not)."""
    if run is None or not run.is_finished:
        return run is None
    finished = run.finished_at or run.created_at
    if (timezone.now() - finished).total_seconds() > SETTLE_SECONDS:
        return True
    return product.trust_scores.filter(computed_at__gte=finished).exists()


def port_checks_context(
    *,
    product: DataProduct,
    port: OutputPort,
    checks: list[Check],
    run: CheckRun | None,
    results: list | None,
    can_edit: bool,
    show_rows: bool,
    settling: bool = False,
) -> dict:
    """What a port's checks block shows: its checks, its latest run and that run's
    results, and whether the page should poll for progress (`settling`: the run has
    finished, its effects on incidents and the trust score are still being recorded)."""
    in_progress = run is not None and run.status in (CheckRunStatus.QUEUED, CheckRunStatus.RUNNING)
    waiting_long = (
        in_progress
        and run.status == CheckRunStatus.QUEUED
        and (timezone.now() - run.created_at).total_seconds() > QUEUED_TOO_LONG_SECONDS
    )
    for check in checks:
        check.next_runs = next_runs(check)
        check.effective_schedule = check_effective_schedule(check)
        check.schedule_in_words = cron_describe(check.effective_schedule)
    failing = [r for r in (results or []) if r.outcome != CheckOutcome.PASS]
    return {
        "product": product,
        "port": port,
        "checks": checks,
        "has_enabled_checks": any(check.enabled for check in checks),
        "run": run,
        "results": results or [],
        "failing_results": failing,
        "in_progress": in_progress,
        "polling": in_progress or settling,
        "settling": settling and not in_progress,
        "waiting_long": waiting_long,
        "can_edit": can_edit,
        "show_rows": show_rows,
    }


class ProductQualityView(LoginRequiredMixin, TemplateView):
    """The quality tab: the trust score with its evidence, charts, checks and runs, SLOs
    and incidents."""

    template_name = "products/product_quality.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        product = product_page(self.request, kwargs["domain_slug"], kwargs["product_slug"])
        can_edit = can_edit_product(user=user, product=product)
        show_rows = reads_everything(user=user, product=product)

        ports = list(product_ports(product=product))
        checks = checks_for_product(product=product)
        latest_runs = port_latest_check_runs(product=product)
        results_by_run = results_of_runs(runs=latest_runs.values())
        port_blocks = []
        for port in ports:
            port.product = product
            run = latest_runs.get(port.pk)
            port_blocks.append(
                port_checks_context(
                    product=product,
                    port=port,
                    checks=[check for check in checks if check.port_id == port.pk],
                    run=run,
                    results=results_by_run.get(run.pk) if run else None,
                    can_edit=can_edit,
                    show_rows=show_rows,
                )
            )

        summary = trust_summary(product=product)
        header = {
            **product_header(product=product, active_tab="quality", can_edit=can_edit),
            # the header's trust part too: its template tag finds it here and reads nothing
            **trust_header_context(product=product, latest=summary.latest),
        }
        # Every unresolved incident (one per cause at most), then the latest resolved ones.
        unresolved = header["open_incidents"]
        resolved = list(
            incidents_for_product(product=product, status=IncidentStatus.RESOLVED)[
                :RESOLVED_INCIDENTS_SHOWN
            ]
        )
        # SLO attainment and the 30-day series, cached while their evidence is unchanged.
        figures = trust_figures(product=product, latest_runs=latest_runs)
        slo_reports = figures.slo_reports
        recent_runs = list(check_runs_for_product(product=product)[:RECENT_RUNS])

        context.update(
            **header,
            show_rows=show_rows,
            summary=summary,
            port_blocks=port_blocks,
            has_checks=bool(checks),
            recent_runs=recent_runs,
            stream_monitors=stream_monitor_readings(ports=ports),
            stream_validate_messages=STREAM_VALIDATE_MESSAGES,
            slo_reports=slo_reports,
            can_add_slo=can_edit
            and len(slo_reports) < len(slo_kinds_for(product=product, ports=ports)),
            unresolved_incidents=unresolved,
            resolved_incidents=resolved,
            charts=trust_charts.quality_charts(
                figures=figures, history=summary.history, latest=summary.latest
            ),
        )
        return context


class PortChecksView(LoginRequiredMixin, View):
    """GET: one port's checks block (checks, the latest run and its results). The quality
    page polls it every second while a run is queued or running; once the run has settled
    the page reloads, so the trust score, charts and incident banner show its effects."""

    def get(self, request, domain_slug: str, product_slug: str, port_slug: str):
        product = product_page(request, domain_slug, product_slug)
        port = product_page_port(product, port_slug)
        run = port.check_runs.order_by("-created_at", "-pk").first()
        polling = bool(request.headers.get("HX-Request") and request.GET.get("poll"))
        if polling and run is not None and run.is_finished:
            if _run_settled(run, product):
                # Reload the page: the banner, score and charts show the run's effects.
                response = self._render(request, product, port, run)
                response["HX-Refresh"] = "true"
                return response
            return self._render(request, product, port, run, settling=True)
        return self._render(request, product, port, run)

    @staticmethod
    def _render(request, product, port, run, *, settling: bool = False):
        results = results_of_runs(runs=[run]).get(run.pk) if run is not None else None
        context = port_checks_context(
            product=product,
            port=port,
            checks=checks_for_product(product=product, port=port),
            run=run,
            results=results,
            can_edit=can_edit_product(user=request.user, product=product),
            show_rows=reads_everything(user=request.user, product=product),
            settling=settling,
        )
        return render(request, "products/_port_checks.html", context)


class PortChecksRunView(LoginRequiredMixin, View):
    """POST: run the port's enabled checks now; answers the checks block (HTMX), which
    then polls, or goes back to the quality page."""

    def post(self, request, domain_slug: str, product_slug: str, port_slug: str):
        product = product_page(request, domain_slug, product_slug)
        port = product_page_port(product, port_slug)
        run = check_run_request(port=port, by=request.user)
        if request.headers.get("HX-Request"):
            return PortChecksView._render(request, product, port, run)
        messages.info(
            request,
            f"Checks of {port.name} queued. Reload this page to see their results.",
        )
        return redirect(quality_url(product, f"checks-{port.slug}"))


class CheckRunDetailView(LoginRequiredMixin, TemplateView):
    """One run's results, with failing-row samples for people who may read rows."""

    template_name = "products/check_run_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        product = product_page(self.request, kwargs["domain_slug"], kwargs["product_slug"])
        try:
            run = check_run_get(product=product, run_id=kwargs["run_id"])
        except CheckRun.DoesNotExist:
            raise Http404("No such check run.") from None
        user = self.request.user
        context.update(
            product=product,
            run=run,
            results=run.result_list,
            can_edit=can_edit_product(user=user, product=product),
            show_rows=reads_everything(user=user, product=product),
        )
        return context


# --- check forms -------------------------------------------------------------------------


class _CheckFormView(LoginRequiredMixin, View):
    template_name = "products/check_form.html"

    def _context(self, product, form, check=None, **extra) -> dict:
        ports = list(product_ports(product=product))
        columns = sorted({column.name for port in ports for column in port.columns.all()})
        return {
            "product": product,
            "form": form,
            "check": check,
            "ports": ports,
            "known_columns": columns,
            "kind_params": {k: list(v) for k, v in KIND_PARAM_FIELDS.items()},
            "kind_help": form.kind_help,
            "column_kinds": [str(kind) for kind in COLUMN_CHECKS],
            "tolerance_kinds": [str(kind) for kind in (*ROW_LEVEL_CHECKS, CheckKind.CUSTOM_SQL)],
            **extra,
        }


class CheckCreateView(_CheckFormView):
    def _ports(self, product):
        ports = OutputPort.objects.filter(product=product).order_by("name")
        if not ports.exists():
            messages.error(self.request, "Add an output port first: checks look at a port's data.")
            return None
        return ports

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        ports = self._ports(product)
        if ports is None:
            return redirect(product.get_absolute_url())
        wanted = request.GET.get("port")
        # The port asked for, or the first by name when there is no such port.
        port = (wanted and port_for(product=product, slug=wanted)) or port_for(product=product)
        initial = {"port": port.pk, "kind": request.GET.get("kind") or "not_null"}
        form = CheckForm(initial=initial, ports=ports, default_schedule=product.check_schedule)
        return render(request, self.template_name, self._context(product, form))

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        ports = self._ports(product)
        if ports is None:
            return redirect(product.get_absolute_url())
        form = CheckForm(request.POST, ports=ports, default_schedule=product.check_schedule)
        if form.is_valid():
            port = form.cleaned_data.get("port") or port_for(product=product)
            port.product = product
            try:
                check = check_create(port=port, by=request.user, **form.service_fields())
            except ValidationError as exc:
                attach_service_errors(form, exc, kind=form.cleaned_data["kind"])
            else:
                messages.success(
                    request,
                    f"Check “{check.name}” added. Run the checks of {port.name} to see its "
                    "first result.",
                )
                return redirect(quality_url(product, f"checks-{port.slug}"))
        return render(request, self.template_name, self._context(product, form), status=400)


class CheckEditView(_CheckFormView):
    def _check(self, request, domain_slug, product_slug, check_id):
        product = product_page(request, domain_slug, product_slug, edit=True)
        try:
            check = check_get(product=product, check_id=check_id)
        except Check.DoesNotExist:
            raise Http404("No such check.") from None
        return product, check

    def _form(self, product, check, data=None):
        ports = OutputPort.objects.filter(pk=check.port_id)
        initial = None if data is not None else CheckForm.initial_for(check)
        return CheckForm(
            data,
            initial=initial,
            ports=ports,
            default_schedule=product.check_schedule,
            editing=True,
        )

    def get(self, request, domain_slug: str, product_slug: str, check_id: int):
        product, check = self._check(request, domain_slug, product_slug, check_id)
        form = self._form(product, check)
        return render(request, self.template_name, self._context(product, form, check))

    def post(self, request, domain_slug: str, product_slug: str, check_id: int):
        product, check = self._check(request, domain_slug, product_slug, check_id)
        form = self._form(product, check, request.POST)
        if form.is_valid():
            try:
                check_update(check=check, by=request.user, **form.service_fields())
            except ValidationError as exc:
                attach_service_errors(form, exc, kind=form.cleaned_data["kind"])
            else:
                messages.success(request, f"Saved check “{check.name}”.")
                return redirect(quality_url(product, f"checks-{check.port.slug}"))
        context = self._context(product, form, check)
        return render(request, self.template_name, context, status=400)


class CheckDeleteView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, check_id: int):
        product = product_page(request, domain_slug, product_slug, edit=True)
        try:
            check = check_get(product=product, check_id=check_id)
        except Check.DoesNotExist:
            raise Http404("No such check.") from None
        name, port_slug = check.name, check.port.slug
        check_delete(check=check, by=request.user)
        messages.success(request, f"Deleted check “{name}” and its results.")
        return redirect(quality_url(product, f"checks-{port_slug}"))


# --- SLO forms ---------------------------------------------------------------------------


class _SLOFormView(LoginRequiredMixin, View):
    template_name = "products/slo_form.html"

    def _slo(self, product, slo_id) -> ServiceLevelObjective:
        try:
            slo = product.slos.get(pk=slo_id)
        except ServiceLevelObjective.DoesNotExist:
            raise Http404("No such SLO.") from None
        slo.product = product
        return slo

    @staticmethod
    def _taken(product, slo=None) -> set[str]:
        """Kinds of the product's other SLOs (one SLO per kind)."""
        taken = set(product.slos.values_list("kind", flat=True))
        if slo is not None:
            taken.discard(slo.kind)
        return taken

    def _render(self, request, product, form, slo=None, status=200):
        taken = [SLOKind(kind).label.lower() for kind in sorted(self._taken(product, slo))]
        context = {"product": product, "form": form, "slo": slo, "taken_kinds": taken}
        return render(request, self.template_name, context, status=status)


class SLOCreateView(_SLOFormView):
    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        taken = self._taken(product)
        kinds = slo_kinds_for(product=product)
        free = [kind for kind in kinds if kind not in taken]
        if not free:
            messages.info(request, "This product has an SLO of every kind: edit one instead.")
            return redirect(quality_url(product, "slos"))
        wanted = request.GET.get("kind")
        initial = {"kind": wanted if wanted in free else free[0]}
        form = SLOForm(initial=initial, taken_kinds=taken, kinds=kinds)
        return self._render(request, product, form)

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        form = SLOForm(
            request.POST, taken_kinds=self._taken(product), kinds=slo_kinds_for(product=product)
        )
        if form.is_valid():
            try:
                slo = slo_create(product=product, by=request.user, **form.service_fields())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"{slo.get_kind_display()} SLO added.")
                return redirect(quality_url(product, "slos"))
        return self._render(request, product, form, status=400)


class SLOEditView(_SLOFormView):
    def get(self, request, domain_slug: str, product_slug: str, slo_id: int):
        product = product_page(request, domain_slug, product_slug, edit=True)
        slo = self._slo(product, slo_id)
        form = SLOForm(
            initial=SLOForm.initial_for(slo),
            taken_kinds=self._taken(product, slo),
            kinds=slo_kinds_for(product=product),
        )
        return self._render(request, product, form, slo)

    def post(self, request, domain_slug: str, product_slug: str, slo_id: int):
        product = product_page(request, domain_slug, product_slug, edit=True)
        slo = self._slo(product, slo_id)
        form = SLOForm(
            request.POST,
            taken_kinds=self._taken(product, slo),
            kinds=slo_kinds_for(product=product),
        )
        if form.is_valid():
            try:
                slo_update(slo=slo, by=request.user, **form.service_fields())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Saved the {slo.get_kind_display().lower()} SLO.")
                return redirect(quality_url(product, "slos"))
        return self._render(request, product, form, slo, status=400)


class SLODeleteView(_SLOFormView):
    def post(self, request, domain_slug: str, product_slug: str, slo_id: int):
        product = product_page(request, domain_slug, product_slug, edit=True)
        slo = self._slo(product, slo_id)
        label = slo.get_kind_display()
        slo_delete(slo=slo, by=request.user)
        messages.success(request, f"Deleted the {label.lower()} SLO.")
        return redirect(quality_url(product, "slos"))


# --- incidents ---------------------------------------------------------------------------


def _incident(product: DataProduct, incident_id: int) -> Incident:
    try:
        incident = incidents_for_product(product=product).get(pk=incident_id)
    except Incident.DoesNotExist:
        raise Http404("No such incident.") from None
    incident.product = product
    return incident


class IncidentDetailView(LoginRequiredMixin, View):
    """An incident's timeline; owners and stewards acknowledge, comment and resolve it."""

    template_name = "products/incident_detail.html"
    action = ""  # "", "acknowledge", "comment" or "resolve" (POST)

    FORMS = {
        "acknowledge": IncidentAcknowledgeForm,
        "comment": IncidentCommentForm,
        "resolve": IncidentResolveForm,
    }

    def _render(self, request, product, incident, forms=None, status=200):
        can_edit = can_edit_product(user=request.user, product=product)
        forms = forms or {}
        context = {
            "product": product,
            "quality_url": quality_url(product),
            "incident": incident,
            "events": list(incident_events(incident=incident)),
            "can_edit": can_edit,
            "technical_detail": incident_detail_for(incident=incident, user=request.user),
            "acknowledge_form": forms.get("acknowledge") or IncidentAcknowledgeForm(),
            "comment_form": forms.get("comment") or IncidentCommentForm(),
            "resolve_form": forms.get("resolve") or IncidentResolveForm(),
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request, domain_slug: str, product_slug: str, incident_id: int):
        product = product_page(request, domain_slug, product_slug)
        return self._render(request, product, _incident(product, incident_id))

    def post(self, request, domain_slug: str, product_slug: str, incident_id: int):
        if not self.action:
            raise Http404()
        product = product_page(request, domain_slug, product_slug)
        incident = _incident(product, incident_id)
        require_product_editor(user=request.user, product=product, action="act on its incidents")
        form = self.FORMS[self.action](request.POST)
        if form.is_valid():
            try:
                if self.action == "acknowledge":
                    incident_acknowledge(incident=incident, by=request.user, **form.cleaned_data)
                    done = "Incident acknowledged: consumers see that you are on it."
                elif self.action == "comment":
                    incident_comment(incident=incident, by=request.user, **form.cleaned_data)
                    done = "Comment added."
                else:
                    incident_resolve(incident=incident, by=request.user, **form.cleaned_data)
                    done = "Incident resolved."
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, done)
                return redirect(
                    reverse(
                        "products:incident-detail",
                        kwargs={**_slugs(product), "incident_id": incident.pk},
                    )
                )
        incident = _incident(product, incident_id)
        return self._render(request, product, incident, {self.action: form}, status=400)


class TrustScoreDocsView(LoginRequiredMixin, TemplateView):
    """How the trust score is computed: docs/trust-score.md, as safe HTML."""

    template_name = "products/trust_score_docs.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        try:
            text = TRUST_DOC.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise Http404("The trust score's documentation is missing.") from None
        context["doc"] = render_markdown(text)
        return context
