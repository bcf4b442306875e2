"""Which callers count as inside the deployment (probes, the metrics scraper)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def internal_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(net, strict=False) for net in settings.INTERNAL_NETWORKS]


def is_internal(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in internal_networks())
