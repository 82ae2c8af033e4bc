from django.urls import path

from . import views

app_name = "retention"

urlpatterns = [
    path("settings/security/retention/", views.retention, name="retention"),
    path("settings/security/archives/", views.archives, name="archives"),
    path("settings/security/archives/verify/", views.verify, name="files-verify"),
    path(
        "settings/security/archives/files/<int:pk>/download/",
        views.download,
        name="file-download",
    ),
    path(
        "settings/security/archives/schedules/<int:pk>/run/",
        views.schedule_run,
        name="schedule-run",
    ),
    path(
        "settings/security/archives/schedules/<int:pk>/delete/",
        views.schedule_delete,
        name="schedule-delete",
    ),
]
