"""Sign-up tells nobody which addresses or organization names exist (neither by its answer nor by
the work it does), and a mail server that is down never fails it or leaves half an account."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator
from smtplib import SMTPServerDisconnected
from typing import Any, ClassVar

import pytest
from celery.exceptions import Retry
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from apps.core import background
from apps.users.models import Membership, Organization, User
from apps.users.tasks import user_send_verification_task
from tests.users.factories import OrganizationFactory

API_URL = "/api/v1/auth/register/"
PORTAL_URL = "/account/register/"
BODY = {
    "full_name": "Nia Maker",
    "email": "nia@example.test",
    "role": "designer",
    "organization_name": "Nia Machines",
    "password": "lathe-and-mill-42",
}


class CountingHasher(MD5PasswordHasher):
    """MD5 (the test settings' hasher) that counts how often it hashes."""

    calls: ClassVar[int] = 0

    def encode(self, password: str, salt: str) -> str:
        type(self).calls += 1
        return super().encode(password, salt)


def hashes_for(post: Any) -> int:
    CountingHasher.calls = 0
    with override_settings(PASSWORD_HASHERS=[f"{__name__}.CountingHasher"]):
        post()
    return CountingHasher.calls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeSmtpServer(socketserver.ThreadingTCPServer):
    """A real SMTP conversation on loopback; the first `drop_first` connections are closed
    before the greeting, as a mail server that is restarting does."""

    daemon_threads = True

    def __init__(self, drop_first: int) -> None:
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.drop_first = drop_first
        self.connections = 0
        self.messages: list[str] = []


class SmtpHandler(socketserver.StreamRequestHandler):
    server: FakeSmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.server.connections += 1
        if self.server.connections <= self.server.drop_first:
            return
        self.reply("220 fake ESMTP")
        in_data, lines = False, list[str]()
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if in_data:
                if line == ".":
                    in_data = False
                    self.server.messages.append("\n".join(lines))
                    self.reply("250 queued")
                else:
                    lines.append(line)
                continue
            command = line[:4].upper()
            if command == "DATA":
                in_data = True
                self.reply("354 go ahead")
            elif command == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@contextlib.contextmanager
def smtp_server(drop_first: int) -> Iterator[FakeSmtpServer]:
    server = FakeSmtpServer(drop_first)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=server.server_address[1],
            EMAIL_TIMEOUT=5,
        ):
            yield server
    finally:
        server.shutdown()
        server.server_close()


def smtp_nobody_listens() -> Any:
    return override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=free_port(),
        EMAIL_TIMEOUT=5,
    )


# --- Existing addresses ------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_answer_for_a_taken_address_is_identical_to_a_fresh_one(
    api, make_user, django_capture_on_commit_callbacks
):
    make_user(email="taken@example.test")
    with django_capture_on_commit_callbacks(execute=True):
        fresh = api.post(API_URL, BODY, format="json")
        taken = api.post(
            API_URL,
            {**BODY, "email": "taken@example.test", "organization_name": "Other"},
            format="json",
        )

    assert (taken.status_code, taken.content) == (fresh.status_code, fresh.content)
    assert not Organization.objects.filter(name="Other").exists()
    assert [m.to for m in mail.outbox] == [["nia@example.test"], ["taken@example.test"]]
    assert "already has one" in mail.outbox[1].body


@pytest.mark.django_db
def test_portal_answer_for_a_taken_address_is_identical_to_a_fresh_one(make_user):
    make_user(email="taken@example.test")
    form = {**BODY, "password_again": BODY["password"]}
    fresh = Client().post(PORTAL_URL, form)
    taken = Client().post(PORTAL_URL, {**form, "email": "taken@example.test"})

    assert taken.status_code == fresh.status_code == 200
    assert taken.content.replace(b"taken@example.test", b"nia@example.test") == fresh.content


@pytest.mark.django_db
def test_taken_address_costs_the_same_password_hashing_as_a_fresh_one(api, make_user):
    make_user(email="taken@example.test")

    fresh = hashes_for(lambda: api.post(API_URL, BODY, format="json"))
    taken = hashes_for(
        lambda: api.post(API_URL, {**BODY, "email": "Taken@Example.test"}, format="json")
    )
    form = {**BODY, "password_again": BODY["password"]}
    portal_fresh = hashes_for(
        lambda: Client().post(PORTAL_URL, {**form, "email": "new@example.test"})
    )
    portal_taken = hashes_for(
        lambda: Client().post(PORTAL_URL, {**form, "email": "taken@example.test"})
    )

    assert fresh == taken == portal_fresh == portal_taken == 1
    assert User.objects.get(email="nia@example.test").check_password(BODY["password"])


