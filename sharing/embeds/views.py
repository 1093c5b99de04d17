"""The portal's own pages of embeds (signed in): a product's embeds (with their views of
the last 30 days), the new-embed form, an embed's page (its settings in words, the
snippet to paste, how the host signs a token, the applications and keys that may sign,
denying a token, disable / enable, views per tenant) and the embeds documentation.

Like every page: a product the user may not see is a 404, and so is an embed they may not
manage (its creator and the product's managers manage it): a missing embed and a hidden
one look the same. The services decide who may change what and what is valid (errors
beside their field). The public embed page and its data calls are public_views.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.views import View

from portal.core.forms import add_service_errors
from portal.core.links import absolute_url
from portal.core.markdown import render_markdown
from products.catalog.permissions import can_edit_product, can_manage_domain
from products.catalog.scope import product_header, product_page
from products.catalog.selectors import product_ports
from products.choices import MetricGrain, PortKind
from products.models import Metric
from sharing.access.decision import share_decision
from sharing.choices import EmbedChart
from sharing.embeds.charts import embed_views_chart, tenant_label
from sharing.embeds.forms import (
    FORM_FIELD_OF,
    METRIC_PREFIX,
    PORT_PREFIX,
    SCOPE_DOMAIN,
    EmbedAppForm,
    EmbedDenyForm,
    EmbedForm,
    EmbedKeyForm,
)
from sharing.embeds.selectors import (
    RECENT_DAYS,
    embed_app_of,
    embed_apps,
    embed_denied_tokens,
    embed_get_manageable,
    embed_views_by_day,
    embed_views_by_tenant,
    embeds_for_product,
    recent_since,
)
from sharing.embeds.services.apps import (
    embed_app_create,
    embed_app_delete,
    embed_key_add,
    embed_key_remove,
)
from sharing.embeds.services.embeds import (
    embed_create,
    embed_disable,
    embed_enable,
    embed_token_deny,
)
from sharing.models import Embed, EmbedKey

EMBED_DOC = Path(settings.BASE_DIR) / "docs" / "embeds.md"
EMBED_NOT_FOUND = "No such embed, or you may not manage it."
TOKEN_SECONDS_SHOWN = 300  # the sample token's lifetime (5 minutes)


def _tab_context(product) -> dict:
    # A sub-page of the Data tab, as the Share form is.
    return product_header(product=product, active_tab="data", crumb="Embeds")


def embeds_url(product) -> str:
    return reverse("sharing:product-embeds", args=[product.domain.slug, product.slug])


def embed_url(embed: Embed, anchor: str = "") -> str:
    return reverse("sharing:embed-detail", args=[embed.pk]) + (f"#{anchor}" if anchor else "")


def _embed(request, embed_id) -> Embed:
    try:
        return embed_get_manageable(user=request.user, embed_id=embed_id)
    except Embed.DoesNotExist:
        raise Http404(EMBED_NOT_FOUND) from None


def _as_form_errors(exc: ValidationError) -> ValidationError:
    """A service's errors under the form's field names (the metric and the port are the
    form's one source field)."""
    if not hasattr(exc, "error_dict"):
        return exc
    errors: dict[str, list] = {}
    for name, found in exc.error_dict.items():
        errors.setdefault(FORM_FIELD_OF.get(name, name), []).extend(found)
    return ValidationError(errors)


def _public_url(path: str) -> str:
    """`path` on the portal's public address (what a host application's page loads)."""
    return path if path.startswith(("http://", "https://")) else absolute_url(path)


# --- a product's embeds ------------------------------------------------------------------


class ProductEmbedsView(LoginRequiredMixin, View):
    """The embeds of a product the user may see (all for its managers, their own for
    anyone else), with what each shows, its locks, origins, status and recent views."""

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        decision = share_decision(user=request.user, product=product)
        context = {
            **_tab_context(product),
            "embeds": list(embeds_for_product(user=request.user, product=product)),
            "can_create": decision.allowed,
            "refusal": "" if decision.allowed else decision.reason,
            "sees_all": can_edit_product(user=request.user, product=product),
            "has_ports": product.ports.exists(),
            "days": RECENT_DAYS,
        }
        return render(request, "sharing/embeds/product_embeds.html", context)


# --- the new-embed form ------------------------------------------------------------------


class EmbedCreateView(LoginRequiredMixin, View):
    """`?metric=<key>` (from a metric's page) or `?port=<slug>` (from the Data tab)
    preselects what the embed shows."""

    template_name = "sharing/embeds/embed_form.html"

    def _setup(self, request, domain_slug: str, product_slug: str) -> dict:
        product = product_page(request, domain_slug, product_slug)
        decision = share_decision(user=request.user, product=product)
        ports = [port for port in product_ports(product=product) if port.kind != PortKind.STREAM]
        metrics = list(Metric.objects.filter(port__in=ports).select_related("port").order_by("key"))
        return {"product": product, "decision": decision, "ports": ports, "metrics": metrics}

    def _render(self, request, setup: dict, form: EmbedForm | None, status: int = 200):
        decision = setup["decision"]
        ports = []
        for port in setup["ports"]:
            readable = [
                column
                for column in sorted(port.columns.all(), key=lambda c: (c.position, c.name))
                if decision.allows_column(column.name)
            ]
            ports.append(
                {
                    "port": port,
                    "columns": [c for c in readable if c.name not in decision.masked],
                    "masked": [c.name for c in readable if c.name in decision.masked],
                }
            )
        context = {
            **_tab_context(setup["product"]),
            "form": form,
            "refusal": "" if decision.allowed else decision.reason,
            "port_columns": ports,
            "metrics": setup["metrics"],
        }
        return render(request, self.template_name, context, status=status)

    @staticmethod
    def _initial(request, setup: dict) -> dict:
        product = setup["product"]
        initial = {"title": product.name, "chart": EmbedChart.TABLE}
        wanted_metric = request.GET.get("metric", "")
        metric = next((m for m in setup["metrics"] if m.key == wanted_metric), None)
        if metric is not None:
            initial.update(
                title=metric.name,
                source=f"{METRIC_PREFIX}{metric.key}",
                chart=EmbedChart.LINE if metric.time_column else EmbedChart.KPI,
                grain=MetricGrain.MONTH if metric.time_column else "",
            )
        elif request.GET.get("port"):
            initial["source"] = f"{PORT_PREFIX}{request.GET['port']}"
        return initial

    def get(self, request, domain_slug: str, product_slug: str):
        setup = self._setup(request, domain_slug, product_slug)
        if not setup["decision"].allowed:
            return self._render(request, setup, None, status=403)
        form = EmbedForm(
            initial=self._initial(request, setup), ports=setup["ports"], metrics=setup["metrics"]
        )
        return self._render(request, setup, form)

    def post(self, request, domain_slug: str, product_slug: str):
        setup = self._setup(request, domain_slug, product_slug)
        if not setup["decision"].allowed:
            return self._render(request, setup, None, status=403)
        form = EmbedForm(request.POST, ports=setup["ports"], metrics=setup["metrics"])
        status = 400
        if form.is_valid():
            try:
                embed = embed_create(
                    by=request.user, product=setup["product"], **form.service_kwargs()
                )
            except ValidationError as exc:
                add_service_errors(form, _as_form_errors(exc))
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
                status = 403
            else:
                messages.success(
                    request,
                    f"Embed “{embed.title}” created. Register the application that will show "
                    "it (its public key) below, then paste the snippet into its page.",
                )
                return redirect(embed_url(embed, "apps"))
        return self._render(request, setup, form, status=status)


# --- an embed's page ---------------------------------------------------------------------


def _sample_params(embed: Embed) -> dict[str, str]:
    return {name: f"<{column} of the viewer>" for name, column in embed.locked_params.items()}


def _detail_context(
    request,
    embed: Embed,
    *,
    app_form: EmbedAppForm | None = None,
    key_form: tuple[int, EmbedKeyForm] | None = None,
    deny_form: EmbedDenyForm | None = None,
) -> dict:
    product = embed.product
    domain_manager = can_manage_domain(user=request.user, domain=product.domain)
    apps = embed_apps(embed=embed)
    for app in apps:
        # Who sees this page manages the embed (its own apps); the domain's apps are the
        # domain managers' (can_manage_app's rule, without a query per app).
        app.can_change = app.embed_id == embed.pk or domain_manager
        if key_form is not None and key_form[0] == app.pk:
            app.key_form, app.key_form_open = key_form[1], True
        else:
            app.key_form, app.key_form_open = EmbedKeyForm(prefix=f"key-{app.pk}"), False
    page_url = _public_url(reverse("sharing:embed", args=[embed.pk]))
    title = escape(embed.title)  # an attribute of the host's HTML
    loader_url = _public_url(static("js/embed-loader.js"))
    tenants = embed_views_by_tenant(embed=embed)
    for row in tenants:
        row["label"] = tenant_label(row["tenant"])
    since = recent_since()
    return {
        **_tab_context(product),
        "embed": embed,
        "apps": apps,
        "own_apps": [app for app in apps if app.embed_id == embed.pk],
        "domain_apps": [app for app in apps if app.domain_id is not None],
        "domain_manager": domain_manager,
        "app_form": app_form
        or EmbedAppForm(
            prefix="app",
            embed_title=embed.title,
            domain_name=product.domain.name if domain_manager else None,
        ),
        "app_form_open": app_form is not None,
        "deny_form": deny_form or EmbedDenyForm(prefix="deny"),
        "denied": embed_denied_tokens(embed=embed),
        "script_snippet": (
            f'<script src="{loader_url}" data-embed="{page_url}" data-token="TOKEN" '
            f'data-title="{title}" async></script>'
        ),
        "iframe_snippet": (
            f'<iframe src="{page_url}#token=TOKEN" title="{title}" width="100%" '
            'height="320" frameborder="0" loading="lazy" referrerpolicy="origin"></iframe>'
        ),
        "token_header": json.dumps({"alg": "EdDSA", "kid": "<your key id>"}),
        "token_claims": json.dumps(
            {
                "embed": str(embed.pk),
                "params": _sample_params(embed),
                "aud": settings.EMBED_TOKEN_AUDIENCE,
                "iat": "<now, in seconds>",
                "exp": f"<iat + at most {settings.EMBED_TOKEN_MAX_SECONDS}>",
                "jti": "<a new unique id per token>",
            },
            indent=2,
        ),
        "token_minutes": settings.EMBED_TOKEN_MAX_SECONDS // 60,
        "sample_seconds": min(TOKEN_SECONDS_SHOWN, settings.EMBED_TOKEN_MAX_SECONDS),
        "audience": settings.EMBED_TOKEN_AUDIENCE,
        "docs_available": EMBED_DOC.exists(),
        "tenants": tenants,
        "days": RECENT_DAYS,
        "views_total": sum(row["views"] for row in tenants),
        "chart": embed_views_chart(
            embed_views_by_day(embed=embed), since=since, until=timezone.now().date()
        ),
    }


def _detail(request, embed: Embed, *, status: int = 200, **forms):
    return render(
        request,
        "sharing/embeds/embed_detail.html",
        _detail_context(request, embed, **forms),
        status=status,
    )


class EmbedDetailView(LoginRequiredMixin, View):
    def get(self, request, embed_id):
        return _detail(request, _embed(request, embed_id))


class EmbedDisableView(LoginRequiredMixin, View):
    def post(self, request, embed_id):
        embed = embed_disable(embed=_embed(request, embed_id), by=request.user)
        messages.success(
            request,
            f"Disabled “{embed.title}”: host pages show nothing and its data calls are refused "
            "until it is enabled again.",
        )
        return redirect(embed_url(embed))


class EmbedEnableView(LoginRequiredMixin, View):
    def post(self, request, embed_id):
        embed = embed_enable(embed=_embed(request, embed_id), by=request.user)
        messages.success(request, f"Enabled “{embed.title}”: host pages show it again.")
        return redirect(embed_url(embed))


class EmbedTokenDenyView(LoginRequiredMixin, View):
    def post(self, request, embed_id):
        embed = _embed(request, embed_id)
        form = EmbedDenyForm(request.POST, prefix="deny")
        if form.is_valid():
            try:
                denied = embed_token_deny(
                    embed=embed, jti=form.cleaned_data["jti"], by=request.user
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Token {denied.jti} is refused from its next request on.",
                )
                return redirect(embed_url(embed, "deny"))
        return _detail(request, embed, status=400, deny_form=form)


class EmbedAppCreateView(LoginRequiredMixin, View):
    """Register a host application with its first public key: for this embed, or (the
    domain's managers) for every embed of the domain's products."""

    def post(self, request, embed_id):
        embed = _embed(request, embed_id)
        domain = embed.product.domain
        domain_manager = can_manage_domain(user=request.user, domain=domain)
        form = EmbedAppForm(
            request.POST,
            prefix="app",
            embed_title=embed.title,
            domain_name=domain.name if domain_manager else None,
        )
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            whole_domain = data.get("scope") == SCOPE_DOMAIN
            try:
                app = embed_app_create(
                    by=request.user,
                    name=data["name"],
                    embed=None if whole_domain else embed,
                    domain=domain if whole_domain else None,
                    kid=data["kid"],
                    algorithm=data["algorithm"],
                    public_key=data["public_key"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
                status = 403
            else:
                where = f"every embed of the {domain.name} domain" if whole_domain else "it"
                messages.success(
                    request,
                    f"Registered “{app.name}”: tokens signed with key {data['kid']} now show "
                    f"{where}.",
                )
                return redirect(embed_url(embed, "apps"))
        return _detail(request, embed, status=status, app_form=form)


def _managed_app(request, embed: Embed):
    app = embed_app_of(embed=embed, app_id=request.POST.get("app"))
    if app is None:
        raise Http404("No such application of this embed.")
    return app


class EmbedKeyAddView(LoginRequiredMixin, View):
    """Another public key of an application (rotation: add, switch signing, remove)."""

    def post(self, request, embed_id):
        embed = _embed(request, embed_id)
        app = _managed_app(request, embed)
        form = EmbedKeyForm(request.POST, prefix=f"key-{app.pk}")
        status = 400
        if form.is_valid():
            try:
                key = embed_key_add(app=app, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
                status = 403
            else:
                messages.success(request, f"Added key {key.kid} to “{app.name}”.")
                return redirect(embed_url(embed, f"app-{app.pk}"))
        return _detail(request, embed, status=status, key_form=(app.pk, form))


class EmbedKeyRemoveView(LoginRequiredMixin, View):
    def post(self, request, embed_id):
        embed = _embed(request, embed_id)
        apps = {app.pk: app for app in embed_apps(embed=embed)}
        key_id = request.POST.get("key", "")
        key = (
            EmbedKey.objects.select_related("app__embed__product__domain", "app__domain")
            .filter(pk=int(key_id) if key_id.isdigit() else 0, app_id__in=list(apps))
            .first()
        )
        if key is None:
            raise Http404("No such key of this embed's applications.")
        try:
            embed_key_remove(key=key, by=request.user)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Removed key {key.kid} of “{key.app.name}”: tokens signed with it are refused "
                "from their next request on.",
            )
        return redirect(embed_url(embed, f"app-{key.app_id}"))


class EmbedAppDeleteView(LoginRequiredMixin, View):
    def post(self, request, embed_id):
        embed = _embed(request, embed_id)
        app = _managed_app(request, embed)
        try:
            embed_app_delete(app=app, by=request.user)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, f"Removed “{app.name}” and its keys: its tokens are refused from now on."
            )
        return redirect(embed_url(embed, "apps"))


# --- the documentation -------------------------------------------------------------------


class EmbedDocsView(LoginRequiredMixin, View):
    """How embeds work and how a host signs tokens: docs/embeds.md, as safe HTML."""

    def get(self, request):
        try:
            text = EMBED_DOC.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise Http404("The embeds documentation is missing.") from None
        return render(request, "sharing/embeds/embed_docs.html", {"doc": render_markdown(text)})
