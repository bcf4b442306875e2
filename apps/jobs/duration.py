"""The learned duration model: XGBoost trained on the platform's own completed parts to correct
the geometric estimate (machines differ, materials and shapes behave differently than the
formula says). It predicts log(actual hours / geometric hours) per unit from the part's geometry,
its process and material, the node's kind and power and the node's own track record; it is
trained by a Celery task once enough history exists, scored on the most recent 20% of parts
(held out, never trained on) against the geometric estimate on the same parts, and becomes the
active estimator only when it is better (apps.core.ml)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb
from django.conf import settings
from django.utils import timezone

from apps.core.ml import Comparison, model_register
from apps.core.models import TrainedModel
from apps.jobs.estimates import (
    MATERIALS,
    PROCESS_MODES,
    NodeLike,
    PartSpec,
    geometric_hours,
    process_mode,
)
from apps.jobs.models import Part, Status
from apps.vendors.models import FabricationNode

NAME = "jobs.duration"
FEATURES = [
    "log_geometric_h",
    "quantity",
    "complexity",
    "log_volume_cm3",
    "log_box_cm3",
    "aspect",
    "mode",
    "process",
    "material",
    "node_kind",
    "rated_power_kw",
    "node_ratio",
]
_MODES = sorted({mode for mode, _ in PROCESS_MODES.values()})
_PROCESSES = sorted(PROCESS_MODES)
_MATERIALS = sorted(MATERIALS)
_KINDS = [kind for kind, _ in FabricationNode.Kind.choices]
HELD_OUT_SHARE = 0.2
PARAMS = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.9,
    "min_child_weight": 2,
    "random_state": 0,
    "n_jobs": 1,
}


def _code(value: str, known: list[str]) -> float:
    value = " ".join(value.lower().split())
    return float(known.index(value)) if value in known else -1.0


def features(spec: PartSpec, node: NodeLike, geometric_h: float, node_ratio: float) -> list[float]:
    x, y, z = sorted(spec.size_mm)
    volume = spec.volume_cm3 if spec.volume_cm3 is not None else x * y * z / 1000 * 0.4
    return [
        math.log(max(geometric_h, 1e-4)),
        float(spec.quantity),
        float(spec.complexity),
        math.log1p(volume),
        math.log1p(x * y * z / 1000),
        z / max(x, 1e-3),
        float(_MODES.index(process_mode(spec.process))),
        _code(spec.process, _PROCESSES),
        _code(spec.material, _MATERIALS),
        _code(node.kind, _KINDS),
        float(node.rated_power_kw),
        math.log(node_ratio),
    ]


@dataclass
class DurationModel:
    """The active model, loaded once per version (estimates ask it for every request)."""

    version: int
    booster: xgb.Booster
    node_ratio: dict[int, float]
    default_ratio: float
    mae_h: float

    @property
    def label(self) -> str:
        return f"xgboost v{self.version} (held-out MAE {self.mae_h:.2f} h per part)"

    def predict(self, rows: Sequence[tuple[PartSpec, NodeLike, float]]) -> list[float]:
        matrix = np.array(
            [
                features(spec, node, geo, self.node_ratio.get(node.pk, self.default_ratio))
                for spec, node, geo in rows
            ],
            dtype=float,
        )
        log_ratio = self.booster.inplace_predict(matrix)
        return [geo * math.exp(r) for (_, _, geo), r in zip(rows, log_ratio, strict=True)]


_loaded: dict[int, DurationModel] = {}


def duration_model_active() -> DurationModel | None:
    row = (
        TrainedModel.objects.filter(name=NAME, is_active=True)
        .only("pk", "version", "metrics", "training")
        .first()
    )
    if row is None:
        return None
    if row.pk not in _loaded:
        full = TrainedModel.objects.get(pk=row.pk)
        booster = xgb.Booster()
        booster.load_model(bytearray(full.artifact))
        _loaded.clear()
        _loaded[row.pk] = DurationModel(
            version=full.version,
            booster=booster,
            node_ratio={int(k): v for k, v in full.training["node_ratio"].items()},
            default_ratio=full.training["default_ratio"],
            mae_h=full.metrics["mae_h"],
        )
    return _loaded[row.pk]


# --- Training --------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    spec: PartSpec
    node: FabricationNode
    geometric_h: float  # per unit
    actual_h: float  # per unit
    finished_at: Any


def history() -> list[History]:
    """Completed parts with a measured run time, oldest first."""
    rows = []
    parts = (
        Part.objects.filter(
            status=Status.COMPLETED,
            started_at__isnull=False,
            finished_at__isnull=False,
            assigned_node__isnull=False,
        )
        .select_related("assigned_node")
        .order_by("finished_at", "id")
    )
    for part in parts.iterator(chunk_size=2000):
        assert part.started_at is not None and part.finished_at is not None
        hours = (part.finished_at - part.started_at).total_seconds() / 3600
        if hours <= 0:
            continue
        spec = PartSpec(
            name=part.name,
            material=part.material,
            process=part.process,
            quantity=part.quantity,
            size_mm=(part.size_x_mm, part.size_y_mm, part.size_z_mm),
            complexity=part.complexity,
            volume_cm3=part.volume_cm3,
        )
        assert part.assigned_node is not None
        rows.append(
            History(
                spec,
                part.assigned_node,
                geometric_hours(spec)[0],
                hours / part.quantity,
                part.finished_at,
            )
        )
    return rows


def _errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    return {
        "mae_h": round(float(np.mean(np.abs(predicted - actual))), 4),
        "mape_pct": round(float(np.mean(np.abs(predicted - actual) / actual) * 100), 2),
    }


def duration_model_train(*, min_history: int | None = None) -> TrainedModel | str:
    """Trains on all completed parts but the newest 20%, scores on those, and registers the
    model (active only if it beats the geometric estimate and the active model on the same
    held-out parts). Returns the registered model, or why nothing was trained."""
    needed = min_history if min_history is not None else settings.JOBS_DURATION_MIN_HISTORY
    rows = history()
    if len(rows) < needed:
        return f"not enough history: {len(rows)} completed parts, {needed} needed"
    cut = int(len(rows) * (1 - HELD_OUT_SHARE))
    train, test = rows[:cut], rows[cut:]

    # each node's median actual/geometric ratio, learned from the training parts only
    ratios: dict[int, list[float]] = defaultdict(list)
    for r in train:
        ratios[r.node.pk].append(r.actual_h / r.geometric_h)
    default = float(np.median([r.actual_h / r.geometric_h for r in train]))
    node_ratio = {pk: float(np.median(v)) for pk, v in ratios.items()}

    def matrix(part_rows: list[History]) -> np.ndarray:
        return np.array(
            [
                features(r.spec, r.node, r.geometric_h, node_ratio.get(r.node.pk, default))
                for r in part_rows
            ],
            dtype=float,
        )

    target = np.array([math.log(r.actual_h / r.geometric_h) for r in train])
    regressor = xgb.XGBRegressor(**PARAMS)
    regressor.fit(matrix(train), target)
    booster = regressor.get_booster()

    quantity = np.array([r.spec.quantity for r in test], dtype=float)
    geometric = np.array([r.geometric_h for r in test]) * quantity
    actual = np.array([r.actual_h for r in test]) * quantity
    predicted = geometric * np.exp(booster.inplace_predict(matrix(test)))
    scores = _errors(predicted, actual)
    baseline = _errors(geometric, actual)
    active = duration_model_active()
    active_mae = None
    if active is not None:
        by_active = (
            np.array(active.predict([(r.spec, r.node, r.geometric_h) for r in test])) * quantity
        )
        active_mae = _errors(by_active, actual)["mae_h"]
    return model_register(
        name=NAME,
        algorithm=f"xgboost {xgb.__version__} regressor on log(actual/geometric hours)",
        artifact=bytes(booster.save_raw("ubj")),
        features=FEATURES,
        metrics={**scores, "baseline": {"geometric": baseline}},
        training={
            "rows": len(train),
            "held_out_rows": len(test),
            "held_out": "the newest 20% of completed parts",
            "from": train[0].finished_at.isoformat(),
            "to": test[-1].finished_at.isoformat(),
            "trained_at": timezone.now().isoformat(),
            "params": PARAMS,
            "node_ratio": {str(k): round(v, 4) for k, v in node_ratio.items()},
            "default_ratio": round(default, 4),
        },
        comparison=Comparison(
            metric="mae_h",
            candidate=scores["mae_h"],
            baseline=baseline["mae_h"],
            active=active_mae,
        ),
    )
