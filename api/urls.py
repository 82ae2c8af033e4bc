from django.urls import path

from . import views

app_name = "api"

urlpatterns = [
    path("api/v1/events", views.events, name="events"),
    path("settings/security/api-tokens/", views.tokens, name="tokens"),
    path(
        "settings/security/api-tokens/<int:token_id>/revoke/",
        views.token_revoke,
        name="token-revoke",
    ),
]
