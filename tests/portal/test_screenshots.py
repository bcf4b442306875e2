"""manage.py portal_screenshots signs each demo role in with a session of its own: the admin's
carries a second factor made for the run, so the screenshots show the portal, not enrolment."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from apps.portal.management.commands.portal_screenshots import PAGES, signed_in_session
from apps.users.roles import Role

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "home"), [(Role.ADMIN, "/ops/"), (Role.ENGINEER, "/engineering/")]
)
def test_the_session_opens_the_roles_home(make_user, role, home):
    user = make_user(role)
    key, device = signed_in_session(user)
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = key
    assert client.get(home).status_code == 200
    assert (device is not None) == (role == Role.ADMIN)


def test_every_portal_home_is_photographed():
    paths = {path for _email, _stem, path in PAGES}
    assert {"/designer/", "/engineering/", "/vendor/", "/ops/"} <= paths
