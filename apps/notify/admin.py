from __future__ import annotations

from django.contrib import admin

from apps.notify.models import Delivery, Escalation, OnCallRota, OnCallSlot, QuietHours


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin[Delivery]):
    list_display = ["id", "event", "channel", "status", "attempts", "response_code", "created_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in Delivery._meta.fields]


class OnCallSlotInline(admin.TabularInline[OnCallSlot, OnCallRota]):
    model = OnCallSlot
    extra = 1
    raw_id_fields = ["user"]


@admin.register(OnCallRota)
class OnCallRotaAdmin(admin.ModelAdmin[OnCallRota]):
    list_display = ["organization", "ack_minutes"]
    inlines = [OnCallSlotInline]


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin[Escalation]):
    list_display = ["key", "step", "next_at", "done_at", "outcome"]


admin.site.register(QuietHours)
