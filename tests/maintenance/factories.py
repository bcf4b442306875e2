"""Rows the maintenance agent writes (predictions, node health, alerts, tickets), written
directly for tests that need them as they would be found. What the agent itself does
(alerts from readings, deduplicated tickets from `ticket_raise`) is tested through it."""

from __future__ import annotations

import factory
from django.utils import timezone

from apps.maintenance.models import Alert, NodeHealth, Prediction, Severity, Ticket
from tests.vendors.factories import FabricationNodeFactory


class PredictionFactory(factory.django.DjangoModelFactory[Prediction]):
    """One scoring of a node, now unless `at` is given, with no model output unless given."""

    class Meta:
        model = Prediction

    node = factory.SubFactory(FabricationNodeFactory)
    at = factory.LazyFunction(timezone.now)


class NodeHealthFactory(factory.django.DjangoModelFactory[NodeHealth]):
    class Meta:
        model = NodeHealth

    node = factory.SubFactory(FabricationNodeFactory)


class AlertFactory(factory.django.DjangoModelFactory[Alert]):
    """An open alert seen once, now: `value` above `threshold`, its peak."""

    class Meta:
        model = Alert

    node = factory.SubFactory(FabricationNodeFactory)
    signal = "temperature_c"
    severity = Severity.WARNING
    value = 80.0
    peak = factory.SelfAttribute("value")
    threshold = 75.0
    rule_text = factory.LazyAttribute(lambda o: f"{o.signal} above {o.threshold:g}")
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.SelfAttribute("first_seen")


class TicketFactory(factory.django.DjangoModelFactory[Ticket]):
    """An open ticket the agent opened, last seen now."""

    class Meta:
        model = Ticket

    node = factory.SubFactory(FabricationNodeFactory)
    issue_type = Ticket.IssueType.OTHER
    severity = Severity.WARNING
    title = factory.LazyAttribute(lambda o: f"{o.issue_type} on {o.node.name}")
    last_seen = factory.LazyFunction(timezone.now)
