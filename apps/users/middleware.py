from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.users.models import User
from apps.users.roles import two_factor_required

PROTECTED_PREFIXES = ("/ops/", "/admin/")


class RequireTwoFactorMiddleware:
    """Admins and staff reach the ops portal and Django admin only with a verified second
    factor: without a device they are sent to enrolment, with one to verification."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            isinstance(user, User)
            and request.path.startswith(PROTECTED_PREFIXES)
            and two_factor_required(user)
            and not user.is_verified()
        ):
            has_device = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            target = "users:2fa-verify" if has_device else "users:2fa-setup"
            return redirect(f"{redirect(target).url}?next={request.path}")
        return self.get_response(request)
