"""Secrets at rest (apps/core/encryption.py): the column holds a token, never the value; several
keys (the first encrypts, all decrypt); rotate_field_encryption re-encrypts with the first; the
data migration that moved django-otp's clear TOTP keys into EncryptedTOTPDevice."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib import admin
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.core.encryption import FieldDecryptionError, decrypt_text, encrypt_text
from apps.users.models import EncryptedTOTPDevice
from apps.users.roles import Role
from tests.conftest import portal_client
from tests.users.factories import EncryptedTOTPDeviceFactory, current_code

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
KEY = "3132333435363738393031323334353637383930"  # RFC 6238's test secret, hex


def raw_key_column(device: EncryptedTOTPDevice) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM users_encryptedtotpdevice WHERE id = %s", [device.pk])
        return cursor.fetchone()[0]


def reload(device: EncryptedTOTPDevice) -> EncryptedTOTPDevice:
    return EncryptedTOTPDevice.objects.get(pk=device.pk)


@pytest.mark.django_db
def test_totp_key_column_holds_a_token_not_the_key():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        device = EncryptedTOTPDeviceFactory.create(key=KEY)
        raw = raw_key_column(device)
        assert KEY not in raw and "1234567890" not in raw
        assert Fernet(OLD).decrypt(raw.encode()).decode() == KEY
        # and it still is a working authenticator
        device = reload(device)
        assert device.key == KEY
        assert device.verify_token(current_code(device))


@pytest.mark.django_db
def test_default_key_is_random_and_encrypted():
    device = EncryptedTOTPDeviceFactory.create()
    first = reload(device).key
    assert len(first) == 40 and int(first, 16) >= 0
    assert first not in raw_key_column(device)
    other = EncryptedTOTPDeviceFactory.create()
    assert reload(other).key != first


@pytest.mark.django_db
def test_row_written_with_the_old_key_reads_after_a_new_key_is_put_first():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        device = EncryptedTOTPDeviceFactory.create(key=KEY)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        device = reload(device)
        assert device.key == KEY
        assert device.verify_token(current_code(device))
        # a write encrypts with the first key
        device.name = "renamed"
        device.save()
        assert Fernet(NEW).decrypt(raw_key_column(device).encode()).decode() == KEY


@pytest.mark.django_db
def test_rotate_command_reencrypts_every_row_with_the_first_key():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        devices = EncryptedTOTPDeviceFactory.create_batch(3, key=KEY)
        before = [raw_key_column(d) for d in devices]
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("rotate_field_encryption", stdout=(out := StringIO()))
    assert "users.EncryptedTOTPDevice.key: 3 values re-encrypted" in out.getvalue()
    after = [raw_key_column(d) for d in devices]
    assert all(a != b for a, b in zip(after, before, strict=True))
    # the old key can go: the new one alone reads every row
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        assert [reload(d).key for d in devices] == [KEY] * 3
    # and the old one alone no longer reads them
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]), pytest.raises(FieldDecryptionError):
        reload(devices[0])


@pytest.mark.django_db
def test_rotate_command_stops_on_a_value_no_key_opens_and_changes_nothing():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        device = EncryptedTOTPDeviceFactory.create(key=KEY)
    before = raw_key_column(device)
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[NEW]),
        pytest.raises(CommandError, match=rf"users.EncryptedTOTPDevice.key of row {device.pk}"),
    ):
        call_command("rotate_field_encryption", stdout=StringIO())
    assert raw_key_column(device) == before


def test_malformed_key_is_refused_with_its_position():
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[NEW, "not-a-fernet-key"]),
        pytest.raises(ImproperlyConfigured, match="key 2 is not a Fernet key"),
    ):
        encrypt_text("x")


def test_tampered_token_does_not_decrypt():
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        token = encrypt_text("webhook-secret")
        assert decrypt_text(token) == "webhook-secret"
        tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
        with pytest.raises(FieldDecryptionError, match="none of FIELD_ENCRYPTION_KEYS"):
            decrypt_text(tampered)


@pytest.mark.django_db
def test_encrypted_field_refuses_lookups_that_cannot_match():
    with pytest.raises(FieldError, match="is encrypted"):
        list(EncryptedTOTPDevice.objects.filter(key=KEY))
    assert not EncryptedTOTPDevice.objects.filter(key__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_data_migration_moves_clear_totp_keys_into_encrypted_devices():
    before = [("users", "0006_encrypted_totp_device"), ("otp_totp", "0003_add_timestamps")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    user = old_apps.get_model("users", "User").objects.create(email="m@example.com", password="!")
    old_apps.get_model("otp_totp", "TOTPDevice").objects.create(
        user_id=user.pk, name="phone", confirmed=True, key=KEY, drift=1, last_t=42
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    device = EncryptedTOTPDevice.objects.get(user_id=user.pk)
    assert (device.name, device.confirmed, device.key, device.drift, device.last_t) == (
        "phone",
        True,
        KEY,
        1,
        42,
    )
    assert KEY not in raw_key_column(device)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM otp_totp_totpdevice")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_admin_lists_totp_devices_without_their_keys_and_cannot_add_one(users_by_role):
    staff = users_by_role[Role.ADMIN]
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client = portal_client(staff)  # enrols an EncryptedTOTPDevice for the admin
    device = EncryptedTOTPDevice.objects.get(user=staff)
    assert not admin.site.is_registered(TOTPDevice)  # django-otp's admin would show keys
    listing = client.get("/admin/users/encryptedtotpdevice/")
    change = client.get(f"/admin/users/encryptedtotpdevice/{device.pk}/change/")
    assert listing.status_code == 200 and change.status_code == 200
    for page in (listing, change):
        assert device.key not in page.content.decode()
    assert client.get("/admin/users/encryptedtotpdevice/add/").status_code == 403
