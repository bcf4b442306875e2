"""The physics scenarios' laws against their closed forms, and the contract of a run."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest

from apps.twins.physics import (
    DEFAULTS,
    SCENARIOS,
    MachineSpec,
    PhysicsError,
    Seed,
    bearing_life_hours,
    compare_note,
    l10_hours,
    montsinger_factor,
    run,
    series_csv,
    spec_for,
    thermal_step,
    vibration_mm_s,
    wear_from_vibration,
)

MILL = spec_for("cnc_mill")
K_B = 8.617333262e-5  # eV/K


def mean_power_kw(spec: MachineSpec, load: float, duty: float) -> float:
    return spec.rated_power_kw * (duty * load + (1 - duty) * spec.idle_power_share)


def mill_l10(load: float, rpm: float = 12_000) -> float:
    """The mill's rating life written out: C = 30 kN, P = 1,200 N x (0.35 + 0.65 load)."""
    return (30_000 / (1_200 * (0.35 + 0.65 * load))) ** 3 * 1e6 / (60 * rpm)


def rul_or_inf(result: dict[str, Any]) -> float:
    return math.inf if result["rul_hours"] is None else result["rul_hours"]


# --- The laws ------------------------------------------------------------------------------------


def test_thermal_step_is_the_exact_exponential():
    assert thermal_step(20.0, 80.0, 0.5, 1.0) == pytest.approx(80 - 60 * math.exp(-0.5))
    # exact, so ten short steps land where one long one does (an Euler step would not)
    t = 20.0
    for _ in range(10):
        t = thermal_step(t, 80.0, 0.1, 1.0)
    assert t == pytest.approx(thermal_step(20.0, 80.0, 1.0, 1.0), rel=1e-12)
    # and it solves C dT/dt = P - (T - T_amb)/R_th: slope (T_ss - T)/tau at the start
    slope = (thermal_step(20.0, 80.0, 1e-6, 2.0) - 20.0) / 1e-6
    assert slope == pytest.approx((80 - 20) / 2.0, rel=1e-5)


def test_run_temperature_is_the_closed_form_for_constant_power():
    result = run(MILL, "normal", 6, Seed(temperature_c=15.0), step_minutes=5)
    r_th, c = MILL.thermal_resistance_k_per_kw, MILL.heat_capacity_kj_per_k
    tau_h = r_th * c / 3600
    steady = 22 + r_th * MILL.loss_fraction * mean_power_kw(MILL, 0.6, 0.6)
    assert tau_h == pytest.approx(1.0, rel=1e-4)  # the mill's design time constant
    assert steady == pytest.approx(22 + 35 * 0.392)  # 35 K at rated, 39.2% mean power
    for point in result["series"]:
        expected = steady + (15.0 - steady) * math.exp(-point["time_hours"] / tau_h)
        assert point["temperature_c"] == pytest.approx(expected, abs=2e-3)
    assert result["series"][-1]["temperature_c"] > 35  # it did heat up


def test_overheating_crosses_the_limit_when_the_exponential_does():
    result = run(MILL, "overheated", 24, step_minutes=10)
    r_th = MILL.thermal_resistance_k_per_kw * 1.8
    tau_h = r_th * MILL.heat_capacity_kj_per_k / 3600
    steady = 40 + r_th * MILL.loss_fraction * mean_power_kw(MILL, 0.6, 0.6)
    crossing = tau_h * math.log((40 - steady) / (MILL.temperature_limit_c - steady))
    assert 0 < crossing < 24
    assert result["events"]["over_temperature_hours"] == pytest.approx(crossing, abs=1e-3)
    # the health score halves the share of the run spent above the limit
    last = result["series"][-1]
    share = (24 - crossing) / 24
    expected = (
        100
        * (1 - last["bearing_wear_percent"] / 100)
        * (1 - last["insulation_used_percent"] / 100)
        * (1 - share / 2)
    )
    assert result["health_score_end"] == pytest.approx(expected, abs=2e-3)
    assert run(MILL, "normal", 24)["events"]["over_temperature_hours"] is None


