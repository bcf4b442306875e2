from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from apps.users.models import EncryptedTOTPDevice, User
from apps.users.roles import two_factor_required

# What a user who must use 2FA may reach before verifying: signing in and out, the 2FA pages,
# password reset, static files, probes and the API (whose own authentication asks for 2FA).
OPEN_PREFIXES = ("/account/", "/api/", "/healthz", "/readyz", "/metrics")


class RequireTwoFactorMiddleware:
    """Admins and staff use nothing but the 2FA pages until their session is verified with a
    second factor: without a device they are sent to enrolment, with one to verification."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        path = request.path
        if (
            isinstance(user, User)
            and two_factor_required(user)
            and not user.is_verified()
            and not path.startswith((*OPEN_PREFIXES, settings.STATIC_URL))
        ):
            has_device = EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
            target = "users:2fa-verify" if has_device else "users:2fa-setup"
            return redirect(f"{redirect(target).url}?next={path}")
        return self.get_response(request)
