from django.contrib.auth import views as auth_views
from django.urls import path

from .views import (
    activity,
    domains,
    members,
    mfa,
    passkeys,
    passwords,
    profile,
    searches,
    sign_in,
    throttling,
)

app_name = "accounts"

urlpatterns = [
    path("sign-in/", sign_in.sign_in, name="login"),
    path("sign-out/", sign_in.sign_out, name="logout"),
    path("sign-in/code/", sign_in.mfa_verify, name="mfa-verify"),
    path("sign-in/code/passkey/", passkeys.passkey_verify, name="passkey-verify"),
    path(
        "sign-in/code/passkey/options/",
        passkeys.passkey_verify_options,
        name="passkey-verify-options",
    ),
    path("sign-in/passkey/", passkeys.passkey_sign_in, name="passkey-sign-in"),
    path(
        "sign-in/passkey/options/",
        passkeys.passkey_sign_in_options,
        name="passkey-sign-in-options",
    ),
    # Profile: the person's own account, activity, methods and sessions.
    path("profile/", profile.profile, name="profile"),
    path("profile/time-zone/", profile.time_zone, name="time-zone"),
    path("profile/time-zone/detected/", profile.time_zone_detected, name="time-zone-detected"),
    path("profile/activity/", activity.activity, name="activity"),
    path("profile/activity/<int:event_id>/", activity.activity_event, name="activity-event"),
    path("profile/activity/searches/", searches.activity_search_save, name="activity-search-save"),
    path(
        "profile/activity/searches/<int:search_id>/delete/",
        searches.activity_search_delete,
        name="activity-search-delete",
    ),
    path(
        "profile/security-activity/<int:event_id>/it-was-me/",
        profile.activity_confirm,
        name="activity-confirm",
    ),
    path(
        "profile/security-activity/<int:event_id>/not-me/",
        profile.activity_report,
        name="activity-report",
    ),
    path("profile/password/", passwords.password_change, name="password-change"),
    path("profile/security/", profile.security, name="security"),
    path("profile/security/mfa/app/", mfa.mfa_enrol, name="mfa-enrol"),
    path("profile/security/mfa/backup-codes/", mfa.mfa_backup_codes, name="mfa-backup-codes"),
    path("profile/security/passkeys/add/", passkeys.passkey_add, name="passkey-add"),
    path(
        "profile/security/passkeys/add/options/",
        passkeys.passkey_add_options,
        name="passkey-add-options",
    ),
    path(
        "profile/security/mfa/backup-codes/new/",
        mfa.mfa_backup_codes_new,
        name="mfa-backup-codes-new",
    ),
    path(
        "profile/security/mfa/<str:kind>/<int:pk>/remove/",
        mfa.mfa_device_remove,
        name="mfa-device-remove",
    ),
    path(
        "profile/security/sessions/<str:session_hash>/sign-out/",
        profile.session_end,
        name="session-end",
    ),
    path(
        "profile/security/sessions/sign-out-others/",
        profile.sessions_end_others,
        name="sessions-end-others",
    ),
    # Settings → Security: the organization's audit log, members and email domains.
    path("settings/security/", members.security_settings, name="security-settings"),
    path("settings/security/audit-log/", activity.audit_log, name="audit-log"),
    path(
        "settings/security/audit-log/<int:event_id>/",
        activity.audit_log_event,
        name="audit-log-event",
    ),
    path(
        "settings/security/audit-log/searches/",
        searches.audit_log_search_save,
        name="audit-log-search-save",
    ),
    path(
        "settings/security/audit-log/searches/<int:search_id>/delete/",
        searches.audit_log_search_delete,
        name="audit-log-search-delete",
    ),
    path("settings/security/members/", members.members, name="members"),
    path("settings/security/members/mfa-policy/", members.mfa_policy, name="mfa-policy"),
    path(
        "settings/security/members/<int:membership_id>/role/",
        members.member_role,
        name="member-role",
    ),
    path(
        "settings/security/members/<int:membership_id>/unlock/",
        members.member_unlock,
        name="member-unlock",
    ),
    path(
        "settings/security/members/<int:membership_id>/sign-out/",
        members.member_sign_out,
        name="member-sign-out",
    ),
    path(
        "settings/security/members/<int:membership_id>/reset-mfa/",
        members.member_mfa_reset,
        name="member-mfa-reset",
    ),
    path("settings/security/domains/", domains.domains, name="domains"),
    path(
        "settings/security/domains/<int:domain_id>/verify/",
        domains.domain_verify,
        name="domain-verify",
    ),
    path(
        "settings/security/domains/<int:domain_id>/remove/",
        domains.domain_remove,
        name="domain-remove",
    ),
    path("settings/security/throttling/", throttling.throttling, name="throttling"),
    # A forgotten password.
    path("password-reset/", passwords.PasswordResetView.as_view(), name="password-reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_sent.html"),
        name="password-reset-sent",
    ),
    path(
        "password-reset/reset/<uidb64>/<token>/",
        passwords.PasswordResetConfirmView.as_view(),
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
