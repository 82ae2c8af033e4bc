from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.models import Reason

from .http import AuthenticatedHttpRequest
from .lockout import lockout_release
from .models import LockoutState, Membership, Organization, User, UserSession


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
    list_display = ["user", "locked_at", "locked_until"]
    search_fields = ["user__email"]
    readonly_fields = ["user", "counter_reset_at", "locked_at", "locked_until"]
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
