from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "apps.portal"
    label = "portal"
    verbose_name = "Portals"

    def ready(self) -> None:
        from apps.portal import metrics

        metrics.register()
