"""The process's rights sweeper re-checks every open socket in one pass whose database work
follows the number of callers, not of sockets (a check per socket starved the fan-out at 1,020
sockets), and a caller whose check fails does not close anyone else's sockets."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.sockets import CLOSE_CHECK_FAILED, CLOSE_FORBIDDEN, rights_verdicts
from apps.jobs.consumers import JobConsumer
from apps.telemetry.consumers import TelemetryConsumer
from apps.users.roles import Role
from apps.users.tokens import tokens_issue
from apps.users.ws_auth import TokenCredential
from tests.fixtures.fleet import Fleet, approved_node

pytestmark = pytest.mark.django_db


def socket(cls: type, user: Any, **attrs: Any) -> Any:
    """A consumer as the sweeper finds it after `start`: scope with its credential, ids set."""
    token = str(tokens_issue(user=user, otp_verified=True).access_token)
    consumer = cls()
    consumer.scope = {"user": user, "credential": TokenCredential(token)}
    consumer.groups_joined = []
    for name, value in attrs.items():
        setattr(consumer, name, value)
    return consumer


def queries(sockets: list[Any]) -> tuple[int, dict[Any, Any]]:
    with CaptureQueriesContext(connection) as captured:
        verdicts = rights_verdicts(sockets)
    return len(captured.captured_queries), verdicts


def test_one_sweep_costs_the_same_for_one_socket_and_for_thirty(fleet: Fleet):
    nodes = [approved_node(fleet, name=f"Mill-{i}") for i in range(6)]
    vendor = fleet.vendor
    token = str(tokens_issue(user=vendor, otp_verified=True).access_token)

    def opened(node_ids: list[int]) -> Any:
        consumer = socket(TelemetryConsumer, vendor, node_ids=node_ids)
        consumer.scope["credential"] = TokenCredential(token)  # one sign-in, many tabs
        return consumer

    one, verdicts = queries([opened([nodes[0].pk])])
    assert list(verdicts.values()) == [None]
    many = [opened([nodes[i % 6].pk, nodes[(i + 1) % 6].pk]) for i in range(30)]
    thirty, verdicts = queries(many)
    assert thirty == one > 0
    assert set(verdicts) == set(many) and set(verdicts.values()) == {None}


def test_a_socket_on_a_node_no_longer_visible_is_closed_and_its_neighbours_stay(fleet: Fleet):
    own = approved_node(fleet, name="Mine")
    gone = approved_node(fleet, name="Sold")
    vendor = fleet.vendor
    allowed = socket(TelemetryConsumer, vendor, node_ids=[own.pk])
    mixed = socket(TelemetryConsumer, vendor, node_ids=[own.pk, gone.pk])
    mixed.scope["credential"] = allowed.scope["credential"]
    rival = socket(TelemetryConsumer, fleet.rival, node_ids=[own.pk])
    before = queries([allowed, mixed, rival])[1]
    assert before[allowed] is None and before[mixed] is None
    assert before[rival] is not None and before[rival][0] == CLOSE_FORBIDDEN
    gone.delete()
    _, verdicts = queries([allowed, mixed, rival])
    assert verdicts[allowed] is None
    assert verdicts[mixed] is not None and verdicts[mixed][0] == CLOSE_FORBIDDEN
    assert verdicts[rival] is not None and verdicts[rival][0] == CLOSE_FORBIDDEN


def test_a_caller_whose_check_fails_closes_only_its_own_sockets(
    fleet: Fleet, make_user, monkeypatch
):
    node = approved_node(fleet, name="Mill-A")
    healthy = socket(TelemetryConsumer, fleet.vendor, node_ids=[node.pk])
    broken_user = make_user(Role.DESIGNER)
    broken = [socket(JobConsumer, broken_user, job_id=1) for _ in range(2)]
    broken[1].scope["credential"] = broken[0].scope["credential"]

    def fail(cls: type, user: Any, sockets: list[Any]) -> list[bool]:
        raise RuntimeError("selector blew up")

    monkeypatch.setattr(JobConsumer, "still_allowed_many", classmethod(fail))
    _, verdicts = queries([healthy, *broken])
    assert verdicts[healthy] is None
    assert [verdicts[s][0] for s in broken] == [CLOSE_CHECK_FAILED, CLOSE_CHECK_FAILED]


def test_a_socket_already_ended_is_not_checked(fleet: Fleet):
    node = approved_node(fleet, name="Mill-B")
    gone = socket(TelemetryConsumer, fleet.vendor, node_ids=[node.pk])
    gone.ended = True
    count, verdicts = queries([gone])
    assert count == 0 and verdicts == {}