def test_l10_rating_life_at_a_known_point():
    assert l10_hours(30_000, 1_000, 1_500) == pytest.approx(300_000)  # 30^3 x 10^6 / 90,000
    assert l10_hours(30_000, 2_000, 1_500) == pytest.approx(300_000 / 8)  # cube law
    assert l10_hours(30_000, 1_000, 3_000) == pytest.approx(150_000)
    assert l10_hours(30_000, 1_000, 0) == math.inf


def test_bearing_life_is_shortened_by_arrhenius_above_40_c_only():
    rated = mill_l10(1.0)
    factor = math.exp(0.7 / K_B * (1 / 313.15 - 1 / 353.15))  # 80 C against 40 C
    assert bearing_life_hours(MILL, 1.0, 12_000, 80.0) == pytest.approx(rated / factor)
    assert bearing_life_hours(MILL, 1.0, 12_000, 20.0) == pytest.approx(rated)


def test_run_bearing_wear_is_miners_sum_over_the_running_time():
    result = run(MILL, "normal", 500, step_minutes=30)
    assert max(p["temperature_c"] for p in result["series"]) < 40  # no thermal shortening
    expected = 100 * 500 * 0.6 / mill_l10(0.6)
    assert result["conditions"]["l10_hours"] == pytest.approx(mill_l10(0.6), abs=0.1)
    assert result["series"][-1]["bearing_wear_percent"] == pytest.approx(expected, abs=1e-4)
    assert expected > 0.5


def test_montsinger_life_halves_every_10_c():
    assert montsinger_factor(155, 155) == 1
    assert montsinger_factor(165, 155) == pytest.approx(2)
    assert montsinger_factor(175, 155) == pytest.approx(4)
    assert montsinger_factor(145, 155) == pytest.approx(0.5)
    for t in (60.0, 103.0, 190.0):
        assert montsinger_factor(t + 10, 130) / montsinger_factor(t, 130) == pytest.approx(2)


def test_run_ages_insulation_and_bearings_at_the_winding_and_body_temperature():
    """A body so heavy it stays at the seed's 100 C: the winding runs at 100 + 70 K x load^2
    for 60% of the time and at 100 C for the rest."""
    still = replace(MILL, heat_capacity_kj_per_k=1e7)  # tau ~ 86,000 h
    seed = Seed(temperature_c=100.0, power_kw=7.5)  # full load
    result = run(still, "normal", 50, seed, step_minutes=60)
    per_hour = (0.6 * 2 ** ((170 - 155) / 10) + 0.4 * 2 ** ((100 - 155) / 10)) / 20_000
    last = result["series"][-1]
    assert last["insulation_used_percent"] == pytest.approx(100 * 50 * per_hour, rel=5e-3)
    thermal = math.exp(0.7 / K_B * (1 / 313.15 - 1 / 373.15))
    wear = 50 * 0.6 * thermal / mill_l10(1.0)
    assert last["bearing_wear_percent"] == pytest.approx(100 * wear, rel=5e-3)
    half = run(still, "normal", 50, replace(seed, power_kw=3.75), step_minutes=60)  # I^2 R
    per_hour = (0.6 * 2 ** ((100 + 70 * 0.25 - 155) / 10) + 0.4 * 2 ** ((100 - 155) / 10)) / 20_000
    assert half["series"][-1]["insulation_used_percent"] == pytest.approx(
        100 * 50 * per_hour, rel=5e-3
    )
    hotter = run(still, "normal", 50, replace(seed, temperature_c=110.0), step_minutes=60)
    ratio = hotter["series"][-1]["insulation_used_percent"] / last["insulation_used_percent"]
    assert ratio == pytest.approx(2, rel=1e-2)


def test_vibration_law_and_its_inversion_round_trip():
    assert vibration_mm_s(MILL, 0.5) == pytest.approx(1.2 + 7 * 0.25)
    for spec in DEFAULTS.values():
        for wear in (0.0, 0.1, 0.37, 0.8, 0.99):
            assert wear_from_vibration(spec, vibration_mm_s(spec, wear)) == pytest.approx(wear)
        assert wear_from_vibration(spec, spec.vibration_base_mm_s / 2) == 0  # below the base
        assert wear_from_vibration(spec, 400.0) == 0.99  # clipped


