from django.urls import path

from . import views

app_name = "policies"

BASE = "settings/security/access-policies/"

urlpatterns = [
    path(BASE, views.access_policies, name="access-policies"),
    path(f"{BASE}networks/", views.network_list_add, name="network-list-add"),
    path(f"{BASE}networks/<int:pk>/", views.network_list_edit, name="network-list-edit"),
    path(f"{BASE}rules/", views.network_rule_add, name="network-rule-add"),
    path(f"{BASE}settings/", views.settings_save, name="settings"),
    path(f"{BASE}hours/", views.time_window_add, name="time-window-add"),
    path(f"{BASE}exceptions/", views.time_exception_add, name="time-exception-add"),
    path(f"{BASE}sessions/", views.sessions_save, name="sessions"),
    path(f"{BASE}<slug:kind>/<int:pk>/remove/", views.remove, name="remove"),
]
