"""The placement hook: apps may limit a part to certain nodes (`PartTask.only`, filled from
`providers.register_placement_provider`), and the scheduler honours it and explains it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from apps.jobs import providers
from apps.jobs.models import Job, Part, Status
from apps.jobs.scheduler import NodeState, PartTask, schedule
from apps.jobs.services import job_submit, parts_schedule
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_transition
from tests.fixtures.shop import Shop


def printer(pk: int, **fields: Any) -> NodeState:
    base = {
        "processes": frozenset({"fdm"}),
        "materials": frozenset({"PLA"}),
        "build_mm": (210.0, 220.0, 250.0),
        "rated_power_kw": 0.35,
    }
    return NodeState(id=pk, **{**base, **fields})


def task(pk: int, **fields: Any) -> PartTask:
    base = {
        "job_id": 1,
        "priority": 5,
        "material": "PLA",
        "process": "fdm",
        "size_mm": (50.0, 50.0, 50.0),
        "hours": 2.0,
    }
    return PartTask(id=pk, **{**base, **fields})


def test_a_limited_part_goes_only_to_its_allowed_nodes():
    # node 1 is idle and the obvious choice; the part may use only the busy node 2
    nodes = [printer(1), printer(2, backlog_h=30.0)]
    free = schedule([task(1)], nodes).assignments[0]
    limited = schedule([task(1, only=frozenset({2}))], nodes).assignments[0]
    assert free.node == 1
    assert limited.node == 2 and limited.start_h == 30.0
    assert [c["node"] for c in limited.candidates] == [2]


def test_a_limited_part_no_allowed_node_can_take_is_left_with_the_reason():
    nodes = [printer(1), printer(2, materials=frozenset({"PETG"}))]
    # node 2 does not work PLA and node 3 is not in the fleet: nowhere to go
    choice = schedule([task(1, only=frozenset({2, 3}))], nodes).assignments[0]
    assert choice.node is None
    assert choice.reason == "none of the 2 node(s) it is limited to can take it now"
    # an empty allowance is a limit too (not "anywhere")
    assert schedule([task(1, only=frozenset())], nodes).assignments[0].node is None


def test_limits_and_declines_combine():
    nodes = [printer(1), printer(2), printer(3)]
    choice = schedule([task(1, only=frozenset({1, 2}), excluded=frozenset({1}))], nodes)
    assert choice.assignments[0].node == 2


@pytest.fixture
def own_providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The registry with only this test's providers (the apps' own are put back after)."""
    registry: list[Any] = []
    monkeypatch.setattr(providers, "_placement_providers", registry)
    yield registry


def test_providers_merge_to_what_all_of_them_allow(own_providers):
    providers.register_placement_provider(lambda parts: {p: frozenset({1, 2, 3}) for p in parts})
    providers.register_placement_provider(lambda parts: {parts[0]: frozenset({2, 3, 4})})
    assert providers.part_allowed_nodes([10, 11]) == {
        10: frozenset({2, 3}),
        11: frozenset({1, 2, 3}),
    }
    # registering the same function again (ready() twice) changes nothing
    fn = own_providers[0]
    providers.register_placement_provider(fn)
    assert len(own_providers) == 2


PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


@pytest.mark.django_db
def test_parts_schedule_asks_the_providers(shop: Shop, own_providers):
    job = job_submit(
        by=shop.designer,
        title="Arms",
        parts=[{**PLA, "name": "arm-1"}, {**PLA, "name": "arm-2"}],
    )
    only_b = frozenset({shop.printer_b.pk})
    seen: list[list[int]] = []

    def to_printer_b(parts: Sequence[Part]) -> dict[int, frozenset[int]]:
        seen.append(sorted(p.pk for p in parts))
        return {p.pk: only_b for p in parts if p.job_id == job.pk}

    providers.register_placement_provider(to_printer_b)
    parts_schedule()
    # without the limit the two arms would spread over both printers (the swarm)
    assert {p.assigned_node_id for p in job.parts.all()} == {shop.printer_b.pk}
    assert seen == [sorted(job.parts.values_list("pk", flat=True))]

    # when the allowed node cannot work, the part waits and says why
    other = job_submit(by=shop.designer, title="Clip", parts=[{**PLA, "name": "clip"}])
    node_transition(
        node=shop.printer_b, to=FabricationNode.Status.MAINTENANCE, by=shop.vendor, reason="x"
    )
    own_providers.clear()
    providers.register_placement_provider(lambda parts: {p.pk: only_b for p in parts})
    parts_schedule()
    clip = other.parts.get()
    assert clip.status == Status.VALIDATED and clip.assigned_node is None
    assert "limited to" in clip.placement["reason"]
    assert Job.objects.get(pk=other.pk).status == Status.VALIDATED