# --- Scenarios and seeds -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(DEFAULTS))
def test_stress_scenarios_end_less_healthy_and_sooner_than_normal(kind):
    spec = spec_for(kind)
    results = {name: run(spec, name, 1000, step_minutes=30) for name in SCENARIOS}
    normal = results.pop("normal")
    assert normal["health_score_end"] > 95
    for name, result in results.items():
        assert result["health_score_end"] < normal["health_score_end"], name
        assert rul_or_inf(result) < rul_or_inf(normal), name
    assert results["worn_bearings"]["series"][0]["bearing_wear_percent"] == 60
    assert results["heavy_load"]["conditions"]["load_fraction"] == 1.1
    assert results["overheated"]["events"]["over_temperature_hours"] is not None


def test_the_seed_starts_the_run():
    seed = Seed(
        temperature_c=48.0, vibration_mm_s=3.0, power_kw=3.0, spindle_rpm=9000.0, source="M1"
    )
    result = run(MILL, "normal", 24, seed)
    first = result["series"][0]
    assert first["temperature_c"] == 48.0
    assert first["vibration_mm_s"] == pytest.approx(3.0)
    assert first["bearing_wear_percent"] == pytest.approx(100 * math.sqrt(1.8 / 7), abs=1e-4)
    assert first["load_fraction"] == pytest.approx(0.4)
    assert result["conditions"]["spindle_rpm"] == 9000
    assert result["conditions"]["l10_hours"] == pytest.approx(mill_l10(0.4, 9000), abs=0.1)
    assert result["seed"] == {
        "temperature_c": 48.0,
        "vibration_mm_s": 3.0,
        "power_kw": 3.0,
        "spindle_rpm": 9000.0,
        "source": "M1",
        "from_seed": ["temperature_c", "vibration_mm_s", "power_kw", "spindle_rpm"],
        "from_defaults": [],
    }


def test_missing_seed_values_fall_back_to_the_scenario():
    result = run(MILL, "normal", 24, Seed(temperature_c=30.0))
    assert result["seed"]["from_seed"] == ["temperature_c"]
    assert result["seed"]["from_defaults"] == ["vibration_mm_s", "power_kw", "spindle_rpm"]
    assert result["seed"]["power_kw"] == 4.5  # 60% of 7.5 kW
    assert result["seed"]["source"] == "defaults"
    first = result["series"][0]
    assert (first["temperature_c"], first["load_fraction"], first["bearing_wear_percent"]) == (
        30.0,
        0.6,
        0.0,
    )
    assert run(MILL, "normal", 24)["series"][0]["temperature_c"] == 22.0  # the ambient


def test_seed_values_that_cannot_describe_the_drive_are_ignored_with_a_note():
    printer = spec_for("fdm_printer")
    nozzle = Seed(temperature_c=215.0, power_kw=0.0, spindle_rpm=0.0, source="printer")
    result = run(printer, "normal", 12, nozzle)
    assert result["seed"]["from_seed"] == []
    assert result["series"][0]["temperature_c"] == 22.0
    assert result["conditions"]["spindle_rpm"] == printer.rated_rpm
    notes = " ".join(result["notes"])
    assert "215 C ignored" in notes and "0 kW ignored" in notes and "0 rpm ignored" in notes
    metered_site = run(printer, "normal", 12, Seed(power_kw=5.0))  # 14 x the printer's rating
    assert metered_site["conditions"]["load_fraction"] == 0.6


def test_a_scenarios_stress_is_a_floor_the_seed_cannot_lower():
    heavy = run(MILL, "heavy_load", 24, Seed(power_kw=3.0))
    assert heavy["conditions"]["load_fraction"] == 1.1
    assert heavy["seed"]["power_kw"] == 3.0 and "power_kw" in heavy["seed"]["from_seed"]
    assert any("raised to the scenario's 1.1" in note for note in heavy["notes"])
    worn = run(MILL, "worn_bearings", 24, Seed(vibration_mm_s=1.2))  # a new bearing's level
    assert worn["series"][0]["bearing_wear_percent"] == 60
    worse = run(MILL, "worn_bearings", 24, Seed(vibration_mm_s=4.0))  # more than the floor
    assert worse["series"][0]["bearing_wear_percent"] == pytest.approx(100 * math.sqrt(0.4))


