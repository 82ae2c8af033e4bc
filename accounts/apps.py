from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the passkey settings' check)
            receivers,  # noqa: F401  (connects the auth signal receivers)
        )
        from .access import Capability
        from .overview import (
            OverviewPanel,
            accounts_status,
            overview_panel_register,
            sign_in_activity,
        )

        # Settings → Security's overview: sign-ins over time (read from the audit log, so for
        # those who may read it), then locked accounts and MFA adoption.
        overview_panel_register(
            OverviewPanel(
                name="sign_in_activity",
                order=10,
                capability=Capability.VIEW_AUDIT_LOG,
                template="accounts/_overview_activity.html",
                data=sign_in_activity,
            )
        )
        overview_panel_register(
            OverviewPanel(
                name="accounts",
                order=30,
                capability=Capability.VIEW_SECURITY_SETTINGS,
                template="accounts/_overview_accounts.html",
                data=accounts_status,
            )
        )
