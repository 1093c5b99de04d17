"""Pages of syncs (reverse ETL): a product's Syncs tab, the sync form, a sync's page
(settings in words, the loop warning, guardrails, dry run / run now / pause / resume,
held runs to approve or decline, the run history with its chart and progress, the
rejected records with their CSV), and the destinations page (admins and domain owners).

Like every page: a product or sync the user may not see is a 404; the services decide who
may change what (403) and what is valid (400, errors beside their field). The API calls
the same services and selectors.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from portal.core.cron import cron_next_runs
from portal.core.forms import add_service_errors
from products.catalog.scope import QUEUED_TOO_LONG_SECONDS, product_header, product_page
from products.catalog.selectors import product_ports
from products.models import Domain, Metric
from sharing.access.decision import access_decide
from sharing.models.syncs import (
    ChangeKind,
    Sync,
    SyncDestination,
    SyncRun,
    SyncRunStatus,
    SyncStatus,
    SyncTrigger,
)
from sharing.syncs.charts import run_duration, run_records_per_second, sync_runs_chart
from sharing.syncs.destinations import destination_writer
from sharing.syncs.destinations.base import DestinationError
from sharing.syncs.forms import DestinationForm, SyncForm
from sharing.syncs.selectors import sync_run_chart_rows, syncs_for_product
from sharing.syncs.services.destinations import (
    destination_can_manage,
    destination_create,
    destination_delete,
    destination_test,
    destination_update,
    destinations_usable_by,
)
from sharing.syncs.services.runs import (
    rejected_records_csv,
    sync_run_approve,
    sync_run_decline,
    sync_run_request,
)
from sharing.syncs.services.syncs import (
    destination_usable_by,
    sync_can_change,
    sync_can_create,
    sync_create,
    sync_delete,
    sync_pause,
    sync_resume,
    sync_update,
    sync_warnings,
)

RECENT_RUNS = 20
ACTIVE_STATUSES = (SyncRunStatus.QUEUED, SyncRunStatus.RUNNING)
OPEN_REJECTED_SHOWN = 50


def _slugs(product) -> dict:
    return {"domain_slug": product.domain.slug, "product_slug": product.slug}


def syncs_url(product) -> str:
    return reverse("sharing:product-syncs", kwargs=_slugs(product))


def sync_url(sync: Sync) -> str:
    return reverse(
        "sharing:sync-detail",
        args=[sync.product.domain.slug, sync.product.slug, sync.pk],
    )


def _tab_context(product) -> dict:
    return product_header(product=product, active_tab="syncs", crumb="Syncs")


def _sync(request, domain_slug: str, product_slug: str, sync_id: int) -> Sync:
    """The sync of a page: 404 unless the user may see it, on this product."""
    product = product_page(request, domain_slug, product_slug)
    sync = (
        syncs_for_product(user=request.user, product=product)
        .select_related("destination", "port", "metric", "created_by", "product__domain")
        .filter(pk=sync_id)
        .first()
    )
    if sync is None:
        raise Http404("No such sync.")
    return sync


def sync_next_run(sync: Sync):
    """When a scheduled, active sync fires next (in its time zone), else None."""
    if sync.trigger != SyncTrigger.SCHEDULE or sync.status != SyncStatus.ACTIVE:
        return None
    try:
        after = timezone.now().astimezone(ZoneInfo(sync.timezone))
        return cron_next_runs(sync.cron, count=1, after=after)[0]
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        return None


# The services' names of fields the form shows under another name.
FORM_FIELD_OF = {"port_slug": "port", "metric": "port", "metric_query": "metric_dimensions"}


def _as_form_errors(exc: ValidationError) -> ValidationError:
    """A service's errors under the form's field names (the port and the metric are
    the form's one source field)."""
    if not hasattr(exc, "error_dict"):
        return exc
    errors: dict[str, list] = {}
    for name, messages_ in exc.error_dict.items():
        errors.setdefault(FORM_FIELD_OF.get(name, name), []).extend(messages_)
    return ValidationError(errors)


def _save_warnings(request, sync: Sync) -> None:
    for warning in sync_warnings(sync):
        messages.warning(request, warning)


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# --- the product's Syncs tab -----------------------------------------------------------


class ProductSyncsView(LoginRequiredMixin, View):
    """The Syncs tab: the syncs the user may see, with their last and next runs."""

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        syncs = list(
            syncs_for_product(user=request.user, product=product).select_related(
                "destination", "created_by", "metric"
            )
        )
        latest: dict[int, SyncRun] = {}
        for run in SyncRun.objects.filter(sync__in=syncs, dry_run=False).order_by(
            "sync_id", "-created_at", "-pk"
        ):
            latest.setdefault(run.sync_id, run)
        for sync in syncs:
            sync.last_run = latest.get(sync.pk)
            sync.next_run = sync_next_run(sync)
        can_create = sync_can_create(user=request.user, product=product)
        context = {
            **_tab_context(product),
            "syncs": syncs,
            "can_create": can_create,
            "has_ports": product.ports.exists(),
            "has_destinations": can_create
            and (
                destination_can_manage(user=request.user)  # admins use every destination
                or destinations_usable_by(user=request.user).exists()
            ),
        }
        return render(request, "syncs/product_syncs.html", context)


# --- the sync form ---------------------------------------------------------------------


def _destination_fields(destination: SyncDestination | None) -> list[str] | None:
    """The destination's fields for the mapping's selects; None when it is free-form or
    cannot be reached now (the mapping is then typed, and checked again at save)."""
    if destination is None:
        return None
    try:
        with destination_writer(destination, key_fields=[], run_id="form") as writer:
            return writer.fields()
    except DestinationError:
        return None


class _SyncFormView(LoginRequiredMixin, View):
    template_name = "syncs/sync_form.html"

    @staticmethod
    def _choices(product, creator) -> tuple[list, list[str], list[SyncDestination], list]:
        """The ports, the columns the creator may read (in port order), the
        destinations the creator may use and the product's metrics."""
        ports = list(product_ports(product=product))
        decision = access_decide(user=creator, product=product)
        columns: list[str] = []
        for port in ports:
            for column in port.columns.all():
                if decision.allows_column(column.name) and column.name not in columns:
                    columns.append(column.name)
        destinations = [
            destination
            for destination in SyncDestination.objects.select_related("domain").order_by("name")
            if destination_usable_by(user=creator, destination=destination)
        ]
        metrics = list(Metric.objects.filter(port__product=product).order_by("key"))
        return ports, columns, destinations, metrics

    @staticmethod
    def _chosen(destinations, wanted) -> SyncDestination | None:
        for destination in destinations:
            if str(destination.pk) == str(wanted):
                return destination
        return destinations[0] if destinations else None

    def _form(self, product, creator, data=None, initial=None) -> SyncForm:
        ports, columns, destinations, metrics = self._choices(product, creator)
        wanted = (data or {}).get("destination") or (initial or {}).get("destination")
        chosen = self._chosen(destinations, wanted)
        return SyncForm(
            data,
            ports=ports,
            destinations=destinations,
            columns=columns,
            destination_fields=_destination_fields(chosen),
            metrics=metrics,
            initial=initial or {},
        )

    def _render(self, request, product, form, sync=None, status=200):
        context = {**_tab_context(product), "form": form, "sync": sync}
        return render(request, self.template_name, context, status=status)

    @staticmethod
    def _destination_of(form: SyncForm, creator) -> SyncDestination:
        destination = SyncDestination.objects.filter(pk=form.cleaned_data["destination"]).first()
        if destination is None or not destination_usable_by(user=creator, destination=destination):
            raise ValidationError({"destination": "Choose a destination you may use."})
        return destination


class SyncCreateView(_SyncFormView):
    def _product(self, request, domain_slug, product_slug):
        product = product_page(request, domain_slug, product_slug)
        if not sync_can_create(user=request.user, product=product):
            raise PermissionDenied(
                "A sync reads with your own access: request access to this product's data first."
            )
        return product

    def get(self, request, domain_slug: str, product_slug: str):
        product = self._product(request, domain_slug, product_slug)
        initial = {
            "name": f"{product.name} sync",
            "destination": request.GET.get("destination", ""),
            "trigger": SyncTrigger.MANUAL,
        }
        if request.GET.get("source"):  # from a metric's page: its values, grouped as there
            initial["port"] = request.GET["source"]
            initial["metric_dimensions"] = request.GET.getlist("dimension")
            initial["metric_grain"] = request.GET.get("grain", "")
        form = self._form(product, request.user, initial=initial)
        if not form.fields["port"].choices:
            messages.error(request, "This product has no output port yet: nothing to sync.")
            return redirect(syncs_url(product))
        return self._render(request, product, form)

    def post(self, request, domain_slug: str, product_slug: str):
        product = self._product(request, domain_slug, product_slug)
        form = self._form(product, request.user, request.POST)
        if form.is_valid():
            try:
                sync = sync_create(
                    by=request.user,
                    product=product,
                    destination=self._destination_of(form, request.user),
                    **form.service_fields(),
                )
            except ValidationError as exc:
                add_service_errors(form, _as_form_errors(exc))
            else:
                _save_warnings(request, sync)
                messages.success(
                    request,
                    f"Sync “{sync.name}” created. Start with a dry run: it shows what would "
                    "be sent, and sends nothing.",
                )
                return redirect(sync_url(sync))
        return self._render(request, product, form, status=400)


class SyncEditView(_SyncFormView):
    def _editable(self, request, domain_slug, product_slug, sync_id) -> Sync:
        sync = _sync(request, domain_slug, product_slug, sync_id)
        if not sync_can_change(user=request.user, sync=sync):
            raise PermissionDenied(
                "Only the sync's creator, the destination domain's owners and admins change it."
            )
        return sync

    def get(self, request, domain_slug: str, product_slug: str, sync_id: int):
        sync = self._editable(request, domain_slug, product_slug, sync_id)
        form = self._form(sync.product, sync.created_by, initial=SyncForm.initial_for(sync))
        return self._render(request, sync.product, form, sync)

    def post(self, request, domain_slug: str, product_slug: str, sync_id: int):
        sync = self._editable(request, domain_slug, product_slug, sync_id)
        form = self._form(sync.product, sync.created_by, request.POST)
        if form.is_valid():
            try:
                sync = sync_update(
                    sync=sync,
                    by=request.user,
                    destination=self._destination_of(form, sync.created_by),
                    **form.service_fields(),
                )
            except ValidationError as exc:
                add_service_errors(form, _as_form_errors(exc))
            else:
                _save_warnings(request, sync)
                messages.success(request, f"Saved “{form.cleaned_data['name']}”.")
                return redirect(sync_url(sync))
        return self._render(request, sync.product, form, sync, status=400)


# --- a sync's page ---------------------------------------------------------------------


def runs_context(*, request, sync: Sync) -> dict:
    """What a sync's run block shows: the latest runs with their figures, the held runs
    (with their reasons and plan) and whether the page should poll."""
    runs = list(
        sync.runs.select_related("requested_by", "approved_by").order_by("-created_at", "-pk")[
            :RECENT_RUNS
        ]
    )
    approvals = dict(
        SyncRun.objects.filter(sync=sync, approves__isnull=False).values_list("approves_id", "pk")
    )
    for run in runs:
        run.approved_in = approvals.get(run.pk)
        run.duration = run_duration(run)
        run.rate = run_records_per_second(run)
        run.elapsed = (timezone.now() - run.started_at).total_seconds() if run.started_at else None
    active = next((run for run in runs if run.status in ACTIVE_STATUSES), None)
    waiting_long = (
        active is not None
        and active.status == SyncRunStatus.QUEUED
        and (timezone.now() - active.created_at).total_seconds() > QUEUED_TOO_LONG_SECONDS
    )
    # Held and not yet approved (an approved run stays held; its approval run sends it).
    held = list(
        sync.runs.filter(status=SyncRunStatus.HELD, approved_by_run__isnull=True).order_by(
            "created_at", "pk"
        )
    )
    # The newest run's plan, when it is a dry run's (a later run makes it stale).
    latest_plan = (
        runs[0] if runs and runs[0].dry_run and runs[0].status == SyncRunStatus.PLANNED else None
    )
    return {
        "product": sync.product,
        "sync": sync,
        "runs": runs,
        "active": active,
        "polling": active is not None,
        "waiting_long": waiting_long,
        "held_runs": held,
        "dry_run_plan": latest_plan,
        "change_kinds": ChangeKind,
        "can_change": sync_can_change(user=request.user, sync=sync),
    }


class SyncDetailView(LoginRequiredMixin, View):
    """A sync: what it sends where, its loop warning and guardrails, its actions, held
    runs to approve, its run history and chart, its rejected records."""

    def get(self, request, domain_slug: str, product_slug: str, sync_id: int):
        sync = _sync(request, domain_slug, product_slug, sync_id)
        runs = runs_context(request=request, sync=sync)
        rejected = list(
            sync.rejected_records.filter(resolved_at__isnull=True).order_by("-rejected_at", "-pk")[
                :OPEN_REJECTED_SHOWN
            ]
        )
        context = {
            **_tab_context(sync.product),
            **runs,
            "chart": sync_runs_chart(sync_run_chart_rows(sync=sync), tz=sync.timezone),
            "next_run": sync_next_run(sync),
            "rejected": rejected,
            "rejected_total": sync.rejected_records.filter(resolved_at__isnull=True).count(),
        }
        return render(request, "syncs/sync_detail.html", context)


class SyncRunsView(LoginRequiredMixin, View):
    """GET: the runs block; the page polls it every second while a run is queued or
    running."""

    def get(self, request, domain_slug: str, product_slug: str, sync_id: int):
        sync = _sync(request, domain_slug, product_slug, sync_id)
        return render(request, "syncs/_sync_runs.html", runs_context(request=request, sync=sync))


class SyncRunNowView(LoginRequiredMixin, View):
    """POST: a run (or with `dry_run`, a plan only); answers the runs block (HTMX), which
    then polls, or goes back to the sync's page."""

    dry_run = False

    def post(self, request, domain_slug: str, product_slug: str, sync_id: int):
        sync = _sync(request, domain_slug, product_slug, sync_id)
        htmx = bool(request.headers.get("HX-Request"))
        try:
            sync_run_request(sync=sync, by=request.user, dry_run=self.dry_run)
        except ValidationError as exc:
            if htmx:
                return HttpResponse(_error_text(exc), status=400)
            messages.error(request, _error_text(exc))
            return redirect(sync_url(sync))
        if htmx:
            return render(
                request, "syncs/_sync_runs.html", runs_context(request=request, sync=sync)
            )
        messages.info(
            request,
            "Dry run queued: its plan appears below, nothing is sent."
            if self.dry_run
            else "Run queued: its progress appears below.",
        )
        return redirect(sync_url(sync))


class SyncPauseView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, sync_id: int):
        sync = _sync(request, domain_slug, product_slug, sync_id)
        reason = request.POST.get("reason", "").strip()[:300] or (
            f"Paused by {request.user.get_full_name() or request.user.username}."
        )
        sync_pause(sync=sync, by=request.user, reason=reason)
        messages.success(request, f"Paused “{sync.name}”: no run starts until it is resumed.")
        return redirect(sync_url(sync))