# --- Events and remaining life -------------------------------------------------------------------


def test_vibration_event_and_rul_follow_the_wear_rate():
    """Below 40 C wear grows linearly at duty / L10h, so both are closed forms."""
    result = run(MILL, "worn_bearings", 1500, Seed(vibration_mm_s=4.4), step_minutes=30)
    assert max(p["temperature_c"] for p in result["series"]) < 40
    rate = 0.6 / mill_l10(0.6)
    start, unacceptable = math.sqrt(3.2 / 7), math.sqrt(3.3 / 7)
    crossing = (unacceptable - start) / rate
    assert 500 < crossing < 1500
    assert result["events"]["vibration_unacceptable_hours"] == pytest.approx(crossing, rel=1e-3)
    end_wear = start + 1500 * rate
    assert result["rul_hours"] == pytest.approx((1 - end_wear) / rate, rel=1e-3)


def test_a_used_up_bearing_ends_health_and_life():
    fragile = replace(MILL, bearing_c_dyn_n=3_000.0)  # L10h 1,000 times shorter: about 54 h
    result = run(fragile, "normal", 200, step_minutes=30)
    last = result["series"][-1]
    assert last["bearing_wear_percent"] == 100
    assert last["vibration_mm_s"] == pytest.approx(1.2 + 7.0)
    assert result["health_score_end"] == 0
    assert result["rul_hours"] == 0
    assert 0 < result["events"]["vibration_unacceptable_hours"] < 200


def test_rul_is_none_beyond_100000_hours():
    robust = replace(MILL, bearing_c_dyn_n=300_000.0)
    assert run(robust, "normal", 100)["rul_hours"] is None
    assert run(MILL, "normal", 100)["rul_hours"] < 100_000


# --- Progress, validation, output ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "step", "steps"), [(1, 10, 6), (100, 1, 6000), (8000, 10, 48000)]
)
def test_progress_rises_to_one_at_most_100_times(hours, step, steps):
    seen: list[float] = []
    result = run(MILL, "heavy_load", hours, step_minutes=step, progress=seen.append)
    assert result["steps"] == steps
    assert len(seen) == min(steps, 100)
    assert all(a < b for a, b in zip(seen, seen[1:], strict=False))
    assert seen[0] > 0 and seen[-1] == 1


def test_unknown_kind_and_bad_power_are_named():
    with pytest.raises(PhysicsError, match="^kind: one of fdm_printer, sla_printer"):
        spec_for("toaster")
    with pytest.raises(PhysicsError) as caught:
        spec_for("toaster", -1)
    assert [p.split(":")[0] for p in str(caught.value).split("; ")] == ["kind", "rated_power_kw"]
    assert isinstance(caught.value, ValueError)


def test_bad_run_arguments_spec_and_seed_are_all_named():
    with pytest.raises(PhysicsError) as caught:
        run(MILL, "meltdown", 0, step_minutes=0)
    assert str(caught.value).split("; ") == [
        "scenario: one of normal, heavy_load, overheated, worn_bearings",
        "hours: from 1 to 8,760",
        "step_minutes: above 0, at most 1,440 (a day)",
    ]
    broken = replace(MILL, loss_fraction=0.0, winding_rise_k=-5.0, rated_rpm=math.nan)
    seed = Seed(temperature_c=math.nan, vibration_mm_s="3", power_kw=-1.0)  # type: ignore[arg-type]
    with pytest.raises(PhysicsError) as caught:
        run(broken, "normal", 10, seed)
    names = [p.split(":")[0] for p in str(caught.value).split("; ")]
    assert names == [
        "rated_rpm",
        "loss_fraction",
        "winding_rise_k",
        "seed.temperature_c",
        "seed.vibration_mm_s",
        "seed.power_kw",
    ]
    assert "loss_fraction: above 0, at most 1" in str(caught.value)


