"""Access-token revocation lives in the database: it survives the cache losing its keys, "log
out everywhere" ends every device's access tokens and sessions at once, and websockets obey
the same checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from apps.users.models import RevokedAccessToken
from apps.users.tasks import flush_expired_tokens_task
from apps.users.tokens import access_token_is_revoked, access_token_revoke
from apps.users.ws_auth import token_user
from tests.users.factories import PASSWORD
from tests.users.test_jwt import bearer, obtain

LOGOUT_URL = "/api/v1/auth/logout/"
ME_URL = "/api/v1/auth/me/"


@pytest.mark.django_db
def test_revoked_access_token_stays_refused_when_the_cache_loses_its_keys(api, make_user):
    tokens = obtain(api, make_user().email).json()
    client = bearer(tokens["access"])
    assert client.post(LOGOUT_URL, {"refresh": tokens["refresh"]}).status_code == 200

    # when: the cache forgets everything (Redis restarted, evicted, replaced)
    cache.clear()

    me = client.get(ME_URL)
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "token_revoked"


@pytest.mark.django_db
def test_access_token_revoke_and_check_by_jti(make_user):
    expires = int((timezone.now() + timedelta(minutes=5)).timestamp())
    assert not access_token_is_revoked(jti="abc")
    access_token_revoke(jti="abc", expires_at=expires)
    access_token_revoke(jti="abc", expires_at=expires)  # twice is fine
    assert access_token_is_revoked(jti="abc")
    assert not access_token_is_revoked(jti="abd")


@pytest.mark.django_db
def test_logout_everywhere_ends_the_other_devices_access_tokens_at_once(api, make_user):
    user = make_user()
    phone, laptop = obtain(api, user.email).json(), obtain(api, user.email).json()
    assert bearer(phone["access"]).get(ME_URL).status_code == 200

    # when: the laptop logs out everywhere
    response = bearer(laptop["access"]).post(
        LOGOUT_URL, {"refresh": laptop["refresh"], "everywhere": True}
    )
    assert response.status_code == 200

    # then: the phone's access token is refused now, not at its expiry
    for access in (phone["access"], laptop["access"]):
        me = bearer(access).get(ME_URL)
        assert me.status_code == 401
        assert me.json()["error"]["code"] == "token_revoked"
    # and a new sign-in (even in the same second) works
    fresh = obtain(api, user.email).json()
    assert bearer(fresh["access"]).get(ME_URL).status_code == 200
    again = api.post("/api/v1/auth/token/refresh/", {"refresh": fresh["refresh"]})
    assert again.status_code == 200
    assert bearer(again.json()["access"]).get(ME_URL).status_code == 200


@pytest.mark.django_db
def test_logout_everywhere_works_after_a_thief_rotated_the_refresh_token(api, make_user):
    # given: a thief refreshed the victim's stolen refresh token first (rotation blacklists the
    # victim's copy)
    user = make_user()
    victim = obtain(api, user.email).json()
    stolen = api.post("/api/v1/auth/token/refresh/", {"refresh": victim["refresh"]}).json()
    assert bearer(stolen["access"]).get(ME_URL).status_code == 200

    # when: the victim logs out everywhere with the spent refresh token, or with none
    response = bearer(victim["access"]).post(
        LOGOUT_URL, {"refresh": victim["refresh"], "everywhere": True}
    )

    # then: it works, and the thief's tokens are dead
    assert response.status_code == 200, response.content
    assert bearer(stolen["access"]).get(ME_URL).status_code == 401
    thief_refresh = api.post("/api/v1/auth/token/refresh/", {"refresh": stolen["refresh"]})
    assert thief_refresh.status_code == 401
    again = obtain(api, user.email).json()
    assert bearer(again["access"]).post(LOGOUT_URL, {"everywhere": True}).status_code == 200
    assert bearer(again["access"]).get(ME_URL).status_code == 401


@pytest.mark.django_db
def test_plain_logout_needs_its_refresh_token(api, make_user):
    user = make_user()
    tokens = obtain(api, user.email).json()
    response = bearer(tokens["access"]).post(LOGOUT_URL, {})
    assert response.status_code == 400
    assert "refresh" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_plain_logout_leaves_the_other_devices_signed_in(api, make_user):
    user = make_user()
    phone, laptop = obtain(api, user.email).json(), obtain(api, user.email).json()
    assert bearer(laptop["access"]).post(LOGOUT_URL, {"refresh": laptop["refresh"]}).status_code
    assert bearer(phone["access"]).get(ME_URL).status_code == 200
    assert bearer(laptop["access"]).get(ME_URL).status_code == 401


@pytest.mark.django_db
def test_logout_everywhere_ends_portal_sessions(api, make_user):
    user = make_user()
    browser = Client()
    assert browser.post("/account/login/", {"email": user.email, "password": PASSWORD}).status_code
    assert browser.get("/account/2fa/").status_code == 200
    other = Client()
    other.post("/account/login/", {"email": user.email, "password": PASSWORD})
    tokens = obtain(api, user.email).json()

    bearer(tokens["access"]).post(LOGOUT_URL, {"refresh": tokens["refresh"], "everywhere": True})

    for session in (browser, other):
        page = session.get("/account/2fa/")
        assert page.status_code == 302
        assert page["Location"].startswith("/account/login/")


@pytest.mark.django_db(transaction=True)  # the websocket check reads from another thread
def test_websocket_token_auth_refuses_tokens_ended_everywhere(api, make_user):
    user = make_user()
    phone, laptop = obtain(api, user.email).json(), obtain(api, user.email).json()
    holder = token_user(phone["access"])
    assert holder is not None and holder.pk == user.pk

    bearer(laptop["access"]).post(LOGOUT_URL, {"refresh": laptop["refresh"], "everywhere": True})

    assert token_user(phone["access"]) is None


@pytest.mark.django_db
def test_nightly_flush_drops_only_expired_denylist_rows():
    now = timezone.now()
    access_token_revoke(jti="old", expires_at=int((now - timedelta(minutes=1)).timestamp()))
    access_token_revoke(jti="live", expires_at=int((now + timedelta(minutes=5)).timestamp()))

    assert flush_expired_tokens_task.delay().get() == 1

    assert list(RevokedAccessToken.objects.values_list("jti", flat=True)) == ["live"]
    assert RevokedAccessToken.objects.get().expires_at > datetime.now(tz=UTC)


@pytest.mark.django_db
@pytest.mark.parametrize("claim", ["abc", "1 OR 1=1", None, 10**12, ["1"]])
def test_a_signed_token_naming_no_user_is_refused_with_401(make_user, claim):
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(make_user())
    token["user_id"] = claim  # (signed with the key: only the claim is hostile)
    response = bearer(str(token)).get(ME_URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"user_not_found", "token_not_valid"}


@pytest.mark.django_db
def test_a_jwt_request_loads_the_user_revocation_and_permissions_in_one_query(api, make_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tokens = obtain(api, make_user().email).json()
    client = bearer(tokens["access"])
    assert client.get(ME_URL).status_code == 200  # the process learns the permissions
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ME_URL).status_code == 200
    auth = [q["sql"] for q in queries if "users_revokedaccesstoken" in q["sql"]]
    assert len(auth) == 1 and "users_permissionsversion" in auth[0]
    assert not any("auth_permission" in q["sql"] for q in queries)
    # and the one query still refuses: logged out
    assert client.post(LOGOUT_URL, {"refresh": tokens["refresh"]}).status_code == 200
    assert client.get(ME_URL).json()["error"]["code"] == "token_revoked"
