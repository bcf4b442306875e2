"""The browser and the server the browser tests share."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection, connections
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import free_port, wait_for_port
from tests.users.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "e2e"
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


def sign_in(browser: Browser, base: str, email: str) -> Page:
    page = browser.new_page()
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/account/login/?next=/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    return page


@pytest.fixture
def asgi_server(tmp_path: Path) -> Iterator[str]:
    """daphne serving the project's ASGI application (HTTP and websockets) in a process of its
    own on this run's test database and channel groups. (A fork of this process could inherit
    locks held by its threads, such as asgiref's executor, and hang: so a fresh interpreter.)"""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "imewe.settings_test",
        "IMEWE_LIVE_TEST_DB": str(connection.settings_dict["NAME"]),
        # its channel groups are this run's: what the test publishes reaches its browsers
        "IMEWE_LIVE_TEST_RUN": str(os.getpid()),
    }
    log = (tmp_path / "daphne.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "imewe.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, server, within_s=30)
    except RuntimeError as exc:
        server.kill()
        raise RuntimeError(f"{exc}\n{(tmp_path / 'daphne.log').read_text()}") from None
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)
    log.close()