class SyncResumeView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, sync_id: int):
        sync = _sync(request, domain_slug, product_slug, sync_id)
        sync_resume(sync=sync, by=request.user)
        messages.success(request, f"Resumed “{sync.name}”.")
        return redirect(sync_url(sync))


class SyncDeleteView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, sync_id: int):
        sync = _sync(request, domain_slug, product_slug, sync_id)
        product = sync.product
        sync_delete(sync=sync, by=request.user)
        messages.success(
            request, f"Deleted “{sync.name}”. Nothing was removed from its destination."
        )
        return redirect(syncs_url(product))


class _HeldRunView(LoginRequiredMixin, View):
    def _run(self, request, domain_slug, product_slug, sync_id, run_id) -> SyncRun:
        sync = _sync(request, domain_slug, product_slug, sync_id)
        run = sync.runs.filter(pk=run_id).first()
        if run is None:
            raise Http404("No such run of this sync.")
        run.sync = sync
        return run


class SyncRunApproveView(_HeldRunView):
    def post(self, request, domain_slug, product_slug, sync_id: int, run_id: int):
        run = self._run(request, domain_slug, product_slug, sync_id, run_id)
        try:
            sync_run_approve(run=run, by=request.user)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(
                request, f"Approved run #{run.pk}: exactly its held plan is being sent."
            )
        return redirect(sync_url(run.sync))


