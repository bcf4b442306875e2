"""Real browser (Playwright driving Debian's chromium) against a live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Browser, expect, sync_playwright

from apps.users.roles import Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parents[2] / "var" / "e2e"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread, so every test creates its users
    # (whose saves publish to the channel layer) in fixtures listed before `browser`.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
        # A query the test made while this loop ran kept its connection in the loop's context
        # (asgiref's Local follows the running loop): give it back before the loop stops, or it
        # stays out of the pool for good.
        connections.close_all()


def sign_in(browser: Browser, base: str, email: str):
    page = browser.new_page()
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/account/login/?next=/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    return page


@pytest.fixture
def designer(make_user):
    return make_user(Role.DESIGNER, email="dee@example.test", full_name="Dee Signer")


@pytest.fixture
def admin(make_user):
    return make_user(Role.ADMIN, email="root@example.test")


@pytest.fixture
def vendor(make_user):
    return make_user(Role.VENDOR, email="ven@example.test")


def test_designer_lands_on_designer_portal(live_server, designer, browser):
    page = sign_in(browser, live_server.url, "dee@example.test")
    expect(page).to_have_url(f"{live_server.url}/designer/")
    expect(page.get_by_role("heading", name="Designer portal")).to_be_visible()
    expect(page.get_by_text("No jobs yet.")).to_be_visible()
    # Styles come from node_modules through the static pipeline.
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != "Times New Roman"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "designer_home.png"), full_page=True)
    # The ops portal refuses a designer with the 403 page.
    response = page.goto(f"{live_server.url}/ops/")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_admin_without_2fa_is_sent_to_enrolment(live_server, admin, browser):
    page = sign_in(browser, live_server.url, "root@example.test")
    expect(page).to_have_url(f"{live_server.url}/account/2fa/?next=/")
    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    expect(page.locator("figure.qr svg")).to_be_visible()
    page.screenshot(path=str(SHOTS / "admin_2fa_enrolment.png"), full_page=True)


def test_wrong_password_shows_a_clear_error(live_server, vendor, browser):
    page = browser.new_page()
    page.goto(f"{live_server.url}/account/login/")
    page.get_by_label("E-mail").fill("ven@example.test")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid e-mail or password.")
