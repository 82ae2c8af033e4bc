from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from .services import last_login_stamp

        # Every sign-in stamps last_login (lockout counting starts from it); ours does what
        # Django's update_last_login does, under the same dispatch_uid, in a prepared statement.
        if user_logged_in.disconnect(dispatch_uid="update_last_login"):
            user_logged_in.connect(last_login_stamp, dispatch_uid="update_last_login")
