"""edge/software.py on its own: what a configuration may name as software (poison values are
refused, never fetched or installed), and which version a start runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge import software
from edge.software import MAX_TRIAL_STARTS, SoftwareRefused, SoftwareStore, release_from

GOOD = {"version": "1.2.0", "sha256": "ab" * 32, "size": 1000, "path": "software/7/"}


def test_a_well_formed_release_is_read():
    release = release_from(GOOD)
    assert release.wheel_name == "imewe_edge-1.2.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "../../etc"}, "not a release version"),
        ({"version": "1.0/../x"}, "not a release version"),
        ({"version": ""}, "not a release version"),
        ({"version": 2}, "not a release version"),
        ({"version": "1.0\x00"}, "not a release version"),
        ({"version": "1.0\n"}, "not a release version"),
        ({"path": "software/7/\n"}, "not one of the platform's"),
        ({"sha256": "AB" * 32}, "64 hex digits"),
        ({"sha256": None}, "64 hex digits"),
        ({"size": True}, "bytes"),
        ({"size": 0}, "bytes"),
        ({"size": software.MAX_WHEEL_BYTES + 1}, "bytes"),
        ({"size": 1.5}, "bytes"),
        ({"path": "http://elsewhere.example/evil.whl"}, "not one of the platform's"),
        ({"path": "software/7/../../config/"}, "not one of the platform's"),
        ({"path": "/software/7/"}, "not one of the platform's"),
    ],
)
def test_a_poisoned_release_is_refused_by_name(change, message):
    with pytest.raises(SoftwareRefused, match=message):
        release_from({**GOOD, **change})


def test_a_release_that_is_not_an_object_is_refused():
    specs: tuple[object, ...] = (None, [], "1.2.0")
    for spec in specs:
        with pytest.raises(SoftwareRefused, match="not an object"):
            release_from(spec)


def write_state(tmp_path: Path, **state: object) -> SoftwareStore:
    store = SoftwareStore(tmp_path)
    store.root.mkdir(parents=True, exist_ok=True)
    blank: dict[str, object] = {
        "current": None,
        "previous": None,
        "trial": False,
        "starts": 0,
        "refused": {},
    }
    store.save({**blank, **state})
    return store


def test_a_checkout_without_a_current_version_runs_as_it_is(tmp_path):
    assert SoftwareStore(tmp_path).next_start() is None  # no state at all
    assert write_state(tmp_path).next_start() is None


def test_a_version_on_trial_is_counted_and_given_up_after_its_starts(tmp_path):
    store = write_state(tmp_path, current="2.0.0", trial=True)
    store.directory("2.0.0").mkdir()
    for start in range(1, MAX_TRIAL_STARTS + 1):
        assert store.next_start() == "2.0.0"
        assert store.state()["starts"] == start
    assert store.next_start() is None  # back to the software as installed
    state = store.state()
    assert state["current"] is None and state["trial"] is False
    assert "started 3 times and never completed a poll" in state["refused"]["2.0.0"]
    assert store.refusal("2.0.0") == state["refused"]["2.0.0"]


def test_a_confirmed_version_is_started_every_time(tmp_path):
    store = write_state(tmp_path, current="2.0.0", trial=False)
    store.directory("2.0.0").mkdir()
    for _ in range(MAX_TRIAL_STARTS + 2):
        assert store.next_start() == "2.0.0"
    assert store.state()["refused"] == {}


def test_a_missing_copy_falls_back_to_the_previous_version(tmp_path):
    store = write_state(tmp_path, current="2.0.0", previous="1.9.0")
    store.directory("1.9.0").mkdir()
    assert store.next_start() == "1.9.0"
    state = store.state()
    assert state["current"] == "1.9.0" and "installed copy is missing" in state["refused"]["2.0.0"]


def test_a_switch_that_did_not_take_over_is_not_tried_again(tmp_path, monkeypatch):
    store = write_state(tmp_path, current="2.0.0", trial=True)
    store.directory("2.0.0").mkdir()
    monkeypatch.setenv(software.SWITCHED_ENV, "2.0.0")  # started to run 2.0.0, yet runs this
    assert store.next_start() is None
    assert "did not take over" in store.refusal("2.0.0")


def test_a_corrupt_state_file_runs_the_software_as_installed(tmp_path):
    store = SoftwareStore(tmp_path)
    store.root.mkdir(parents=True)
    store.state_path.write_text("{not json")
    assert store.next_start() is None
    store.state_path.write_text(json.dumps(["a list"]))
    assert store.next_start() is None


def test_this_checkout_says_it_is_a_checkout():
    assert software.installed_version() == software.CHECKOUT_VERSION
    assert software.software_version() == "imewe-edge/0+checkout"
    assert os.environ.get(software.SWITCHED_ENV) is None


def test_a_relative_state_dir_is_held_as_an_absolute_path(tmp_path, monkeypatch):
    # pip and the self-test run inside the store, and an exec'd process keeps PYTHONPATH: a
    # path relative to where the gateway started would point nowhere (make run's var/...)
    monkeypatch.chdir(tmp_path)
    store = SoftwareStore("var/edge-gateway")
    assert store.root == tmp_path / "var" / "edge-gateway" / "software"
    assert store.directory("2.0.0").is_absolute()
