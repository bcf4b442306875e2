from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from apps.core import checks, receivers  # noqa: F401  (registers checks, connects receivers)
        from apps.core.labels import labels_register

        # the audit log's keys that are not model fields (services' own notes); model fields
        # read as their verbose names (apps.core.audit.audit_field_label)
        labels_register(
            "audit_field",
            {
                "op": "Change",
                "holder": "Holder",
                "permission": "Permission",
                "seller": "Seller (organization ID)",
                "created_by_id": "Created by (user ID)",
                "approved_by_id": "Approved by (user ID)",
                "id": "ID",
            },
        )
