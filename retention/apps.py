from django.apps import AppConfig


class RetentionConfig(AppConfig):
    name = "retention"
    verbose_name = "Retention, archives and scheduled exports"

    def ready(self) -> None:
        from accounts.access import Capability
        from accounts.overview import OverviewPanel, overview_panel_register

        from .selectors import retention_status, stored_files_recent

        # Settings → Security's overview: the retention promise and purges, then the latest
        # archives and scheduled exports.
        overview_panel_register(
            OverviewPanel(
                name="retention",
                order=60,
                capability=Capability.VIEW_RETENTION,
                template="retention/_overview.html",
                data=lambda organization, now: {"status": retention_status(organization, now)},
            )
        )
        overview_panel_register(
            OverviewPanel(
                name="archives",
                order=70,
                capability=Capability.MANAGE_ARCHIVES,
                template="retention/_overview_archives.html",
                data=lambda organization, now: {"files": stored_files_recent(organization)},
            )
        )
