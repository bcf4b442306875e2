"""The failure classifier on its own: features, training, threshold, scoring, serialisation.
Plain numpy/xgboost, no database. The data is a 1,200-row sample of AI4I 2020 (240 failures)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from apps.maintenance.learning.failure import (
    AI4I_MIN_PRECISION,
    AI4I_MIN_RULE_RECALL,
    AI4I_SPLITS,
    FailureModel,
    ai4i_rule_mode_rows,
    ai4i_table,
    failure_evaluate_splits,
    failure_metrics,
    failure_model_train,
    failure_threshold,
    metrics_at,
    stratified_split,
)
from apps.maintenance.learning.features import Table, engineer

SAMPLE = Path(__file__).parent / "data" / "ai4i_sample.csv"


@pytest.fixture(scope="module")
def sample() -> tuple[Table, np.ndarray]:
    return ai4i_table(SAMPLE)


@pytest.fixture(scope="module")
def split(sample: tuple[Table, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return stratified_split(sample[1], test_share=0.2, seed=42)


@pytest.fixture(scope="module")
def model(sample: tuple[Table, np.ndarray], split: tuple[np.ndarray, np.ndarray]) -> FailureModel:
    table, labels = sample
    train, _ = split
    return failure_model_train(table.take(train), labels[train], seed=42)


@pytest.fixture(scope="module")
def held_out(
    sample: tuple[Table, np.ndarray], split: tuple[np.ndarray, np.ndarray]
) -> tuple[Table, np.ndarray]:
    table, labels = sample
    _, test = split
    return table.take(test), labels[test]


# --- features --------------------------------------------------------------------------------


def test_engineer_computes_power_heat_margin_and_strain():
    table = Table(
        ["torque_nm", "spindle_rpm", "temperature_c", "ambient_c", "tool_wear_min"],
        np.array([[40.0, 1500.0, 36.5, 26.0, 100.0], [10.0, 3000.0, 30.0, 31.0, 0.0]]),
    )

    out = engineer(table)

    assert out.columns[:5] == table.columns
    np.testing.assert_array_equal(out.values[:, :5], table.values)
    np.testing.assert_allclose(
        out.column("mech_power_kw"),
        [40 * 1500 * 2 * math.pi / 60 / 1000, 10 * 3000 * 2 * math.pi / 60 / 1000],
        rtol=1e-12,
    )
    np.testing.assert_allclose(out.column("mech_power_kw")[0], 6.283185307179586, rtol=1e-12)
    np.testing.assert_array_equal(out.column("temp_diff_c"), [10.5, -1.0])
    np.testing.assert_array_equal(out.column("wear_torque"), [4000.0, 0.0])


def test_engineer_skips_features_whose_inputs_are_absent():
    table = Table(
        ["torque_nm", "ambient_c", "temperature_c", "vibration_mm_s", "coolant_bar"],
        np.array([[40.0, np.nan, 36.5, 2.5, 6.0], [41.0, np.nan, 37.0, 2.7, 6.1]]),
    )

    out = engineer(table)

    # no spindle_rpm, no tool_wear_min, an all-NaN ambient_c: nothing to engineer
    assert out.columns == table.columns
    np.testing.assert_array_equal(out.values, table.values)


def test_engineer_leaves_nan_in_rows_missing_an_input():
    table = Table(["torque_nm", "spindle_rpm"], np.array([[40.0, 1500.0], [40.0, np.nan]]))

    power = engineer(table).column("mech_power_kw")

    assert not np.isnan(power[0])
    assert np.isnan(power[1])


def test_engineer_twice_changes_nothing():
    table = Table(["torque_nm", "spindle_rpm", "tool_wear_min"], np.array([[40.0, 1500.0, 9.0]]))

    once = engineer(table)
    twice = engineer(once)

    assert twice.columns == once.columns == [*table.columns, "mech_power_kw", "wear_torque"]
    np.testing.assert_array_equal(twice.values, once.values)


def test_table_column_of_absent_signal_is_nan_and_shapes_are_checked():
    table = Table(["torque_nm"], np.array([[1.0], [2.0]]))

    assert np.isnan(table.column("power_kw")).all()
    assert table.column("power_kw").shape == (2,)
    with pytest.raises(ValueError, match="do not fit"):
        Table(["a", "b"], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="duplicate"):
        Table(["a", "a"], np.zeros((1, 2)))


# --- AI4I reader -----------------------------------------------------------------------------


def test_ai4i_table_maps_columns_to_canonical_signals(sample):
    table, labels = sample
    with SAMPLE.open(encoding="utf-8-sig", newline="") as f:
        raw = list(csv.DictReader(f))

    assert table.columns == [
        "variant",
        "ambient_c",
        "temperature_c",
        "spindle_rpm",
        "torque_nm",
        "tool_wear_min",
    ]
    assert len(table) == len(raw) == 1200
    assert int(labels.sum()) == sum(r["Machine failure"] == "1" for r in raw) == 240
    for i in (0, 599, 1199):
        row = raw[i]
        assert table.column("variant")[i] == {"L": 0, "M": 1, "H": 2}[row["Type"]]
        assert table.column("ambient_c")[i] == pytest.approx(
            float(row["Air temperature [K]"]) - 273.15
        )
        assert table.column("temperature_c")[i] == pytest.approx(
            float(row["Process temperature [K]"]) - 273.15
        )
        assert table.column("spindle_rpm")[i] == float(row["Rotational speed [rpm]"])
        assert table.column("torque_nm")[i] == float(row["Torque [Nm]"])
        assert table.column("tool_wear_min")[i] == float(row["Tool wear [min]"])
    # the failure-mode columns are parts of the label, never features
    assert not {"TWF", "HDF", "PWF", "OSF", "RNF"} & set(table.columns)


def test_ai4i_table_rejects_a_file_without_the_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("UDI,Type\n1,L\n")

    with pytest.raises(ValueError, match="missing columns"):
        ai4i_table(path)


# --- split, threshold, metrics ---------------------------------------------------------------


def test_stratified_split_keeps_the_failure_share_and_is_repeatable(sample):
    labels = sample[1]

    train, test = stratified_split(labels, test_share=0.2, seed=42)

    assert len(test) == 240
    assert sorted([*train, *test]) == list(range(len(labels)))
    assert labels[test].sum() == 48  # 20% of the 240 failures
    again = stratified_split(labels, test_share=0.2, seed=42)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(stratified_split(labels, test_share=0.2, seed=7)[1], test)


def test_failure_threshold_keeps_precision_and_maximises_recall():
    labels = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    probabilities = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])

    # >= 0.6 flags three failures and no false alarm; lower costs precision
    assert failure_threshold(labels, probabilities, min_precision=0.92) == 0.6
    # >= 0.4 flags all four failures and one false alarm: precision 0.8
    assert failure_threshold(labels, probabilities, min_precision=0.8) == 0.4


def test_failure_threshold_of_equal_recall_takes_the_one_without_extra_false_alarms():
    labels = np.array([1, 0, 0] + [1] * 20)
    probabilities = np.arange(23) / 100

    # >= 0.02 and >= 0.03 both catch 20 of 21 at precision >= 0.92; 0.02 adds a false alarm
    assert failure_threshold(labels, probabilities, min_precision=0.92) == 0.03


def test_failure_threshold_falls_back_to_best_f1_when_never_precise_enough():
    labels = np.array([1, 0, 1, 0])
    probabilities = np.array([0.1, 0.2, 0.3, 0.4])

    assert failure_threshold(labels, probabilities, min_precision=0.92) == 0.1


def test_metrics_at_counts_the_failure_class():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    probabilities = np.array([0.9, 0.8, 0.7, 0.2, 0.75, 0.1, 0.1, 0.1, 0.1, 0.1])

    m = metrics_at(labels, probabilities, 0.5)

    assert (m.precision, m.recall) == (0.75, 0.75)
    assert m.f1 == pytest.approx(0.75)
    assert m.roc_auc == pytest.approx(22 / 24)
    assert (m.positives, m.rows, m.threshold) == (4, 10, 0.5)
    assert m.as_dict()["recall"] == 0.75


# --- training and scoring --------------------------------------------------------------------


def test_model_finds_failures_in_held_out_rows(model, held_out):
    table, labels = held_out

    m = failure_metrics(model, table, labels)

    # measured on this sample at seed 42: ROC-AUC 0.987, precision 0.933, recall 0.875
    # (seeds 1-4: ROC-AUC >= 0.955, precision >= 0.93, recall >= 0.81); loose floors
    assert m.roc_auc > 0.93
    assert m.precision > 0.8
    assert m.recall > 0.7
    assert m.positives == 48
    assert 0 < model.threshold < 1


def test_model_uses_the_engineered_features(model):
    assert model.features == [
        "variant",
        "ambient_c",
        "temperature_c",
        "spindle_rpm",
        "torque_nm",
        "tool_wear_min",
        "mech_power_kw",
        "temp_diff_c",
        "wear_torque",
    ]


def test_threshold_is_chosen_without_held_out_labels(sample, split, model):
    # given: the same training rows, and held-out labels shuffled into something else
    table, labels = sample
    train, test = split
    shuffled = labels.copy()
    shuffled[test] = np.random.default_rng(0).permutation(labels[test])
    shuffled[test[:10]] = 1 - shuffled[test[:10]]
    assert not np.array_equal(shuffled[test], labels[test])

    # when
    again = failure_model_train(table.take(train), shuffled[train], seed=42)

    # then: nothing about the model moved
    assert again.threshold == model.threshold
    assert again.to_bytes() == model.to_bytes()


def test_threshold_follows_the_training_labels(sample, split, model):
    table, labels = sample
    train, _ = split
    noisy = labels[train].copy()
    noisy[np.random.default_rng(1).choice(len(noisy), 60, replace=False)] ^= 1

    other = failure_model_train(table.take(train), noisy, seed=42)

    assert other.threshold != model.threshold


def test_to_bytes_round_trip_scores_identically(model, held_out):
    table, _ = held_out

    loaded = FailureModel.from_bytes(
        model.to_bytes(), features=model.features, threshold=model.threshold
    )

    np.testing.assert_array_equal(loaded.probability(table), model.probability(table))
    assert loaded.features == model.features
    assert loaded.threshold == model.threshold


def test_probability_matches_columns_by_name(model, held_out):
    table, _ = held_out
    order = list(reversed(range(len(table.columns))))
    reordered = Table([table.columns[i] for i in order], table.values[:, order])
    extra = table.with_columns({"coolant_bar": np.full(len(table), 6.0)})

    expected = model.probability(table)

    np.testing.assert_array_equal(model.probability(reordered), expected)
    np.testing.assert_array_equal(model.probability(extra), expected)


def test_probability_treats_a_missing_signal_as_nan(model, held_out):
    table, _ = held_out
    keep = [i for i, c in enumerate(table.columns) if c != "tool_wear_min"]
    without_wear = Table([table.columns[i] for i in keep], table.values[:, keep])
    nan_wear = table.values.copy()
    nan_wear[:, table.columns.index("tool_wear_min")] = np.nan

    scores = model.probability(without_wear)

    assert scores.shape == (len(table),)
    assert np.isfinite(scores).all()
    assert not np.array_equal(scores, model.probability(table))
    np.testing.assert_array_equal(scores, model.probability(Table(table.columns, nan_wear)))


def test_probability_of_no_rows_is_empty(model):
    assert model.probability(Table(["torque_nm"], np.zeros((0, 1)))).shape == (0,)


def test_training_needs_both_classes_and_one_label_per_row(sample):
    table, labels = sample

    with pytest.raises(ValueError, match="each class"):
        failure_model_train(table, np.zeros(len(table), dtype=int))
    with pytest.raises(ValueError, match="labels for"):
        failure_model_train(table, labels[:-1])
    with pytest.raises(ValueError, match="0 .* or 1"):
        failure_model_train(table, labels * 2)


# --- the AI4I bar ----------------------------------------------------------------------------

FULL_AI4I = Path(__file__).parent / "data" / "ai4i2020.csv"  # CC BY 4.0: data/README.md


def test_rule_mode_rows_mark_the_hdf_pwf_osf_failures():
    with SAMPLE.open(encoding="utf-8-sig", newline="") as f:
        raw = list(csv.DictReader(f))

    flags = ai4i_rule_mode_rows(SAMPLE)

    assert flags.shape == (1200,)
    for i, row in enumerate(raw):
        assert flags[i] == (row["HDF"] == "1" or row["PWF"] == "1" or row["OSF"] == "1")
    assert 0 < flags.sum() < 240  # TWF and RNF failures are not rule-based


def test_ai4i_bar_over_ten_stratified_splits():
    """The issue's bar on the full AI4I 2020 file: over 10 stratified splits (seeds 0-9), mean
    precision >= 0.92 and mean recall >= 0.95 on the failures with a rule-based mode. Each split
    trains the whole procedure on its 80% and scores its held-out 20%."""
    table, labels = ai4i_table(FULL_AI4I)
    flags = ai4i_rule_mode_rows(FULL_AI4I)

    evaluation = failure_evaluate_splits(table, labels, rule_mode=flags, splits=AI4I_SPLITS)

    assert [s.seed for s in evaluation.splits] == list(range(10))
    assert all(s.failures == 68 for s in evaluation.splits)  # 20% of the 339 failures
    # measured 2026-12-07: mean precision 0.944, rule-mode recall 0.965, all failures 0.816
    assert evaluation.mean_precision >= AI4I_MIN_PRECISION == 0.92
    assert evaluation.mean_rule_recall >= AI4I_MIN_RULE_RECALL == 0.95
    # the random TWF/RNF failures keep the recall of all failures below the rule-mode recall
    assert evaluation.mean_recall < evaluation.mean_rule_recall
    assert evaluation.passes()


def test_split_evaluation_checks_its_flags(sample):
    table, labels = sample
    with pytest.raises(ValueError, match="rule-mode flags"):
        failure_evaluate_splits(table, labels, rule_mode=np.zeros(3, dtype=bool), splits=1)
