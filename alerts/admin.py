"""Read-only views for platform operators; rules and alerts change through the app's pages,
which validate and record every change."""

from __future__ import annotations

from typing import TypeVar

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from .models import Alert, AlertRule, WebhookDelivery, WebhookEndpoint

_M = TypeVar("_M", bound=models.Model)


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyAdmin[AlertRule]):
    list_display = ["organization", "kind", "enabled", "severity", "parameters"]
    list_filter = ["kind", "enabled"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin[Alert]):
    list_display = ["id", "organization", "kind", "severity", "status", "summary", "last_seen_at"]
    list_filter = ["kind", "status", "severity"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin[WebhookEndpoint]):
    list_display = ["organization", "url", "enabled", "created_at"]
    exclude = ["secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin[WebhookDelivery]):
    list_display = ["id", "endpoint", "alert", "status", "attempts", "last_status_code"]
    list_filter = ["status"]
