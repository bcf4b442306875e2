from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task
from django.core.management import call_command

from apps.users.models import User
from apps.users.services import (
    user_purge_unverified,
    user_send_existing_account_notice,
    user_send_verification,
)
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


# A mail server that is down or refuses us (SMTPException; OSError: refused, unreachable, timed
# out after EMAIL_TIMEOUT) is retried with exponential backoff (1 s, 2 s, 4 s ... at most 10 min
# apart, jittered) for up to about 75 minutes; the verification link stays valid for days.
@shared_task(
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=16,
)
def user_send_verification_task(user_id: int, base_url: str) -> None:
    user = User.objects.filter(pk=user_id).first()
    if user is not None:  # purged meanwhile: nobody to write to
        user_send_verification(user=user, base_url=base_url)


@shared_task(
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=16,
)
def user_send_existing_account_notice_task(user_id: int, base_url: str) -> None:
    user = User.objects.filter(pk=user_id).first()
    if user is not None:
        user_send_existing_account_notice(user=user, base_url=base_url)
