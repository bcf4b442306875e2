from __future__ import annotations

from apps.jobs.models import Part
from apps.jobs.services import work_complete, work_queue, work_start

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
