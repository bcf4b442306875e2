"""The client address comes only from the trusted proxies (PROXY_COUNT right-most entries of
X-Forwarded-For), the same for /metrics, /readyz, the lockout, the throttles and the audit log;
checked on a real daphne started with docker-compose's command (its flags are part of it)."""

from __future__ import annotations

import pytest
import requests
from axes.models import AccessAttempt
from django.test import Client, override_settings

from apps.core.client_ip import client_address
from apps.core.models import AuditLog
from tests.daphne import running_daphne

pytestmark = pytest.mark.django_db(transaction=True)  # the daphne process reads our rows
# Loopback is not internal here, so the test's own socket address counts as outside.
OUTSIDE_ONLY = {"INTERNAL_NETWORKS": "10.0.0.0/8"}


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "proxy_count", "expected"),
    [
        ("127.0.0.1", "10.9.9.9", 0, "127.0.0.1"),  # no proxy trusted: the header is ignored
        ("172.18.0.5", None, 1, "172.18.0.5"),  # not through the proxy (a probe): the socket
        ("172.18.0.5", "  ", 1, "172.18.0.5"),
        ("172.18.0.5", "203.0.113.7", 1, "203.0.113.7"),
        ("172.18.0.5", "10.9.9.9, 203.0.113.7", 1, "203.0.113.7"),  # forged left-most ignored
        ("172.18.0.5", "10.9.9.9,203.0.113.7, 198.51.100.2", 2, "203.0.113.7"),
        ("172.18.0.5", "203.0.113.7", 2, "203.0.113.7"),  # skipped the outer proxy: left-most
        ("172.18.0.5", "2001:db8::1", 1, "2001:db8::1"),
        ("172.18.0.5", "10.9.9.9, unknown", 1, ""),  # a broken proxy: unknown, never the peer
        ("172.18.0.5", "10.9.9.9,", 1, ""),
    ],
)
def test_client_address_takes_only_trusted_entries(peer, forwarded_for, proxy_count, expected):
    assert (
        client_address(peer=peer, forwarded_for=forwarded_for, proxy_count=proxy_count) == expected
    )


def _failed_token_login(base: str, email: str, forwarded_for: str) -> None:
    response = requests.post(
        f"{base}/api/v1/auth/token/",
        json={"email": email, "password": "not-the-password-1"},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    )
    assert response.status_code in (400, 401), response.text


def test_without_trusted_proxies_a_forged_header_changes_nothing(tmp_path, make_user):
    user = make_user()
    with running_daphne(tmp_path, PROXY_COUNT="0", **OUTSIDE_ONLY) as port:
        base = f"http://127.0.0.1:{port}"
        metrics = requests.get(
            f"{base}/metrics", headers={"X-Forwarded-For": "10.9.9.9"}, timeout=30
        )
        ready = requests.get(f"{base}/readyz", headers={"X-Forwarded-For": "10.9.9.9"}, timeout=30)
        # when: failed logins rotate the header, as an attacker dodging the per-IP lockout would
        for i in range(3):
            _failed_token_login(base, user.email, f"10.9.9.{i}")

    assert metrics.status_code == 403
    assert ready.status_code == 200
    assert {a.ip_address for a in AccessAttempt.objects.all()} == {"127.0.0.1"}
    failures = AuditLog.objects.filter(action=AuditLog.Action.LOGIN_FAILURE)
    assert [entry.ip_address for entry in failures] == ["127.0.0.1"] * 3


def test_one_trusted_proxy_gives_the_right_most_entry(tmp_path, make_user):
    user = make_user()
    with running_daphne(tmp_path, PROXY_COUNT="1", **OUTSIDE_ONLY) as port:
        base = f"http://127.0.0.1:{port}"
        forged = requests.get(
            f"{base}/metrics", headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.5"}, timeout=30
        )
        scraper = requests.get(
            f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.5, 10.1.2.3"}, timeout=30
        )
        for i in range(3):
            _failed_token_login(base, user.email, f"10.9.9.{i}, 203.0.113.5")

    assert forged.status_code == 403  # the client wrote 10.9.9.9; the proxy saw 203.0.113.5
    assert scraper.status_code == 200  # the proxy saw a caller inside the deployment
    assert {a.ip_address for a in AccessAttempt.objects.all()} == {"203.0.113.5"}
    failures = AuditLog.objects.filter(action=AuditLog.Action.LOGIN_FAILURE)
    assert [entry.ip_address for entry in failures] == ["203.0.113.5"] * 3


@override_settings(PROXY_COUNT=1)
def test_anonymous_throttle_counts_the_trusted_address_not_the_forged_one():
    client = Client()
    statuses = [
        client.post(
            "/api/v1/auth/verify-email/",
            {"uid": "x", "token": "y"},
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 203.0.113.5",
        ).status_code
        for i in range(31)
    ]
    assert statuses[-1] == 429
    # another client behind the same proxy has its own allowance
    other = client.post(
        "/api/v1/auth/verify-email/",
        {"uid": "x", "token": "y"},
        content_type="application/json",
        HTTP_X_FORWARDED_FOR="203.0.113.6",
    )
    assert other.status_code != 429
