from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "apps.telemetry"
    label = "telemetry"
    verbose_name = "Telemetry"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.telemetry.services import streaming_nodes
        from apps.vendors.models import FabricationNode

        # A node approved, retired or put out of service in this process: check it afresh.
        for signal in (post_save, post_delete):
            signal.connect(
                streaming_nodes.forget, sender=FabricationNode, dispatch_uid="telemetry.streaming"
            )
