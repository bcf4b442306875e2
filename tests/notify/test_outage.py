"""No alert is lost while a receiver is down: a real Celery worker on a real Redis broker
delivers to a real HTTP receiver that is down (port closed), then refuses (503), then accepts;
every event arrives exactly once, in order per ticket."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import kombu.pools
import pytest
from celery.contrib.testing.worker import start_worker

from apps.notify.models import Delivery, EventKind
from apps.notify.services import channel_create, event_raise
from apps.users.models import Membership
from imewe.celery import app as celery_app
from tests.fixtures.fleet import Fleet
from tests.notify.receivers import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live_celery(own_redis: Any, settings: Any) -> Iterator[Any]:
    # A private redis-server as the broker: no other run's messages, none left behind.
    broker = f"redis://127.0.0.1:{own_redis[0]}/0"
    settings.NOTIFY_RETRY_BASE_S = 0.2
    settings.NOTIFY_RETRY_MAX_S = 1.0
    saved = {k: celery_app.conf[k] for k in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=broker, task_always_eager=False)
    _forget_connections()
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield celery_app
    finally:
        celery_app.conf.update(saved)
        _forget_connections()


def _forget_connections() -> None:
    """The app keeps its broker connections and producers for the process: ones made for an
    earlier test's broker would publish this test's tasks there."""
    pool = getattr(celery_app, "_pool", None)  # (private, not in the stubs)
    if pool is not None:
        pool.force_close_all()
    celery_app._pool = None  # type: ignore[attr-defined]  # private, not in the stubs
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]
    # kombu keeps producer pools per broker for the process too, over connection pools the line
    # above may just have closed: a later test's delay() then failed "Acquire on closed pool"
    kombu.pools.reset()


def test_events_raised_while_the_receiver_is_down_arrive_once_in_order(fleet: Fleet, live_celery):
    # given: the vendor's webhook for every ticket event, and its receiver down
    Membership.objects.filter(user=fleet.vendor).update(org_role=Membership.OrgRole.OWNER)
    channel_create(
        by=fleet.vendor,
        kind="webhook",
        name="On-call hook",
        organization=fleet.forge,
        target="http://127.0.0.1:8213/alerts",
        secret="k" * 32,
        rules=[{"event_kind": "", "min_severity": "info"}],
    )
    receiver = Receiver(port=8213)

    # when: two tickets' lifecycles are raised (interleaved) while nothing listens
    kinds = [EventKind.TICKET_OPENED, EventKind.TICKET_ESCALATED, EventKind.TICKET_RESOLVED]
    raised = []
    for kind in kinds:
        for ticket in (1, 2):
            event = event_raise(
                kind=kind,
                severity="critical",
                title=f"ticket {ticket} {kind}",
                subject=f"ticket:{ticket}",
                organizations=[fleet.forge],
            )
            raised.append(event.pk)
    deadline = time.monotonic() + 60
    while Delivery.objects.filter(attempts__gte=2).count() < 2:  # both heads retried
        assert time.monotonic() < deadline, list(Delivery.objects.values("status", "attempts"))
        time.sleep(0.1)
    # then it comes up refusing for a while, then accepts
    receiver.refuse_with = 503
    receiver.start()
    try:
        while receiver.refused < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        receiver.refuse_with = None
        while Delivery.objects.filter(status="sent").count() < len(raised):
            assert time.monotonic() < deadline + 60, list(
                Delivery.objects.values("status", "attempts", "last_error")
            )
            time.sleep(0.1)
        time.sleep(1.0)  # anything sent twice would arrive in this time
    finally:
        receiver.stop()

    # then: every event exactly once, in the order raised per ticket
    got = [r.json() for r in receiver.received]
    assert sorted(g["event"] for g in got) == sorted(raised)
    per_ticket: dict[str, list[int]] = defaultdict(list)
    for g in got:
        per_ticket[g["subject"]].append(g["event"])
    for events in per_ticket.values():
        assert events == sorted(events)
    retried = Delivery.objects.filter(attempts__gt=1)
    assert retried.exists() and all(d.response_code == 200 for d in Delivery.objects.all())
