"""apps.core.labels: every code a page, notification or e-mail shows becomes words with units."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from apps.core import labels


@pytest.mark.parametrize(
    ("code", "group", "words"),
    [
        ("power_kw", "signal", "Power"),
        ("vibration_mm_s", None, "Vibration"),
        ("cnc_mill", "node_kind", "CNC mill"),
        ("fdm_printer", None, "FDM printer"),
        ("petg", "material", "PETG"),
        ("aluminium_6061", "material", "Aluminium 6061"),
        ("fdm", "process", "FDM printing"),
        ("laser_cutting", None, "Laser cutting"),
        ("nozzle_c", "playbook_setting", "Nozzle temperature"),
        ("near_failure", "metric", "Near failure"),
        ("low_rul", "issue_type", "Remaining life below plan"),
        ("critical", "severity", "Critical"),
    ],
)
def test_known_codes_read_as_their_labels(code, group, words):
    assert labels.label(code, group) == words


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("power_kw", "Power (kW)"),
        ("temperature_c", "Temperature (°C)"),
        ("baseline_mae_h", "Baseline MAE (h)"),
        ("rmse_cycles", "RMSE (cycles)"),
        ("within_h", "Window before failure (h)"),
        ("nozzle_c", "Nozzle temperature (°C)"),
        ("first_layer_mm_s", "First-layer speed (mm/s)"),
        ("coolant_flow_l_min", "Coolant flow (l/min)"),
        ("offpeak_price_per_kwh", "Off-peak price per kWh"),
        ("cnc_mill", "CNC mill"),
    ],
)
def test_labels_with_units(code, words):
    assert labels.label_with_unit(code) == words


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("spindle_wobble_mm", "Spindle wobble"),
        ("never_seen_before", "Never seen before"),
        ("weird__code_", "Weird code"),
        ("Already words", "Already words"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_an_unknown_code_is_spelled_out_and_never_raises(code, words):
    assert labels.label(code) == words
    assert labels.label(code, "no_such_group") == words


def test_an_unknown_code_keeps_its_unit():
    assert labels.label_with_unit("spindle_wobble_mm") == "Spindle wobble (mm)"
    assert labels.unit("spindle_wobble_mm") == "mm"
    assert labels.unit("no_unit_here") == ""


def test_quantities_carry_their_unit():
    assert labels.quantity(14.957, "power_kw") == "14.96 kW"
    assert labels.quantity(55, "progress_pct") == "55%"
    assert labels.quantity(123456.7, "spindle_rpm") == "123457 rpm"
    assert labels.quantity(None, "power_kw") == "—"
    assert labels.quantity("n/a", "power_kw") == "n/a"
    assert labels.quantity(3, None) == "3"


def test_the_alert_sentence():
    assert (
        labels.alert_sentence(signal="power_kw", value=14.957, threshold=11.25, node_name="Mill-01")
        == "Power 14.96 kW above the critical limit of 11.25 kW on Mill-01"
    )
    assert (
        labels.alert_sentence(
            signal="coolant_flow_l_min", value=3, threshold=5, mode="below", severity="warning"
        )
        == "Coolant flow 3 l/min below the warning limit of 5 l/min"
    )
    assert labels.alert_sentence(
        signal="temperature_c", value=-6.0, threshold=5, mode="rate", node_name="Printer-01"
    ) == (
        "Temperature changing faster than the critical limit of 5 °C a minute "
        "(6 °C a minute) on Printer-01"
    )
    assert (
        labels.alert_resolved_sentence(signal="power_kw", node_name="Mill-01")
        == "Power back within its limits on Mill-01"
    )


def test_codes_never_shown_lists_the_registered_snake_case_codes():
    codes = labels.codes_never_shown()
    assert {"power_kw", "cnc_mill", "fdm_printer", "near_failure", "nozzle_c"} <= codes
    assert "laser_cutting" in codes and "aluminium_6061" in codes
    # single words are ordinary words too: a page test could not tell them from prose
    assert "fdm" not in codes and "petg" not in codes
    assert all("_" in code for code in codes)


def test_template_filters():
    html = Template(
        "{% load labels %}{{ kind|label }}|{{ signal|label_unit }}|{{ value|quantity:signal }}|"
        "{{ materials|labels:'material' }}"
    ).render(
        Context(
            {"kind": "cnc_mill", "signal": "power_kw", "value": 7.5, "materials": ["pla", "petg"]}
        )
    )
    assert html == "CNC mill|Power (kW)|7.5 kW|PLA, PETG"


def test_words_leaves_free_text_alone_and_labels_codes():
    assert labels.words("cnc_mill") == "CNC mill"
    assert labels.words("petg") == "PETG"  # a registered code, though one word
    assert labels.words("demo") == "demo"
    assert labels.words("Line 3, bay B") == "Line 3, bay B"
    assert labels.words(None) == ""
    assert labels.is_code("power_kw") and not labels.is_code("Power") and not labels.is_code(3)
