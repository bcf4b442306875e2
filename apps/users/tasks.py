from __future__ import annotations

from celery import shared_task
from django.core.management import call_command

from apps.users.services import user_purge_unverified


@shared_task
def flush_expired_tokens_task() -> None:
    """Drop expired refresh tokens (and their blacklist rows) so the tables stay small."""
    call_command("flushexpiredtokens")


@shared_task
def purge_unverified_users_task() -> int:
    return user_purge_unverified()
