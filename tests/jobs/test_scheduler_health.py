"""Node health in the scheduler's core (issue 18, item 1): maintenance's hard exclusions skip a
node with the reason named, remaining life and failure risk are checked against each part's
run, and reliability is weighed into the score."""

from __future__ import annotations

import pytest

from apps.jobs.scheduler import DEFAULT_WEIGHTS, NodeState, PartTask, SiteOutlook, schedule


def mill(pk: int, name: str, **fields) -> NodeState:
    base = {
        "processes": frozenset({"milling"}),
        "materials": frozenset({"steel"}),
        "build_mm": (300.0, 400.0, 600.0),
        "rated_power_kw": 7.5,
        "latitude": 6.45,
        "longitude": 3.39,
        "name": name,
    }
    return NodeState(id=pk, **{**base, **fields})


def part(pk: int, hours: float = 2.0, **fields) -> PartTask:
    base = {
        "job_id": 1,
        "priority": 5,
        "material": "steel",
        "process": "milling",
        "size_mm": (100.0, 100.0, 100.0),
        "hours": hours,
        "setup_h": 0.5,
        "latitude": 6.45,
        "longitude": 3.39,
    }
    return PartTask(id=pk, **{**base, **fields})


def test_the_weights_still_add_up_to_one_with_reliability():
    assert sum(DEFAULT_WEIGHTS.values()) == pytest.approx(1.0)
    assert DEFAULT_WEIGHTS["reliability"] > 0


def test_a_sick_node_that_scores_best_otherwise_is_skipped_with_the_reason_named():
    # given Mill-01, frugal and near (it wins on every other score), with a critical ticket
    sick = mill(1, "Mill-01", rated_power_kw=5.0, excluded_reason="critical ticket #3, RUL 12 h")
    healthy = mill(2, "Mill-02", latitude=9.0, longitude=7.4)
    assert (
        schedule([part(1)], [mill(1, "Mill-01", rated_power_kw=5.0), healthy]).assignments[0].node
        == 1
    )  # healthy, it would win
    # when scheduling with its health known
    choice = schedule([part(1)], [sick, healthy]).assignments[0]
    # then it goes to the healthy mill and the explanation names the skipped one and why
    assert choice.node == 2
    assert "Mill-01 skipped: critical ticket #3, RUL 12 h" in choice.reason
    assert choice.skipped == [
        {"node": 1, "name": "Mill-01", "reason": "critical ticket #3, RUL 12 h"}
    ]
    assert [c["node"] for c in choice.candidates] == [2]


def test_when_every_node_is_sick_the_part_waits_and_says_which_were_skipped():
    nodes = [mill(1, "Mill-01", excluded_reason="critical ticket #3"), mill(2, "", health=0.1)]
    nodes[1] = NodeState(**{**nodes[1].__dict__, "excluded_reason": "offline for 9 min"})
    choice = schedule([part(1)], nodes).assignments[0]
    assert choice.node is None
    assert choice.reason == (
        "no suitable node available: Mill-01 skipped: critical ticket #3; "
        "node 2 skipped: offline for 9 min"
    )


def test_a_node_with_12_hours_of_life_takes_a_2_hour_part_but_not_a_20_hour_one():
    worn = mill(1, "Mill-01", rul_h=12.0, rated_power_kw=5.0)
    other = mill(2, "Mill-02", backlog_h=30.0)
    plan = schedule([part(1, hours=2.0), part(2, hours=20.0, job_id=2)], [worn, other])
    placed = plan.by_part()
    assert placed[1].node == 1 and placed[1].finish_h <= 12.0
    assert placed[2].node == 2  # batched behind the 2 h part it would finish at 21.5 h
    assert "Mill-01 skipped: RUL 12 h, the part would finish in 21.5 h" in placed[2].reason


