from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"

    def ready(self) -> None:
        from accounts.access import Capability
        from accounts.overview import OverviewPanel, overview_panel_register

        from .evidence import register_sections
        from .selectors import compliance_status

        # The report's own sections; other apps (the review schedule) register theirs too.
        register_sections()
        # Settings → Security's overview: the last access review and the latest report.
        overview_panel_register(
            OverviewPanel(
                name="compliance",
                order=80,
                capability=Capability.COMPLIANCE_REPORTS,
                template="reports/_overview.html",
                data=lambda organization, now: compliance_status(organization),
            )
        )
