from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model

from apps.core.models import Notification
from apps.core.services import notification_send


@shared_task
def notification_send_task(user_id: int, title: str, body: str = "", level: str = "info") -> int:
    """Send a notification from background work; returns the notification's id."""
    user = get_user_model().objects.get(pk=user_id)
    return notification_send(user=user, title=title, body=body, level=Notification.Level(level)).pk
