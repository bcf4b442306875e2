from django.apps import AppConfig


class VendorsConfig(AppConfig):
    name = "apps.vendors"
    label = "vendors"
    verbose_name = "Vendors and fleet"

    def ready(self) -> None:
        from apps.core.audit import audit_track_model
        from apps.vendors import schema  # noqa: F401  (OpenAPI auth extension)
        from apps.vendors.models import (
            DeviceCredential,
            FabricationNode,
            Gateway,
            GatewayCredential,
            NodeCommand,
            Rollout,
            VendorProfile,
        )

        tracked = (
            VendorProfile,
            FabricationNode,
            DeviceCredential,
            Gateway,
            GatewayCredential,
            NodeCommand,
            Rollout,
        )
        for model in tracked:
            audit_track_model(model)
        _register_labels()


def _register_labels() -> None:
    """The words pages use for node kinds, statuses, processes and materials."""
    from apps.core.labels import labels_register
    from apps.vendors.catalog import MATERIALS, PROCESSES
    from apps.vendors.models import FabricationNode, NodeCommand, Rollout, RolloutTarget

    labels_register("node_kind", FabricationNode.Kind.choices)
    labels_register("node_status", FabricationNode.Status.choices)
    labels_register("command_kind", NodeCommand.Kind.choices)
    labels_register("command_status", NodeCommand.Status.choices)
    labels_register("rollout_status", Rollout.Status.choices)
    labels_register("rollout_state", RolloutTarget.State.choices)
    labels_register("process", [(p.code, p.label) for p in PROCESSES])
    labels_register("material", [(m.code, m.label) for m in MATERIALS])
