from __future__ import annotations

from django.apps import AppConfig


class NotifyConfig(AppConfig):
    """Notification channels: events, who wants which on which channel, and their delivery.
    Sits right after users (it needs users and organizations) and below every domain app, which
    raise events through `apps.notify.services.event_raise`; it never imports them."""

    name = "apps.notify"
    label = "notify"
    verbose_name = "Notification channels"

    def ready(self) -> None:
        from apps.core.labels import labels_register
        from apps.core.ml import model_activated
        from apps.notify.models import Channel, Delivery, EventKind, Severity
        from apps.notify.receivers import model_promoted

        labels_register("notify_event", EventKind.choices)
        labels_register("notify_channel", Channel.Kind.choices)
        labels_register("notify_delivery", Delivery.Status.choices)
        labels_register("severity", Severity.choices)
        model_activated.connect(model_promoted, dispatch_uid="notify-model-promoted")
