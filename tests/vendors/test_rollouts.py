"""Rollouts in waves, driven by the gateways' own pulls and reports through the gateway API."""

from __future__ import annotations

import pytest

from apps.vendors.models import Gateway
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.vendors.conftest import pull, report

pytestmark = pytest.mark.django_db


def start(fleet: Fleet, **overrides) -> dict:
    body = {
        "name": "faster uploads",
        "forwarding": {"forward_every_s": 0.5},
        "tags": ["hall"],
        "wave_sizes": [1, 2],
        "success_threshold_pct": 100,
        "error_threshold_pct": 34,
        **overrides,
    }
    response = jwt_client(fleet.vendor).post("/api/v1/rollouts/", body)
    assert response.status_code == 201, response.json()
    return response.json()


def states(fleet: Fleet, rollout_id: int) -> tuple[str, dict[str, str]]:
    body = jwt_client(fleet.vendor).get(f"/api/v1/rollouts/{rollout_id}/").json()
    return body["status"], {t["gateway_name"]: t["state"] for t in body["targets"]}


def test_a_rollout_moves_wave_by_wave_and_stops_at_the_error_threshold(fleet: Fleet, hall):
    # given a rollout to the three hall gateways in waves of 1 and 2
    rollout = start(fleet)
    assert states(fleet, rollout["id"]) == (
        "running",
        {"gw-a": "queued", "gw-b": "queued", "gw-c": "queued"},
    )
    # when the first wave's gateway pulls and applies it
    document = pull(hall["gw-a"])
    assert document["version"] == 2 and document["forwarding"]["forward_every_s"] == 0.5
    assert states(fleet, rollout["id"])[1]["gw-a"] == "downloading"
    assert pull(hall["gw-b"])["version"] == 1  # the second wave has not started
    report(hall["gw-a"], 2)
    # then the second wave starts
    assert states(fleet, rollout["id"])[1] == {
        "gw-a": "applied",
        "gw-b": "queued",
        "gw-c": "queued",
    }
    assert pull(hall["gw-b"])["forwarding"]["forward_every_s"] == 0.5
    assert pull(hall["gw-c"])["version"] == 2
    # when one of its two gateways fails to apply it (50 % > 34 %)
    report(hall["gw-b"], 2)
    report(hall["gw-c"], 1, "version 2: not applied: forward_every_s must be 0.01-60")
    # then the rollout stops and the failed gateway goes back to its old settings
    assert states(fleet, rollout["id"]) == (
        "stopped",
        {"gw-a": "applied", "gw-b": "applied", "gw-c": "rolled_back"},
    )
    back = pull(hall["gw-c"])
    assert back["version"] == 3 and "forward_every_s" not in back["forwarding"]
    # and those that applied it keep it as their own settings, without a new version
    kept = Gateway.objects.get(name="gw-a")
    assert kept.forwarding == {"forward_every_s": 0.5} and kept.rollout_overlay == {}
    assert pull(hall["gw-a"])["version"] == 2


def test_pause_holds_the_next_wave_and_resume_releases_it(fleet: Fleet, hall):
    rollout = start(fleet, error_threshold_pct=100)
    vendor = jwt_client(fleet.vendor)
    url = f"/api/v1/rollouts/{rollout['id']}/"
    assert vendor.post(f"{url}pause/").json()["status"] == "paused"
    assert vendor.post(f"{url}pause/").status_code == 409
    pull(hall["gw-a"])
    report(hall["gw-a"], 2)
    assert states(fleet, rollout["id"])[1]["gw-a"] == "applied"
    assert pull(hall["gw-b"])["version"] == 1  # held
    assert vendor.post(f"{url}resume/").json()["status"] == "running"
    assert pull(hall["gw-b"])["version"] == 2
    pull(hall["gw-c"])
    report(hall["gw-b"], 2)
    report(hall["gw-c"], 2)
    assert states(fleet, rollout["id"])[0] == "completed"
    assert vendor.post(f"{url}cancel/").status_code == 409


