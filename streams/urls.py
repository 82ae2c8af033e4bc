from django.urls import path

from . import views

app_name = "streams"

urlpatterns = [
    path("settings/security/streams/", views.stream_list, name="stream-list"),
    path("settings/security/streams/add/", views.stream_create, name="stream-create"),
    path("settings/security/streams/<int:destination_id>/", views.stream_edit, name="stream-edit"),
    path(
        "settings/security/streams/<int:destination_id>/test/",
        views.stream_test,
        name="stream-test",
    ),
    path(
        "settings/security/streams/<int:destination_id>/pause/",
        views.stream_pause,
        name="stream-pause",
    ),
    path(
        "settings/security/streams/<int:destination_id>/replay/",
        views.stream_replay,
        name="stream-replay",
    ),
    path(
        "settings/security/streams/<int:destination_id>/delete/",
        views.stream_delete,
        name="stream-delete",
    ),
]
