from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        from accounts.access import Capability
        from accounts.overview import OverviewPanel, overview_panel_register
        from audit.services import after_events_commit
        from operations.metrics import register_collector

        from . import receivers, selectors
        from .metrics import alert_metrics

        # Every committed batch of events is queued for rule evaluation (audit's one registry of
        # reactions to events; see audit.services._after_commit_hooks).
        after_events_commit(receivers.queue_evaluation)
        # Settings → Security's overview: unresolved alerts by severity, for those who triage.
        overview_panel_register(
            OverviewPanel(
                name="alerts",
                order=20,
                capability=Capability.TRIAGE_ALERTS,
                template="alerts/_overview.html",
                data=lambda organization, now: {
                    "by_severity": selectors.unresolved_alerts_by_severity(
                        organization=organization
                    )
                },
            )
        )
        # /metrics: the evaluation backlog.
        register_collector("alerts", alert_metrics)
