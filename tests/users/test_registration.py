from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from apps.users.models import Membership, Organization, User
from apps.users.roles import Role

FORM = {
    "full_name": "Nia Maker",
    "email": "nia@example.test",
    "role": "vendor",
    "organization_name": "Nia Machines",
    "password": "lathe-and-mill-42",
    "password_again": "lathe-and-mill-42",
}


def link_in_last_mail() -> str:
    match = re.search(r"http://testserver(/\S+)", str(mail.outbox[-1].body))
    assert match, mail.outbox[-1].body
    return match.group(1)


@pytest.mark.django_db
def test_register_verify_and_sign_in(django_capture_on_commit_callbacks):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/account/register/", FORM)
    assert response.status_code == 200
    assert b"Check your e-mail" in response.content
    user = User.objects.get(email="nia@example.test")
    assert not user.is_active and user.role == Role.VENDOR
    assert user.memberships.get().org_role == Membership.OrgRole.OWNER
    assert user.memberships.get().organization.kind == "vendor"

    # Before verification the login explains what is missing.
    early = client.post("/account/login/", {"email": FORM["email"], "password": FORM["password"]})
    assert b"Confirm your e-mail address first" in early.content

    response = client.get(link_in_last_mail())
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.is_active and user.email_verified_at is not None
    login = client.post("/account/login/", {"email": FORM["email"], "password": FORM["password"]})
    assert login.status_code == 302
    assert client.get("/", follow=True).request["PATH_INFO"] == "/vendor/"


@pytest.mark.django_db
def test_register_rejects_bad_input_with_field_errors():
    bad = {**FORM, "email": "not-an-email", "password_again": "different-thing-9", "role": "admin"}
    response = Client().post("/account/register/", bad)
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) >= {"email", "password_again", "role"}
    assert not User.objects.exists()


@pytest.mark.django_db
def test_tampered_verification_link_is_refused(django_capture_on_commit_callbacks):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/register/", FORM)
    link = link_in_last_mail()
    response = client.get(link[:-3] + "xyz/")
    assert response.status_code == 400
    assert not User.objects.get(email=FORM["email"]).is_active


@pytest.mark.django_db
def test_api_registration_does_not_reveal_existing_accounts(
    api, django_capture_on_commit_callbacks
):
    body = {k: FORM[k] for k in ("full_name", "email", "role", "organization_name", "password")}
    body["role"] = "designer"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/auth/register/", body, format="json")
    assert response.status_code == 202
    assert len(mail.outbox) == 1
    uid, token = link_in_last_mail().strip("/").split("/")[-2:]

    # The same address again: the same answer, no new organization, and the owner is told.
    with django_capture_on_commit_callbacks(execute=True):
        again = api.post(
            "/api/v1/auth/register/", {**body, "organization_name": "Other"}, format="json"
        )
    assert again.status_code == 202 and again.json() == response.json()
    assert not Organization.objects.filter(name="Other").exists()
    assert len(mail.outbox) == 2 and "already" in mail.outbox[-1].body

    verified = api.post("/api/v1/auth/verify-email/", {"uid": uid, "token": token}, format="json")
    assert verified.status_code == 200 and verified.json() == {"verified": True}
    assert User.objects.get(email=FORM["email"]).is_active


@pytest.mark.django_db
def test_verify_email_reveals_nothing_without_a_valid_token(api, make_user):
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    admin = make_user(Role.ADMIN)
    uid = urlsafe_base64_encode(force_bytes(admin.pk))
    response = api.post(
        "/api/v1/auth/verify-email/", {"uid": uid, "token": "garbage"}, format="json"
    )
    assert response.status_code == 400
    assert admin.email not in response.content.decode()


@pytest.mark.django_db
def test_portal_signup_with_taken_address_looks_the_same(
    make_user, django_capture_on_commit_callbacks
):
    make_user(email=FORM["email"])
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post("/account/register/", FORM)
    assert response.status_code == 200 and b"Check your e-mail" in response.content
    assert not Organization.objects.filter(name=FORM["organization_name"]).exists()


@pytest.mark.django_db
def test_api_registration_refuses_staff_roles_and_weak_passwords(api):
    body = {
        "full_name": "X Y",
        "email": "x@example.test",
        "organization_name": "X",
        "password": "tall-tree-green-9",
    }
    response = api.post("/api/v1/auth/register/", {**body, "role": "operator"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["role"]
    response = api.post(
        "/api/v1/auth/register/",
        {**body, "role": "designer", "password": "1234567890"},
        format="json",
    )
    assert response.status_code == 400
    assert "entirely numeric" in " ".join(response.json()["error"]["details"]["password"])
    assert not User.objects.exists()


@pytest.mark.django_db
def test_password_reset_by_email(make_user):
    user = make_user(Role.DESIGNER)
    client = Client()
    client.post("/account/password-reset/", {"email": user.email})
    assert len(mail.outbox) == 1
    link = link_in_last_mail()
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.request["PATH_INFO"]
    response = client.post(
        set_url, {"new_password1": "brand-new-secret-7", "new_password2": "brand-new-secret-7"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("brand-new-secret-7")


@pytest.mark.django_db
def test_password_reset_for_unknown_address_reveals_nothing():
    response = Client().post("/account/password-reset/", {"email": "ghost@example.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 0
