"""Secrets at rest: a model field whose column holds a Fernet token, never the value, and key
rotation.

Keys come from settings.FIELD_ENCRYPTION_KEYS (env FIELD_ENCRYPTION_KEYS, comma-separated Fernet
keys): the first encrypts, every one decrypts (cryptography's MultiFernet). Rotation: put a new
key first, keep the old ones after it, restart, run `manage.py rotate_field_encryption` (every
encrypted column re-encrypted with the first key), then drop the old keys. docs/runbook.md.

    from apps.core.encryption import EncryptedTextField

    class WebhookChannel(models.Model):
        secret = EncryptedTextField()  # reads and writes as a str; the column holds a token

The token is random per write, so the column cannot be searched or compared in SQL: lookups
other than isnull are refused.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.lookups import IsNull


class FieldDecryptionError(ImproperlyConfigured):
    """A stored token that none of FIELD_ENCRYPTION_KEYS opens (a key dropped too early)."""


def derived_key(secret: str) -> str:
    """A Fernet key derived from SECRET_KEY: the embedded default's key when FIELD_ENCRYPTION_KEYS
    is not set (production sets its own, so that SECRET_KEY can be rotated on its own)."""
    digest = hashlib.sha256(b"imewe.field-encryption:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def configured_keys() -> tuple[str, ...]:
    keys = tuple(settings.FIELD_ENCRYPTION_KEYS) or (derived_key(settings.SECRET_KEY),)
    return keys


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except ValueError:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe "
                "base64-encoded bytes; make one with python -c 'from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())')"
            ) from None
    return MultiFernet(fernets)


def field_fernet() -> MultiFernet:
    return _fernet_for(configured_keys())


def encrypt_text(value: str) -> str:
    return field_fernet().encrypt(value.encode()).decode()


def decrypt_text(token: str, *, where: str = "a field") -> str:
    try:
        return field_fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise FieldDecryptionError(
            f"cannot decrypt {where}: none of FIELD_ENCRYPTION_KEYS opens it (was the key it "
            "was written with removed before `manage.py rotate_field_encryption` ran?)"
        ) from None


class EncryptedTextField(models.TextField[str, str]):
    """A str in Python, a Fernet token (text) in the database."""

    description = "Text encrypted at rest (Fernet)"

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt_text(str(value))

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return decrypt_text(value, where=f"{self.model._meta.label}.{self.name}")

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            # a random token per write: equality in SQL would always be false
            raise FieldError(
                f"{self.model._meta.label}.{self.name} is encrypted: it supports no "
                f"'{lookup_name}' lookup, only isnull"
            )
        return IsNull


@dataclass(frozen=True)
class RotationResult:
    field: str
    rows: int


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


def field_encryption_rotate(*, using: str = "default") -> list[RotationResult]:
    """Re-encrypt every encrypted column with the first key. Works on the stored tokens
    (MultiFernet.rotate), so values never pass through Python as plaintext strings. One
    transaction per column; a token no key opens stops it with the row named."""
    connection: BaseDatabaseWrapper = connections[using]
    fernet = field_fernet()
    quote = connection.ops.quote_name
    results = []
    for model, field in encrypted_fields():
        pk_field = model._meta.pk
        assert pk_field is not None and pk_field.column and field.column
        table, column, pk = model._meta.db_table, field.column, pk_field.column
        label = f"{model._meta.label}.{field.name}"
        rows = 0
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote(pk)}, {quote(column)} FROM {quote(table)}"
                f" WHERE {quote(column)} IS NOT NULL ORDER BY {quote(pk)}"
            )
            for row_pk, token in cursor.fetchall():
                try:
                    rotated = fernet.rotate(token.encode()).decode()
                except InvalidToken:
                    raise FieldDecryptionError(
                        f"cannot decrypt {label} of row {row_pk}: none of FIELD_ENCRYPTION_KEYS "
                        "opens it; nothing of this column was changed"
                    ) from None
                cursor.execute(
                    f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE {quote(pk)} = %s",
                    [rotated, row_pk],
                )
                rows += 1
        results.append(RotationResult(field=label, rows=rows))
    return results
