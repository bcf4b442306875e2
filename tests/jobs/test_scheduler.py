"""The scheduler's core on hand-made fleets: scores, batching, swarm, priority, deadlines."""

from __future__ import annotations

from apps.jobs.scheduler import NodeState, PartTask, first_fit, schedule


def printer(pk: int, **fields) -> NodeState:
    base = {
        "processes": frozenset({"fdm"}),
        "materials": frozenset({"PLA", "PETG"}),
        "build_mm": (210.0, 220.0, 250.0),
        "rated_power_kw": 0.35,
        "latitude": 6.45,
        "longitude": 3.39,
    }
    return NodeState(id=pk, **{**base, **fields})


def part(pk: int, job: int = 1, **fields) -> PartTask:
    base = {
        "priority": 5,
        "material": "PLA",
        "process": "fdm",
        "size_mm": (50.0, 50.0, 50.0),
        "hours": 2.0,
        "setup_h": 0.25,
    }
    return PartTask(id=pk, job_id=job, **{**base, **fields})


def test_each_decision_is_explained_with_the_weighted_scores():
    nodes = [printer(1, backlog_h=10.0), printer(2)]
    plan = schedule([part(1)], nodes)
    choice = plan.assignments[0]
    assert choice.node == 2  # the idle one
    assert [c["node"] for c in choice.candidates] == [2, 1]
    best, runner_up = choice.candidates[0], choice.candidates[1]
    w = plan.weights
    known = {k: v for k, v in best.items() if v is not None}
    assert known.keys() >= {*w, "total"}, best  # every weighted score is there
    recomputed = sum(w[k] * known[k] for k in w)
    assert abs(recomputed - known["total"]) < 1e-3
    assert best["capacity"] == 1.0
    assert runner_up["capacity"] is not None and runner_up["capacity"] < 0.5
    assert "best of 2 suitable node(s)" in choice.reason


def test_weights_change_the_choice():
    far_but_frugal = printer(1, rated_power_kw=0.2, latitude=52.5, longitude=13.4)
    near_but_hungry = printer(2, rated_power_kw=0.8)
    task = part(1, latitude=6.5, longitude=3.4)
    nodes = [far_but_frugal, near_but_hungry]
    energy_first = schedule([task], nodes, weights={"energy": 1.0, "proximity": 0.0})
    near_first = schedule([task], nodes, weights={"energy": 0.0, "proximity": 1.0})
    assert energy_first.assignments[0].node == 1
    assert near_first.assignments[0].node == 2


def test_material_stock_and_unsuitable_nodes():
    nodes = [
        printer(1, stock={"PLA": 0.0}),
        printer(2, stock={"PLA": 1.0}),
        printer(3, materials=frozenset({"ABS"})),
    ]
    plan = schedule([part(1), part(2, material="TPU")], nodes)
    placed = plan.by_part()
    assert placed[1].node == 2
    assert placed[2].node is None and "no suitable node" in placed[2].reason


def test_similar_parts_are_batched_and_save_set_up():
    nodes = [printer(1), printer(2, backlog_h=1.0)]
    plan = schedule([part(1, hours=1.0), part(2, hours=1.0)], nodes)
    first, second = plan.assignments
    assert second.batched and second.node == first.node
    assert second.finish_h - second.start_h == 0.75  # no second set-up


def test_a_multi_part_job_spreads_and_assembly_waits_for_all():
    nodes = [printer(i) for i in range(1, 5)]
    tasks = [part(i, hours=3.0, material=m) for i, m in enumerate(["PLA", "PETG"] * 2, 1)]
    assembly = part(9, process="assembly", material="PLA", hours=0.5)
    nodes.append(printer(9, processes=frozenset({"assembly"}), materials=frozenset({"PLA"})))
    plan = schedule([assembly, *tasks], nodes)
    placed = plan.by_part()
    used = {placed[i].node for i in range(1, 5)}
    assert len(used) >= 3  # a swarm, not a queue on one machine
    last = max(placed[i].finish_h for i in range(1, 5))
    assert placed[9].start_h == last and placed[9].node == 9


def test_priority_and_deadline_are_respected():
    nodes = [printer(1)]
    plan = schedule([part(1, priority=2), part(2, priority=9), part(3, priority=9)], nodes)
    assert [a.part for a in plan.assignments] == [2, 3, 1]
    nodes = [printer(1, backlog_h=5.0), printer(2, backlog_h=1.0, rated_power_kw=3.0)]
    plan = schedule([part(1, deadline_h=4.0)], nodes)
    assert plan.assignments[0].node == 2 and not plan.assignments[0].late
    plan = schedule([part(1, deadline_h=1.5)], nodes)
    assert plan.assignments[0].late and plan.assignments[0].node == 2  # earliest finish
    assert "no node meets the deadline" in plan.assignments[0].reason


def test_balanced_schedule_beats_first_fit_makespan():
    nodes = [printer(i) for i in range(1, 11)]
    tasks = [part(i, hours=1.0 + (i % 3)) for i in range(1, 101)]
    ours, baseline = schedule(tasks, nodes), first_fit(tasks, nodes)
    assert baseline.makespan_h == sum(t.hours for t in tasks)  # all on node 1
    assert ours.makespan_h < baseline.makespan_h / 5
    assert {a.node for a in ours.assignments} == set(range(1, 11))
