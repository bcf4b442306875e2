from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import django_otp
from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in, user_login_failed
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.text import slugify
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from apps.core.audit import audit_log
from apps.core.background import task_enqueue
from apps.core.exceptions import Conflict
from apps.core.models import AuditLog
from apps.users.lockout import lockout_message
from apps.users.models import EncryptedTOTPDevice, Membership, Organization, User
from apps.users.roles import (
    SELF_SERVICE_ROLES,
    Action,
    Role,
    role_actions,
    two_factor_required,
)
from apps.users.tokens import access_token_revoke, user_tokens_end_everywhere, user_tokens_revoke

# --- Roles -----------------------------------------------------------------------------------


def roles_sync() -> dict[str, list[str]]:
    """Make one Group per role hold exactly the matrix actions it gives that role. The admin
    group also holds every model permission, so admins can work in Django admin."""
    content_type = ContentType.objects.get_for_model(User)
    action_codenames = {str(action) for action in Action}
    result: dict[str, list[str]] = {}
    for role in Role:
        codenames = [str(action) for action in role_actions(role)]
        group, _ = Group.objects.get_or_create(name=role.value)
        perms = Permission.objects.filter(content_type=content_type, codename__in=codenames)
        if role == Role.ADMIN:
            model_perms = Permission.objects.exclude(
                content_type=content_type, codename__in=action_codenames
            )
            perms = perms | model_perms
        group.permissions.set(perms)
        result[role.value] = sorted(codenames)
    return result


@transaction.atomic
def user_set_role(*, user: User, role: Role | str, by: User | None = None) -> User:
    role = Role(role)
    old = user.role
    user.role = role
    # Admins manage the system through Django admin; no other role gets staff rights.
    user.is_staff = role == Role.ADMIN or user.is_superuser
    user.save(update_fields=["role", "is_staff"])
    teams = list(user.groups.filter(name__startswith=TEAM_GROUP_PREFIX))
    user.groups.set([Group.objects.get_or_create(name=role.value)[0], *teams])
    if old != role:
        # Tokens name the role they were issued for; end the old sessions too.
        user_tokens_revoke(user=user)
        audit_log(
            action=AuditLog.Action.ROLE_CHANGED,
            actor=by,
            obj=user,
            changes={"role": [old, role.value]},
        )
    return user


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None,
    role: Role | str,
    full_name: str = "",
    organization: Organization | None = None,
    org_role: str = Membership.OrgRole.MEMBER,
    is_active: bool = True,
    email_verified: bool = True,
    by: User | None = None,
) -> User:
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict("An account with this e-mail address already exists.", field="email")
    user = User.objects.create_user(
        email=email,
        password=password,
        full_name=full_name,
        is_active=is_active,
        email_verified_at=timezone.now() if email_verified else None,
    )
    user_set_role(user=user, role=role, by=by)
    if organization is not None:
        membership_add(user=user, organization=organization, org_role=org_role)
    return user


TEAM_GROUP_PREFIX = "team:"


def team_group(*, organization: Organization) -> Group:
    """The guardian group standing for an organization's members (a team objects can be shared
    with). Created on first use with the current members; memberships keep it in step."""
    group, created = Group.objects.get_or_create(name=f"{TEAM_GROUP_PREFIX}{organization.pk}")
    if created:
        group.user_set.set(User.objects.filter(memberships__organization=organization))
    return group


def team_membership_sync(*, membership: Membership, removed: bool) -> None:
    group = Group.objects.filter(name=f"{TEAM_GROUP_PREFIX}{membership.organization_id}").first()
    if group is None:
        return
    if removed:
        group.user_set.remove(membership.user_id)
    else:
        group.user_set.add(membership.user_id)


def organization_create(*, name: str, kind: str) -> Organization:
    """Names are what people read, not identifiers: two teams may share one (so a sign-up cannot
    probe which names exist). The slug is the unique key: the name's, numbered when taken."""
    name = name.strip()
    base = slugify(name)[:150] or "org"
    taken = set(Organization.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    n = 1
    while True:
        slug = base if n == 1 else f"{base}-{n}"
        n += 1
        if slug in taken:
            continue
        try:
            with transaction.atomic():  # a concurrent sign-up may take the slug first
                return Organization.objects.create(name=name, slug=slug, kind=kind)
        except IntegrityError:
            if not Organization.objects.filter(slug=slug).exists():
                raise


def membership_add(
    *, user: User, organization: Organization, org_role: str = Membership.OrgRole.MEMBER
) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"org_role": org_role}
    )
    return membership


# --- Registration and e-mail verification ----------------------------------------------------


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "apps.users.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user: Any, timestamp: int) -> str:
        # The token dies once the address is verified or the account is changed.
        return f"{user.pk}{user.email}{user.email_verified_at}{user.is_active}{timestamp}"


email_verification_token = EmailVerificationTokenGenerator()


def _org_kind_for(role: Role) -> str:
    return Organization.Kind.VENDOR if role == Role.VENDOR else Organization.Kind.DESIGN_TEAM


class _AddressTaken(Exception):
    pass


