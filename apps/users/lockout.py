"""Lockout of repeated failed logins (django-axes hooks).

The rule, in one place:

- An account is locked *for one client address* after LOGIN_FAILURE_LIMIT failures from that
  address without a success. So an attacker who guesses a victim's password from address A locks
  only (victim, A); the victim still signs in from anywhere else.
- The lock grows: it lasts LOGIN_LOCKOUT_MINUTES after the failure that reached the limit, and every
  further failure of that account from that address (including attempts refused while locked)
  doubles it, up to LOGIN_LOCKOUT_MAX_MINUTES. A locked pair's failures are remembered that long, so
  the first failure after a lock has expired locks it again, twice as long.
- An address is locked for every account once the failures from it within the last
  LOGIN_LOCKOUT_MINUTES reach LOGIN_ADDRESS_FAILURE_LIMIT (a looser limit, for shared NATs), so one
  address cannot spray guesses over many accounts. Refused attempts count, so an address that
  keeps trying stays locked.
- A successful login clears the failures of that account from that address only.

Axes records the failed attempts (one AccessAttempt row per account, address and user agent) and
asks the handler below how many failures count; the handler answers from this rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, OuterRef, Q, Subquery, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone


def username_from_request(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if value is None and request is not None and request.method == "POST":
        value = request.POST.get("email") or request.POST.get("username")
    return str(value or "").strip().lower()


# --- The rule --------------------------------------------------------------------------------


def lockout_base() -> timedelta:
    cooloff: timedelta = settings.AXES_COOLOFF_TIME
    return cooloff


def lockout_max() -> timedelta:
    return max(lockout_base(), timedelta(minutes=settings.LOGIN_LOCKOUT_MAX_MINUTES))


def lockout_duration(failures: int) -> timedelta:
    """How long an account+address pair stays locked after its `failures`-th failure."""
    beyond = max(0, failures - settings.AXES_FAILURE_LIMIT)
    # Past 2**20 the cap has long been reached; the bound keeps the float small.
    longer: timedelta = lockout_base() * 2 ** min(beyond, 20)
    return min(lockout_max(), longer)


@dataclass(frozen=True)
class LoginLock:
    pair_failures: int
    address_failures: int
    until: datetime | None  # None: not locked

    @property
    def locked(self) -> bool:
        return self.until is not None


def login_lock_state(*, username: str, ip_address: str | None, now: datetime) -> LoginLock:
    pair = AccessAttempt.objects.filter(username=username, ip_address=ip_address).aggregate(
        failures=Sum("failures_since_start"), last=Max("attempt_time")
    )
    pair_failures = pair["failures"] or 0
    until: datetime | None = None
    if pair_failures >= settings.AXES_FAILURE_LIMIT:
        pair_until = pair["last"] + lockout_duration(pair_failures)
        if pair_until > now:
            until = pair_until

    # Newest first: the address stays locked until enough of its recent failures have aged out
    # of the window, i.e. until the row that reaches the limit leaves it.
    address_limit = settings.LOGIN_ADDRESS_FAILURE_LIMIT
    recent = (
        AccessAttempt.objects.filter(ip_address=ip_address, attempt_time__gt=now - lockout_base())
        .order_by("-attempt_time")
        .values_list("attempt_time", "failures_since_start")[:address_limit]
    )
    address_failures = 0
    for attempt_time, failures in recent:
        address_failures += failures
        if address_failures >= address_limit:
            address_until = attempt_time + lockout_base()
            until = max(until, address_until) if until else address_until
            break
    return LoginLock(pair_failures=pair_failures, address_failures=address_failures, until=until)


class LoginLockoutHandler(AxesDatabaseHandler):  # type: ignore[misc]  # axes has no types
    """Axes' database handler, counting failures by the rule above (AXES_HANDLER)."""

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        lock = login_lock_state(
            username=get_client_username(request, credentials),
            ip_address=request.axes_ip_address,
            now=request.axes_attempt_time or timezone.now(),
        )
        request.login_lock = lock  # for the lockout message
        # Axes locks when this number reaches AXES_FAILURE_LIMIT: answer so that it agrees.
        limit = settings.AXES_FAILURE_LIMIT
        return max(limit, lock.pair_failures) if lock.locked else min(limit - 1, lock.pair_failures)

    def clean_expired_user_attempts(
        self, request: Any = None, credentials: dict[str, Any] | None = None
    ) -> int:
        """Forget a pair's failures once its window has passed without reaching the limit, and a
        locked pair's after the longest lock, so the table stays small but locks can grow."""
        now = timezone.now()
        pair_total = (
            AccessAttempt.objects.filter(
                username=OuterRef("username"), ip_address=OuterRef("ip_address")
            )
            .order_by()
            .values("username", "ip_address")
            .annotate(total=Sum("failures_since_start"))
            .values("total")[:1]
        )
        stale = AccessAttempt.objects.annotate(pair_total=Subquery(pair_total)).filter(
            Q(attempt_time__lte=now - lockout_max())
            | Q(attempt_time__lte=now - lockout_base(), pair_total__lt=settings.AXES_FAILURE_LIMIT)
        )
        count: int
        count, _ = AccessAttempt.objects.filter(
            pk__in=list(stale.values_list("pk", flat=True))
        ).delete()
        return count


# --- What a locked-out caller sees -----------------------------------------------------------


def lockout_message(request: HttpRequest | None = None) -> str:
    lock: LoginLock | None = getattr(request, "login_lock", None)
    if lock is not None and lock.until is not None:
        remaining = (lock.until - timezone.now()).total_seconds()
    else:
        remaining = lockout_base().total_seconds()
    minutes = max(1, math.ceil(remaining / 60))
    return (
        "Too many failed logins for this account or from your address. "
        f"Try again in {minutes} minutes, or reset your password."
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE. Axes 8.3 calls it as (request, response, credentials) from its sync
    middleware but as (request, credentials) from its async one (under daphne): the second
    argument is then the credentials dict, and the view's own response is not passed at all."""
    # Our login paths already answer a lockout in their own format; keep that answer.
    if isinstance(original_response, HttpResponseBase) and original_response.status_code in (
        403,
        429,
    ):
        return original_response
    if request.path.startswith("/api/"):
        from apps.core.api import error_body  # late: core.api pulls in DRF's settings

        return JsonResponse(error_body("login_locked", lockout_message(request)), status=429)
    return render(
        request, "users/locked_out.html", {"message": lockout_message(request)}, status=429
    )
