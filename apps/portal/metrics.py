"""The fleet on /metrics: nodes by status, nodes heard from (the fleet monitor's view) and open
tickets by severity, read from the database when Prometheus scrapes (three small GROUP BYs).
Every web process answers the same figures: dashboards and alert rules take `max`."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

OPEN_TICKET_STATUSES = ("open", "acknowledged", "in_progress")


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily(
            "imewe_nodes", "Fabrication nodes by lifecycle status.", labels=["status"]
        ),
        GaugeMetricFamily(
            "imewe_nodes_online",
            "Nodes in service the fleet monitor heard from recently, and those it did not.",
            labels=["online"],
        ),
        GaugeMetricFamily(
            "imewe_tickets_open", "Open maintenance tickets by severity.", labels=["severity"]
        ),
    )


class FleetCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The names, without a query: registering asks for them at start-up."""
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError
        from django.db.models import Count

        from apps.maintenance.models import NodeHealth, Ticket
        from apps.vendors.models import FabricationNode

        nodes, online, tickets = _families()
        try:
            by_status = FabricationNode.objects.values_list("status").annotate(n=Count("id"))
            for status, count in by_status:
                nodes.add_metric([status], count)
            by_online = NodeHealth.objects.values_list("online").annotate(n=Count("id"))
            for is_online, count in by_online:
                online.add_metric(["true" if is_online else "false"], count)
            open_tickets = Ticket.objects.filter(status__in=OPEN_TICKET_STATUSES)
            for severity, count in open_tickets.values_list("severity").annotate(n=Count("id")):
                tickets.add_metric([severity], count)
        except DatabaseError as exc:  # the database being down is its own alert; not a 500 here
            logger.warning("fleet metrics unavailable: %s", exc)
            return
        yield nodes
        yield online
        yield tickets


_registered: list[FleetCollector] = []


def register() -> None:
    from prometheus_client import REGISTRY

    if not _registered:  # once per process
        _registered.append(FleetCollector())
        REGISTRY.register(_registered[0])
