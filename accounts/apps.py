from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from . import receivers  # noqa: F401  (connects the auth signal receivers)

        # Every sign-in stamps last_login (lockout counting starts from it), but not through
        # Django's update_last_login, a save() of its own: the sign-in receiver
        # (accounts.receivers.on_logged_in) writes the stamp in the statement that records the
        # sign-in, or with accounts.services.last_login_stamp when there is no session to record.
        user_logged_in.disconnect(dispatch_uid="update_last_login")