def test_the_rest_of_a_stopped_wave_finishes_on_its_own_reports(fleet: Fleet, hall):
    # given the second wave under way, both its gateways handed the settings
    rollout = start(fleet)
    pull(hall["gw-a"])
    report(hall["gw-a"], 2)
    pull(hall["gw-b"])
    pull(hall["gw-c"])
    # when one fails before the other has answered
    report(hall["gw-c"], 1, "version 2: not applied: the buffer cannot grow that large")
    # then the rollout stops, the failed one goes back, the other may still finish
    assert states(fleet, rollout["id"]) == (
        "stopped",
        {"gw-a": "applied", "gw-b": "downloading", "gw-c": "rolled_back"},
    )
    assert pull(hall["gw-b"])["version"] == 2
    # and when it applies the settings, it keeps them as its own
    report(hall["gw-b"], 2)
    assert states(fleet, rollout["id"])[1]["gw-b"] == "applied"
    kept = Gateway.objects.get(name="gw-b")
    assert kept.forwarding == {"forward_every_s": 0.5} and kept.rollout_overlay == {}
    assert pull(hall["gw-c"])["version"] == 3
    # and a stopped rollout with nothing out any more cancels nothing
    response = jwt_client(fleet.vendor).post(f"/api/v1/rollouts/{rollout['id']}/cancel/")
    assert response.status_code == 409


def test_cancelling_a_stopped_rollout_calls_back_what_it_still_has_out(fleet: Fleet, hall):
    rollout = start(fleet)
    pull(hall["gw-a"])
    report(hall["gw-a"], 2)
    report(hall["gw-c"], 1, "version 2: not applied: no")  # gw-b has not even pulled
    vendor = jwt_client(fleet.vendor)
    response = vendor.post(f"/api/v1/rollouts/{rollout['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "stopped"
    assert states(fleet, rollout["id"])[1]["gw-b"] == "rolled_back"
    assert "forward_every_s" not in pull(hall["gw-b"])["forwarding"]


def test_cancel_calls_back_the_wave_under_way_and_leaves_later_waves_untouched(fleet: Fleet, hall):
    rollout = start(fleet)
    vendor = jwt_client(fleet.vendor)
    assert vendor.post(f"/api/v1/rollouts/{rollout['id']}/cancel/").json()["status"] == "cancelled"
    assert pull(hall["gw-b"])["version"] == 1
    back = pull(hall["gw-a"])  # it had been handed version 2: it goes back to the old settings
    assert back["version"] == 3 and "forward_every_s" not in back["forwarding"]
    report(hall["gw-a"], 3)
    body = vendor.get(f"/api/v1/rollouts/{rollout['id']}/").json()
    gw_a = next(t for t in body["targets"] if t["gateway_name"] == "gw-a")
    assert gw_a["state"] == "rolled_back" and "cancelled" in gw_a["error"]
    # a gateway in a running rollout is not taken by another
    start(fleet, name="second", wave_sizes=[3])
    response = vendor.post(
        "/api/v1/rollouts/",
        {
            "name": "third",
            "forwarding": {"batch_size": 10},
            "tags": ["hall"],
            "wave_sizes": [3],
            "success_threshold_pct": 50,
            "error_threshold_pct": 0,
        },
    )
    assert response.status_code == 409 and "gw-a" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"wave_sizes": [0]}, "wave_sizes"),
        ({"success_threshold_pct": 0}, "success_threshold_pct"),
        ({"error_threshold_pct": 101}, "error_threshold_pct"),
        ({"forwarding": {}}, "forwarding"),
        ({"forwarding": {"poll_s": 0}}, "forwarding.poll_s"),
    ],
)
def test_a_bad_rollout_is_refused_by_name(fleet: Fleet, hall, overrides, field):
    body = {
        "name": "x",
        "forwarding": {"forward_every_s": 0.5},
        "wave_sizes": [1],
        "success_threshold_pct": 100,
        "error_threshold_pct": 0,
        **overrides,
    }
    response = jwt_client(fleet.vendor).post("/api/v1/rollouts/", body)
    assert response.status_code == 400 and field in response.json()["error"]["details"]


def test_who_may_run_a_rollout(fleet: Fleet, hall):
    rollout = start(fleet)
    forge = fleet.forge.pk
    body = {
        "name": "x",
        "vendor": forge,
        "forwarding": {"batch_size": 5},
        "tags": ["yard"],
        "wave_sizes": [1],
        "success_threshold_pct": 100,
        "error_threshold_pct": 0,
    }
    for who in ("rival", "operator", "designer"):
        assert jwt_client(fleet.user(who)).post("/api/v1/rollouts/", body).status_code == 403, who
        assert (
            jwt_client(fleet.user(who)).get(f"/api/v1/rollouts/{rollout['id']}/").status_code == 404
        )
    nothing = {**body, "tags": ["nowhere"]}
    response = jwt_client(fleet.vendor).post("/api/v1/rollouts/", nothing)
    assert response.status_code == 400 and "No gateway" in str(response.json())
