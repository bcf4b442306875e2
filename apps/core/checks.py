"""System checks of the platform's own settings (`manage.py check`, `--deploy` for production)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.security)
def field_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """FIELD_ENCRYPTION_KEYS must hold Fernet keys (an error at any start); in production it must
    be set at all (a deploy warning): without it the secrets at rest are encrypted with a key
    derived from SECRET_KEY, and rotating SECRET_KEY would make every one of them unreadable."""
    from apps.core.encryption import field_fernet

    try:
        field_fernet()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="core.E001")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def field_encryption_keys_set(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.FIELD_ENCRYPTION_KEYS:
        return []
    return [
        checks.Warning(
            "FIELD_ENCRYPTION_KEYS is not set: TOTP keys and channel secrets are encrypted with a "
            "key derived from SECRET_KEY, so rotating SECRET_KEY would make them unreadable.",
            hint="Set FIELD_ENCRYPTION_KEYS to a Fernet key (docs/runbook.md, 'Moving off the "
            "derived key').",
            id="core.W001",
        )
    ]
