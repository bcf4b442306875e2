"""The model registry's rules: versions per model name, activation only when the new model is
not worse than the one it replaces on the same held-out rows, rollback. Domain apps train; this
module stores and decides."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.dispatch import Signal
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.core.labels import label_with_unit
from apps.core.models import TrainedModel


@dataclass(frozen=True)
class Comparison:
    """Scores on the new model's held-out rows (one metric, the lower the better): the new
    model, the active model if there is one, and the simple baseline the model must beat."""

    metric: str
    candidate: float
    baseline: float
    active: float | None = None
    # A bound the model missed, whatever the comparison ("false alarms ... above the bound"):
    # set, the model is stored but never activated, and this is the reason given.
    refused: str = ""

    def verdict(self) -> tuple[bool, str]:
        metric = label_with_unit(self.metric, "metric")
        if self.refused:
            return False, f"kept inactive: {self.refused}"
        if self.candidate > self.baseline:
            return False, (
                f"kept inactive: {metric} {self.candidate:.4g} is worse than the baseline's "
                f"{self.baseline:.4g}"
            )
        if self.active is not None and self.candidate > self.active:
            return False, (
                f"kept inactive: {metric} {self.candidate:.4g} is worse than the active "
                f"model's {self.active:.4g} on the same rows"
            )
        against = f"active {self.active:.4g}, " if self.active is not None else ""
        return True, (
            f"activated: {metric} {self.candidate:.4g} ({against}baseline {self.baseline:.4g})"
        )


# A model version became the active one (trained and not worse, or rolled back to); the
# notification channels listen (apps/notify/receivers.py).
model_activated = Signal()


@transaction.atomic
def model_register(
    *,
    name: str,
    algorithm: str,
    artifact: bytes,
    features: list[str],
    metrics: dict[str, Any],
    training: dict[str, Any],
    comparison: Comparison,
) -> TrainedModel:
    """Stores a trained model as the next version of `name`; activates it if the comparison
    says it is not worse."""
    # lock the name's rows so two trainers don't take the same version number
    list(TrainedModel.objects.select_for_update().filter(name=name).values_list("pk", flat=True))
    version = (TrainedModel.objects.filter(name=name).aggregate(v=Max("version"))["v"] or 0) + 1
    activate, why = comparison.verdict()
    model = TrainedModel.objects.create(
        name=name,
        version=version,
        algorithm=algorithm,
        artifact=artifact,
        features=features,
        metrics={**metrics, "comparison": asdict(comparison)},
        training=training,
        decision=why[:300],
    )
    if activate:
        _activate(model)
    return model


def _activate(model: TrainedModel) -> None:
    TrainedModel.objects.filter(name=model.name, is_active=True).exclude(pk=model.pk).update(
        is_active=False
    )
    model.is_active = True
    model.activated_at = timezone.now()
    model.save(update_fields=["is_active", "activated_at"])
    model_activated.send(sender=TrainedModel, model=model)


@transaction.atomic
def model_rollback(*, name: str, version: int) -> TrainedModel:
    """Makes an earlier (or any) version of `name` the active one again."""
    model = TrainedModel.objects.select_for_update().filter(name=name, version=version).first()
    if model is None:
        raise Conflict(f"There is no version {version} of {name}.")
    _activate(model)
    model.decision = f"activated by rollback at {model.activated_at:%Y-%m-%d %H:%M}"
    model.save(update_fields=["decision"])
    return model


def model_active(name: str) -> TrainedModel | None:
    return TrainedModel.objects.filter(name=name, is_active=True).first()