class SyncRunDeclineView(_HeldRunView):
    def post(self, request, domain_slug, product_slug, sync_id: int, run_id: int):
        run = self._run(request, domain_slug, product_slug, sync_id, run_id)
        try:
            sync_run_decline(
                run=run, by=request.user, reason=request.POST.get("reason", "").strip()[:500]
            )
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, f"Declined run #{run.pk}: nothing of its plan was sent.")
        return redirect(sync_url(run.sync))


class SyncRejectedCsvView(LoginRequiredMixin, View):
    """GET: the open rejected records (the dead-letter list) as CSV."""

    def get(self, request, domain_slug: str, product_slug: str, sync_id: int):
        sync = _sync(request, domain_slug, product_slug, sync_id)
        response = StreamingHttpResponse(
            rejected_records_csv(sync=sync), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="sync-{sync.pk}-rejected-records.csv"'
        )
        return response


# --- destinations ----------------------------------------------------------------------


def _managed_domains(user) -> list[Domain]:
    return [
        d for d in Domain.objects.order_by("name") if destination_can_manage(user=user, domain=d)
    ]


def _require_manager(user) -> list[Domain]:
    domains = _managed_domains(user)
    if not user.is_staff and not domains:
        raise PermissionDenied("Destinations are registered by admins and domain owners.")
    return domains


