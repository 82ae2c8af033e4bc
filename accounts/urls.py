from django.contrib.auth import views as auth_views
from django.urls import path

from audit import views as audit_views

from . import views

app_name = "accounts"

urlpatterns = [
    path("sign-in/", views.sign_in, name="login"),
    path("sign-out/", views.sign_out, name="logout"),
    path("profile/", views.profile, name="profile"),
    # Served by the audit app; the name stays for the navigation and older links.
    path("profile/activity/", audit_views.activity, name="activity"),
    path("profile/password/", views.password_change, name="password-change"),
    path("settings/security/", views.security_settings, name="security-settings"),
    # Issue 3: two-step sign-in, Profile → Security, Settings → Security → Members.
    path("sign-in/code/", views.mfa_verify, name="mfa-verify"),
    path("profile/security/", views.security, name="security"),
    path("profile/security/mfa/app/", views.mfa_enrol, name="mfa-enrol"),
    path("profile/security/mfa/backup-codes/", views.mfa_backup_codes, name="mfa-backup-codes"),
    path(
        "profile/security/mfa/<str:kind>/<int:pk>/remove/",
        views.mfa_device_remove,
        name="mfa-device-remove",
    ),
    path(
        "profile/security/sessions/<str:session_hash>/sign-out/",
        views.session_end,
        name="session-end",
    ),
    path(
        "profile/security/sessions/sign-out-others/",
        views.sessions_end_others,
        name="sessions-end-others",
    ),
    path("settings/security/members/", views.members, name="members"),
    path("settings/security/members/mfa-policy/", views.mfa_policy, name="mfa-policy"),
    path(
        "settings/security/members/<int:membership_id>/role/", views.member_role, name="member-role"
    ),
    path(
        "settings/security/members/<int:membership_id>/unlock/",
        views.member_unlock,
        name="member-unlock",
    ),
    path(
        "settings/security/members/<int:membership_id>/sign-out/",
        views.member_sign_out,
        name="member-sign-out",
    ),
    path(
        "settings/security/members/<int:membership_id>/reset-mfa/",
        views.member_mfa_reset,
        name="member-mfa-reset",
    ),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_sent.html"),
        name="password-reset-sent",
    ),
    path(
        "password-reset/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_done.html"
        ),
        name="password-reset-done",
    ),
]
