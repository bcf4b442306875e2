"""Moves every django-otp TOTPDevice (key in clear) to EncryptedTOTPDevice (key encrypted with
the first of FIELD_ENCRYPTION_KEYS) and deletes the clear rows. A user's authenticator app keeps
working: the key is the same. A session verified with an old device is asked for a code again
(its device id names the old model). Reversible: the way back decrypts into TOTPDevice."""

from django.db import migrations

FIELDS = [
    "user_id",
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "last_used_at",
    "key",
    "step",
    "t0",
    "digits",
    "tolerance",
    "drift",
    "last_t",
]


def _move(source, target) -> None:
    for device in source.objects.order_by("pk"):
        copy = target.objects.create(**{name: getattr(device, name) for name in FIELDS})
        # created_at is auto_now_add: set it afterwards to keep the original
        target.objects.filter(pk=copy.pk).update(created_at=device.created_at)
    source.objects.all().delete()


def encrypt(apps, schema_editor) -> None:
    _move(apps.get_model("otp_totp", "TOTPDevice"), apps.get_model("users", "EncryptedTOTPDevice"))


def decrypt(apps, schema_editor) -> None:
    _move(apps.get_model("users", "EncryptedTOTPDevice"), apps.get_model("otp_totp", "TOTPDevice"))


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0006_encrypted_totp_device"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(encrypt, decrypt)]
