from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditEvent, TorExitNode
from .pagination import CappedCountPaginator


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Read-only: events are append-only, for operators as for everyone else."""

    list_display = [
        "occurred_at",
        "event_type",
        "outcome",
        "reason",
        "actor_label",
        "organization_id",
        "ip_address",
    ]
    list_filter = ["outcome", "event_type"]
    # No COUNT(*) over the whole table on every page.
    show_full_result_count = False
    paginator = CappedCountPaginator
    ordering = ["-occurred_at", "-id"]

    # The user agent's fields are its dictionary row's (audit.models.UserAgent).
    list_select_related = ["agent"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in AuditEvent._meta.fields] + ["browser", "os", "device_type"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(TorExitNode)
class TorExitNodeAdmin(admin.ModelAdmin[TorExitNode]):
    """Read-only: the list is replaced as a whole by `manage.py load_tor_exits PATH`."""

    list_display = ["ip_address", "fingerprint", "loaded_at"]
    search_fields = ["ip_address", "fingerprint"]
    ordering = ["ip_address"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in TorExitNode._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
