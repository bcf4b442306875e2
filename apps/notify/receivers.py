"""Events of the apps below notify (core), raised here from their hooks."""

from __future__ import annotations

from typing import Any

from apps.core.models import TrainedModel
from apps.notify.models import EventKind, Severity
from apps.notify.services import event_raise
from apps.users.models import User
from apps.users.roles import Role


def model_promoted(sender: Any, model: TrainedModel, **kwargs: Any) -> None:
    event_raise(
        kind=EventKind.MODEL_PROMOTED,
        severity=Severity.INFO,
        title=f"Model {model.name} v{model.version} is now active",
        body=model.decision,
        link="/maintenance/models/",
        subject=f"model:{model.name}",
        users=User.objects.filter(role__in=[Role.ADMIN, Role.ENGINEER], is_active=True),
    )
