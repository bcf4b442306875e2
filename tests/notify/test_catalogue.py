"""Each event kind is raised by the app that owns what happened, and reaches the channels
that asked for it."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.core.ml import Comparison, model_register
from apps.maintenance.services.monitor import node_mark_offline
from apps.notify.models import Event
from apps.notify.services import channel_create
from tests.fixtures.fleet import Fleet, make_node


def test_node_registration_tells_the_admins(fleet: Fleet, django_capture_on_commit_callbacks):
    channel_create(
        by=fleet.admin,
        kind="in_app",
        name="Admin feed",
        rules=[{"event_kind": "node_awaiting_approval", "min_severity": "info"}],
    )
    with django_capture_on_commit_callbacks(execute=True):
        node = make_node(fleet, name="Printer-9")
    event = Event.objects.get(kind="node_awaiting_approval")
    assert event.title == "Node awaiting approval: Printer-9"
    assert list(event.users.all()) == [fleet.admin]
    assert event.deliveries.get().status == "sent"
    assert event.subject == f"node:{node.pk}"


def test_a_silent_node_is_an_offline_event_for_vendor_and_site(fleet: Fleet, mill):
    node_mark_offline(node_id=mill.pk, last_seen=timezone.now() - timedelta(minutes=9))
    event = Event.objects.get(kind="node_offline")
    assert event.severity == "warning" and event.title == f"Node offline: {mill.name}"
    assert set(event.organizations.all()) == {fleet.forge, fleet.site}
    # marking it again while it is still offline raises nothing new
    node_mark_offline(node_id=mill.pk, last_seen=timezone.now())
    assert Event.objects.filter(kind="node_offline").count() == 1


def test_an_activated_model_is_announced_to_admins_and_engineers(fleet: Fleet):
    comparison = Comparison(metric="mae", candidate=1.0, active=None, baseline=2.0)
    model_register(
        name="jobs.duration",
        algorithm="xgboost",
        artifact=b"x",
        features=[],
        metrics={},
        training={},
        comparison=comparison,
    )
    event = Event.objects.get(kind="model_promoted")
    assert event.title == "Model jobs.duration v1 is now active"
    assert set(event.users.all()) == {fleet.admin, fleet.engineer}
    worse = Comparison(metric="mae", candidate=3.0, active=1.0, baseline=2.0)
    model_register(
        name="jobs.duration",
        algorithm="xgboost",
        artifact=b"y",
        features=[],
        metrics={},
        training={},
        comparison=worse,
    )
    assert Event.objects.filter(kind="model_promoted").count() == 1  # kept inactive: silent
