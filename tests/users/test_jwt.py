from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.users.roles import Role
from tests.conftest import jwt_client
from tests.users.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    current_code,
    totp_device_for,
)

TOKEN_URL = "/api/v1/auth/token/"


def obtain(api: APIClient, email: str, password: str = PASSWORD, **extra: str):
    return api.post(TOKEN_URL, {"email": email, "password": password, **extra}, format="json")


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.mark.django_db
def test_issue_and_use_access_token(api, make_user):
    user = make_user(Role.DESIGNER)
    response = obtain(api, user.email.upper())  # e-mail is case-insensitive
    assert response.status_code == 200
    access = response.json()["access"]
    assert bearer(access).get("/api/v1/auth/me/").json()["user"]["email"] == user.email


@pytest.mark.django_db
def test_wrong_password_is_401_in_error_format(api, make_user):
    user = make_user()
    response = obtain(api, user.email, "nope-nope-nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


@pytest.mark.django_db
def test_refresh_rotates_and_blacklists_the_old_token(api, make_user):
    tokens = obtain(api, make_user().email).json()
    first = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh"] != tokens["refresh"]
    # The old refresh token was blacklisted by the rotation.
    again = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "token_not_valid"
    assert bearer(rotated["access"]).get("/api/v1/auth/me/").status_code == 200


@pytest.mark.django_db
def test_logout_revokes_refresh_and_access(api, make_user):
    tokens = obtain(api, make_user().email).json()
    client = bearer(tokens["access"])
    response = client.post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 200
    me = client.get("/api/v1/auth/me/")
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "token_revoked"
    refresh = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refresh.status_code == 401


@pytest.mark.django_db
def test_logout_everywhere_revokes_every_refresh_token(api, make_user):
    user = make_user()
    phone, laptop = obtain(api, user.email).json(), obtain(api, user.email).json()
    response = bearer(laptop["access"]).post(
        "/api/v1/auth/logout/", {"refresh": laptop["refresh"], "everywhere": True}, format="json"
    )
    assert response.json()["revoked"] == 2
    refresh = api.post("/api/v1/auth/token/refresh/", {"refresh": phone["refresh"]}, format="json")
    assert refresh.status_code == 401


@pytest.mark.django_db
def test_logout_refuses_someone_elses_refresh_token(api, make_user):
    mine = obtain(api, make_user().email).json()
    theirs = obtain(api, make_user().email).json()
    response = bearer(mine["access"]).post(
        "/api/v1/auth/logout/", {"refresh": theirs["refresh"]}, format="json"
    )
    assert response.status_code == 400
    assert "refresh" in response.json()["error"]["details"]
    ok = api.post("/api/v1/auth/token/refresh/", {"refresh": theirs["refresh"]}, format="json")
    assert ok.status_code == 200


@pytest.mark.django_db
def test_api_login_needs_otp_when_2fa_is_on(api, make_user):
    user = make_user(Role.ENGINEER)
    device = totp_device_for(user)
    missing = obtain(api, user.email)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "otp_required"
    code = current_code(device)
    assert obtain(api, user.email, otp=code).status_code == 200
    # A code works once; replaying it (or any wrong code) is refused.
    replay = obtain(api, user.email, otp=code)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "otp_invalid"


@pytest.mark.django_db
def test_admin_without_2fa_gets_no_api_token(api, make_user):
    admin = make_user(Role.ADMIN)
    response = obtain(api, admin.email)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "otp_enrolment_required"
    device = totp_device_for(admin)
    assert obtain(api, admin.email, otp=current_code(device)).status_code == 200


@pytest.mark.django_db
def test_tokens_of_a_deactivated_user_stop_working(api, make_user):
    user = make_user()
    tokens = obtain(api, user.email).json()
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert bearer(tokens["access"]).get("/api/v1/auth/me/").status_code == 401


@pytest.mark.django_db
def test_me_reads_the_user_and_its_memberships_in_two_queries(django_assert_num_queries):
    user = UserFactory.create(organization=OrganizationFactory.create(name="First"))
    MembershipFactory.create(user=user, organization=OrganizationFactory.create(name="Second"))
    client = jwt_client(user)
    client.get("/api/v1/auth/me/")  # warm: the role matrix's per-process cache
    # the user with its token's revocation (one query), its memberships with their
    # organizations (one): not one more query per membership
    with django_assert_num_queries(2):
        answer = client.get("/api/v1/auth/me/")
    names = sorted(m["organization"]["name"] for m in answer.json()["user"]["memberships"])
    assert names == ["First", "Second"]
