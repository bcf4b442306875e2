"""Screenshots of each portal's home and main pages, per demo role, at desktop and phone size,
for README (docs/screenshots/). Run against a server on the same database (`make run`, then
`manage.py portal_screenshots`). Needs the dev requirements (Playwright) and Debian's chromium.

Each role is signed in with a session made here (the admin's with a TOTP device confirmed for
the run and deleted after it), so no password or second factor is typed into the pages."""

from __future__ import annotations

import shutil
from importlib import import_module
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp import DEVICE_ID_SESSION_KEY

from apps.users.models import EncryptedTOTPDevice, User
from apps.users.roles import two_factor_required

# (role's demo e-mail, file stem, path) -- each portal's home and the pages its role lives in.
PAGES: list[tuple[str, str, str]] = [
    ("designer@imewe.test", "designer-home", "/designer/"),
    ("designer@imewe.test", "designer-twins", "/twins/"),
    ("designer@imewe.test", "designer-market", "/market/"),
    ("engineer@imewe.test", "engineer-home", "/engineering/"),
    ("vendor@imewe.test", "vendor-home", "/vendor/"),
    ("vendor@imewe.test", "vendor-fleet", "/vendor/nodes/"),
    ("vendor@imewe.test", "vendor-maintenance", "/maintenance/"),
    ("operator@imewe.test", "ops-home", "/ops/"),
    ("operator@imewe.test", "ops-live", "/nodes/"),
    ("operator@imewe.test", "ops-energy", "/energy/"),
    ("admin@imewe.test", "admin-home", "/ops/"),
    ("viewer@imewe.test", "viewer-home", "/designer/"),
]
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def signed_in_session(user: User) -> tuple[str, EncryptedTOTPDevice | None]:
    """A session key signed in as `user`; for users who must use 2FA, verified with a device
    made for it (returned, to be deleted)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    device = None
    if two_factor_required(user):
        device = EncryptedTOTPDevice.objects.create(user=user, name="screenshots", confirmed=True)
        store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    store.save()
    assert store.session_key is not None
    return store.session_key, device


class Command(BaseCommand):
    help = "Screenshots of each portal (per demo role, desktop and phone) into docs/screenshots/."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--output", default=str(settings.BASE_DIR / "docs" / "screenshots"))
        parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")

    def handle(self, *args: Any, **options: Any) -> None:
        from playwright.sync_api import sync_playwright

        out = Path(options["output"])
        out.mkdir(parents=True, exist_ok=True)
        base = options["base_url"].rstrip("/")
        users = {u.email: u for u in User.objects.filter(email__in={p[0] for p in PAGES})}
        missing = {p[0] for p in PAGES} - users.keys()
        if missing:
            raise CommandError(f"Demo users missing ({', '.join(sorted(missing))}): seed_demo.")
        sessions = {email: signed_in_session(user) for email, user in users.items()}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=options["chromium"], args=CHROMIUM_ARGS
                )
                for email, stem, path in PAGES:
                    for size, (width, height) in SIZES.items():
                        context = browser.new_context(viewport={"width": width, "height": height})
                        context.add_cookies(
                            [
                                {
                                    "name": settings.SESSION_COOKIE_NAME,
                                    "value": sessions[email][0],
                                    "url": base,
                                }
                            ]
                        )
                        page = context.new_page()
                        response = page.goto(base + path, wait_until="networkidle")
                        if response is None or response.status != 200:
                            status = response.status if response else "no answer"
                            raise CommandError(f"{path} as {email}: {status}")
                        target = out / f"{stem}-{size}.png"
                        page.screenshot(path=str(target))
                        self.stdout.write(f"{target} ({target.stat().st_size // 1024} KB)")
                        context.close()
                browser.close()
        finally:
            for _key, device in sessions.values():
                if device is not None:
                    device.delete()
