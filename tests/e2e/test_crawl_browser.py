"""Every navigation link of every demo role, in a real browser at desktop and phone size, on the
demo data (`seed_demo`) served by a real daphne (HTTP and websockets). A page fails when it is
wider than the window, throws or logs a script error, has a same-origin request fail or answer
>= 400, draws a chart with no data and no empty-state text, or shows a code from
`codes_that_must_not_show()` (issue 21, "Done means")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from apps.jobs.services import job_submit, parts_schedule
from apps.portal.navigation import navigation_urls
from apps.users.models import User
from apps.vendors.models import FabricationNode
from tests.conftest import portal_client
from tests.maintenance.test_pages import agent_ticket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": (1366, 900), "phone": (390, 844)}
DEMO_ROLES = ("admin", "designer", "engineer", "vendor", "operator", "viewer")
SIGNED_OUT_PAGES = ("/account/login/", "/account/register/")
# Django admin is Django's own frame, not ours: its pages are opened but only for errors.
OUTSIDE_THE_FRAME = ("/admin/",)


def codes_that_must_not_show() -> list[str]:
    """The snake_case codes no page may show (issue 21 item 2): every code the labels registry
    has a label for (apps/core/labels.py; the apps register theirs when Django starts)."""
    from apps.core.labels import codes_never_shown

    return sorted(codes_never_shown())


# What a chart on the page holds: drawn by Chart.js or not, how many points, and whether its box
# says in words why it is empty.
CHARTS_JS = """() => [...document.querySelectorAll("main canvas")]
  .filter(c => !c.closest(".view3d") && c.offsetParent !== null)
  .map(c => {
    const chart = window.Chart && window.Chart.getChart(c);
    const values = chart ? chart.data.datasets.flatMap(d => d.data || []) : [];
    const points = values.filter(v => v !== null && v !== undefined
      && !(typeof v === "object" && (v.y === null || v.y === undefined))).length;
    const box = c.closest("figure, section, article, .chart-box") || c.parentElement;
    const said = [...box.querySelectorAll(".empty, [data-empty]")]
      .some(e => e.offsetParent !== null && e.textContent.trim());
    return {name: c.id || c.getAttribute("aria-label") || "canvas", drawn: !!chart, points, said};
  })"""


# The pages' own links (details: a twin, a node, a listing...), one per URL pattern, followed as
# the admin, who may open the most; not downloads, the API or Django admin.
MAIN_LINKS_JS = """() => [...document.querySelectorAll("main a[href]:not([download])")]
  .filter(a => a.origin === location.origin && !a.search && !a.hash)
  .map(a => a.pathname)"""
NOT_FOLLOWED = ("/api/", "/admin/", "/account/", "/media/", "/static/")


@dataclass
class Crawler:
    """One page of a browser context, taken from link to link (a fresh page per link costs
    twice the time); what the page does is written down against the path it was sent to."""

    page: Page
    base: str
    codes: re.Pattern[str]
    path: str = ""
    problems: dict[str, list[str]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # URL pattern -> first path seen

    def __post_init__(self) -> None:
        self.page.on("pageerror", lambda exc: self.note(f"script error: {exc}"))
        self.page.on(
            "console",
            lambda msg: self.note(f"console error: {msg.text}") if msg.type == "error" else None,
        )
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._answered)

    def note(self, problem: str) -> None:
        self.problems.setdefault(self.path, []).append(problem)

    def _failed(self, request: Any) -> None:
        # ERR_ABORTED: a request of the page being left, cut by the next navigation
        if request.url.startswith(self.base) and request.failure != "net::ERR_ABORTED":
            self.note(f"request failed: {request.url} ({request.failure})")

    def _answered(self, response: Any) -> None:
        if response.url.startswith(self.base) and response.status >= 400:
            self.note(f"{response.status} for {response.url}")

    def visit(self, path: str) -> None:
        self.path = path
        response = self.page.goto(self.base + path, wait_until="load")
        if response is None or response.status != 200:
            self.note(f"answered {response.status if response else 'nothing'}")
        if path.startswith(OUTSIDE_THE_FRAME):
            return
        width = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1]:
            self.note(f"{width[0]} px wide in a {width[1]} px window")
        for chart in self.page.evaluate(CHARTS_JS):
            if not chart["points"] and not chart["said"]:
                drawn = "empty" if chart["drawn"] else "not drawn"
                self.note(f"chart {chart['name']} {drawn}, with no empty-state text")
        shown = sorted({m.group(0) for m in self.codes.finditer(self.page.inner_text("body"))})
        if shown:
            self.note(f"shows codes {', '.join(shown)}")
        for href in self.page.evaluate(MAIN_LINKS_JS):
            if href.startswith("/") and not href.startswith(NOT_FOLLOWED):
                self.links.setdefault(re.sub(r"\d+", "N", href), href)

    def finish(self) -> dict[str, list[str]]:
        """What the last page's scripts did after its load (sockets that fail, late errors)."""
        self.page.wait_for_timeout(500)
        self.page.close()
        return self.problems


