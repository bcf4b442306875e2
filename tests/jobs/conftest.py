from __future__ import annotations

from typing import Any

import pytest

from apps.jobs.models import Part
from apps.jobs.services import work_complete, work_queue, work_start
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_config_save, node_transition
from tests.vendors.conftest import (
    approved_node,
    fleet,  # noqa: F401  (the shared fixture)
)

PRINTER = {
    "name": "Printer-A",
    "kind": "fdm_printer",
    "processes": ["fdm"],
    "materials": ["PLA", "PETG"],
    "build_x_mm": 250,
    "build_y_mm": 210,
    "build_z_mm": 220,
    "precision_mm": 0.1,
    "rated_power_kw": 0.35,
}


def ready_node(people: dict[str, Any], **fields: Any) -> FabricationNode:
    node = approved_node(people, **fields)
    node_config_save(node=node, by=people["vendor"], config={"ok": True})
    return node_transition(
        node=node, to=FabricationNode.Status.IDLE, by=people["vendor"], reason="up"
    )


@pytest.fixture
def shop(fleet: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    """The fleet plus two idle printers and an idle mill."""
    return {
        **fleet,
        "printer_a": ready_node(fleet, **PRINTER),
        "printer_b": ready_node(fleet, **{**PRINTER, "name": "Printer-B"}),
        "mill": ready_node(fleet, name="Mill-A"),
    }


STL_CUBE_ASCII = (
    "solid cube\n"
    + "".join(
        "facet normal 0 0 0\nouter loop\n"
        + "".join(f"vertex {x} {y} {z}\n" for x, y, z in tri)
        + "endloop\nendfacet\n"
        for tri in [
            # a 10 x 20 x 30 mm box, two triangles per face, outward winding
            [(0, 0, 0), (0, 20, 0), (10, 20, 0)],
            [(0, 0, 0), (10, 20, 0), (10, 0, 0)],
            [(0, 0, 30), (10, 0, 30), (10, 20, 30)],
            [(0, 0, 30), (10, 20, 30), (0, 20, 30)],
            [(0, 0, 0), (10, 0, 0), (10, 0, 30)],
            [(0, 0, 0), (10, 0, 30), (0, 0, 30)],
            [(0, 20, 0), (0, 20, 30), (10, 20, 30)],
            [(0, 20, 0), (10, 20, 30), (10, 20, 0)],
            [(0, 0, 0), (0, 0, 30), (0, 20, 30)],
            [(0, 0, 0), (0, 20, 30), (0, 20, 0)],
            [(10, 0, 0), (10, 20, 0), (10, 20, 30)],
            [(10, 0, 0), (10, 20, 30), (10, 0, 30)],
        ]
    )
    + "endsolid cube\n"
)


def start_in_turn(part: Part) -> Part:
    """Starts `part` on its node the way a machine would: the parts its node's plan puts first
    are made (started and completed) before it, since the work API hands out one part at a
    time in the plan's order."""
    node_id = part.assigned_node_id
    assert node_id is not None
    for ahead in work_queue(node_id=node_id):
        if ahead.pk == part.pk:
            break
        if ahead.status != Part.Status.IN_PROGRESS:
            work_start(node_id=node_id, part_id=ahead.pk)
        work_complete(node_id=node_id, part_id=ahead.pk, quality_score=0.95)
    return work_start(node_id=node_id, part_id=part.pk)