def _managed_destination(request, destination_id: int) -> SyncDestination:
    destination = SyncDestination.objects.select_related("domain").filter(pk=destination_id).first()
    if destination is None or not destination_can_manage(
        user=request.user, destination=destination
    ):
        raise Http404("No such destination.")
    return destination


class DestinationListView(LoginRequiredMixin, View):
    def get(self, request):
        _require_manager(request.user)
        destinations = [
            destination
            for destination in SyncDestination.objects.select_related("domain", "created_by")
            if destination_can_manage(user=request.user, destination=destination)
        ]
        in_use = set(
            Sync.objects.filter(destination__in=destinations).values_list(
                "destination_id", flat=True
            )
        )
        for destination in destinations:
            destination.in_use = destination.pk in in_use
        return render(request, "syncs/destination_list.html", {"destinations": destinations})


class _DestinationFormView(LoginRequiredMixin, View):
    template_name = "syncs/destination_form.html"

    def _render(self, request, form, destination=None, status=200):
        return render(
            request,
            self.template_name,
            {"form": form, "destination": destination},
            status=status,
        )


class DestinationCreateView(_DestinationFormView):
    def get(self, request):
        domains = _require_manager(request.user)
        form = DestinationForm(domains=domains, admin=request.user.is_staff)
        return self._render(request, form)

    def post(self, request):
        domains = _require_manager(request.user)
        form = DestinationForm(request.POST, domains=domains, admin=request.user.is_staff)
        if form.is_valid():
            try:
                destination = destination_create(by=request.user, **form.service_fields())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Registered “{destination.name}”. Test its connection before a sync uses it.",
                )
                return redirect("sharing:sync-destinations")
        return self._render(request, form, status=400)


