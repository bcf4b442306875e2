"""The spatial mixer against Bond's law, the mechanics and heat balances computed here
independently, and its input validation."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest

from apps.twins.mixer import (
    MATERIALS,
    RECIPES,
    MixerError,
    Params,
    bond_product_size,
    bond_specific_energy,
    catalog,
    outcome,
    params_from,
)


def run(material: str, recipe: str, **changes: float) -> dict[str, Any]:
    return outcome(material, recipe, replace(RECIPES[recipe].defaults, **changes))


def test_bond_law_by_hand_and_round_trip():
    # W_i 10 kWh/t from 10,000 um to 100 um: 10 x 10 x (1/10 - 1/100) = 9 kWh/t
    assert bond_specific_energy(10.0, 10_000.0, 100.0) == pytest.approx(9.0)
    for work_index, feed, product in [(13.0, 3000.0, 75.0), (200.0, 3000.0, 5.0), (900, 1e3, 800)]:
        energy = bond_specific_energy(work_index, feed, product)
        assert energy > 0
        assert bond_product_size(energy, work_index, feed) == pytest.approx(product, rel=1e-9)
    assert bond_product_size(0.0, 50.0, 3000.0) == pytest.approx(3000.0)  # no energy, no grinding


def test_specific_energy_follows_from_the_mechanics():
    recipe = RECIPES["ball_mill"]
    params = Params(rpm=50, temperature_c=20, force_n=400, duration_min=90, batch_kg=2)
    result = outcome("aluminium_6061", "ball_mill", params)
    speed = 2 * math.pi * recipe.effective_radius_m * 50 / 60
    joules = recipe.efficiency * 400 * speed * 90 * 60
    assert result["energy_kwh"] == pytest.approx(joules / 3.6e6, abs=1e-6)
    assert result["specific_energy_kwh_t"] == pytest.approx(joules / 3.6e6 / 0.002, rel=1e-4)
    # aluminium at or above 20 C keeps its catalog index: P80 is Bond's law of that energy
    expected = bond_product_size(
        joules / 3.6e6 / 0.002, MATERIALS["aluminium_6061"].bond_work_index_kwh_t, 3000.0
    )
    assert result["particle_size_um"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("duration_min", [0.5, 1, 2, 5, 10, 20, 40, 60]),
        ("rpm", [300, 600, 900, 1200, 1500, 1800]),
        ("force_n", [10, 20, 40, 80, 120, 200]),
    ],
)
def test_more_energy_gives_smaller_particles_down_to_the_grind_limit(field, values):
    limit = RECIPES["cryo_mill"].grind_limit_um
    sizes = [
        run("PLA", "cryo_mill", batch_kg=0.05, **{field: v})["particle_size_um"] for v in values
    ]
    above = [s for s in sizes if s > limit]
    assert len(above) >= 2
    assert above == sorted(above, reverse=True) and len(set(above)) == len(above)
    assert all(s >= limit for s in sizes)
    # at the top of the range and a tiny batch, the mill reaches its limit and stays there
    finest = run("PLA", "cryo_mill", batch_kg=0.001, duration_min=60, rpm=1800, force_n=200)
    assert finest["particle_size_um"] == limit
    assert any("grind limit" in w for w in finest["warnings"])


def test_cryogenic_pla_breaks_brittle_and_finer_than_at_80_c():
    cold = run("PLA", "cryo_mill", temperature_c=-196)
    warm = run("PLA", "cryo_mill", temperature_c=80)
    assert cold["regime"] == "brittle" and warm["regime"] == "ductile"
    assert cold["particle_size_um"] * 5 < warm["particle_size_um"]
    assert cold["specific_energy_kwh_t"] == warm["specific_energy_kwh_t"]  # same mechanics
    assert "above PLA's glass transition (60 C): ductile, poor size reduction" in warm["warnings"]
    assert cold["factors"]["effective_work_index_kwh_t"] < MATERIALS["PLA"].bond_work_index_kwh_t


def test_toughened_and_ferritic_materials_turn_brittle_only_below_their_transition():
    abs_room, abs_cold = run("ABS", "cryo_mill", temperature_c=20), run("ABS", "cryo_mill")
    assert abs_room["regime"] == "ductile" and abs_cold["regime"] == "brittle"
    assert any("ductile-brittle transition (-80 C)" in w for w in abs_room["warnings"])
    ferritic_room, ferritic_cold = (
        run("steel_4140", "cryo_mill", temperature_c=20),
        run("steel_4140", "cryo_mill"),
    )
    assert ferritic_room["regime"] == "ductile" and ferritic_cold["regime"] == "brittle"
    assert ferritic_cold["particle_size_um"] * 5 < ferritic_room["particle_size_um"]
    # austenitic 316L has no transition: cold helps only a little
    fcc_room, fcc_cold = (
        run("steel_316L", "cryo_mill", temperature_c=20),
        run("steel_316L", "cryo_mill"),
    )
    assert fcc_cold["regime"] == "ductile"
    assert 0.7 * fcc_room["particle_size_um"] < fcc_cold["particle_size_um"]
    assert fcc_cold["particle_size_um"] < fcc_room["particle_size_um"]


def test_near_melting_particles_agglomerate_and_defects_rise():
    # far above Tg the work index has levelled off, so a size jump here is agglomeration
    ductile = run("PLA", "ball_mill", temperature_c=130)  # about 10 C of milling heat on top
    sticky = run("PLA", "ball_mill", temperature_c=150)
    assert ductile["regime"] == "ductile" and sticky["regime"] == "agglomerating"
    assert sticky["defect_risk"] > ductile["defect_risk"] + 0.2
    assert sticky["particle_size_um"] > 1.5 * ductile["particle_size_um"]
    index = sticky["factors"]["effective_work_index_kwh_t"]
    assert index == pytest.approx(ductile["factors"]["effective_work_index_kwh_t"], rel=0.02)
    assert any("melting point (170 C)" in w for w in sticky["warnings"])


def test_milling_heat_can_lift_a_batch_out_of_its_brittle_range():
    """A cold-jacketed but poorly cooled high-shear run heats PLA past Tg: the regime follows
    the product temperature, not the set one."""
    gentle = run("PLA", "high_shear", temperature_c=20, rpm=300, force_n=5)
    hard = run("PLA", "high_shear", temperature_c=20, rpm=3000, force_n=100, duration_min=60)
    assert gentle["regime"] == "brittle" and hard["regime"] != "brittle"
    assert hard["factors"]["product_temperature_c"] > MATERIALS["PLA"].glass_transition_c
    assert hard["defect_risk"] > gentle["defect_risk"]
    assert any("batch heats by about" in w for w in hard["warnings"])


def test_homogeneity_rises_with_duration_and_stays_within_0_and_1():
    values = [
        run("PEEK", "ball_mill", rpm=10, duration_min=m)["homogeneity"]
        for m in (1, 10, 60, 300, 1440)
    ]
    assert values == sorted(values) and values[0] < values[2] < values[-1]
    assert all(0 <= v <= 1 for v in values)
    # 1 - exp(-revolutions / N_mix), checked by hand for 10 rpm x 60 min
    assert values[2] == pytest.approx(1 - math.exp(-600 / 3000), abs=1e-4)
    assert run("PEEK", "high_shear", rpm=3000, duration_min=120)["homogeneity"] <= 1
    short = run("PEEK", "ball_mill", rpm=10, duration_min=1)
    assert any("under-processed" in w for w in short["warnings"])
    assert short["defect_risk"] > run("PEEK", "ball_mill", rpm=10, duration_min=1440)["defect_risk"]


def test_liquid_nitrogen_only_below_ambient_and_more_when_colder():
    assert run("PA12", "cryo_mill", temperature_c=20)["ln2_kg"] == 0
    assert run("PA12", "cryo_mill", temperature_c=60)["ln2_kg"] == 0
    used = [run("PA12", "cryo_mill", temperature_c=t)["ln2_kg"] for t in (10, -50, -120, -196)]
    assert all(u > 0 for u in used)
    assert used == sorted(used) and len(set(used)) == len(used)
    # heat to remove by hand: batch and mill from 20 C to -196 C plus the milling energy
    recipe, pa12 = RECIPES["cryo_mill"], MATERIALS["PA12"]
    d = recipe.defaults
    heat_capacity = d.batch_kg * pa12.specific_heat_j_kg_k + recipe.mill_heat_capacity_j_k
    milling = (
        recipe.efficiency
        * d.force_n
        * (2 * math.pi * recipe.effective_radius_m * d.rpm / 60)
        * d.duration_min
        * 60
    )
    assert used[-1] == pytest.approx((heat_capacity * 216 + milling) / 199_000, abs=1e-4)
    assert run("PA12", "ball_mill", temperature_c=-20)["ln2_kg"] > 0


def test_params_from_parses_numbers_and_strings_and_fills_defaults():
    params = params_from({"rpm": "600", "temperature_c": -150, "force_n": " 50.5 "}, "cryo_mill")
    defaults = RECIPES["cryo_mill"].defaults
    assert params == Params(
        rpm=600.0,
        temperature_c=-150.0,
        force_n=50.5,
        duration_min=defaults.duration_min,
        batch_kg=defaults.batch_kg,
    )
    for name, recipe in RECIPES.items():
        assert params_from({}, name) == recipe.defaults


def test_params_from_names_every_bad_field_and_unknown_key():
    raw = {
        "rpm": "fast",
        "force_n": float("nan"),
        "duration_min": -1,
        "batch_kg": True,
        "temperature_c": "inf",
        "colour": "red",
    }
    with pytest.raises(MixerError) as error:
        params_from(raw, "ball_mill")
    problems = str(error.value).split("; ")
    assert problems == [
        "colour: not a parameter (allowed: rpm, temperature_c, force_n, duration_min, batch_kg)",
        "rpm: a number from 10 to 75 rpm",
        "temperature_c: a number from -20 to 300 C",
        "force_n: a number from 50 to 1000 N",
        "duration_min: a number from 1 to 1440 min",
        "batch_kg: a number from 0.1 to 5 kg",
    ]
    with pytest.raises(MixerError, match=r"^temperature_c: a number from -20 to 300 C$"):
        params_from({"temperature_c": -196, "rpm": 60}, "ball_mill")  # cryogenic: cryo_mill only
    with pytest.raises(MixerError, match="rpm: a number from 300 to 1800 rpm"):
        params_from({"rpm": None}, "cryo_mill")
    with pytest.raises(MixerError, match="recipe: one of ball_mill, planetary_mill, cryo_mill"):
        params_from({}, "blender")


def test_outcome_rejects_unknown_choices_and_out_of_range_params():
    with pytest.raises(MixerError) as error:
        outcome("wood", "blender", RECIPES["ball_mill"].defaults)
    assert str(error.value) == (
        f"material: one of {', '.join(MATERIALS)}; recipe: one of {', '.join(RECIPES)}"
    )
    with pytest.raises(MixerError, match="rpm: a number from 10 to 75 rpm"):
        run("PLA", "ball_mill", rpm=1500)


def test_outcome_is_plain_json_for_every_material_and_recipe():
    def numbers_are_plain(value: Any) -> bool:
        if isinstance(value, dict):
            return all(numbers_are_plain(v) for v in value.values())
        if isinstance(value, list | tuple):
            return all(numbers_are_plain(v) for v in value)
        return value is None or type(value) in (str, bool, int, float)

    for material in MATERIALS:
        for recipe in RECIPES:
            result = run(material, recipe)
            text = json.dumps(result, allow_nan=False)
            assert json.loads(text)["material"] == material
            assert numbers_are_plain(result)
            assert result["regime"] in ("brittle", "ductile", "agglomerating")
            assert 0 <= result["defect_risk"] <= 1 and 0 <= result["homogeneity"] <= 1
            assert result["particle_size_um"] >= RECIPES[recipe].grind_limit_um
            assert result["constants"]["source"] == "defaults"
            assert result["constants"]["material"]["label"] == MATERIALS[material].label


def test_a_catalog_entry_can_override_the_material_constants():
    tougher = replace(MATERIALS["PLA"], bond_work_index_kwh_t=400.0)
    base = run("PLA", "ball_mill")
    over = outcome(
        "PLA", "ball_mill", RECIPES["ball_mill"].defaults, props=tougher, source="catalog #7"
    )
    assert over["particle_size_um"] > base["particle_size_um"]
    assert over["constants"]["source"] == "catalog #7"
    assert over["constants"]["material"]["bond_work_index_kwh_t"] == 400.0


def test_catalog_lists_every_material_and_recipe_with_ranges_and_defaults():
    data = json.loads(json.dumps(catalog()))
    assert set(data["materials"]) == set(MATERIALS) >= {
        "PLA", "ABS", "PETG", "PA12", "PEEK", "aluminium_6061", "steel_316L", "CFRP"
    }  # fmt: skip
    assert set(data["recipes"]) == set(RECIPES) >= {
        "ball_mill", "planetary_mill", "cryo_mill", "high_shear"
    }  # fmt: skip
    assert data["recipes"]["cryo_mill"]["ranges"]["temperature_c"]["min"] == -196
    for recipe in data["recipes"].values():
        assert set(recipe["ranges"]) == set(data["parameters"])
        for info in recipe["ranges"].values():
            assert info["min"] <= info["default"] <= info["max"] and info["unit"]
    assert data["materials"]["PLA"]["glass_transition_c"] == 60
