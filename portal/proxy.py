"""The client's address behind a load balancer.

Behind a proxy, REMOTE_ADDR is the proxy. When TRUSTED_PROXIES (addresses or networks,
comma-separated) names it, the client is the right-most address of X-Forwarded-For that
is not itself a trusted proxy (what nginx's `real_ip_recursive on` does); REMOTE_ADDR is
rewritten to it, so the login limits, the audit and the metrics allow-list see the client.
Without TRUSTED_PROXIES, X-Forwarded-For is ignored: any client can send it.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value)


def address_in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


@lru_cache(maxsize=8)
def _trusted(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def client_address_from(remote_addr: str, forwarded_for: str, trusted: tuple[Network, ...]) -> str:
    """The client address: REMOTE_ADDR unless it is a trusted proxy, then the right-most
    untrusted hop of X-Forwarded-For."""
    if not trusted or not address_in(remote_addr, trusted):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote_addr  # a malformed chain: keep the proxy's address
        if not address_in(hop, trusted):
            return hop
    return hops[0] if hops else remote_addr


class TrustedProxyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        trusted = _trusted(tuple(settings.TRUSTED_PROXIES))
        if trusted:
            remote = request.META.get("REMOTE_ADDR", "")
            client = client_address_from(
                remote, request.META.get("HTTP_X_FORWARDED_FOR", ""), trusted
            )
            if client != remote:
                request.META["PROXY_ADDR"] = remote
                request.META["REMOTE_ADDR"] = client
        return self.get_response(request)
