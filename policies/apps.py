from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Access policies"

    def ready(self) -> None:
        from accounts.access import Capability
        from accounts.enforcement import enforcer_register
        from accounts.overview import OverviewPanel, overview_panel_register

        from .checklist import checklist_register
        from .enforcement import PolicyEnforcer
        from .selectors import policies_in_force

        # The sign-in and every signed-in request ask the organization's policies.
        enforcer_register("policies", PolicyEnforcer())
        # The monitoring checklist: the idle limit PCI DSS 8.2.8 asks, networks and hours.
        checklist_register()
        # Settings → Security's overview: the policies in force, for everyone who sees it.
        overview_panel_register(
            OverviewPanel(
                name="access_policies",
                order=40,
                capability=Capability.VIEW_SECURITY_SETTINGS,
                template="policies/_overview.html",
                data=policies_in_force,
            )
        )
