"""Lockout of repeated failed logins: by account and address together, growing, plus a looser
per-address limit. Addresses are set per request with REMOTE_ADDR."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import AuditLog
from tests.users.factories import PASSWORD

TOKEN_URL = "/api/v1/auth/token/"
LOGIN_URL = "/account/login/"
ATTACKER = "203.0.113.66"
VICTIM_HOME = "198.51.100.7"
WRONG = "wrong-pass-1"


def token(email: str, password: str, address: str = ATTACKER) -> Any:
    return APIClient().post(
        TOKEN_URL, {"email": email, "password": password}, format="json", REMOTE_ADDR=address
    )


def asgi_token(email: str, password: str, address: str = ATTACKER) -> Any:
    """Through Django's ASGI handler, as under daphne: axes' async middleware path."""
    return async_to_sync(AsyncClient(REMOTE_ADDR=address).post)(
        TOKEN_URL,
        json.dumps({"email": email, "password": password}),
        content_type="application/json",
    )


def minutes_in(response: Any) -> str:
    return response.json()["error"]["message"]


# --- 429 with the lockout message, never 500 --------------------------------------------------


@pytest.mark.django_db
def test_token_endpoint_answers_429_under_asgi_and_refuses_the_right_password(make_user):
    user = make_user()
    statuses = [asgi_token(user.email, WRONG).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]

    response = asgi_token(user.email, PASSWORD)

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "login_locked"
    assert "Too many failed logins" in error["message"]
    assert "access" not in response.json()


@pytest.mark.django_db
def test_token_endpoint_answers_429_under_wsgi(make_user):
    user = make_user()
    for _ in range(5):
        token(user.email, WRONG)
    response = token(user.email, PASSWORD)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "login_locked"
    # Five wrong passwords plus the refused sixth attempt.
    assert AuditLog.objects.filter(action=AuditLog.Action.LOGIN_FAILURE).count() == 6
    assert AuditLog.objects.filter(action=AuditLog.Action.LOGIN_LOCKED).exists()


@pytest.mark.django_db
def test_portal_login_shows_the_locked_out_page_under_asgi(make_user):
    user = make_user()
    client = AsyncClient(REMOTE_ADDR=ATTACKER)
    post = async_to_sync(client.post)
    for _ in range(5):
        post(LOGIN_URL, {"email": user.email, "password": WRONG})

    response = post(LOGIN_URL, {"email": user.email, "password": PASSWORD})

    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert "sessionid" not in response.cookies or not response.cookies["sessionid"].value


@pytest.mark.django_db
def test_portal_login_shows_the_lockout_message_under_wsgi(make_user):
    user = make_user()
    client = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(5):
        client.post(LOGIN_URL, {"email": user.email, "password": WRONG})
    response = client.post(LOGIN_URL, {"email": user.email, "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


# --- An attacker cannot lock a victim out -----------------------------------------------------


@pytest.mark.django_db
def test_attacker_address_does_not_lock_the_victim_elsewhere(make_user):
    victim = make_user()
    for _ in range(7):
        token(victim.email, WRONG, ATTACKER)

    assert token(victim.email, PASSWORD, VICTIM_HOME).status_code == 200
    # ... while the attacker's address stays locked, even with the right password.
    assert token(victim.email, PASSWORD, ATTACKER).status_code == 429


@pytest.mark.django_db
def test_lock_doubles_with_each_further_failure_up_to_the_cap(make_user):
    victim = make_user()
    for _ in range(4):
        token(victim.email, WRONG)
    messages = [minutes_in(token(victim.email, WRONG)) for _ in range(4)]
    assert [m.split("Try again in ")[1].split(" ")[0] for m in messages] == [
        "15",
        "30",
        "60",
        "120",
    ]
    with override_settings(LOGIN_LOCKOUT_MAX_MINUTES=90):
        assert "Try again in 90 minutes" in minutes_in(token(victim.email, PASSWORD))


@pytest.mark.django_db
def test_first_failure_after_an_expired_lock_locks_again_for_twice_as_long(make_user):
    victim = make_user()
    for _ in range(6):
        token(victim.email, WRONG)  # locked for 30 minutes after the sixth
    # given: the lock has run out (the attempts are 31 minutes old)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=31))

    # when: one more wrong password
    response = token(victim.email, WRONG)

    # then: locked again at once, for twice as long
    assert response.status_code == 429
    assert "Try again in 60 minutes" in minutes_in(response)
    assert token(victim.email, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_expired_lock_lets_the_right_password_in_and_clears_the_pair(make_user):
    victim = make_user()
    for _ in range(5):
        token(victim.email, WRONG)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert token(victim.email, PASSWORD).status_code == 200
    assert not AccessAttempt.objects.filter(username=victim.email, ip_address=ATTACKER).exists()


@pytest.mark.django_db
def test_success_clears_only_the_failures_of_its_own_address(make_user):
    victim = make_user()
    for _ in range(3):
        token(victim.email, WRONG, ATTACKER)
        token(victim.email, WRONG, VICTIM_HOME)

    assert token(victim.email, PASSWORD, VICTIM_HOME).status_code == 200

    assert not AccessAttempt.objects.filter(ip_address=VICTIM_HOME).exists()
    assert AccessAttempt.objects.get(ip_address=ATTACKER).failures_since_start == 3


# --- One address cannot spray many accounts --------------------------------------------------


@pytest.mark.django_db
def test_a_few_failures_over_several_accounts_do_not_lock_a_shared_address(make_user):
    # An office behind one NAT: five people mistype once each.
    people = [make_user() for _ in range(6)]
    for person in people[:5]:
        assert token(person.email, WRONG).status_code == 401
    assert token(people[5].email, PASSWORD).status_code == 200


@pytest.mark.django_db
@override_settings(LOGIN_ADDRESS_FAILURE_LIMIT=8)
def test_address_spraying_many_accounts_is_locked_for_every_account(make_user):
    targets = [make_user() for _ in range(8)]
    statuses = [token(target.email, WRONG).status_code for target in targets]
    assert statuses == [401] * 7 + [429]
    fresh = make_user()

    response = token(fresh.email, PASSWORD, ATTACKER)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "login_locked"
    assert token(fresh.email, PASSWORD, VICTIM_HOME).status_code == 200


@pytest.mark.django_db
@override_settings(LOGIN_ADDRESS_FAILURE_LIMIT=8)
def test_address_lock_slides_while_the_address_keeps_trying(make_user):
    targets = [make_user() for _ in range(8)]
    for target in targets:
        token(target.email, WRONG)
    # given: the spray is 14 minutes old, nearly out of the 15-minute window
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
    # when: the address keeps trying (refused attempts count)
    for _ in range(8):
        token(make_user().email, WRONG)
    AccessAttempt.objects.filter(attempt_time__lt=timezone.now() - timedelta(minutes=10)).update(
        attempt_time=timezone.now() - timedelta(minutes=20)
    )
    # then: still locked by the newer attempts
    assert token(make_user().email, PASSWORD).status_code == 429


# --- Housekeeping ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cleanup_forgets_unlocked_pairs_after_the_window_and_locked_ones_after_the_cap(make_user):
    now = timezone.now()

    def attempt(username: str, failures: int, age: timedelta) -> None:
        row = AccessAttempt.objects.create(
            username=username,
            ip_address=ATTACKER,
            user_agent="ua",
            failures_since_start=failures,
            get_data="",
            post_data="",
            http_accept="",
            path_info=TOKEN_URL,
        )
        # attempt_time is auto_now_add: age the row afterwards.
        AccessAttempt.objects.filter(pk=row.pk).update(attempt_time=now - age)

    attempt("fresh@x.test", 2, timedelta(minutes=5))
    attempt("stale@x.test", 4, timedelta(minutes=20))
    attempt("locked@x.test", 6, timedelta(hours=3))
    attempt("split@x.test", 3, timedelta(minutes=20))  # with the row below: a locked pair
    AccessAttempt.objects.create(
        username="split@x.test", ip_address=ATTACKER, user_agent="other", failures_since_start=3
    )
    attempt("ancient@x.test", 9, timedelta(hours=25))

    AxesProxyHandler.get_implementation().clean_expired_user_attempts()

    assert sorted(AccessAttempt.objects.values_list("username", flat=True)) == [
        "fresh@x.test",
        "locked@x.test",
        "split@x.test",
        "split@x.test",
    ]


@pytest.mark.django_db
def test_successful_login_resets_the_failure_count(make_user):
    user = make_user()
    for _ in range(2):
        for _ in range(4):
            assert token(user.email, WRONG).status_code == 401
        assert token(user.email, PASSWORD).status_code == 200
