"""Where the portal may POST to (webhooks, HTTP sync destinations): an https URL whose
host resolves only to public addresses (unless settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS,
which allows http and loopback/private addresses: tests and closed networks).

The address is checked when the subscription is written and again before every request,
and the request connects to the address that was checked (a host whose DNS answer
changes between the check and the connection, DNS rebinding, cannot redirect it inside)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

TARGET_NOT_HTTPS = "The target must be an https:// URL."
TARGET_INSIDE = (
    "The target's address ({address}) is on a loopback, private, link-local, multicast or "
    "reserved network: the portal sends only to public addresses."
)


class TargetRefused(ValueError):
    """The message says what is wrong with the URL, for the person who wrote it."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (the Host header and TLS server name)
    port: int
    path: str  # path and query
    address: str  # the checked IP address to connect to


def _address_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        not address.is_global
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def target_parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of `url`, or TargetRefused."""
    allow_private = settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("The target is not a valid URL.") from None
    schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in schemes:
        raise TargetRefused(TARGET_NOT_HTTPS)
    if not parts.hostname:
        raise TargetRefused("The target URL has no host.")
    if parts.username or parts.password:
        raise TargetRefused(
            "The target URL must not carry a user name or password: the portal "
            "authenticates itself another way (a signature, or a header from the environment)."
        )
    if parts.fragment:
        raise TargetRefused("The target URL must not have a #fragment.")
    port = port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def target_resolve(url: str) -> Target:
    """Check `url` and resolve its host: every address it resolves to must be allowed.
    Raises TargetRefused with a message a person can act on."""
    scheme, host, port, path = target_parse(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise TargetRefused(f"The target's host {host!r} does not resolve.") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise TargetRefused(f"The target's host {host!r} does not resolve.")
    if not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            if _address_refused(ipaddress.ip_address(address.split("%")[0])):
                raise TargetRefused(TARGET_INSIDE.format(address=address))
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])
