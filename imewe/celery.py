"""The Celery app. Tasks live in each app's tasks.py; the beat schedule in celery_worker/."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imewe.settings")

app = Celery("imewe")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _prepare_filesystem_broker(sender: Celery, **kwargs: object) -> None:
    # The embedded default's broker is a folder; make sure it exists before anyone uses it.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)
    backend = str(sender.conf.result_backend or "")
    if backend.startswith("file://"):
        os.makedirs(backend.removeprefix("file://"), exist_ok=True)


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **kwargs: object) -> None:
    from celery_worker.beat_schedule import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE
