"""Sign-in rate limits, on the sign-in page and on `POST /api/v1/auth/token/` alike.

- **Per username and address** (django-axes): after LOGIN_FAILURE_LIMIT failed attempts
  for one username from one address, that pair is locked out for LOGIN_COOLOFF_MINUTES.
  Counted in the cache (Redis: shared by every web process) when REDIS_URL is set, else
  in the database. A success resets the pair's count.
- **Per address, across usernames** (password spraying: one password tried on many
  accounts): after LOGIN_ADDRESS_FAILURE_LIMIT failed attempts from one address within
  LOGIN_ADDRESS_WINDOW_MINUTES, whatever the usernames, the address is locked out for
  LOGIN_COOLOFF_MINUTES. Counted in the cache (Redis when REDIS_URL is set, else this
  process's memory); a success does not reset it (a sprayer who finds one password must
  not start again). The limit is well above a person's: someone who mistypes meets the
  per-username lockout, and its message, long before.

A locked-out attempt answers 429 with Retry-After: a page saying when to try again, or
JSON for the API. Each attempt during a lockout starts the cool-off again (axes'
default), so the wait announced is the whole cool-off.
"""

from __future__ import annotations

from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

ADDRESS_FAILURES_KEY = "portal:login:failures:address:{}"
ADDRESS_LOCK_KEY = "portal:login:locked:address:{}"
ADDRESS_LOCKED_FLAG = "portal_address_locked"  # on the request: the address is locked


class LoginAttemptsBackend(AxesStandaloneBackend):
    """axes' lockout check, for sign-ins that come with a request. `authenticate()`
    without a request (Django's test client `login()`, scripts) is no HTTP sign-in and
    has no client to count: axes would refuse it outright, this lets the next backend
    answer."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        address = client_address(request)
        if address and address_locked(address):
            # Each attempt during the lockout starts the cool-off again, as axes does.
            _address_lock(address)
            _flag_locked(request)
            raise AxesBackendPermissionDenied("This address is locked out of signing in.")
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_address(request) -> str | None:
    """The address axes counts (REMOTE_ADDR, set from a trusted proxy's X-Forwarded-For
    by TrustedProxyMiddleware); a DRF Request reads its HttpRequest's."""
    return request.META.get("REMOTE_ADDR") or None


def address_locked(address: str) -> bool:
    return bool(cache.get(ADDRESS_LOCK_KEY.format(address)))


def _address_lock(address: str) -> None:
    cache.set(ADDRESS_LOCK_KEY.format(address), 1, timeout=int(cooloff().total_seconds()))


def address_lockout_clear(address: str) -> None:
    """Lift an address's lockout and forget its failures (an admin, from a shell)."""
    cache.delete_many([ADDRESS_LOCK_KEY.format(address), ADDRESS_FAILURES_KEY.format(address)])


def address_failure_count(address: str) -> int:
    """One more failed sign-in from `address` within the window; returns the count."""
    key = ADDRESS_FAILURES_KEY.format(address)
    window = int(settings.LOGIN_ADDRESS_WINDOW.total_seconds())
    if cache.add(key, 1, timeout=window):  # the window starts at the first failure
        return 1
    try:
        return cache.incr(key)  # keeps the key's expiry
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 1, timeout=window)
        return 1


def _flag_locked(request) -> None:
    """Mark the request as locked out by address, for axes' middleware (the page), the
    token view and `lockout_response`: on a DRF Request and its HttpRequest alike."""
    inner = getattr(request, "_request", None)
    for target in (request, inner) if inner is not None else (request,):
        target.axes_locked_out = True
        setattr(target, ADDRESS_LOCKED_FLAG, True)


@receiver(user_login_failed, dispatch_uid="portal.login_limits.address_failures")
def _count_address_failure(sender, credentials, request=None, **kwargs) -> None:
    """Every failed sign-in with a request counts for its address (connected when Django
    loads this module as an authentication backend, before the first sign-in fails)."""
    if request is None or getattr(request, ADDRESS_LOCKED_FLAG, False):
        return
    address = client_address(request)
    if not address:
        return
    if address_failure_count(address) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
        _address_lock(address)
        _flag_locked(request)


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
    if getattr(request, ADDRESS_LOCKED_FLAG, False):
        message = (
            f"Too many failed sign-in attempts from your address. Try again in {_in_words(wait)}."
        )
    else:
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
