from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.models import Reason

from .domains import (
    DomainRefused,
    domain_refusal,
    domain_validate,
    organization_domain_operator_set,
    organization_domain_remove,
)
from .http import AuthenticatedHttpRequest
from .lockout import lockout_release
from .models import (
    LockoutState,
    Membership,
    Organization,
    OrganizationDomain,
    User,
    UserSession,
)


class MembershipInline(admin.TabularInline[Membership, Organization]):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin[Organization]):
    list_display = ["name", "slug", "tier", "lockout_threshold", "created_at"]
    list_filter = ["tier"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    # Written by the policies app at each change of the access policies.
    readonly_fields = ["access_policy_token"]
    inlines = [MembershipInline]


class UserMembershipInline(admin.StackedInline[Membership, User]):
    model = Membership
    extra = 0
    max_num = 1


@admin.register(User)
# django-stubs binds UserAdmin to AbstractUser; Django documents subclassing it for a user model
# built on AbstractBaseUser, as ours is, with the fields overridden (below).
class UserAdmin(DjangoUserAdmin[User]):  # type: ignore[type-var]
    ordering = ["email"]
    list_display = ["email", "full_name", "is_active", "is_staff", "last_login"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    readonly_fields = ["last_login", "date_joined"]
    filter_horizontal = ["groups"]
    inlines = [UserMembershipInline]


@admin.register(LockoutState)
class LockoutStateAdmin(admin.ModelAdmin[LockoutState]):
    list_display = ["user", "locked_at", "locked_until", "unfamiliar_locked_until"]
    search_fields = ["user__email"]
    readonly_fields = [
        "user",
        "counter_reset_at",
        "locked_at",
        "locked_until",
        "unfamiliar_counter_reset_at",
        "unfamiliar_locked_at",
        "unfamiliar_locked_until",
    ]
    actions = ["unlock"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Unlock the selected accounts")
    def unlock(self, request: AuthenticatedHttpRequest, queryset: QuerySet[LockoutState]) -> None:
        released = sum(
            lockout_release(
                user=state.user, reason=Reason.ADMIN_UNLOCK, actor=request.user, request=request
            )
            for state in queryset.select_related("user__membership")
        )
        self.message_user(request, f"Unlocked {released} account(s).", messages.SUCCESS)


@admin.register(UserSession)
class UserSessionAdmin(admin.ModelAdmin[UserSession]):
    list_display = ["user", "session_hash", "ip_address", "browser", "started_at", "ended_at"]
    search_fields = ["user__email", "session_hash"]
    exclude = ["session_key"]
    readonly_fields = [f.name for f in UserSession._meta.fields if f.name != "session_key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class OperatorDomainForm(forms.ModelForm[OrganizationDomain]):
    """A domain the operator sets verified for an organization (no DNS check)."""

    class Meta:
        model = OrganizationDomain
        fields = ["organization", "domain"]
        help_texts = {
            "domain": "Saved as verified by the platform operator, without a DNS check: only "
            "for a domain you know belongs to the organization."
        }

    def clean_domain(self) -> str:
        return domain_validate(self.cleaned_data["domain"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        organization, domain = cleaned.get("organization"), cleaned.get("domain")
        if organization is not None and domain:
            refusal = domain_refusal(organization=organization, domain=domain)
            if refusal is not None:
                self.add_error("domain", refusal)
        return cleaned


@admin.register(OrganizationDomain)
class OrganizationDomainAdmin(admin.ModelAdmin[OrganizationDomain]):
    """Email domains: the operator adds one verified, or marks a pending one verified.

    Every write goes through accounts.domains, so each is recorded as settings.changed in the
    organization's audit log with the operator as the actor. The rows themselves are not edited.
    """

    form = OperatorDomainForm
    list_display = ["domain", "organization", "proof", "verified_at", "created_at"]
    list_filter = ["proof"]
    search_fields = ["domain", "organization__name", "organization__slug"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    actions = ["mark_verified", "remove"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "remove" records each removal
        return actions

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(
        self,
        request: AuthenticatedHttpRequest,  # type: ignore[override]
        obj: OrganizationDomain,
        form: forms.ModelForm[OrganizationDomain],
        change: bool,
    ) -> None:
        saved = organization_domain_operator_set(
            organization=obj.organization, domain=obj.domain, actor=request.user, request=request
        )
        obj.pk, obj.verified_at, obj.proof = saved.pk, saved.verified_at, saved.proof

    def delete_model(
        self,
        request: AuthenticatedHttpRequest,  # type: ignore[override]
        obj: OrganizationDomain,
    ) -> None:
        organization_domain_remove(domain=obj, actor=request.user, request=request)

    @admin.action(description="Mark the selected domains verified (set by the operator)")
    def mark_verified(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[OrganizationDomain]
    ) -> None:
        done = 0
        for row in queryset.select_related("organization").filter(verified_at__isnull=True):
            try:
                organization_domain_operator_set(
                    organization=row.organization,
                    domain=row.domain,
                    actor=request.user,
                    request=request,
                )
            except DomainRefused as refusal:
                self.message_user(request, f"{row.domain}: {refusal}", messages.ERROR)
            else:
                done += 1
        self.message_user(request, f"Marked {done} domain(s) verified.", messages.SUCCESS)

    @admin.action(description="Remove the selected domains")
    def remove(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[OrganizationDomain]
    ) -> None:
        removed = sum(
            organization_domain_remove(domain=row, actor=request.user, request=request)
            for row in queryset
        )
        self.message_user(request, f"Removed {removed} domain(s).", messages.SUCCESS)
