"""django-axes hooks: how we name the account being tried, and what a locked-out caller sees."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def username_from_request(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if value is None and request is not None and request.method == "POST":
        value = request.POST.get("email") or request.POST.get("username")
    return str(value or "").strip().lower()


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        "Too many failed logins for this account or address. "
        f"Try again in {minutes} minutes, or reset your password."
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    # Our login paths already answer a lockout in their own format; keep that answer.
    if original_response is not None and original_response.status_code in (403, 429):
        return original_response
    if request.path.startswith("/api/"):
        from apps.core.api import error_body  # late: core.api pulls in DRF's settings

        return JsonResponse(error_body("login_locked", lockout_message()), status=429)
    return render(request, "users/locked_out.html", {"message": lockout_message()}, status=429)
