from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from operations.metrics import register_collector

        from .metrics import stream_metrics

        # /metrics: each destination's deliveries, failures and lag.
        register_collector("streams", stream_metrics)
