from django.contrib import admin

from .models import ExportSchedule, PurgeRun, RetentionSettings, StoredFile


@admin.register(RetentionSettings)
class RetentionSettingsAdmin(admin.ModelAdmin[RetentionSettings]):
    list_display = ["organization", "frameworks", "archive_before_purge", "updated_at"]


@admin.register(PurgeRun)
class PurgeRunAdmin(admin.ModelAdmin[PurgeRun]):
    list_display = ["scope", "status", "cutoff", "deleted", "started_at", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in PurgeRun._meta.fields]


@admin.register(StoredFile)
class StoredFileAdmin(admin.ModelAdmin[StoredFile]):
    list_display = ["name", "kind", "organization", "row_count", "verify_status", "created_at"]
    list_filter = ["kind", "verify_status"]
    readonly_fields = [f.name for f in StoredFile._meta.fields]


@admin.register(ExportSchedule)
class ExportScheduleAdmin(admin.ModelAdmin[ExportSchedule]):
    list_display = ["name", "organization", "frequency", "next_run_at", "last_run_at"]