def user_register(
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role | str,
    organization_name: str,
    base_url: str,
) -> User | None:
    """Create an inactive account with its organization (all or nothing) and queue its
    verification e-mail. When the address already has an account, nothing is created and the
    address's owner is e-mailed instead; the caller answers the same in both cases, and both
    cases do the same expensive work (one password hash), so neither the answer nor its timing
    tells whether an address has an account. E-mail goes out from Celery, with retries, after
    the commit: a mail server that is down delays the message and never fails the sign-up."""
    from apps.users.tasks import (  # late: the tasks module imports this one
        user_send_existing_account_notice_task,
        user_send_verification_task,
    )

    role = Role(role)
    if role not in SELF_SERVICE_ROLES:
        raise ValidationError({"role": "Only designers and vendors can sign up themselves."})
    email = User.objects.normalize_email(email.strip()).lower()
    password_hash = make_password(password)  # on every path, before anything else
    try:
        with transaction.atomic():
            if User.objects.filter(email__iexact=email).exists():
                raise _AddressTaken
            organization = organization_create(name=organization_name, kind=_org_kind_for(role))
            user = user_create(
                email=email,
                password=None,
                role=role,
                full_name=full_name,
                organization=organization,
                org_role=Membership.OrgRole.OWNER,
                is_active=False,
                email_verified=False,
            )
            user.password = password_hash
            user.save(update_fields=["password"])
    except (_AddressTaken, IntegrityError, Conflict):
        # IntegrityError/Conflict: a concurrent sign-up with this address won the race.
        existing = User.objects.filter(email__iexact=email).first()
        if existing is None:
            raise
        existing_id = existing.pk
        # robust: whatever queueing meets (a broker outage is logged by task_enqueue), the
        # answer stays the same and never becomes a 500.
        transaction.on_commit(
            lambda: task_enqueue(user_send_existing_account_notice_task, existing_id, base_url),
            robust=True,
        )
        return None
    user_id = user.pk
    transaction.on_commit(
        lambda: task_enqueue(user_send_verification_task, user_id, base_url), robust=True
    )
    return user


def user_send_verification(*, user: User, base_url: str) -> None:
    if user.email_verified_at is not None:
        return  # verified meanwhile (a retried task): nothing to confirm
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = email_verification_token.make_token(user)
    link = base_url.rstrip("/") + reverse("users:verify-email", args=[uid, token])
    send_mail(
        subject="Confirm your Imewe account",
        message=(
            f"Hello {user.get_short_name()},\n\n"
            f"Confirm your e-mail address to activate your Imewe account:\n{link}\n\n"
            f"The link is valid for {settings.EMAIL_VERIFICATION_MAX_AGE_DAYS} days. "
            "If you did not sign up, ignore this message.\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )


def user_send_existing_account_notice(*, user: User, base_url: str) -> None:
    send_mail(
        subject="Sign-up attempt with your Imewe address",
        message=(
            "Someone tried to create an Imewe account with this e-mail address, which already "
            f"has one. If it was you, sign in at {base_url.rstrip('/')}"
            f"{reverse('users:login')} or reset your password at {base_url.rstrip('/')}"
            f"{reverse('users:password-reset')}. Otherwise you can ignore this message.\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )


def user_verify_email(*, uidb64: str, token: str) -> User:
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))))
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        raise ValidationError("This verification link is invalid.") from None
    # The token is checked first, whatever the account's state, so the link reveals nothing.
    if not email_verification_token.check_token(user, token):
        raise ValidationError("This verification link is invalid, used or expired.")
    age = timezone.now() - user.date_joined
    if age.days > settings.EMAIL_VERIFICATION_MAX_AGE_DAYS:
        raise ValidationError("This verification link has expired; sign up again.")
    user.email_verified_at = timezone.now()
    user.is_active = True
    user.save(update_fields=["email_verified_at", "is_active"])
    return user


# --- Login -----------------------------------------------------------------------------------


@dataclass
class AuthFailure(Exception):
    code: str
    message: str
    status: int = 401

    def __str__(self) -> str:
        return self.message


def auth_login(
    *, request: HttpRequest, email: str, password: str, otp_token: str = "", for_api: bool = False
) -> tuple[User, Any]:
    """Check credentials (and the TOTP code when the user has 2FA). Returns the user and the
    verified OTP device (or None). Failures are counted towards the lockout by django-axes."""
    email = (email or "").strip().lower()
    user = authenticate(request, email=email, password=password)
    if getattr(request, "axes_locked_out", False):
        audit_log(action=AuditLog.Action.LOGIN_LOCKED, request=request, actor_email=email)
        raise AuthFailure("login_locked", lockout_message(request), 429)
    if user is None:
        pending = User.objects.filter(email__iexact=email, is_active=False).first()
        if pending and pending.email_verified_at is None and pending.check_password(password):
            raise AuthFailure(
                "email_unverified",
                "Confirm your e-mail address first: follow the link we sent you.",
                403,
            )
        raise AuthFailure("invalid_credentials", "Invalid e-mail or password.")
    assert isinstance(user, User)
    device = None
    if django_otp.user_has_device(user, confirmed=True):
        if not otp_token:
            raise AuthFailure("otp_required", "Enter the 6-digit code from your authenticator app.")
        device = django_otp.match_token(user, otp_token.strip().replace(" ", ""))
        if device is None:
            user_login_failed.send(sender=__name__, credentials={"email": email}, request=request)
            if getattr(request, "axes_locked_out", False):
                raise AuthFailure("login_locked", lockout_message(request), 429)
            raise AuthFailure("otp_invalid", "The authentication code is wrong or expired.")
    elif for_api and two_factor_required(user):
        raise AuthFailure(
            "otp_enrolment_required",
            "Your role requires two-factor authentication: enrol at /account/2fa/ first.",
            403,
        )
    if for_api:
        # The portal's django.contrib.auth.login sends this itself.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
    return user, device


