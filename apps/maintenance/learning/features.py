"""A small column table of machine signals and the features the failure model learns from.

Signals use the platform's names (`temperature_c`, `ambient_c`, `spindle_rpm`, `torque_nm`,
`power_kw`, `vibration_mm_s`, `tool_wear_min`, `variant`); NaN means "not measured". Engineered
features are generic physics (power, heat margin, strain); the thresholds at which a machine fails
are left for the model to learn from history.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# product quality code of the `variant` signal
VARIANTS = {"L": 0.0, "M": 1.0, "H": 2.0}


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays element-wise is not equality
class Table:
    columns: list[str]
    values: np.ndarray  # float64, shape (rows, len(columns)); NaN = missing

    def __post_init__(self) -> None:
        # frozen, so the float64 copy goes in through object.__setattr__
        object.__setattr__(self, "values", np.asarray(self.values, dtype=np.float64))
        if self.values.ndim != 2 or self.values.shape[1] != len(self.columns):
            raise ValueError(
                f"values of shape {self.values.shape} do not fit {len(self.columns)} columns"
            )
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"duplicate column names in {self.columns}")

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def column(self, name: str) -> np.ndarray:
        """The column's values; all NaN if the table has no such column."""
        if name not in self.columns:
            return np.full(len(self), np.nan)
        return self.values[:, self.columns.index(name)]

    def has(self, name: str) -> bool:
        """Whether the column exists and holds at least one value."""
        return name in self.columns and not bool(np.isnan(self.column(name)).all())

    def take(self, rows: np.ndarray) -> Table:
        """The given rows (indices or a boolean mask), all columns."""
        return Table(list(self.columns), self.values[rows])

    def with_columns(self, extra: dict[str, np.ndarray]) -> Table:
        if not extra:
            return self
        added = np.column_stack([np.asarray(v, dtype=np.float64) for v in extra.values()])
        return Table(self.columns + list(extra), np.hstack([self.values, added]))


def _mech_power_kw(t: Table) -> np.ndarray:
    power: np.ndarray = t.column("torque_nm") * t.column("spindle_rpm") * (2 * math.pi / 60) / 1000
    return power


def _temp_diff_c(t: Table) -> np.ndarray:
    diff: np.ndarray = t.column("temperature_c") - t.column("ambient_c")
    return diff


def _wear_torque(t: Table) -> np.ndarray:
    product: np.ndarray = t.column("tool_wear_min") * t.column("torque_nm")
    return product


# name -> (inputs that must be present, formula); order = column order in the result
ENGINEERED: dict[str, tuple[tuple[str, ...], Callable[[Table], np.ndarray]]] = {
    "mech_power_kw": (("torque_nm", "spindle_rpm"), _mech_power_kw),
    "temp_diff_c": (("temperature_c", "ambient_c"), _temp_diff_c),
    "wear_torque": (("tool_wear_min", "torque_nm"), _wear_torque),
}


def engineer(table: Table) -> Table:
    """`table` plus every engineered feature whose inputs it holds; other columns pass through.
    A feature the table already has is kept as it is, so engineering twice changes nothing."""
    extra = {
        name: formula(table)
        for name, (inputs, formula) in ENGINEERED.items()
        if name not in table.columns and all(table.has(i) for i in inputs)
    }
    return table.with_columns(extra)
