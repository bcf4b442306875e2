from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from apps.users.models import Organization, User
from apps.users.tasks import flush_expired_tokens_task, purge_unverified_users_task
from celery_worker.beat_schedule import BEAT_SCHEDULE
from imewe.celery import app as celery_app
from tests.users.factories import OrganizationFactory


def test_every_beat_entry_names_a_registered_task():
    celery_app.loader.import_default_modules()
    for name, entry in BEAT_SCHEDULE.items():
        assert entry["task"] in celery_app.tasks, name


@pytest.mark.django_db
def test_purge_removes_only_stale_unverified_signups(make_user):
    stale_org = OrganizationFactory.create(name="Ghost Co")
    stale = make_user(is_active=False, email_verified_at=None, organization=stale_org)
    User.objects.filter(pk=stale.pk).update(date_joined=timezone.now() - timedelta(days=10))
    fresh = make_user(is_active=False, email_verified_at=None)
    verified = make_user()
    User.objects.filter(pk=verified.pk).update(date_joined=timezone.now() - timedelta(days=10))

    assert purge_unverified_users_task.delay().get() == 1
    assert set(User.objects.values_list("pk", flat=True)) == {fresh.pk, verified.pk}
    assert not Organization.objects.filter(pk=stale_org.pk).exists()


@pytest.mark.django_db
def test_flush_drops_expired_refresh_tokens(make_user):
    user = make_user()
    RefreshToken.for_user(user)
    expired = RefreshToken.for_user(user)
    OutstandingToken.objects.filter(jti=expired["jti"]).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    flush_expired_tokens_task.delay().get()
    assert OutstandingToken.objects.filter(user=user).count() == 1
