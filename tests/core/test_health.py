from __future__ import annotations

import pytest
from django.test import override_settings

from imewe.celery import app as celery_app


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_each_dependency(client):
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "channel_layer", "broker"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_turns_503_when_redis_stops(client, own_redis):
    port, proc = own_redis
    url = f"redis://127.0.0.1:{port}/0"
    layers = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}
    }
    saved = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    celery_app.conf.update(broker_url=url, task_always_eager=False)
    try:
        with override_settings(CHANNEL_LAYERS=layers):
            up = client.get("/readyz")
            assert up.status_code == 200, up.json()
            assert up.json()["checks"]["broker"]["backend"] == "redis"

            # when: the Redis server behind the channel layer and the broker stops
            proc.kill()
            proc.wait()
            down = client.get("/readyz")
    finally:
        celery_app.conf.update(broker_url=saved[0], task_always_eager=saved[1])
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is False
    assert body["checks"]["broker"]["ok"] is False
    assert "Error" in body["checks"]["channel_layer"]["error"]


@pytest.mark.django_db  # /metrics reads the fleet's figures from the database
def test_metrics_exposes_latency_by_view(client):
    client.get("/healthz")
    text = client.get("/metrics").content.decode()
    assert "django_http_requests_latency_seconds_by_view_method" in text
    assert 'view="healthz"' in text


@pytest.mark.django_db
@override_settings(ALLOWED_HOSTS=["imewe.example.com"])
def test_probes_answer_on_any_host_while_pages_keep_host_validation(client):
    # a container healthcheck asks 127.0.0.1, which a production ALLOWED_HOSTS leaves out
    assert client.get("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 200
    ready = client.get("/readyz", HTTP_HOST="127.0.0.1:8000")
    assert ready.json()["checks"]["database"]["ok"] is True
    assert client.get("/account/login/", HTTP_HOST="127.0.0.1:8000").status_code == 400
    assert client.get("/account/login/", HTTP_HOST="imewe.example.com").status_code == 200
