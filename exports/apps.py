from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"

    def ready(self) -> None:
        from accounts.access import Capability
        from accounts.overview import OverviewPanel, overview_panel_register
        from operations.metrics import register_collector

        from .metrics import export_metrics
        from .selectors import exports_recent

        # Settings → Security's overview: the latest background exports.
        overview_panel_register(
            OverviewPanel(
                name="exports",
                order=50,
                capability=Capability.EXPORT_AUDIT_LOG,
                template="exports/_overview.html",
                data=lambda organization, now: {
                    "exports": exports_recent(organization=organization)
                },
            )
        )
        # /metrics: export jobs by state.
        register_collector("exports", export_metrics)
