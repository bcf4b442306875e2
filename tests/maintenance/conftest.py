from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_config_save, node_transition
from tests.vendors.conftest import approved_node, fleet  # noqa: F401  (fixture)


def in_service(fleet: dict[str, Any], **overrides: Any) -> FabricationNode:  # noqa: F811
    node = approved_node(fleet, **overrides)
    node_config_save(node=node, by=fleet["vendor"], config={"ok": True})
    return node_transition(
        node=node, to=FabricationNode.Status.IDLE, by=fleet["vendor"], reason="in service"
    )


@pytest.fixture
def mill(fleet: dict[str, Any]) -> FabricationNode:  # noqa: F811
    return in_service(fleet)


@pytest.fixture
def send(
    django_capture_on_commit_callbacks: Any,
) -> Callable[..., Any]:
    """Ingest readings through the real path (its on-commit signal runs the rules), one point
    per call or a list; times are seconds after a fixed start."""
    start = timezone.now() - timedelta(minutes=30)

    def ingest(node: FabricationNode, t: float, **values: float) -> Any:
        at: datetime = start + timedelta(seconds=t)
        with django_capture_on_commit_callbacks(execute=True):
            report = telemetry_ingest(
                points=[{"node": node.pk, "time": at.isoformat(), **values}], node_id=node.pk
            )
        assert report.accepted == 1, report.as_dict()
        return at

    return ingest


def rival_node(fleet: dict[str, Any]) -> FabricationNode:  # noqa: F811
    """A node of the other vendor, at no operator site, in service."""
    from apps.vendors.services import node_decide, node_register
    from tests.vendors.conftest import NODE_FIELDS

    rival = fleet["rival"]
    node = node_register(
        by=rival, vendor=rival.organizations.get(), **{**NODE_FIELDS, "name": "Rival-Mill"}
    )
    node = node_decide(node=node, by=fleet["admin"], approve=True)
    node_config_save(node=node, by=rival, config={"ok": True})
    return node_transition(node=node, to=FabricationNode.Status.IDLE, by=rival, reason="up")


@pytest.fixture
def default_rules(db: Any) -> None:
    """The defaults migrations 0002 and 0009 install. A transactional test (live server, websockets)
    empties every table when it ends, migration data included, so tests that run after one and
    need the rules install them again."""
    from apps.maintenance.models import ThresholdRule
    from apps.maintenance.rules import DEFAULT_RULES

    for rule in DEFAULT_RULES:
        ThresholdRule.objects.get_or_create(
            signal=rule.signal,
            node_kind=rule.node_kind,
            node=None,
            mode=rule.mode,
            defaults={
                "warning": rule.warning,
                "critical": rule.critical,
                "min_duration_s": rule.min_duration_s,
            },
        )
