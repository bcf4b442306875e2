"""Real browser (Playwright driving Debian's chromium) against a live server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.users.roles import Role
from tests.e2e.conftest import SHOTS, sign_in

pytestmark = pytest.mark.e2e


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
