"""Sign-in rate limits, by django-axes: after LOGIN_FAILURE_LIMIT failed attempts for one
username from one address, that pair is locked out for LOGIN_COOLOFF_MINUTES, on the
sign-in page and on `POST /api/v1/auth/token/` alike. Attempts are counted in the cache
(Redis: shared by every web process) when REDIS_URL is set, else in the database.

A locked-out attempt answers 429 with Retry-After: a page saying when to try again, or
JSON for the API. Each attempt during a lockout starts the cool-off again (axes'
default), so the wait announced is the whole cool-off.
"""

from __future__ import annotations

from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone


class LoginAttemptsBackend(AxesStandaloneBackend):
    """axes' lockout check, for sign-ins that come with a request. `authenticate()`
    without a request (Django's test client `login()`, scripts) is no HTTP sign-in and
    has no client to count: axes would refuse it outright, this lets the next backend
    answer."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def cooloff() -> timedelta:
    return settings.AXES_COOLOFF_TIME


def _in_words(delta: timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with when to retry."""
    wait = cooloff()
    seconds = int(wait.total_seconds())
    retry_at = timezone.now() + wait
    message = (
        f"Too many failed sign-in attempts for this username from your address. "
        f"Try again in {_in_words(wait)}."
    )
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message, "retry_after": seconds}, status=429)
    else:
        response = render(
            request,
            "portal/login_locked.html",
            {"message": message, "wait": _in_words(wait), "retry_at": retry_at},
            status=429,
        )
    response["Retry-After"] = str(seconds)
    return response


def request_locked_out(request) -> bool:
    """Whether axes refused this request's sign-in (DRF's Request carries the flag
    itself, not its HttpRequest: the API view asks here)."""
    return bool(getattr(request, "axes_locked_out", False))
