"""Pages with the twin's 3D view and the job list's filter run in a real browser under the
Content-Security-Policy without a single violation, and the moved handlers still work."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import sign_in
from tests.fixtures.studio import Studio

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WATCH_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def watched(page: Page) -> list[str]:
    messages: list[str] = []
    page.on(
        "console",
        lambda m: (
            messages.append(m.text)
            if "Content Security Policy" in m.text or "Permissions-Policy" in m.text
            else None
        ),
    )
    page.add_init_script(WATCH_VIOLATIONS)
    return messages


def test_twin_view_and_job_filter_run_without_csp_violations(studio: Studio, asgi_server, browser):
    page = sign_in(browser, asgi_server, studio.designer.email)
    console = watched(page)

    page.goto(f"{asgi_server}/twins/{studio.twin.pk}/")
    expect(page.locator("#live-state")).to_have_text("live · version 1")
    expect(page.locator("#view3d canvas")).to_be_visible()  # three.js via the nonce'd import map
    assert page.evaluate("window.__csp") == []

    page.goto(f"{asgi_server}/jobs/")
    page.select_option("#f-status", index=1)  # the filter submits itself on change
    expect(page).to_have_url(f"{asgi_server}/jobs/?q=&status={page.input_value('#f-status')}")
    assert page.evaluate("window.__csp") == []
    assert console == []
