"""The API tokens page (`/my/tokens/`): create a named token with an expiry (shown once),
list one's tokens, revoke one. The same services as `POST /api/v1/auth/token/`
(portal.api.tokens); only the signed-in person's own tokens are ever listed or revoked."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from portal.api.tokens import TokenRefused, api_token_create, api_token_revoke, api_tokens_of
from portal.site.token_forms import ApiTokenForm


def _back_url(request) -> str:
    """Where the person came from (`?next=`, kept through the form): a path of this
    portal only, never another site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def _page(request, form: ApiTokenForm, *, created=None, secret: str = "", status: int = 200):
    context = {
        "back_url": _back_url(request),
        "form": form,
        "tokens": list(api_tokens_of(user=request.user)),
        "created": created,
        "secret": secret,
        "portal_url": request.build_absolute_uri("/").rstrip("/"),
    }
    response = render(request, "portal/token_list.html", context, status=status)
    if secret:
        response["Cache-Control"] = "no-store"  # the token is shown once, never from a cache
    return response


class ApiTokenListView(LoginRequiredMixin, View):
    """GET: the person's tokens and the form for a new one (its name may come from
    `?name=`, as the Data tab's "Create a token" link sets it, with `?next=` for the way
    back). POST: create one and show
    it, this once."""

    def get(self, request):
        initial = {"name": request.GET.get("name", "")[:100]}
        return _page(request, ApiTokenForm(initial=initial))

    def post(self, request):
        form = ApiTokenForm(request.POST)
        if not form.is_valid():
            return _page(request, form, status=400)
        try:
            record, secret = api_token_create(
                user=request.user, name=form.cleaned_data["name"], lifetime=form.lifetime()
            )
        except TokenRefused as exc:
            form.add_error(None, str(exc))
            return _page(request, form, status=400)
        return _page(request, ApiTokenForm(), created=record, secret=secret)


class ApiTokenRevokeView(LoginRequiredMixin, View):
    """POST: revoke one of the person's own tokens; it stops working at once."""

    def post(self, request, token_id: int):
        record = api_token_revoke(user=request.user, token_id=token_id)
        if record is None:
            raise Http404("You hold no such token.")
        messages.success(
            request, f"Token “{record.name}” revoked: anything still using it is refused now."
        )
        return redirect("portal:my-tokens")
