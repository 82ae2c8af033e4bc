from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Reviews and the monitoring checklist"

    def ready(self) -> None:
        from accounts.access import Capability
        from accounts.overview import OverviewPanel, overview_panel_register
        from operations.metrics import register_collector
        from reports.sections import report_section_register

        from .evidence import checklist_register
        from .metrics import review_metrics
        from .report_section import REVIEWS_SECTION
        from .selectors import reviews_overdue

        checklist_register()
        # The compliance report's evidence that the log is reviewed, and by whom.
        report_section_register(REVIEWS_SECTION)
        # Settings → Security's overview: reviews past their due time, first among the panels
        # a reviewer acts on.
        overview_panel_register(
            OverviewPanel(
                name="reviews",
                order=15,
                capability=Capability.VIEW_REVIEWS,
                template="compliance/_overview.html",
                data=lambda organization, now: {"overdue": reviews_overdue(organization, now=now)},
            )
        )
        register_collector("compliance", review_metrics)
