"""The scheduler's timeline on hand-made fleets: site power caps stagger heat-up peaks,
energy-aware jobs move into cheap and green hours before their deadline, maintenance windows
are planned around, and stock in grams is used up as parts are placed."""

from __future__ import annotations

import pytest

from apps.jobs.scheduler import PartTask, SiteOutlook, schedule
from tests.jobs.test_scheduler import part, printer

FLAT = tuple([0.30] * 48)


def draw_at(moment: float, plan, nodes, tasks) -> float:
    """Total kW the plan draws at `moment`, from each part's heat-up and running load."""
    by_id = {n.id: n for n in nodes}
    by_part = {t.id: t for t in tasks}
    total = 0.0
    for a in plan.assignments:
        if a.node is None or not a.start_h <= moment < a.finish_h:
            continue
        node = by_id[a.node]
        heating = moment < a.start_h + node.peak_h
        total += node.rated_power_kw if heating else node.rated_power_kw * by_part[a.part].load
    return total


def test_a_power_cap_staggers_heat_up_peaks_and_is_never_exceeded():
    # given four 1 kW printers heating for 15 min at one site capped at 2 kW
    nodes = [printer(i, rated_power_kw=1.0, peak_h=0.25, site=7) for i in range(1, 5)]
    tasks = [part(i, hours=2.0, load=0.3, material="PLA") for i in range(1, 5)]
    # when it is scheduled with and without the cap
    free = schedule(tasks, nodes, sites={7: SiteOutlook(FLAT, FLAT, None)})
    capped = schedule(tasks, nodes, sites={7: SiteOutlook(FLAT, FLAT, 2.0)})
    # then without the cap all four heat up together (4 kW) ...
    assert {a.start_h for a in free.assignments} == {0.0}
    assert draw_at(0.1, free, nodes, tasks) == pytest.approx(4.0)
    # ... and with it the starts are spread so the draw stays at or under 2 kW throughout
    starts = sorted(a.start_h for a in capped.assignments)
    assert starts[0] == 0.0 and starts[-1] > 0.0
    moments = sorted({t for a in capped.assignments for t in (a.start_h, a.start_h + 0.25)})
    for moment in [m + 1e-6 for m in moments]:
        assert draw_at(moment, capped, nodes, tasks) <= 2.0 + 1e-9
    held = [a for a in capped.assignments if a.staggered_h > 0]
    assert held and all("2 kW power cap" in a.reason for a in held)


def test_a_node_that_alone_draws_more_than_its_sites_cap_gets_no_work():
    nodes = [printer(1, rated_power_kw=3.0, site=7)]
    plan = schedule([part(1)], nodes, sites={7: SiteOutlook(FLAT, FLAT, 2.0)})
    assert plan.assignments[0].node is None
    assert "power cap" in plan.assignments[0].reason


def outlook(cheap_from: int, cheap_to: int) -> SiteOutlook:
    """Expensive, dirty grid power except for a cheap, green stretch (say, midday solar)."""
    price = tuple(0.10 if cheap_from <= h < cheap_to else 0.40 for h in range(48))
    carbon = tuple(0.05 if cheap_from <= h < cheap_to else 0.45 for h in range(48))
    return SiteOutlook(price, carbon, None)


def test_a_flexible_job_moves_into_the_cheap_window_before_its_deadline():
    nodes = [printer(1, site=3)]
    flexible = part(1, hours=2.0, deadline_h=20.0, timing="balanced")
    plan = schedule([flexible], nodes, sites={3: outlook(6, 10)})
    choice = plan.assignments[0]
    assert choice.start_h >= 6.0 and choice.finish_h <= 10.0
    assert choice.shifted_h == pytest.approx(choice.start_h)
    assert "later into cheaper, greener hours" in choice.reason
    asap = schedule([part(1, hours=2.0, deadline_h=20.0)], nodes, sites={3: outlook(6, 10)})
    assert asap.assignments[0].start_h == 0.0
    eager = asap.assignments[0]
    assert choice.energy_cost is not None and eager.energy_cost is not None
    assert choice.co2e_kg is not None and eager.co2e_kg is not None
    assert choice.energy_cost < eager.energy_cost
    assert choice.co2e_kg < eager.co2e_kg


