"""Feedback pages of a product (its Feedback tab, a thread, the new-thread form), its
announcements, following it, and "My feedback".

Like every product page, the product comes through products.catalog.scope (one the user
may not see is a 404); the services decide who may change what (a refusal is a 403) and
what is valid (errors beside their field, 400).
Replies post with HTMX and swap the conversation in place; without JavaScript they post
and redirect like any form.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from portal.core.forms import add_service_errors
from products.catalog.permissions import can_edit_product
from products.catalog.scope import product_header, product_page
from products.choices import FeedbackKind, FeedbackStatus
from products.feedback.forms import (
    AnnouncementForm,
    FeedbackFilterForm,
    FeedbackIncidentForm,
    FeedbackReplyForm,
    FeedbackStatusForm,
    FeedbackThreadForm,
)
from products.feedback.services.announcements import (
    announcement_create,
    announcement_end,
    announcement_get,
    announcements_for_product,
    replacement_choices,
)
from products.feedback.services.feedback import (
    feedback_comment_create,
    feedback_incident_choices,
    feedback_status_change,
    feedback_summary,
    feedback_thread_create,
    feedback_thread_get,
    feedback_thread_link_incident,
    feedback_threads_for_product,
    feedback_threads_of_user,
    feedback_timeline,
)
from products.feedback.services.follows import product_follow, product_unfollow
from products.models import Announcement, DataProduct, FeedbackThread

PAGE_SIZE = 20


def _slugs(product: DataProduct) -> dict:
    return {"domain_slug": product.domain.slug, "product_slug": product.slug}


def feedback_list_url(product: DataProduct) -> str:
    return reverse("products:feedback-list", kwargs=_slugs(product))


def thread_url(thread: FeedbackThread) -> str:
    return reverse(
        "products:feedback-detail", kwargs={**_slugs(thread.product), "thread_id": thread.pk}
    )


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _filter_query(values: dict, **changes) -> str:
    params = {**values, **changes}
    return "?" + urlencode({k: v for k, v in params.items() if v})


class FeedbackListView(LoginRequiredMixin, View):
    """The product's Feedback tab: threads with kind and status filters, the response
    objective and how fast the team answers."""

    template_name = "products/feedback_list.html"

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        filters = FeedbackFilterForm(request.GET).values()
        page = _page(request, feedback_threads_for_product(product=product, **filters))
        summary = feedback_summary(product=product)
        overdue = set(summary.overdue_ids)
        for thread in page.object_list:
            thread.product = product
            thread.is_overdue = thread.pk in overdue
        context = {
            **product_header(
                product=product,
                active_tab="feedback",
                crumb="Feedback",
                can_edit=can_edit_product(user=request.user, product=product),
            ),
            "page": page,
            "threads": page.object_list,
            "summary": summary,
            "filters": filters,
            "kind_choices": [
                {"value": value, "label": label, "url": _filter_query(filters, kind=value)}
                for value, label in [("", "Any kind"), *FeedbackKind.choices]
            ],
            "status_choices": [
                {"value": value, "label": label, "url": _filter_query(filters, status=value)}
                for value, label in [
                    ("", "Any status"),
                    ("unresolved", "Waiting"),
                    *FeedbackStatus.choices,
                ]
            ],
            "page_query": _filter_query(filters),
        }
        return render(request, self.template_name, context)


class FeedbackCreateView(LoginRequiredMixin, View):
    template_name = "products/feedback_form.html"

    def _form(self, request, product, data=None):
        editor = can_edit_product(user=request.user, product=product)
        incidents = feedback_incident_choices(product=product) if editor else None
        initial = {"kind": request.GET.get("kind") or FeedbackKind.QUESTION}
        return FeedbackThreadForm(data, incidents=incidents, initial=initial)

    def _render(self, request, product, form, status=200):
        context = {
            **product_header(product=product, active_tab="feedback", crumb="Feedback"),
            "form": form,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        return self._render(request, product, self._form(request, product))

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        form = self._form(request, product, request.POST)
        if form.is_valid():
            try:
                thread = feedback_thread_create(
                    product=product,
                    by=request.user,
                    kind=form.cleaned_data["kind"],
                    title=form.cleaned_data["title"],
                    body=form.cleaned_data["body"],
                    incident=form.cleaned_data.get("incident"),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                thread.product = product
                messages.success(
                    request,
                    f"Thanks: your {thread.get_kind_display().lower()} is posted. The "
                    f"{product.name} team is told now, and you are when they answer.",
                )
                return redirect(thread_url(thread))
        return self._render(request, product, form, status=400)


def _thread(request, domain_slug, product_slug, thread_id) -> FeedbackThread:
    product = product_page(request, domain_slug, product_slug)
    try:
        return feedback_thread_get(product=product, thread_id=thread_id)
    except FeedbackThread.DoesNotExist:
        raise Http404("No such feedback thread.") from None


def conversation_context(request, thread: FeedbackThread, *, reply_form=None, error=""):
    """What the conversation block shows (the part replies swap in place)."""
    user = request.user
    editor = can_edit_product(user=user, product=thread.product)
    author = thread.author_id == user.pk
    return {
        "product": thread.product,
        "thread": thread,
        "timeline": feedback_timeline(thread=thread),
        "reply_form": reply_form or FeedbackReplyForm(),
        "can_reply": not thread.is_closed or author or editor,
        "reply_reopens": thread.is_closed and (author or editor),
        "reply_error": error,
    }


class FeedbackDetailView(LoginRequiredMixin, View):
    template_name = "products/feedback_detail.html"

    def get(self, request, domain_slug: str, product_slug: str, thread_id: int):
        thread = _thread(request, domain_slug, product_slug, thread_id)
        return self._render(request, thread)

    @staticmethod
    def _render(request, thread, *, status=200, status_form=None, incident_form=None):
        user = request.user
        product = thread.product
        editor = can_edit_product(user=user, product=product)
        author = thread.author_id == user.pk
        context = conversation_context(request, thread)
        context.update(
            is_author=author,
            status_form=status_form
            or FeedbackStatusForm(thread=thread, editor=editor, author=author),
            incident_form=(
                incident_form
                or FeedbackIncidentForm(
                    incidents=feedback_incident_choices(product=product),
                    initial={"incident": thread.incident_id},
                )
            )
            if editor and thread.kind == FeedbackKind.ISSUE
            else None,
            **product_header(
                product=product, active_tab="feedback", crumb="Feedback", can_edit=editor
            ),
        )
        return render(request, FeedbackDetailView.template_name, context, status=status)


class FeedbackReplyView(LoginRequiredMixin, View):
    """POST a reply. HTMX: answers the conversation block (with the error and a 400 or
    403 when refused); otherwise redirects back to the thread."""

    def post(self, request, domain_slug: str, product_slug: str, thread_id: int):
        thread = _thread(request, domain_slug, product_slug, thread_id)
        htmx = bool(request.headers.get("HX-Request"))
        form = FeedbackReplyForm(request.POST)
        form.is_valid()
        was_closed = thread.is_closed
        try:
            comment = feedback_comment_create(
                thread=thread, by=request.user, body=form.cleaned_data.get("body", "")
            )
        except PermissionDenied as exc:
            if not htmx:
                raise
            context = conversation_context(request, thread, error=str(exc))
            return render(request, "products/_feedback_conversation.html", context, status=403)
        except ValidationError as exc:
            add_service_errors(form, exc)
            if htmx:
                context = conversation_context(request, thread, reply_form=form)
                return render(request, "products/_feedback_conversation.html", context, status=400)
            messages.error(request, "Your reply was not posted: " + " ".join(exc.messages))
            return redirect(thread_url(thread) + "#reply")
        thread = comment.thread
        if htmx:
            response = render(
                request,
                "products/_feedback_conversation.html",
                conversation_context(request, thread),
            )
            if was_closed:  # the status in the page's header changed: show it
                response["HX-Refresh"] = "true"
            return response
        if was_closed:
            messages.success(request, "Reply posted; the thread is open again.")
        return redirect(thread_url(thread) + f"#comment-{comment.pk}")


class FeedbackStatusView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, thread_id: int):
        thread = _thread(request, domain_slug, product_slug, thread_id)
        user = request.user
        editor = can_edit_product(user=user, product=thread.product)
        author = thread.author_id == user.pk
        if not (editor or author):
            raise PermissionDenied(
                "Only the product's owners and stewards, and admins, change a thread's status."
            )
        form = FeedbackStatusForm(request.POST, thread=thread, editor=editor, author=author)
        status = request.POST.get("status", "")
        try:
            # The service decides which moves are allowed and says why one is not.
            updated = feedback_status_change(
                thread=thread, by=user, status=status, note=request.POST.get("note", "")
            )
        except ValidationError as exc:
            form.is_valid()
            form.errors.pop("status", None)
            add_service_errors(form, exc)
            return FeedbackDetailView._render(request, thread, status=400, status_form=form)
        messages.success(
            request, f"The thread is {FeedbackStatus(updated.status).label.lower()} now."
        )
        return redirect(thread_url(thread))


class FeedbackIncidentView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, thread_id: int):
        thread = _thread(request, domain_slug, product_slug, thread_id)
        if not can_edit_product(user=request.user, product=thread.product):
            raise PermissionDenied(
                "Only the product's owners and stewards, and admins, link threads to incidents."
            )
        form = FeedbackIncidentForm(
            request.POST, incidents=feedback_incident_choices(product=thread.product)
        )
        if form.is_valid():
            try:
                feedback_thread_link_incident(
                    thread=thread, by=request.user, incident=form.cleaned_data["incident"]
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                incident = form.cleaned_data["incident"]
                messages.success(
                    request,
                    f"Linked to the incident “{incident.title}”."
                    if incident
                    else "The incident link is removed.",
                )
                return redirect(thread_url(thread))
        return FeedbackDetailView._render(request, thread, status=400, incident_form=form)


class MyFeedbackView(LoginRequiredMixin, View):
    """Threads the user opened or replied to, on every product they can see."""

    template_name = "products/my_feedback.html"

    def get(self, request):
        filters = FeedbackFilterForm(request.GET).values()
        page = _page(request, feedback_threads_of_user(user=request.user, status=filters["status"]))
        context = {
            "page": page,
            "threads": page.object_list,
            "filters": filters,
            "status_choices": [
                {"value": value, "label": label, "url": _filter_query({}, status=value)}
                for value, label in [("", "All"), ("unresolved", "Waiting"), ("closed", "Closed")]
            ],
            "page_query": _filter_query({"status": filters["status"]}),
        }
        return render(request, self.template_name, context)


# --- announcements -----------------------------------------------------------------------


class AnnouncementListView(LoginRequiredMixin, View):
    template_name = "products/announcement_list.html"

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        announcements = list(announcements_for_product(product=product)[:100])

        now = timezone.now()
        for item in announcements:
            item.product = product
            item.state = (
                "active"
                if item.is_active(now)
                else ("scheduled" if item.starts_at > now else "ended")
            )
        context = {
            **product_header(
                product=product,
                active_tab="feedback",
                crumb="Announcements",
                can_edit=can_edit_product(user=request.user, product=product),
            ),
            "announcements": announcements,
        }
        return render(request, self.template_name, context)


class AnnouncementCreateView(LoginRequiredMixin, View):
    template_name = "products/announcement_form.html"

    def _form(self, request, product, data=None):
        initial = {"kind": request.GET.get("kind") or "info"}
        return AnnouncementForm(
            data,
            replacements=replacement_choices(product=product, user=request.user),
            initial=initial,
        )

    def _render(self, request, product, form, status=200):
        context = {"product": product, "form": form, "crumb": "Announcements"}
        return render(request, self.template_name, context, status=status)

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        return self._render(request, product, self._form(request, product))

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        form = self._form(request, product, request.POST)
        if form.is_valid():
            try:
                announcement = announcement_create(
                    product=product, by=request.user, **form.service_fields()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Announcement “{announcement.title}” posted. Everyone with access to "
                    f"{product.name} and its followers are told now.",
                )
                return redirect(product.get_absolute_url())
        return self._render(request, product, form, status=400)


class AnnouncementEndView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, announcement_id: int):
        product = product_page(request, domain_slug, product_slug, edit=True)
        try:
            announcement = announcement_get(product=product, announcement_id=announcement_id)
        except Announcement.DoesNotExist:
            raise Http404("No such announcement.") from None
        try:
            announcement_end(announcement=announcement, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"“{announcement.title}” is no longer shown.")
        return redirect(reverse("products:announcement-list", kwargs=_slugs(product)))


# --- following ---------------------------------------------------------------------------


class ProductFollowView(LoginRequiredMixin, View):
    """POST: follow (or, with follow=False, unfollow) the product; back where the form
    was (its `next`), or the product page."""

    follow = True

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        if self.follow:
            product_follow(product=product, by=request.user)
            messages.success(
                request,
                f"You follow {product.name}: its announcements and incidents reach you.",
            )
        else:
            product_unfollow(product=product, by=request.user)
            messages.info(request, f"You no longer follow {product.name}.")
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = product.get_absolute_url()
        return redirect(target)
