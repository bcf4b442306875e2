"""`manage.py rotate_field_encryption`

Re-encrypts every encrypted column (apps/core/encryption.py: TOTP keys, webhook secrets...) with
the first of FIELD_ENCRYPTION_KEYS. Run it after putting a new key first and restarting; the
old keys can go once it has finished. A value none of the keys opens stops it, naming the row,
with that column unchanged. docs/runbook.md, "Rotate the encryption keys"."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.core.encryption import FieldDecryptionError, field_encryption_rotate


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            results = field_encryption_rotate()
        except FieldDecryptionError as error:
            raise CommandError(str(error)) from None
        for result in results:
            self.stdout.write(f"{result.field}: {result.rows} values re-encrypted")
        total = sum(r.rows for r in results)
        self.stdout.write(self.style.SUCCESS(f"{total} values in {len(results)} fields"))
