"""Queueing Celery work from request paths without depending on the broker being up.

`delay()` with the broker (Redis) down raises kombu's OperationalError after its publish
retries, and with a Redis result backend it first waits ~20 s reconnecting to subscribe for a
result nobody reads. Work queued from a request is fire-and-forget (ignore_result), and when
the broker is unreachable it is logged and dropped: each caller below has a periodic task that
catches up (parts scheduling runs every minute, energy consumption is reconciled nightly), or
the loss is a notification e-mail whose in-app notification is already stored. A breaker skips
the broker for a few seconds after a failure, so an outage does not add the publish retries to
every request; the first call after that tries again (no restart)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError

from apps.core.breaker import REDIS_UNREACHABLE, Breaker

logger = logging.getLogger(__name__)

BREAKER_S = 5.0
breaker = Breaker("Celery broker", open_s=BREAKER_S)


def task_enqueue(task: Any, *args: Any, **kwargs: Any) -> bool:
    """Queue `task(*args, **kwargs)`; False (logged) when the broker is unreachable."""
    if breaker.is_open():
        logger.warning("broker down: %s not queued", task.name)
        return False
    try:
        task.apply_async(args, kwargs, ignore_result=True)
    except (OperationalError, *REDIS_UNREACHABLE) as exc:
        breaker.failed(exc)
        logger.warning("broker down: %s not queued", task.name)
        return False
    breaker.succeeded()
    return True


def task_enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Queue the task once the transaction commits (never for a change rolled back)."""
    transaction.on_commit(lambda: task_enqueue(task, *args, **kwargs))
