"""A fixed-window rate limit per key (a client address), counted in Redis.

The window starts at a key's first hit and lasts `window` seconds: `SET key 0 EX window
NX` then `INCR key`, in one MULTI/EXEC transaction, so concurrent requests on any number
of web processes each get their own count and the limit holds. Without Redis (`make run`
with no REDIS_URL) the count lives in Django's cache (local memory: one process).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
         "hour": 3600, "d": 86400, "day": 86400}  # fmt: skip
KEY_PREFIX = "portal:ratelimit:"


@dataclass(frozen=True)
class RateLimit:
    limit: int
    window: int  # seconds


@dataclass(frozen=True)
class RateLimitHit:
    allowed: bool
    count: int
    retry_after: int  # seconds until the window ends


def parse_rate(text: str) -> RateLimit:
    """`"60/min"`, `"1000/hour"`, `"5/10s"` as a RateLimit."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*", text or "")
    if not match or match[3] not in UNITS or int(match[1]) < 1:
        raise ImproperlyConfigured(
            f"A rate is written like 60/min, 1000/hour or 5/10s, not {text!r}."
        )
    return RateLimit(limit=int(match[1]), window=int(match[2] or 1) * UNITS[match[3]])


@lru_cache(maxsize=4)
def _redis(url: str):
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def rate_limit_hit(*, scope: str, key: str, rate: RateLimit) -> RateLimitHit:
    """Count one request of `key` in `scope`; allowed while the window's count is within
    the limit."""
    name = f"{KEY_PREFIX}{scope}:{key}"
    url = getattr(settings, "REDIS_URL", "")
    if url:
        client = _redis(url)
        pipe = client.pipeline(transaction=True)
        pipe.set(name, 0, ex=rate.window, nx=True)
        pipe.incr(name)
        pipe.ttl(name)
        _, count, ttl = pipe.execute()
        if ttl < 0:  # expired between SET and INCR: INCR made a key without expiry
            client.expire(name, rate.window)
            ttl = rate.window
        return RateLimitHit(allowed=count <= rate.limit, count=count, retry_after=max(ttl, 1))
    # Local memory: windows aligned on the clock, the window's start in the key.
    now = int(time.time())
    start = now - now % rate.window
    name = f"{name}:{start}"
    cache.add(name, 0, timeout=rate.window + 1)
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=rate.window + 1)
        count = 1
    return RateLimitHit(
        allowed=count <= rate.limit, count=count, retry_after=max(start + rate.window - now, 1)
    )
