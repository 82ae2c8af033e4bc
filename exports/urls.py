from django.urls import path

from . import views

app_name = "exports"

urlpatterns = [
    path("settings/security/audit-log/export.csv", views.audit_log_csv, name="audit-log-csv"),
    path("profile/activity/export.csv", views.activity_csv, name="activity-csv"),
    path("settings/security/exports/", views.export_list, name="export-list"),
    path(
        "settings/security/exports/<uuid:export_id>/status/",
        views.export_status,
        name="export-status",
    ),
    path(
        "settings/security/exports/<uuid:export_id>/download/",
        views.export_download,
        name="export-download",
    ),
]
