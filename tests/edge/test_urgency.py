"""Which points the gateway forwards at once (edge/urgency.py), and how its config is checked."""

from __future__ import annotations

import math

import pytest

from edge.gateway import from_config
from edge.urgency import DEFAULT_DEADBANDS, Deadband, UrgencyFilter


def make_filter(**deadbands: Deadband) -> UrgencyFilter:
    return UrgencyFilter({**DEFAULT_DEADBANDS, **deadbands}, max_silence_s=10.0)


def test_the_first_point_and_a_new_signal_are_urgent():
    urgency = make_filter()
    assert urgency.check(0.0, {"temperature_c": 20.0}) == "first point"
    assert urgency.check(0.1, {"temperature_c": 20.0}) is None
    assert urgency.check(0.2, {"temperature_c": 20.0, "power_kw": 1.0}) == "new signal power_kw"


def test_a_change_must_pass_both_the_absolute_and_the_relative_deadband():
    urgency = make_filter(power_kw=Deadband(abs=0.05, rel=0.05))
    urgency.check(0.0, {"power_kw": 10.0})
    assert urgency.check(0.1, {"power_kw": 10.4}) is None  # 0.4 > abs, < 5% of 10
    assert urgency.check(0.2, {"power_kw": 10.6}) is not None  # beyond both
    urgency.check(0.3, {"power_kw": 0.0})
    assert urgency.check(0.4, {"power_kw": 0.04}) is None  # any rise from 0 is relative
    assert urgency.check(0.5, {"power_kw": 0.06}) is not None


def test_changes_are_measured_from_the_value_last_sent_not_the_last_read():
    # given: a slow drift, each step inside the deadband
    urgency = make_filter(temperature_c=Deadband(abs=0.5))
    urgency.check(0.0, {"temperature_c": 20.0})
    assert urgency.check(0.1, {"temperature_c": 20.3}) is None
    # when / then: it adds up to a change worth showing
    assert urgency.check(0.2, {"temperature_c": 20.6}) is not None
    # and a periodic batch makes the newest buffered value the reference
    assert urgency.check(0.3, {"temperature_c": 21.0}) is None
    urgency.sending(0.35)
    assert urgency.check(0.4, {"temperature_c": 21.4}) is None
    assert urgency.check(0.5, {"temperature_c": 21.6}) is not None


def test_an_alert_and_a_long_silence_make_a_point_urgent():
    urgency = make_filter(temperature_c=Deadband(abs=math.inf))
    urgency.check(0.0, {"temperature_c": 20.0})
    urgency.sending(0.0)
    assert urgency.check(1.0, {"temperature_c": 99.0}) is None  # never beyond an inf deadband
    assert urgency.check(2.0, {"temperature_c": 99.0}, alert=True) == "local alert"
    assert urgency.check(9.9, {"temperature_c": 99.0}) is None
    assert urgency.check(10.0, {"temperature_c": 99.0}) == "heartbeat"


def test_a_signal_without_a_deadband_of_its_own_uses_the_catch_all():
    urgency = UrgencyFilter({"*": Deadband(rel=0.5)})
    urgency.check(0.0, {"odd_signal": 10.0})
    assert urgency.check(0.1, {"odd_signal": 14.0}) is None
    assert urgency.check(0.2, {"odd_signal": 16.0}) is not None


def config(**changes: object) -> dict:
    device = {
        "node": 1,
        "token": "t",
        "url": "opc.tcp://x",
        "signals": {"temperature_c": "ns=2;s=T"},
    }
    device_changes = changes.pop("device", {})
    assert isinstance(device_changes, dict)
    return {
        "upstream": {"url": "http://x"},
        "buffer": {"path": ":memory:"},
        "devices": [{**device, **device_changes}],
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"deadband": [1, 2]}, r"gateway: deadband must map signals"),
        ({"deadband": {"power_kw": 0.1}}, r"deadband.power_kw must be \{abs: A, rel: R\}"),
        ({"deadband": {"power_kw": {}}}, r"deadband.power_kw must be"),
        ({"deadband": {"power_kw": {"absolute": 1}}}, r"deadband.power_kw must be"),
        ({"deadband": {"power_kw": {"abs": -1}}}, r"deadband.power_kw.abs must be a number >= 0"),
        ({"deadband": {"power_kw": {"rel": "x"}}}, r"deadband.power_kw.rel must be a number"),
        ({"deadband": {"power_kw": {"rel": math.nan}}}, r"deadband.power_kw.rel must be"),
        ({"min_urgent_gap_s": 0}, r"gateway: min_urgent_gap_s must be 0.01-60"),
        ({"min_urgent_gap_s": "soon"}, r"min_urgent_gap_s must be 0.01-60"),
        ({"min_urgent_gap_s": math.nan}, r"min_urgent_gap_s must be 0.01-60"),
        ({"max_silence_s": 0.01}, r"gateway: max_silence_s must be 0.1-3600"),
        ({"device": {"deadband": {"t": {"abs": -2}}}}, r"device 1: deadband.t.abs must be"),
        ({"device": {"min_urgent_gap_s": 120}}, r"device 1: min_urgent_gap_s must be 0.01-60"),
    ],
)
def test_forwarding_config_errors_say_what_is_wrong(changes, message):
    with pytest.raises(ValueError, match=message):
        from_config(config(**changes))


def test_forwarding_config_overrides_defaults_per_gateway_and_device():
    gateway = from_config(
        config(
            deadband={"power_kw": {"abs": 1}, "*": {"rel": 0.2}},
            max_silence_s=30,
            device={"interval_ms": 200, "deadband": {"power_kw": {"rel": 0.5}}},
        )
    )
    lane = gateway.lane(gateway.devices[0])
    assert lane.filter.deadband("power_kw") == Deadband(rel=0.5)  # the device's wins
    assert lane.filter.deadband("odd") == Deadband(rel=0.2)
    assert lane.filter.deadband("temperature_c") == DEFAULT_DEADBANDS["temperature_c"]
    assert lane.filter.max_silence_s == 30
    assert lane.min_gap_s == 0.2  # the poll interval, unless configured
    gapped = from_config(config(min_urgent_gap_s=0.5))
    assert gapped.lane(gapped.devices[0]).min_gap_s == 0.5
