from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The platform operator's instruments: /metrics for Prometheus, filled by each app."""

    name = "operations"
