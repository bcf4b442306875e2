"""Outgoing URLs are user input (a webhook, an Apprise URL that posts to a host, a browser's
push endpoint): only http(s), and only public addresses unless NOTIFY_ALLOWED_NETWORKS lets a
private one through, so a channel cannot make the platform call its own internals. Checked
when a channel is saved and again before every send (the name may resolve elsewhere later)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowed(address: Address) -> bool:
    for net in settings.NOTIFY_ALLOWED_NETWORKS:
        if address in ipaddress.ip_network(net, strict=False):
            return True
    return address.is_global and not address.is_multicast


def url_check(url: str, *, field: str = "target") -> None:
    """Raise ValidationError({field: ...}) unless `url` is http(s) to an allowed address."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError({field: ["Not a valid URL."]}) from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError({field: ["Only http:// and https:// URLs are accepted."]})
    if not parts.hostname:
        raise ValidationError({field: ["The URL names no host."]})
    host_check(parts.hostname, port or (443 if parts.scheme == "https" else 80), field=field)


def host_check(host: str, port: int, *, field: str) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ValidationError({field: [f"The host {host} cannot be resolved."]}) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not _allowed(address):
            raise ValidationError(
                {field: [f"{host} resolves to {address}, a private or reserved address."]}
            )
