"""Plans that hang on other parts stay consistent after every move (issue 18, item 5): an
assembly starts after the parts it waits for, wherever they went; a batch group runs on one
node, back to back, with one set-up, and moves as one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.jobs.models import Job, Part, Status
from apps.jobs.services import job_submit, part_decline, parts_schedule
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_transition
from tests.fixtures.shop import Shop, ready_node

pytestmark = pytest.mark.django_db

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


def parts_of(job: Job) -> dict[str, Part]:
    return {p.name: p for p in Part.objects.filter(job=job)}


def test_an_assembly_is_replanned_when_a_part_it_waits_for_moves(shop: Shop):
    station = ready_node(
        shop, name="Assembly-1", kind="robot_cell", processes=["assembly"], materials=["PLA"]
    )
    now = timezone.now()
    job = job_submit(
        by=shop.designer,
        title="Kit",
        parts=[{**PLA, "name": "arm"}, {**PLA, "name": "kit", "process": "assembly"}],
    )
    parts_schedule(now=now)
    placed = parts_of(job)
    arm, kit = placed["arm"], placed["kit"]
    assert kit.assigned_node_id == station.pk and kit.planned_start == arm.planned_finish

    # an hour later the arm's vendor declines it; it goes to the other printer, later
    part_decline(by=shop.vendor, part=arm, reason="bed damaged")
    parts_schedule(now=now + timedelta(hours=1))
    moved = parts_of(job)
    arm, kit = moved["arm"], moved["kit"]
    assert arm.status == Status.SCHEDULED and arm.planned_finish is not None
    assert arm.planned_finish > placed["arm"].planned_finish  # type: ignore[operator]
    # the assembly follows: it starts when the arm now finishes, not when it used to
    assert kit.assigned_node_id == station.pk and kit.status == Status.SCHEDULED
    assert kit.planned_start is not None and kit.planned_start >= arm.planned_finish
    history = [c.reason for c in job.history.filter(part=kit)]
    assert "re-planned: a part it waits for moved" in history


def test_a_batch_runs_on_one_node_back_to_back_and_moves_as_one(shop: Shop, as_user):
    now = timezone.now()
    job = job_submit(
        by=shop.designer,
        title="Colour-matched set",
        parts=[
            {**PLA, "name": f"tile-{i}", "batch_group": "blue", "quantity": 40} for i in range(3)
        ]
        + [{**PLA, "name": "loose"}],
    )
    parts_schedule(now=now)
    placed = parts_of(job)
    tiles = [placed[f"tile-{i}"] for i in range(3)]
    # whole (no lots, long as they are), on one node, one after the other
    assert all(t.lots == 1 and t.quantity == 40 for t in tiles)
    assert len({t.assigned_node_id for t in tiles}) == 1
    for before, after in zip(tiles, tiles[1:], strict=False):
        assert after.planned_start == before.planned_finish
    assert "batch 'blue'" in tiles[1].placement["reason"]
    assert tiles[1].placement["batched"] is True  # one set-up: the set-up hours are saved
    # the loose part is free to go elsewhere (the other printer is idle)
    assert placed["loose"].assigned_node_id != tiles[0].assigned_node_id

    # the node's vendor declines one tile: the whole batch moves to the other printer
    first_node = tiles[0].assigned_node_id
    part_decline(by=shop.vendor, part=tiles[1], reason="out of blue")
    parts_schedule(now=now + timedelta(minutes=5))
    moved = parts_of(job)
    assert (
        {moved[f"tile-{i}"].assigned_node_id for i in range(3)}
        == {placed["loose"].assigned_node_id}
        != {first_node}
    )
    explained = as_user(shop.designer).get(f"/api/v1/jobs/{job.pk}/schedule/").json()
    reasons = {p["name"]: p["reason"] for p in explained["parts"]}
    assert "batch 'blue'" in reasons["tile-2"]


def test_a_batch_must_share_its_set_up_and_fit_one_node(shop: Shop, as_user):
    client = as_user(shop.designer)
    mixed = client.post(
        "/api/v1/jobs/",
        {
            "title": "Mixed",
            "parts": [
                {**PLA, "name": "a", "batch_group": "x"},
                {**PLA, "name": "b", "batch_group": "x", "material": "PETG"},
                {**PLA, "name": "c", "batch_group": "y"},
            ],
        },
        format="json",
    )
    assert mixed.status_code == 400
    details = mixed.json()["error"]["details"]
    assert list(details) == ["parts[1]"]
    assert "share material and process" in details["parts[1]"][0]
    assert "part 0 is PLA by FDM printing, this one PETG by FDM printing" in details["parts[1]"][0]

    # each part alone fits a printer, but none makes both: the flat one needs the wide, low
    # Big-P, the tall one a standard printer
    ready_node(
        shop,
        name="Big-P",
        kind="fdm_printer",
        processes=["fdm"],
        materials=["PLA"],
        build_x_mm=400,
        build_y_mm=400,
        build_z_mm=20,
        rated_power_kw=0.5,
    )
    split = client.post(
        "/api/v1/jobs/",
        {
            "title": "Apart",
            "parts": [
                {**PLA, "name": "flat", "batch_group": "x", "size_x_mm": 350, "size_z_mm": 10},
                {**PLA, "name": "tall", "batch_group": "x", "size_z_mm": 200},
            ],
        },
        format="json",
    )
    assert split.status_code == 400
    message = split.json()["error"]["details"]["parts[0]"][0]
    assert "no single node can make all 2 of its parts (parts 0, 1)" in message
    assert not Job.objects.filter(title__in=["Mixed", "Apart"]).exists()  # nothing stored


def test_a_part_that_waits_for_a_node_leaves_its_assembly_planned(shop: Shop):
    # the mill that alone can make the base goes down after submission: the base waits, and
    # each scheduling run must not pull the placed assembly back and place it again
    station = ready_node(
        shop, name="Assembly-1", kind="robot_cell", processes=["assembly"], materials=["PLA"]
    )
    job = job_submit(
        by=shop.designer,
        title="Kit",
        parts=[
            {**PLA, "name": "arm"},
            {**PLA, "name": "base", "material": "steel", "process": "milling"},
            {**PLA, "name": "kit", "process": "assembly"},
        ],
    )
    node_transition(
        node=shop.mill, to=FabricationNode.Status.MAINTENANCE, by=shop.vendor, reason="x"
    )
    now = timezone.now()
    parts_schedule(now=now)
    first = parts_of(job)
    assert first["base"].status == Status.VALIDATED and first["base"].assigned_node_id is None
    assert first["kit"].status == Status.SCHEDULED and first["kit"].assigned_node_id == station.pk
    changes = job.history.count()
    for minutes in (1, 2, 3):
        parts_schedule(now=now + timedelta(minutes=minutes))
    kit = parts_of(job)["kit"]
    assert kit.status == Status.SCHEDULED and kit.planned_start == first["kit"].planned_start
    assert job.history.count() == changes  # nothing re-planned, nothing recorded
