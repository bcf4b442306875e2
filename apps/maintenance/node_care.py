"""The maintenance part of a twin's machine panel: the node's health now and its open alerts in
words, for those who may see its maintenance. Twins finds `node_care` through this app's
AppConfig (`twin_node_care`, see apps/twins/providers.py): the two apps are siblings and import
nothing of each other, so this answers with its own types of the shape twins asks for."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from apps.core.labels import alert_sentence
from apps.maintenance.models import Alert, NodeHealth
from apps.maintenance.selectors import maintenance_can_view
from apps.users.models import User
from apps.vendors.models import FabricationNode


@dataclass(frozen=True)
class OpenAlert:
    severity: str
    severity_label: str
    text: str


@dataclass(frozen=True)
class NodeCare:
    health: NodeHealth | None
    alerts: tuple[OpenAlert, ...]
    url: str


def node_care(*, user: User, node: FabricationNode) -> NodeCare | None:
    if not maintenance_can_view(user=user, node=node):
        return None
    alerts = (
        Alert.objects.select_related("rule")
        .filter(node=node, resolved_at=None)
        .order_by("first_seen")
    )
    return NodeCare(
        health=NodeHealth.objects.filter(node=node).first(),
        alerts=tuple(
            OpenAlert(
                severity=a.severity,
                severity_label=a.get_severity_display(),
                text=alert_sentence(
                    signal=a.signal,
                    value=a.value,
                    threshold=a.threshold,
                    mode=a.mode,
                    severity=a.severity,
                ),
            )
            for a in alerts
        ),
        url=reverse("maintenance:node", args=[node.pk]),
    )
