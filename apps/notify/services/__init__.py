"""The notification services, by sub-domain; import them from here."""

from apps.notify.services.channels import (
    PLATFORM_KINDS,
    SUBSCRIBABLE,
    USER_ONLY_KINDS,
    channel_create,
    channel_delete,
    channel_test,
    channel_update,
    push_subscribe,
    push_unsubscribe,
    quiet_hours_clear,
    quiet_hours_set,
)
from apps.notify.services.delivery import deliveries_drain, deliveries_resume, retry_delay
from apps.notify.services.escalation import (
    ESCALATION_CHECKS,
    escalation_check_register,
    escalation_start,
    escalations_run,
    rota_set,
)
from apps.notify.services.events import (
    delivery_plan,
    delivery_queue,
    digests_flush,
    event_raise,
    quiet_until,
)

__all__ = [
    "ESCALATION_CHECKS",
    "PLATFORM_KINDS",
    "SUBSCRIBABLE",
    "USER_ONLY_KINDS",
    "channel_create",
    "channel_delete",
    "channel_test",
    "channel_update",
    "deliveries_drain",
    "deliveries_resume",
    "delivery_plan",
    "delivery_queue",
    "digests_flush",
    "escalation_check_register",
    "escalation_start",
    "escalations_run",
    "event_raise",
    "push_subscribe",
    "push_unsubscribe",
    "quiet_hours_clear",
    "quiet_hours_set",
    "quiet_until",
    "retry_delay",
    "rota_set",
]
