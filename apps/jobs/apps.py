from django.apps import AppConfig


class JobsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.jobs"
    label = "jobs"

    def ready(self) -> None:
        # telemetry sits below jobs: jobs tells it which nodes run whose jobs
        from apps.jobs.selectors import telemetry_nodes_running_jobs
        from apps.telemetry.selectors import register_visibility_provider

        register_visibility_provider(telemetry_nodes_running_jobs)