# --- Organization names ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_taken_organization_name_gets_the_same_answer_and_its_own_organization(
    api, django_capture_on_commit_callbacks
):
    existing = OrganizationFactory.create(name="Acme Design", slug="acme-design")
    with django_capture_on_commit_callbacks(execute=True):
        fresh = api.post(API_URL, {**BODY, "organization_name": "Brand New Team"}, format="json")
        clash = api.post(
            API_URL,
            {**BODY, "email": "second@example.test", "organization_name": "acme design"},
            format="json",
        )

    assert (clash.status_code, clash.content) == (fresh.status_code, fresh.content)
    own = Membership.objects.get(user__email="second@example.test").organization
    assert own != existing and own.slug == "acme-design-2" and own.name == "acme design"
    assert not existing.memberships.exists()


@pytest.mark.django_db
def test_portal_signup_with_a_taken_organization_name_succeeds(make_user):
    OrganizationFactory.create(name="Nia Machines", slug="nia-machines")
    response = Client().post(PORTAL_URL, {**BODY, "password_again": BODY["password"]})
    assert response.status_code == 200 and b"Check your e-mail" in response.content
    assert Organization.objects.filter(name="Nia Machines").count() == 2


# --- Mail server down ----------------------------------------------------------------------------


@pytest.fixture
def eager_retries() -> Iterator[None]:
    """Run a task's retries in-process, one after another (countdowns are not waited for in eager
    mode), and keep its failure in its result as a worker would, instead of propagating the first
    Retry out of apply_async as the test settings do (which would look like a broker outage to
    apps.core.background.task_enqueue)."""
    conf = user_send_verification_task.app.conf
    saved = conf.task_eager_propagates
    conf.task_eager_propagates = False
    yield
    conf.task_eager_propagates = saved


@pytest.mark.django_db
def test_api_signup_with_the_mail_server_down_answers_and_creates_one_whole_account(
    api, django_capture_on_commit_callbacks, eager_retries
):
    with smtp_nobody_listens(), django_capture_on_commit_callbacks(execute=True):
        first = api.post(API_URL, BODY, format="json")
        again = api.post(API_URL, BODY, format="json")

    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    user = User.objects.get(email=BODY["email"])
    assert User.objects.count() == 1 and Organization.objects.count() == 1
    assert user.memberships.get().org_role == Membership.OrgRole.OWNER
    assert not user.is_active
    assert not background.breaker.is_open()  # a mail failure is no broker outage


@pytest.mark.django_db
def test_portal_signup_with_the_mail_server_down_answers_and_creates_one_account(
    django_capture_on_commit_callbacks, eager_retries
):
    with smtp_nobody_listens(), django_capture_on_commit_callbacks(execute=True):
        response = Client().post(PORTAL_URL, {**BODY, "password_again": BODY["password"]})
    assert response.status_code == 200 and b"Check your e-mail" in response.content
    assert User.objects.filter(email=BODY["email"]).count() == 1


@pytest.mark.django_db
def test_verification_task_raises_retry_when_nobody_listens(make_user):
    user = make_user(email="late@example.test", is_active=False, email_verified_at=None)
    with smtp_nobody_listens(), pytest.raises(Retry) as retry:
        user_send_verification_task.apply(args=(user.pk, "http://testserver/"), throw=True)
    assert isinstance(retry.value.exc, ConnectionRefusedError)


@pytest.mark.django_db
def test_verification_task_raises_retry_when_the_server_hangs_up(make_user):
    user = make_user(email="late@example.test", is_active=False, email_verified_at=None)
    with smtp_server(drop_first=1), pytest.raises(Retry) as retry:
        user_send_verification_task.apply(args=(user.pk, "http://testserver/"), throw=True)
    assert isinstance(retry.value.exc, SMTPServerDisconnected)


@pytest.mark.django_db
def test_verification_task_retries_until_the_mail_server_answers(make_user, eager_retries):
    user = make_user(email="late@example.test", is_active=False, email_verified_at=None)
    with smtp_server(drop_first=2) as server:
        result = user_send_verification_task.apply(args=(user.pk, "http://testserver/"))

    assert result.successful()
    assert server.connections == 3
    assert len(server.messages) == 1 and "To: late@example.test" in server.messages[0]


@pytest.mark.django_db
def test_verification_task_gives_up_after_its_retries(make_user, eager_retries):
    user = make_user(email="late@example.test", is_active=False, email_verified_at=None)
    with smtp_server(drop_first=1000) as server:
        result = user_send_verification_task.apply(args=(user.pk, "http://testserver/"))

    assert result.failed() and isinstance(result.result, SMTPServerDisconnected)
    assert user_send_verification_task.max_retries is not None
    assert server.connections == user_send_verification_task.max_retries + 1


@pytest.mark.django_db
def test_verified_account_gets_no_second_verification_mail(make_user):
    user = make_user(email="done@example.test", email_verified_at=timezone.now())
    user_send_verification_task.apply(args=(user.pk, "http://testserver/"))
    assert mail.outbox == []
