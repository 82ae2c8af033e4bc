from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Reviews and the monitoring checklist"

    def ready(self) -> None:
        from accounts.access import Capability
        from accounts.overview import OverviewPanel, overview_panel_register
        from operations.metrics import register_collector

        from .evidence import checklist_register
        from .metrics import review_metrics
        from .selectors import reviews_overdue

        checklist_register()
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
