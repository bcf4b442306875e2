"""Every page carries a Content-Security-Policy without inline scripts (nonces only) and a
Permissions-Policy; a CSRF failure gets the portal's own page (JSON under /api/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from apps.users.roles import Role
from tests.conftest import portal_client
from tests.fixtures.studio import Studio

ROOT = Path(__file__).resolve().parents[2]


def policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/account/login/", "/account/register/"])
def test_anonymous_pages_send_the_policies(client, url):
    response = client.get(url)
    assert response.status_code == 200
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert "'unsafe-inline'" not in csp["style-src"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    permissions = response.headers["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions


@pytest.mark.django_db
def test_job_list_filter_has_no_inline_handler(make_user):
    response = portal_client(make_user(Role.DESIGNER)).get("/jobs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-autosubmit" in html and "onchange=" not in html
    assert "/static/js/forms.js" in html
    assert "Permissions-Policy" in response.headers


@pytest.mark.django_db
def test_the_twin_import_map_carries_the_nonce_of_the_response(studio: Studio):
    client = portal_client(studio.designer)
    response = client.get(f"/twins/{studio.twin.pk}/")
    assert response.status_code == 200
    nonces = [v for v in policy(response)["script-src"] if v.startswith("'nonce-")]
    assert len(nonces) == 1
    nonce = nonces[0][len("'nonce-") : -1]
    html = response.content.decode()
    assert f'<script type="importmap" nonce="{nonce}">' in html
    # every inline script carries it; all others load from a file (or are JSON data)
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or f'nonce="{nonce}"' in tag or "application/json" in tag, tag
    again = client.get(f"/twins/{studio.twin.pk}/")
    assert nonces != [v for v in policy(again)["script-src"] if v.startswith("'nonce-")]


def test_no_template_has_inline_event_handlers_or_scripts():
    handler = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
    inline_script = re.compile(r"<script(?![^>]*\b(src|nonce)=)[^>]*>", re.IGNORECASE)
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        if handler.search(text) or inline_script.search(text) or "javascript:" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.django_db
def test_csrf_failure_gets_the_branded_page(make_user):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/account/login/", {"email": "a@b.test", "password": "x"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form has expired" in html
    assert "Imewe" in html  # the portal's layout, not Django's bare page
    assert "Content-Security-Policy" in response.headers


@pytest.mark.django_db
def test_csrf_failure_under_the_api_stays_json(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(), backend="django.contrib.auth.backends.ModelBackend")
    response = client.post("/api/v1/auth/logout/", {}, content_type="application/json")
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/json")
    assert "error" in response.json()


@pytest.mark.django_db
def test_api_docs_load_their_start_script_from_a_file(make_user):
    client = portal_client(make_user(Role.DESIGNER))
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    script = re.search(r'<script src="(/api/docs/\?[^"]*script=[^"]*)"', html)
    assert script, html
    assert "<script>" not in html
    assert "'unsafe-inline'" in policy(page)["style-src"]  # Swagger UI's own styles
    assert "'unsafe-inline'" not in policy(page)["script-src"]
    start = client.get(script.group(1).replace("&amp;", "&"))
    assert start.status_code == 200 and b"SwaggerUIBundle" in start.content
