from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.models import Notification
from apps.core.realtime import broadcast_on_commit, user_group


@transaction.atomic
def notification_send(
    *, user: Any, title: str, body: str = "", level: str = Notification.Level.INFO, link: str = ""
) -> Notification:
    notification = Notification.objects.create(
        user=user, title=title[:200], body=body, level=level, link=link
    )
    broadcast_on_commit(user_group(user.pk), notification.as_message())
    return notification


def notification_resolve(*, link: str, title: str, body: str) -> int:
    """A call to action that has been answered ("Node awaiting approval" once an admin decided)
    is reworded to what happened and marked read for everyone it went to, so no list keeps
    asking for something already done. Returns how many notifications changed."""
    return Notification.objects.filter(link=link).update(
        title=title[:200], body=body, read_at=Coalesce(F("read_at"), Value(timezone.now()))
    )


def notification_mark_read(*, notifications: QuerySet[Notification]) -> int:
    return notifications.filter(read_at__isnull=True).update(read_at=timezone.now())
