"""Batch groups in the scheduler's core where they meet the other rules: a sick node is skipped
before the batch's node is chosen, the batch's parts follow each other on that node with one
set-up, and the site's power cap still holds a heat-up back."""

from __future__ import annotations

from typing import Any

from apps.jobs.scheduler import SiteOutlook, schedule
from tests.jobs.test_scheduler import part, printer

FLAT = tuple([0.30] * 48)
BERLIN: dict[str, Any] = {"latitude": 52.5, "longitude": 13.4}
SITES = {5: SiteOutlook(FLAT, FLAT, 1.5)}  # 1.5 kW for printers 3 and 4 together


def fleet():
    return [
        # frugal, it would win on the scores, but maintenance excludes it
        printer(1, name="Printer-01", rated_power_kw=0.2, excluded_reason="critical ticket #7"),
        # makes PLA, but is too small for the batch's large tile
        printer(2, name="Printer-02", build_mm=(100.0, 100.0, 100.0)),
        # makes every tile, and heats up at 1 kW for half an hour
        printer(3, name="Printer-03", rated_power_kw=1.0, peak_h=0.5, site=5),
        # the only one making ABS, at the same capped site
        printer(
            4,
            name="Printer-04",
            materials=frozenset({"ABS"}),
            rated_power_kw=1.0,
            peak_h=0.5,
            site=5,
        ),
        # makes every tile too, off the capped site, in Berlin; an hour's work is queued on it
        printer(5, name="Printer-05", rated_power_kw=1.0, backlog_h=1.0, **BERLIN),
    ]


def tasks():
    return [
        part(9, job=2, priority=9, material="ABS", load=0.3),  # placed first: 0-2 h on node 4
        part(1, batch="blue", load=0.3),
        part(2, batch="blue", load=0.3, **BERLIN),  # designed next to printer 5
        part(3, batch="blue", load=0.3, size_mm=(150.0, 150.0, 150.0)),
    ]


def test_a_batch_skips_the_sick_node_runs_back_to_back_and_waits_for_the_cap():
    plan = schedule(tasks(), fleet(), sites=SITES)
    placed = plan.by_part()
    assert [a.part for a in plan.assignments] == [9, 1, 2, 3]
    assert (placed[9].node, placed[9].start_h, placed[9].finish_h) == (4, 0.0, 2.0)
    # the batch goes to the healthy node that can make all three tiles and is free first, and
    # stays there though printer 5 would score better for the second tile on its own
    assert {placed[i].node for i in (1, 2, 3)} == {3}
    # its first tile waits for node 4's heat-up (1 kW + 1 kW > 1.5 kW), the others follow
    # with no set-up (2 h - 0.25 h) as soon as the one before finishes
    assert [(placed[i].start_h, placed[i].finish_h) for i in (1, 2, 3)] == [
        (0.5, 2.5),
        (2.5, 4.25),
        (4.25, 6.0),
    ]
    assert [placed[i].staggered_h for i in (1, 2, 3)] == [0.5, 0.0, 0.0]
    assert [placed[i].batched for i in (1, 2, 3)] == [False, True, True]
    assert placed[1].reason.startswith("best of 2 suitable node(s), score ")
    assert placed[1].reason.endswith(
        "; start held 0.50 h for the site's 1.5 kW power cap; "
        "Printer-01 skipped: critical ticket #7"
    )
    for i in (2, 3):
        assert placed[i].reason == (
            "batch 'blue': on the node its batch's first part went to, next; "
            "Printer-01 skipped: critical ticket #7"
        )
    sick = {"node": 1, "name": "Printer-01", "reason": "critical ticket #7"}
    assert all(placed[i].skipped == [sick] for i in (1, 2, 3))
    assert [c["node"] for c in placed[1].candidates] == [3, 5]
    # flat prices: 1 kW for half an hour, then 0.3 kW for 1.5 h
    assert (placed[1].kwh, placed[1].energy_cost) == (0.95, 0.285)
    assert plan.makespan_h == 6.0


def test_a_batch_whose_only_complete_node_is_sick_waits_and_says_so():
    nodes = [n for n in fleet() if n.id not in (3, 5)]
    plan = schedule(tasks(), nodes, sites=SITES).by_part()
    for i in (1, 2, 3):
        assert plan[i].node is None
        assert plan[i].reason == (
            "no single suitable node can make all 3 parts of batch 'blue' now; "
            "Printer-01 skipped: critical ticket #7"
        )
    assert plan[9].node == 4
