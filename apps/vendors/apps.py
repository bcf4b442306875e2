from django.apps import AppConfig


class VendorsConfig(AppConfig):
    name = "apps.vendors"
    label = "vendors"
    verbose_name = "Vendors and fleet"

    def ready(self) -> None:
        from apps.core.audit import audit_track_model
        from apps.vendors import schema  # noqa: F401  (OpenAPI auth extension)
        from apps.vendors.models import DeviceCredential, FabricationNode, VendorProfile

        for model in (VendorProfile, FabricationNode, DeviceCredential):
            audit_track_model(model)
