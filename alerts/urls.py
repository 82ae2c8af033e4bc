from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("settings/security/alerts/", views.alert_list, name="alert-list"),
    path("settings/security/alerts/<int:pk>/", views.alert_detail, name="alert-detail"),
    path(
        "settings/security/alerts/<int:pk>/acknowledge/",
        views.alert_acknowledge,
        name="alert-acknowledge",
    ),
    path("settings/security/alerts/<int:pk>/assign/", views.alert_assign, name="alert-assign"),
    path("settings/security/alerts/<int:pk>/resolve/", views.alert_resolve, name="alert-resolve"),
    path(
        "settings/security/alerts/<int:pk>/unlock/",
        views.alert_subject_unlock,
        name="alert-subject-unlock",
    ),
    path(
        "settings/security/alerts/<int:pk>/sign-out/",
        views.alert_subject_sign_out,
        name="alert-subject-sign-out",
    ),
    path("settings/security/alerts/rules/", views.rule_list, name="rule-list"),
    path("settings/security/alerts/rules/<slug:kind>/", views.rule_edit, name="rule-edit"),
    path("settings/security/alerts/webhooks/", views.webhook_list, name="webhook-list"),
    path(
        "settings/security/alerts/webhooks/<int:pk>/", views.webhook_detail, name="webhook-detail"
    ),
    path(
        "settings/security/alerts/webhooks/<int:pk>/delete/",
        views.webhook_delete,
        name="webhook-delete",
    ),
    path("profile/alerts/", views.my_alerts, name="my-alerts"),
]
