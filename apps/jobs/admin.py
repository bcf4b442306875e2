from django.contrib import admin
from django.http import HttpRequest

from apps.jobs.models import CadFile, Job, JobTemplate, Part, StatusChange


class PartInline(admin.TabularInline[Part, Job]):
    model = Part
    extra = 0
    fields = ["name", "material", "process", "quantity", "status", "assigned_node", "progress_pct"]
    readonly_fields = ["status", "assigned_node", "progress_pct"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    list_display = ["id", "title", "owner", "organization", "priority", "status", "created_at"]
    list_filter = ["status", "priority"]
    search_fields = ["title", "owner__email"]
    readonly_fields = ["status", "estimates", "completed_at"]
    inlines = [PartInline]


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin[StatusChange]):
    list_display = ["job", "part", "from_status", "to_status", "by", "reason", "at"]
    list_filter = ["to_status"]

    def has_change_permission(self, request: HttpRequest, obj: StatusChange | None = None) -> bool:
        return False  # history is written by the services only


admin.site.register(CadFile)
admin.site.register(JobTemplate)