def test_too_many_steps_asks_for_a_longer_step():
    with pytest.raises(PhysicsError, match=r"^step_minutes: at least 10\.52 for 8,760 h"):
        run(MILL, "normal", 8760)
    assert run(MILL, "normal", 8760, step_minutes=10.52)["steps"] <= 50_000


def _plain(value: Any) -> bool:
    """Only JSON's own types, all the way down (numpy floats pass json.dumps, not this)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_output_is_plain_json_downsampled_to_500_points(scenario):
    result = run(spec_for("fdm_printer"), scenario, 8760, step_minutes=20)
    json.dumps(result, allow_nan=False)
    assert _plain(result)
    times = [p["time_hours"] for p in result["series"]]
    assert len(times) == 500 and times[0] == 0 and times[-1] == 8760
    assert times == sorted(times)
    assert result["label"] == SCENARIOS[scenario].label
    notes = " ".join(result["notes"])
    for law in ("ISO 281", "Arrhenius", "Montsinger", "ISO 10816", "exp(-dt/tau)", "Health ="):
        assert law in notes
    csv = series_csv(result).splitlines()
    assert csv[0] == (
        "time_hours,temperature_c,vibration_mm_s,bearing_wear_percent,"
        "insulation_used_percent,load_fraction,power_kw,health_score"
    )
    assert len(csv) == 501
    assert csv[-1].split(",")[0] == "8760.0"


def test_a_short_run_keeps_every_step():
    result = run(MILL, "normal", 2, step_minutes=15)
    assert [p["time_hours"] for p in result["series"]] == [k * 0.25 for k in range(9)]


def test_a_nodes_rated_power_scales_the_heat_path():
    big = spec_for("cnc_mill", 15.0)
    assert big.rated_power_kw == 15.0
    assert big.thermal_resistance_k_per_kw == pytest.approx(MILL.thermal_resistance_k_per_kw / 2)
    assert big.time_constant_h == pytest.approx(MILL.time_constant_h)
    ends = [run(s, "heavy_load", 24)["series"][-1]["temperature_c"] for s in (MILL, big)]
    assert ends[0] == pytest.approx(ends[1])


def test_each_run_says_what_drives_its_health_and_its_life():
    runs = {name: run(MILL, name, 720) for name in SCENARIOS}
    for result in runs.values():
        factors = result["health_factors"]
        # the three factors the explanation names are the ones the health score multiplies
        assert 100 * factors["bearings"] * factors["insulation"] * factors["temperature"] == (
            pytest.approx(result["health_score_end"], abs=0.01)
        )
        health, life = result["explanation"]
        assert health.startswith(f"Health {result['health_score_end']:.1f} = 100 × bearings")
        assert life.startswith(f"Remaining life {result['rul_hours']:,.0f} h, set by the")
    # Overheated: hot all the time (health halved) at a light load; Heavy load: cool enough,
    # past its rating (its bearings wear three times as fast)
    hot, heavy = runs["overheated"], runs["heavy_load"]
    assert hot["health_factors"]["temperature"] == pytest.approx(0.5, abs=0.01)
    assert heavy["health_factors"]["temperature"] == 1.0
    assert hot["health_score_end"] < heavy["health_score_end"]
    assert hot["rul_hours"] > heavy["rul_hours"]
    assert "above the 60 °C limit; it settles at 64.7 °C in a 40 °C room" in hot["explanation"][0]
    assert "shortened 6.7 times by running at 64.7 °C" in hot["explanation"][1]
    assert "at 110% load and 95% duty" in heavy["explanation"][1]


def test_the_comparison_note_explains_a_lower_health_with_a_longer_life():
    runs = {name: run(MILL, name, 720) for name in ("normal", "heavy_load", "overheated")}
    note = compare_note(runs)
    assert note.startswith("Overheated ends with lower health than Heavy load (47.5 against")
    assert "time spent above the temperature limit" in note
    assert "they wear faster under Heavy load than under Overheated" in note
    # rankings that agree need no note
    assert compare_note({name: runs[name] for name in ("normal", "heavy_load")}) == ""
