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
        # printers behind OctoPrint / Moonraker / PrusaLink take sliced G-code only
        from apps.jobs.gcode import gcode_explainer, gcode_placement
        from apps.jobs.providers import register_placement_explainer, register_placement_provider

        register_placement_provider(gcode_placement)
        register_placement_explainer(gcode_explainer)
