"""The beat schedule. django_celery_beat's DatabaseScheduler loads these entries at start and
keeps them editable in Django admin (Periodic tasks)."""

from typing import Any

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "notify-resume-deliveries": {
        "task": "apps.notify.tasks.deliveries_resume_task",
        "schedule": 60.0,
    },
    "notify-flush-digests": {
        "task": "apps.notify.tasks.digests_flush_task",
        "schedule": 60.0,
    },
    "notify-escalate": {
        "task": "apps.notify.tasks.escalations_run_task",
        "schedule": 60.0,
    },
    "schedule-parts": {
        "task": "apps.jobs.tasks.parts_schedule_task",
        "schedule": 60.0,
    },
    "heal-parts": {
        "task": "apps.jobs.tasks.parts_heal_task",
        "schedule": 60.0,
    },
    "expire-twin-locks": {
        "task": "apps.twins.tasks.locks_expire_task",
        "schedule": 60.0,
    },
    "expire-node-commands": {
        "task": "apps.vendors.tasks.node_commands_expire_task",
        "schedule": 30.0,
    },
    "fleet-monitor": {
        "task": "apps.maintenance.tasks.fleet_monitor_task",
        "schedule": 60.0,
    },
    "refresh-late-telemetry-rollups": {
        "task": "apps.telemetry.tasks.rollups_refresh_late_task",
        "schedule": 300.0,
    },
    "score-nodes": {
        "task": "apps.maintenance.tasks.nodes_score_task",
        "schedule": 120.0,
    },
    "train-maintenance-models": {
        "task": "apps.maintenance.tasks.models_train_task",
        "schedule": crontab(hour=2, minute=15),
    },
    "train-duration-model": {
        "task": "apps.jobs.tasks.duration_model_train_task",
        "schedule": crontab(hour=2, minute=45),
    },
    "reorder-materials": {
        "task": "apps.materials.tasks.inventory_reorder_task",
        "schedule": crontab(hour=4, minute=0),
    },
    "reconcile-energy-consumption": {
        "task": "apps.energy.tasks.consumption_reconcile_task",
        "schedule": crontab(hour=1, minute=30),
    },
    "flush-expired-jwt": {
        "task": "apps.users.tasks.flush_expired_tokens_task",
        "schedule": crontab(hour=3, minute=15),
    },
    "purge-unverified-signups": {
        "task": "apps.users.tasks.purge_unverified_users_task",
        "schedule": crontab(hour=3, minute=30),
    },
}