# --- JWT revocation --------------------------------------------------------------------------


def auth_logout_tokens(
    *,
    user: User,
    refresh: str | None,
    access_jti: str | None,
    access_exp: int | None,
    everywhere: bool,
) -> int:
    if everywhere:
        # The caller is signed in (this request authenticated). Their refresh token may be spent
        # exactly because a thief refreshed it first (rotation blacklists the owner's copy), or
        # expired: neither may stop them ending every token and session.
        with transaction.atomic():
            revoked = user_tokens_end_everywhere(user=user)
            audit_log(action=AuditLog.Action.LOGOUT, actor=user, changes={"everywhere": True})
        return revoked
    # The access token dies first, even when the refresh token turns out to be spent.
    if access_jti and access_exp:
        access_token_revoke(jti=access_jti, expires_at=access_exp)
    if not refresh:
        raise ValidationError({"refresh": "Send the refresh token to log out (or everywhere)."})
    try:
        # simplejwt annotates the encoded token as a Token; it takes the str
        token = RefreshToken(cast(Any, refresh))
    except TokenError as exc:
        raise ValidationError({"refresh": f"Invalid refresh token: {exc}"}) from None
    if str(token.get("user_id")) != str(user.pk):
        raise ValidationError({"refresh": "This refresh token belongs to another user."})
    token.blacklist()
    audit_log(action=AuditLog.Action.LOGOUT, actor=user, changes={"everywhere": False})
    return 1


# --- Two-factor authentication ---------------------------------------------------------------


def totp_device_start(*, user: User) -> EncryptedTOTPDevice:
    """An unconfirmed device to show as a QR code; replaced while enrolment is pending."""
    EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device: EncryptedTOTPDevice = EncryptedTOTPDevice.objects.create(
        user=user, name="Authenticator app", confirmed=False
    )
    return device


def totp_may_enrol(*, request: HttpRequest, user: User) -> bool:
    """A first device may be enrolled by a signed-in user; replacing a confirmed one needs a
    session verified with it, so a stolen password cannot swap the second factor."""
    has_confirmed = EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
    return not has_confirmed or bool(getattr(request.user, "is_verified", bool)())


@transaction.atomic
def totp_device_confirm(*, request: HttpRequest, user: User, token: str) -> EncryptedTOTPDevice:
    if not totp_may_enrol(request=request, user=user):
        raise PermissionDenied("Verify with your current authenticator before replacing it.")
    device: EncryptedTOTPDevice | None = (
        EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    )
    if device is None:
        raise ValidationError({"token": "Start the enrolment again: no pending device."})
    if not device.verify_token((token or "").strip().replace(" ", "")):
        raise ValidationError({"token": "The code is wrong or expired; try the current one."})
    EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    django_otp.login(request, device)
    audit_log(action=AuditLog.Action.TWO_FACTOR_ENABLED, actor=user, obj=user, request=request)
    return device


def totp_disable(*, request: HttpRequest, user: User, password: str, token: str) -> None:
    if two_factor_required(user):
        raise ValidationError("Your role requires two-factor authentication; it stays on.")
    # The (throttled) code first; the password then goes through authenticate() so wrong
    # guesses count towards the lockout like any failed login.
    if django_otp.match_token(user, (token or "").strip()) is None:
        raise ValidationError({"token": "The code is wrong or expired."})
    # Not inside a transaction: the failed attempt that authenticate() records must survive.
    if authenticate(request, email=user.email, password=password) is None:
        raise ValidationError({"password": "The password is wrong."})
    with transaction.atomic():
        EncryptedTOTPDevice.objects.filter(user=user).delete()
        audit_log(action=AuditLog.Action.TWO_FACTOR_DISABLED, actor=user, obj=user, request=request)


def user_purge_unverified() -> int:
    """Delete sign-ups whose verification link has expired, so their address can sign up again.
    Their organizations go too when nobody else is in them."""
    cutoff = timezone.now() - timedelta(days=settings.EMAIL_VERIFICATION_MAX_AGE_DAYS)
    stale = User.objects.filter(
        email_verified_at__isnull=True, is_active=False, date_joined__lt=cutoff
    )
    orgs = list(Organization.objects.filter(memberships__user__in=stale).distinct())
    count = 0
    with transaction.atomic():
        for user in stale:
            user.delete()
            count += 1
        for org in orgs:
            if not org.memberships.exists():
                org.delete()
    return count