def test_a_flexible_job_never_moves_past_its_deadline():
    nodes = [printer(1, site=3)]
    # the cheap hours start at 6 but the part must be done by 7: it may only half reach them
    plan = schedule(
        [part(1, hours=2.0, deadline_h=7.0, timing="lowest_carbon")],
        nodes,
        sites={3: outlook(6, 10)},
    )
    choice = plan.assignments[0]
    assert choice.finish_h <= 7.0 + 1e-9
    assert choice.start_h == pytest.approx(5.0)  # as much of it in the green hour as allowed


def test_lowest_carbon_and_balanced_choose_differently_when_price_and_carbon_disagree():
    # cheap but dirty at night (hours 2-4), dear but clean at noon (hours 12-14)
    price = tuple(0.05 if 2 <= h < 4 else 0.60 if 12 <= h < 14 else 0.30 for h in range(48))
    carbon = tuple(0.40 if 2 <= h < 4 else 0.02 if 12 <= h < 14 else 0.40 for h in range(48))
    site = {3: SiteOutlook(price, carbon, None)}
    nodes = [printer(1, site=3)]
    greenest = schedule(
        [part(1, hours=2.0, deadline_h=30.0, timing="lowest_carbon")], nodes, sites=site
    )
    cheapest = schedule([part(1, hours=2.0, deadline_h=30.0, timing="balanced")], nodes, sites=site)
    assert greenest.assignments[0].start_h == pytest.approx(12.0)
    # balanced weighs price and carbon each against their own mean: the night wins there
    assert cheapest.assignments[0].start_h == pytest.approx(2.0)


def test_moving_a_flexible_job_never_delays_other_work():
    # given two printers, a busy queue and one flexible job placed first (higher priority)
    nodes = [printer(1, site=3), printer(2, site=3)]
    tasks = [
        part(1, job=1, hours=2.0, deadline_h=20.0, timing="balanced", priority=9),
        *[part(i, job=i, hours=3.0, material="PETG", deadline_h=9.0) for i in range(2, 6)],
    ]
    sites = {3: outlook(6, 10)}
    aware = schedule(tasks, nodes, sites=sites).by_part()
    still = schedule(
        [PartTask(**{**t.__dict__, "timing": "asap"}) for t in tasks], nodes, sites=sites
    )
    # then every other part starts exactly when it would have without the move ...
    for a in still.assignments:
        if a.part != 1:
            assert aware[a.part].start_h == a.start_h and aware[a.part].node == a.node
    # ... and the flexible one found free, cheaper time before its deadline
    assert aware[1].shifted_h > 0 and aware[1].finish_h <= 20.0
    shifted, unshifted = aware[1].energy_cost, still.by_part()[1].energy_cost
    assert shifted is not None and unshifted is not None and shifted < unshifted


def test_planned_maintenance_windows_are_planned_around():
    nodes = [printer(1, blocked=((1.0, 5.0),))]
    plan = schedule([part(1, hours=2.0), part(2, job=2, hours=0.5, material="PETG")], nodes)
    placed = plan.by_part()
    assert placed[1].start_h == 5.0  # two hours do not fit before the window
    assert placed[2].start_h == 0.0 and placed[2].finish_h <= 1.0  # half an hour does


def test_stock_in_grams_is_used_up_as_parts_are_placed():
    nodes = [printer(1, stock={"pla": 100.0}), printer(2, stock={"pla": 60.0})]
    tasks = [part(1, material_g=80.0), part(2, job=2, material_g=50.0)]
    plan = schedule(tasks, nodes, weights={"material": 1.0, "capacity": 0.0}).by_part()
    assert plan[1].node == 1  # the only one holding 80 g
    assert plan[2].node == 2  # node 1 has 20 g left, node 2 still 60 g
    assert plan[1].candidates[0]["material"] == 1.0
