from __future__ import annotations

from celery import shared_task
from django.core.management import call_command

from apps.users.services import user_purge_unverified
from apps.users.tokens import access_token_denylist_flush


@shared_task
def flush_expired_tokens_task() -> int:
    """Drop expired refresh tokens (and their blacklist rows) and the access-token denylist
    rows of tokens that expired anyway, so the tables stay small. Returns the denylist rows
    dropped."""
    call_command("flushexpiredtokens")
    return access_token_denylist_flush()


@shared_task
def purge_unverified_users_task() -> int:
    return user_purge_unverified()
