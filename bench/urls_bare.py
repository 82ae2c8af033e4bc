"""URLs of a bare Django site for the sign-in benchmark: Django's own LoginView, no capture."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path(
        "bare-sign-in/",
        auth_views.LoginView.as_view(template_name="bare_sign_in.html"),
        name="bare-login",
    ),
    path("", include("accounts.urls")),
]