class DestinationEditView(_DestinationFormView):
    def get(self, request, destination_id: int):
        domains = _require_manager(request.user)
        destination = _managed_destination(request, destination_id)
        form = DestinationForm(
            domains=domains, admin=request.user.is_staff, destination=destination
        )
        return self._render(request, form, destination)

    def post(self, request, destination_id: int):
        domains = _require_manager(request.user)
        destination = _managed_destination(request, destination_id)
        form = DestinationForm(request.POST, domains=domains, admin=request.user.is_staff)
        if form.is_valid():
            try:
                destination_update(
                    destination=destination, by=request.user, **form.service_fields()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Saved “{destination.name}”.")
                return redirect("sharing:sync-destinations")
        return self._render(request, form, destination, status=400)


class DestinationTestView(LoginRequiredMixin, View):
    """POST: test the connection; answers a one-line result (HTMX) or goes back."""

    def post(self, request, destination_id: int):
        destination = _managed_destination(request, destination_id)
        try:
            text, ok = destination_test(destination=destination), True
        except DestinationError as exc:
            text, ok = exc.message, False
        if request.headers.get("HX-Request"):
            return render(
                request,
                "syncs/_destination_test.html",
                {"ok": ok, "text": text, "destination": destination},
            )
        (messages.success if ok else messages.error)(request, f"{destination.name}: {text}")
        return redirect("sharing:sync-destinations")


class DestinationDeleteView(LoginRequiredMixin, View):
    def post(self, request, destination_id: int):
        destination = _managed_destination(request, destination_id)
        try:
            destination_delete(destination=destination, by=request.user)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, f"Removed “{destination.name}”.")
        return redirect("sharing:sync-destinations")
