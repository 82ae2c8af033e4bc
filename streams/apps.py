from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.checklist import EvidenceSource, checklist_evidence_register
        from operations.metrics import register_collector

        from .evidence import stream_evidence
        from .metrics import stream_metrics

        # /metrics: each destination's deliveries, failures and lag.
        register_collector("streams", stream_metrics)
        # The monitoring checklist's "Correlate with security events", beside the webhooks.
        checklist_evidence_register(EvidenceSource("correlation", "SIEM streams", stream_evidence))
