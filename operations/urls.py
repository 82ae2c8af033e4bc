from django.urls import path

from . import views

app_name = "operations"

urlpatterns = [
    # Where Prometheus looks by default (metrics_path), without a trailing slash.
    path("metrics", views.metrics, name="metrics"),
]
