from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key, key_validator

from apps.core.encryption import EncryptedTextField
from apps.core.models import TimeStampedModel
from apps.users.permission_cache import user_permissions
from apps.users.roles import Action, Role


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(is_staff=True, is_superuser=True, role=Role.ADMIN)
        fields.setdefault("email_verified_at", timezone.now())
        return self._create(email, password, **fields)

    def get_by_natural_key(self, username: str | None) -> User:
        # E-mail login is case-insensitive.
        return self.get(email__iexact=username or "")


# the stubs cannot follow the user foreign key EncryptedTOTPDevice inherits from django-otp's Device
class User(AbstractBaseUser, PermissionsMixin):  # type: ignore[django-manager-missing]
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="May log in to Django admin (requires two-factor authentication)."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # Raised by "log out everywhere": tokens carry the generation they were issued in and
    # sessions hash it in, so every earlier access token and session stops at once.
    token_generation = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()
    # Set on request.user by django_otp.middleware.OTPMiddleware.
    is_verified: Callable[[], bool]

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]
        # The permission matrix's actions, granted to role groups by roles_sync().
        permissions = [(action.value, action.label) for action in Action]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email.split("@")[0]

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        # A global permission (the role matrix's, or a model's for Django admin) from the
        # process's cache, checked against the permissions version (permission_cache.py): what
        # ModelBackend answers (AxesStandaloneBackend has no permissions, guardian's backend
        # only per object), without its two queries per request. Per object: the backends.
        if obj is None and self.is_active and not self.is_superuser:
            return perm in user_permissions(self)
        return super().has_perm(perm, obj)

    # Django keeps a session only while its stored hash matches this one; generation 0 keeps
    # Django's own hash, so sessions from before the field existed stay valid.
    def get_session_auth_hash(self) -> str:
        if not self.token_generation:
            return super().get_session_auth_hash()
        return self._generation_session_hash(None)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        if not self.token_generation:
            yield from super().get_session_auth_fallback_hash()
            return
        for fallback_secret in settings.SECRET_KEY_FALLBACKS:
            yield self._generation_session_hash(fallback_secret)

    def _generation_session_hash(self, secret: str | bytes | None) -> str:
        key_salt = "apps.users.models.User.get_session_auth_hash"
        value = f"{self.password}:{self.token_generation}"
        return salted_hmac(key_salt, value, secret=secret, algorithm="sha256").hexdigest()


class Organization(TimeStampedModel):
    class Kind(models.TextChoices):
        DESIGN_TEAM = "design_team", "Design team"
        VENDOR = "vendor", "Vendor company"
        OPERATOR_SITE = "operator_site", "Operator site"

    # A display name, not a key: two teams may share one, so signing up cannot probe which names
    # exist. The slug is the unique identifier.
    name = models.CharField(max_length=150, db_index=True)
    slug = models.SlugField(max_length=160, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    members = models.ManyToManyField(
        User, through="Membership", related_name="organizations", blank=True
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(TimeStampedModel):
    class OrgRole(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    org_role = models.CharField(max_length=10, choices=OrgRole.choices, default=OrgRole.MEMBER)

    class Meta:
        ordering = ["organization__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.org_role})"


class RevokedAccessToken(models.Model):
    """An access token refused before it expires (logout). Kept in the database, not in the
    cache, so a Redis outage can neither lose a revocation nor fail the check; rows past
    `expires_at` are dropped nightly (flush_expired_tokens_task)."""

    jti = models.CharField(max_length=255, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["expires_at"]

    def __str__(self) -> str:
        return self.jti


class EncryptedTOTPDevice(TimestampMixin, ThrottlingMixin, Device):  # type: ignore[misc]  # django-otp has no types
    """A TOTP authenticator whose secret key is encrypted at rest (apps/core/encryption.py).

    django-otp's TOTPDevice keeps its key in clear and has no hook for key storage (its issue
    67), so this is a device model of our own: TOTPDevice's fields with the key in an
    EncryptedTextField, and TOTPDevice's own code for everything else (verification with
    throttling and drift, the otpauth:// URL), borrowed as plain functions, which read only the
    fields both models have. django-otp finds it like any Device (match_token, otp login,
    persistent ids)."""

    key = EncryptedTextField(
        default=default_key,  # django-otp's: 20 random bytes, hex-encoded
        validators=[key_validator],
        help_text="A hex-encoded secret key of up to 40 bytes, encrypted at rest.",
    )
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1)

    class Meta(Device.Meta):  # type: ignore[misc]
        verbose_name = "TOTP device"
        ordering = ["id"]

    bin_key = TOTPDevice.bin_key
    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    config_url = TOTPDevice.config_url
    _read_str_from_settings = TOTPDevice._read_str_from_settings


class PermissionsVersion(models.Model):
    """One row whose `value` changes whenever a permission may have moved: a group's or a user's
    permissions, a user's groups (role, team membership), a permission or group deleted. Each
    process keeps the users' permissions it has computed under the value they were computed
    at (apps/users/permission_cache.py); the JWT authentication reads the current value in the
    query that loads the user, so a changed permission counts on the very next request in every
    process. A fresh random value, never a counter: a value a rolled-back transaction used is
    never seen again."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    value = models.CharField(max_length=32)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.value
