from __future__ import annotations

from io import BytesIO

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp import match_token

from apps.users.forms import DisableTwoFactorForm, LoginForm, RegistrationForm, TokenForm
from apps.users.models import EncryptedTOTPDevice
from apps.users.roles import two_factor_required
from apps.users.services import (
    AuthFailure,
    auth_login,
    totp_device_confirm,
    totp_device_start,
    totp_disable,
    totp_may_enrol,
    user_register,
    user_verify_email,
)
from apps.users.types import AuthenticatedHttpRequest


def _safe_next(request: HttpRequest, default: str = "portal:home") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return target
    return redirect(default).url


@sensitive_post_parameters("password", "otp_token")
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.method == "GET":
        return redirect("portal:home")
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            user, device = auth_login(
                request=request,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                otp_token=form.cleaned_data["otp_token"],
            )
        except AuthFailure as failure:
            form.add_error("otp_token" if failure.code.startswith("otp") else None, failure.message)
            status = failure.status if failure.status in (403, 429) else 400
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            if device is not None:
                otp_login(request, device)
            return redirect(_safe_next(request))
    return render(
        request,
        "users/login.html",
        {"form": form, "next": request.GET.get("next", "")},
        status=status,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("users:login")


@sensitive_post_parameters("password", "password_again")
def register_view(request: HttpRequest) -> HttpResponse:
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user_register(
                email=data["email"],
                password=data["password"],
                full_name=data["full_name"],
                role=data["role"],
                organization_name=data["organization_name"],
                base_url=request.build_absolute_uri("/"),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return render(request, "users/register_done.html", {"email": data["email"]})
    return render(
        request, "users/register.html", {"form": form}, status=400 if form.errors else 200
    )


def verify_email_view(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    try:
        user_verify_email(uidb64=uidb64, token=token)
    except ValidationError as exc:
        return render(request, "users/verify_failed.html", {"message": exc.messages[0]}, status=400)
    messages.success(request, "Your e-mail address is confirmed. You can sign in now.")
    return redirect("users:login")


def _qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


@login_required
def two_factor_setup_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    if not totp_may_enrol(request=request, user=user):
        messages.info(request, "Enter a code from your current authenticator first.")
        return redirect(f"{redirect('users:2fa-verify').url}?next={request.path}")
    confirmed = EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            totp_device_confirm(request=request, user=user, token=form.cleaned_data["token"])
        except ValidationError as exc:
            form.add_error("token", exc.message_dict.get("token", exc.messages))
        else:
            messages.success(request, "Two-factor authentication is on.")
            return redirect(_safe_next(request))
    if confirmed and request.method == "GET" and "restart" not in request.GET:
        return render(
            request,
            "users/2fa_status.html",
            {"required": two_factor_required(user), "disable_form": DisableTwoFactorForm()},
        )
    # A reload keeps the pending secret: the user may already have scanned it, and a new one at
    # every load made their app's codes fail. "Show a new code" (?new=1) starts afresh.
    device = EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None or (request.method == "GET" and "new" in request.GET):
        device = totp_device_start(user=user)
    secret = device.config_url.split("secret=")[1].split("&")[0]
    return render(
        request,
        "users/2fa_setup.html",
        {
            "form": form,
            "qr_svg": mark_safe(_qr_svg(device.config_url)),  # noqa: S308 (our own SVG)
            "secret": secret,
            "required": two_factor_required(user),
            "next": request.GET.get("next", ""),
        },
        status=400 if form.errors else 200,
    )


@login_required
def two_factor_verify_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"].strip())
        if device is None:
            form.add_error("token", "The code is wrong or expired.")
        else:
            otp_login(request, device)
            return redirect(_safe_next(request))
    return render(
        request,
        "users/2fa_verify.html",
        {"form": form, "next": request.GET.get("next", "")},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def two_factor_disable_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = DisableTwoFactorForm(request.POST)
    if form.is_valid():
        try:
            totp_disable(
                request=request,
                user=request.user,
                password=form.cleaned_data["password"],
                token=form.cleaned_data["token"],
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Two-factor authentication is off.")
    else:
        messages.error(request, "Enter your password and a current code.")
    return redirect("users:2fa-setup")
