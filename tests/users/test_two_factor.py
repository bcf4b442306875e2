from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from apps.core.models import AuditLog
from apps.users.models import EncryptedTOTPDevice
from apps.users.roles import Role
from tests.users.factories import PASSWORD, current_code, totp_device_for


def login(client: Client, email: str, **extra: str):
    return client.post("/account/login/", {"email": email, "password": PASSWORD, **extra})


@pytest.mark.django_db
def test_admin_enrols_with_qr_code_and_reaches_ops(make_user):
    admin = make_user(Role.ADMIN)
    client = Client()
    login(client, admin.email)
    assert client.get("/ops/")["Location"].startswith("/account/2fa/")

    page = client.get("/account/2fa/?next=/ops/")
    assert page.status_code == 200
    assert b"<svg" in page.content  # the QR code
    secret = re.search(rb'id="totp-secret">([A-Z2-7]+)<', page.content)
    assert secret is not None

    wrong = client.post("/account/2fa/?next=/ops/", {"token": "12345", "next": "/ops/"})
    assert wrong.status_code == 400
    device = EncryptedTOTPDevice.objects.get(user=admin, confirmed=False)
    response = client.post("/account/2fa/", {"token": current_code(device), "next": "/ops/"})
    assert response.status_code == 302 and response["Location"] == "/ops/"
    assert client.get("/ops/").status_code == 200
    assert AuditLog.objects.filter(action=AuditLog.Action.TWO_FACTOR_ENABLED, actor=admin).exists()


@pytest.mark.django_db
def test_login_with_2fa_needs_the_code(make_user):
    admin = make_user(Role.ADMIN)
    device = totp_device_for(admin)
    client = Client()
    response = login(client, admin.email)
    assert response.status_code == 400
    assert b"Enter the 6-digit code" in response.content
    response = login(client, admin.email, otp_token=current_code(device))
    assert response.status_code == 302
    assert client.get("/ops/").status_code == 200  # session verified at login


@pytest.mark.django_db
def test_admin_with_device_but_unverified_session_is_asked_for_code(make_user):
    admin = make_user(Role.ADMIN)
    device = totp_device_for(admin)
    client = Client()
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/ops/")
    assert response["Location"].startswith("/account/2fa/verify/")
    response = client.post("/account/2fa/verify/", {"token": current_code(device), "next": "/ops/"})
    assert response["Location"] == "/ops/"
    assert client.get("/ops/").status_code == 200


@pytest.mark.django_db
def test_designer_may_turn_2fa_off_but_admin_may_not(make_user):
    designer = make_user(Role.DESIGNER)
    device = totp_device_for(designer)
    client = Client()
    login(client, designer.email, otp_token=current_code(device))
    device.refresh_from_db()
    device.last_t = -1  # let the same 30-second window's code be used again in this test
    device.save()
    client.post("/account/2fa/disable/", {"password": PASSWORD, "token": current_code(device)})
    assert not EncryptedTOTPDevice.objects.filter(user=designer).exists()
    assert AuditLog.objects.filter(action=AuditLog.Action.TWO_FACTOR_DISABLED).exists()

    admin = make_user(Role.ADMIN)
    admin_device = totp_device_for(admin)
    admin_client = Client()
    login(admin_client, admin.email, otp_token=current_code(admin_device))
    admin_device.refresh_from_db()
    admin_device.last_t = -1
    admin_device.save()
    admin_client.post(
        "/account/2fa/disable/", {"password": PASSWORD, "token": current_code(admin_device)}
    )
    assert EncryptedTOTPDevice.objects.filter(user=admin).exists()


@pytest.mark.django_db
def test_admin_session_without_2fa_is_not_an_api_session(make_user):
    admin = make_user(Role.ADMIN)
    client = Client()
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/api/v1/users/").status_code in (401, 403)


@pytest.mark.django_db
def test_reloading_the_enrolment_page_keeps_the_secret_until_a_new_one_is_asked_for(make_user):
    designer = make_user(Role.DESIGNER)
    client = Client()
    login(client, designer.email)

    def secret_of(page: Any) -> bytes:
        found = re.search(rb'id="totp-secret">([A-Z2-7]+)<', page.content)
        assert found, page.content
        return found.group(1)

    first = secret_of(client.get("/account/2fa/"))
    assert secret_of(client.get("/account/2fa/")) == first  # scanned, then reloaded
    # the code from the app that scanned the first load still turns 2FA on after the reload
    scanned = EncryptedTOTPDevice.objects.get(user=designer, confirmed=False)
    wrong = client.post("/account/2fa/", {"token": "000000"})
    assert wrong.status_code == 400 and secret_of(wrong) == first
    fresh = secret_of(client.get("/account/2fa/?new=1"))
    assert fresh != first
    assert not EncryptedTOTPDevice.objects.filter(
        pk=scanned.pk
    ).exists()  # the old secret stops working
    assert secret_of(client.get("/account/2fa/")) == fresh
    response = client.post(
        "/account/2fa/", {"token": current_code(EncryptedTOTPDevice.objects.get(user=designer))}
    )
    assert response.status_code == 302
    assert EncryptedTOTPDevice.objects.get(user=designer).confirmed
