"""The Celery app. Tasks live in each app's tasks.py; the beat schedule in celery_worker/."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imewe.settings")

app = Celery("imewe")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **kwargs: object) -> None:
    from celery_worker.beat_schedule import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE
