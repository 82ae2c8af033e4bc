from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.views.generic import RedirectView

from .health import health

# A database out of reach is a plain 503 page, every other server error Django's 500.
handler500 = "activity_monitor.errors.server_error"

urlpatterns = [
    path("health/", health, name="health"),
    path("", RedirectView.as_view(pattern_name="accounts:profile", permanent=False)),
    # Ahead of the admin's own login/: platform operators sign in through the same page as
    # everyone else, so every sign-in is recorded and counted towards lockouts the same way.
    path("admin/login/", login_required(admin.site.login)),
    path("admin/", admin.site.urls),
    path("", include("exports.urls")),
    path("", include("api.urls")),
    path("", include("accounts.urls")),
    path("", include("alerts.urls")),
    path("", include("retention.urls")),
    path("", include("integrity.urls")),
    path("", include("operations.urls")),
    path("", include("compliance.urls")),
    path("", include("reports.urls")),
    path("", include("streams.urls")),
    path("", include("policies.urls")),
]