def test_a_node_whose_queue_runs_past_its_remaining_life_is_skipped():
    # 2 h of work fits in 12 h of life, but not behind 11 h already queued
    worn = mill(1, "Mill-01", rul_h=12.0, backlog_h=11.0)
    choice = schedule([part(1, hours=2.0)], [worn, mill(2, "Mill-02", backlog_h=40.0)])
    assert choice.assignments[0].node == 2


def test_predicted_failure_is_judged_over_the_parts_run():
    # 0.82 within a day: a 2 h part runs a ~13% risk there, a 20 h part ~76%
    risky = mill(1, "Mill-01", failure_p=0.82, failure_within_h=24.0)
    other = mill(2, "Mill-02", backlog_h=50.0)
    short = schedule([part(1, hours=2.0)], [risky, other]).assignments[0]
    long = schedule([part(1, hours=20.0)], [risky, other]).assignments[0]
    assert short.node == 1
    assert short.candidates[0]["reliability"] == pytest.approx(0.18 ** (2 / 24), abs=1e-3)
    assert long.node == 2
    assert "Mill-01 skipped: predicted failure 0.76 within the run" in long.reason
    # a stricter limit skips it for the short part too
    strict = schedule([part(1, hours=2.0)], [risky, other], max_failure=0.1).assignments[0]
    assert strict.node == 2


def test_reliability_outweighs_a_small_lead_elsewhere():
    # the case: Mill-01 led a healthy mill by 0.063 on the other scores
    sick = mill(1, "Mill-01", rated_power_kw=5.0, health=0.0)
    healthy = mill(2, "Mill-02")
    choice = schedule([part(1)], [sick, healthy]).assignments[0]
    assert choice.node == 2
    by_node = {c["node"]: c for c in choice.candidates}
    assert by_node[1]["reliability"] == 0.0 and by_node[2]["reliability"] == 1.0
    assert choice.skipped == []  # weighed, not excluded


def test_an_energy_move_never_pushes_a_part_past_the_nodes_remaining_life():
    # cheap hours start at hour 10; the node has 8 h of life; the deadline would allow it
    cheap_late = SiteOutlook(price=(1.0,) * 10 + (0.1,) * 38, carbon=(0.5,) * 10 + (0.05,) * 38)
    node = mill(1, "Mill-01", rul_h=8.0, site=1)
    flexible = part(1, hours=2.0, deadline_h=40.0, timing="balanced")
    moved = schedule([flexible], [mill(1, "Mill-01", site=1)], sites={1: cheap_late})
    assert moved.assignments[0].start_h >= 10.0  # without a life limit it moves
    choice = schedule([flexible], [node], sites={1: cheap_late}).assignments[0]
    assert choice.node == 1 and choice.finish_h <= 8.0


def test_health_providers_merge_to_the_worst_of_each(monkeypatch):
    from datetime import UTC, datetime

    from apps.jobs import providers
    from apps.jobs.scheduler import NodeRisk

    monkeypatch.setattr(providers, "_health_providers", [])
    providers.register_health_provider(
        lambda ids, now, h: {1: NodeRisk(risk=0.3, reasons=("anomaly flagged",), rul_h=50.0)}
    )
    providers.register_health_provider(
        lambda ids, now, h: {
            1: NodeRisk(
                excluded=True,
                offline=True,
                reasons=("offline for 9 min", "anomaly flagged"),
                rul_h=12.0,
                failure_p=0.4,
                failure_within_h=8.0,
            ),
            2: NodeRisk(risk=0.1),
        }
    )
    merged = providers.node_health([1, 2, 3], datetime(2026, 1, 1, tzinfo=UTC), 48.0)
    assert merged[1] == NodeRisk(
        risk=0.3,
        excluded=True,
        reasons=("anomaly flagged", "offline for 9 min"),
        rul_h=12.0,
        failure_p=0.4,
        failure_within_h=8.0,
        offline=True,
    )
    assert merged[2] == NodeRisk(risk=0.1) and 3 not in merged
