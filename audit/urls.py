from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("profile/activity/", views.activity, name="activity"),
    path("profile/activity/<int:event_id>/", views.activity_event_detail, name="activity-event"),
    path("settings/security/audit-log/", views.audit_log, name="audit-log"),
    path("settings/security/audit-log/<int:event_id>/", views.event_detail, name="event-detail"),
]
