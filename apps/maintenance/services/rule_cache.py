"""The node facts and threshold rules that ingest evaluates, kept in each process for
MAINTENANCE_RULES_CACHE_SECONDS: every ingest request evaluated a node's rules, and reading the
node and its rules afresh were two of its round trips to the database (bench.ingest, the
100-point latency). A rule or node saved in this process clears the cache at once; one saved
elsewhere (the portal, admin, another server) applies here within that many seconds."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.maintenance.models import ThresholdRule
from apps.vendors.models import FabricationNode

MAX_NODES = 20_000
NODE_FIELDS = ("id", "kind", "name", "rated_power_kw", "vendor_id", "site_id")


@dataclass(frozen=True)
class NodeRules:
    node: FabricationNode  # only NODE_FIELDS loaded; shared by requests: read, never change
    rules: dict[tuple[str, str], ThresholdRule]  # (signal, mode) -> the rule that applies
    expires: float


_entries: dict[int, NodeRules] = {}
_lock = threading.Lock()


def node_rules_get(*, node_id: int) -> NodeRules | None:
    """The node's facts and applicable rules, from this process's cache while fresh; None when
    there is no such node."""
    from apps.maintenance.services.alerts import rules_applicable

    now = time.monotonic()
    entry = _entries.get(node_id)
    if entry is not None and entry.expires > now:
        return entry
    node = FabricationNode.objects.only(*NODE_FIELDS).filter(pk=node_id).first()
    if node is None:
        _entries.pop(node_id, None)
        return None
    ttl = float(settings.MAINTENANCE_RULES_CACHE_SECONDS)
    entry = NodeRules(node=node, rules=rules_applicable(node=node), expires=now + ttl)
    if ttl > 0:
        with _lock:
            if len(_entries) >= MAX_NODES:
                _entries.clear()
            _entries[node_id] = entry
    return entry


def node_rules_forget(*args: Any, **kwargs: Any) -> None:
    """Empties the cache (connected to saves and deletes of rules and nodes)."""
    with _lock:
        _entries.clear()