def open_menu_on_phone(context: BrowserContext, base: str) -> list[str]:
    """The phone's menu opens from its toggle, its links show, and the page stays narrow."""
    page = context.new_page()
    page.goto(base + "/", wait_until="load")
    problems = []
    links = page.locator('nav[aria-label="Main"] a')
    if links.first.is_visible():
        problems.append("the menu is open before it is asked for")
    page.locator(".site-menu > summary").click()
    if not links.first.is_visible():
        problems.append("the menu toggle does not show the links")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        problems.append(f"open menu: {width[0]} px wide in a {width[1]} px window")
    page.close()
    return problems


@pytest.fixture
def demo() -> dict[str, User]:
    """seed_demo, plus what a demo has after a while of use: a job placed on a printer and a
    ticket the agent opened, so their pages are crawled too."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    people = {role: User.objects.get(email=f"{role}@imewe.test") for role in DEMO_ROLES}
    part = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 20}
    job_submit(by=people["designer"], title="Drone arms", parts=[{**part, "name": "arm"}])
    parts_schedule()
    agent_ticket(FabricationNode.objects.get(name="Mill-01"))
    return people


@pytest.fixture
def sessions(demo: dict[str, User]) -> Iterator[dict[str, str]]:
    """A signed-in session per role (the admin's with a verified second factor)."""
    yield {
        role: portal_client(user).cookies[settings.SESSION_COOKIE_NAME].value
        for role, user in demo.items()
    }


def test_every_navigation_link_of_every_role_at_desktop_and_phone_size(
    demo,
    sessions,
    asgi_server,
    browser: Browser,
):
    base = asgi_server
    codes = re.compile(
        r"(?<![\w-])(" + "|".join(map(re.escape, codes_that_must_not_show())) + r")(?![\w-])",
        re.IGNORECASE,
    )
    failures: list[str] = []
    pages = 0
    details: list[str] = []
    for size, (width, height) in VIEWPORTS.items():
        viewport: ViewportSize = {"width": width, "height": height}
        for role, user in [("signed out", None), *demo.items()]:
            context = browser.new_context(viewport=viewport)
            paths: list[str] = list(SIGNED_OUT_PAGES)
            if user is not None:
                context.add_cookies(
                    [{"name": settings.SESSION_COOKIE_NAME, "value": sessions[role], "url": base}]
                )
                paths = ["/", *navigation_urls(user=user), "/notifications/", "/account/2fa/"]
            crawler = Crawler(context.new_page(), base, codes)
            for path in paths:
                crawler.visit(path)
            if role == "admin":
                details = details or [p for p in crawler.links.values() if p not in paths]
                for path in details:
                    crawler.visit(path)
                pages += len(details)
            pages += len(paths)
            for path, problems in crawler.finish().items():
                failures += [f"{size} {role} {path}: {p}" for p in problems]
            if size == "phone" and user is not None:
                failures += [f"phone {role} menu: {p}" for p in open_menu_on_phone(context, base)]
            context.close()
    assert pages > 100 and len(details) > 10, (pages, details)
    assert not failures, (
        f"{len(failures)} problems on {pages} pages (the admin's own links followed: "
        f"{', '.join(details)}):\n" + "\n".join(failures)
    )
