"""Background work through a real Celery worker on a real Redis broker, reaching a browser's
websocket through the Redis channel layer."""

from __future__ import annotations

import os

import pytest
from asgiref.sync import sync_to_async
from celery.contrib.testing.worker import start_worker
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from apps.core.models import Notification
from apps.core.tasks import notification_send_task
from apps.users.roles import Role
from apps.users.tokens import tokens_issue
from imewe.asgi import application
from imewe.celery import app as celery_app

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_url(own_redis) -> str:
    # CI's REDIS_URL when set; otherwise a private redis-server started for this test.
    return os.environ.get("REDIS_URL") or f"redis://127.0.0.1:{own_redis[0]}/0"


@pytest.fixture
def live_celery(redis_url):
    saved = {k: celery_app.conf[k] for k in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=redis_url, task_always_eager=False)
    try:
        # No ping check: the test's own task round-trip proves the worker consumes.
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield celery_app
    finally:
        celery_app.conf.update(saved)


@pytest.mark.asyncio
async def test_task_on_worker_notifies_the_users_websocket(make_user, redis_url, live_celery):
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"celerytest{os.getpid()}"},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        user = await sync_to_async(make_user)(Role.DESIGNER)
        token = await sync_to_async(
            lambda: str(tokens_issue(user=user, otp_verified=True).access_token)
        )()
        ws = WebsocketCommunicator(
            application,
            f"/ws/notifications/?token={token}",
            headers=[(b"origin", b"http://testserver")],
        )
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from())["type"] == "hello"

        # The message can only come from the worker: this process merely queues the task.
        def queue() -> None:
            # An explicit connection: the app's producer pool may still point at the broker
            # of an earlier (eager) test in this process.
            with celery_app.connection_for_write(redis_url) as conn:
                # (apply_async takes a connection; celery's stubs leave it out)
                notification_send_task.apply_async(  # type: ignore[call-arg]
                    args=(user.pk, "Simulation finished", "Run 7"), connection=conn
                )

        await sync_to_async(queue)()

        message = await ws.receive_json_from(timeout=30)
        assert message["type"] == "notification"
        assert message["title"] == "Simulation finished"
        assert await sync_to_async(
            Notification.objects.filter(pk=message["id"], user=user, body="Run 7").exists
        )()
        await ws.disconnect()
