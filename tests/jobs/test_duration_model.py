"""The learned duration model: trained on completed parts, scored on the newest ones held out,
active only when it beats the geometric estimate, then used by the estimates."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.core.ml import Comparison, model_register, model_rollback
from apps.core.models import TrainedModel
from apps.jobs.duration import NAME, duration_model_active, duration_model_train
from apps.jobs.estimates import PartSpec, geometric_hours
from apps.jobs.models import Part, Status
from apps.jobs.services import job_estimate_preview
from apps.jobs.tasks import duration_model_train_task
from apps.users.models import Organization
from tests.fixtures.shop import Shop
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db

# How the shop's machines really behave: Printer-A runs 1.6x the formula, Printer-B 3x;
# PETG prints 1.3x slower than PLA; log-normal noise of 10%.
SPEED = {"Printer-A": 1.6, "Printer-B": 3.0}
MATERIAL = {"PLA": 1.0, "PETG": 1.3}


def truth(spec: PartSpec, node_name: str) -> float:
    return geometric_hours(spec)[0] * SPEED[node_name] * MATERIAL[spec.material]


def make_history(shop: Shop, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    studio = Organization.objects.get(slug="studio")
    job = JobFactory.create(owner=shop.designer, organization=studio, status=Status.COMPLETED)
    start = timezone.now() - timedelta(days=count)
    parts = []
    for i in range(count):
        node = shop.printer_a if rng.random() < 0.5 else shop.printer_b
        size = (rng.uniform(10, 200), rng.uniform(10, 200), rng.uniform(5, 200))
        spec = PartSpec(
            name=f"p{i}",
            material=rng.choice(["PLA", "PETG"]),
            process="fdm",
            quantity=rng.randint(1, 4),
            size_mm=size,
            complexity=rng.randint(1, 10),
        )
        hours = truth(spec, node.name) * spec.quantity * math.exp(rng.gauss(0, 0.1))
        began = start + timedelta(days=i)
        parts.append(
            Part(
                job=job,
                name=spec.name,
                material=spec.material,
                process="fdm",
                quantity=spec.quantity,
                size_x_mm=size[0],
                size_y_mm=size[1],
                size_z_mm=size[2],
                complexity=spec.complexity,
                status=Status.COMPLETED,
                assigned_node=node,
                started_at=began,
                finished_at=began + timedelta(hours=hours),
                quality_score=1.0,
                progress_pct=100,
            )
        )
    Part.objects.bulk_create(parts)


def test_too_little_history_trains_nothing(shop: Shop, settings):
    settings.JOBS_DURATION_MIN_HISTORY = 50
    make_history(shop, 20)
    assert duration_model_train() == "not enough history: 20 completed parts, 50 needed"
    assert not TrainedModel.objects.exists()
    preview = job_estimate_preview(
        by=shop.designer,
        parts=[
            {
                "name": "a",
                "material": "PLA",
                "process": "fdm",
                **dict.fromkeys(("size_x_mm", "size_y_mm", "size_z_mm"), 40),
            }
        ],
    )
    assert preview["model"] == "geometric"


def test_the_model_learns_what_the_formula_misses_and_estimates_use_it(shop: Shop):
    make_history(shop, 240)
    model = duration_model_train(min_history=50)
    assert isinstance(model, TrainedModel)
    assert model.is_active and model.version == 1 and model.decision.startswith("activated")
    assert model.training["rows"] == 192 and model.training["held_out_rows"] == 48
    learned, geometric = model.metrics["mae_h"], model.metrics["baseline"]["geometric"]["mae_h"]
    assert learned < 0.5 * geometric  # held-out parts: it knows the machines' real speed
    assert model.metrics["mape_pct"] < 25

    part = {"name": "box", "material": "PETG", "process": "fdm", "quantity": 2}
    size = {"size_x_mm": 120, "size_y_mm": 80, "size_z_mm": 60}
    preview = job_estimate_preview(by=shop.designer, parts=[{**part, **size}])
    assert preview["model"].startswith("xgboost v1 (held-out MAE")
    estimated = preview["parts"][0]
    chosen = "Printer-A" if estimated["node"] == shop.printer_a.pk else "Printer-B"
    spec = PartSpec(
        name="box", material="PETG", process="fdm", quantity=2, size_mm=(120.0, 80.0, 60.0)
    )
    assert chosen == "Printer-A"  # the faster machine is also the cheaper one now
    real = truth(spec, chosen) * 2
    assert abs(estimated["duration_h"] - real) / real < 0.2
    assert abs(geometric_hours(spec)[0] * 2 - real) / real > 0.5  # the formula alone is far off


def test_a_model_replaces_the_active_one_only_if_not_worse_and_can_be_rolled_back():
    def register(candidate: float, baseline: float, active: float | None) -> TrainedModel:
        return model_register(
            name="demo",
            algorithm="test",
            artifact=b"x",
            features=["f"],
            metrics={"mae_h": candidate},
            training={},
            comparison=Comparison("mae_h", candidate, baseline, active),
        )

    first = register(1.0, 2.0, None)
    assert first.is_active
    worse_than_baseline = register(2.5, 2.0, 1.0)
    assert not worse_than_baseline.is_active and "baseline" in worse_than_baseline.decision
    worse_than_active = register(1.5, 2.0, 1.2)
    assert not worse_than_active.is_active and "active model" in worse_than_active.decision
    better = register(0.8, 2.0, 1.1)
    assert better.is_active and better.version == 4
    assert TrainedModel.objects.filter(name="demo", is_active=True).get() == better

    model_rollback(name="demo", version=1)
    assert TrainedModel.objects.filter(name="demo", is_active=True).get().version == 1
    assert "rollback" in TrainedModel.objects.get(name="demo", version=1).decision


def test_retraining_compares_with_the_active_model_on_the_same_parts(shop: Shop):
    make_history(shop, 120)
    first = duration_model_train(min_history=50)
    assert isinstance(first, TrainedModel) and first.is_active
    make_history(shop, 60, seed=8)  # more history, newer
    second = duration_model_train(min_history=50)
    assert isinstance(second, TrainedModel) and second.version == 2
    compared = second.metrics["comparison"]
    assert compared["active"] is not None and compared["metric"] == "mae_h"
    assert second.is_active == (compared["candidate"] <= compared["active"])
    active = duration_model_active()
    assert active is not None and active.version == (2 if second.is_active else 1)


def test_the_nightly_task_and_the_command_report_the_error(shop: Shop, capsys, settings):
    settings.JOBS_DURATION_MIN_HISTORY = 50
    report = duration_model_train_task.delay().get()
    assert report == {
        "trained": False,
        "reason": "not enough history: 0 completed parts, 50 needed",
    }
    make_history(shop, 100)
    trained: dict[str, Any] = duration_model_train_task.delay().get()
    assert trained["trained"] and trained["version"] == 1 and trained["mae_h"] > 0
    call_command("train_duration_model")
    out = capsys.readouterr().out
    assert f"{NAME} v2" in out and "learned    MAE" in out and "geometric  MAE" in out
