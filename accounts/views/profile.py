"""Profile and Profile → Security: the person's own sign-in methods and sessions."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from audit.context import SESSION_HASH_KEY
from audit.models import AuditEvent

from .. import mfa
from ..activity_checks import (
    activity_check_record,
    answerable_event_of,
    event_title,
    security_activity_of,
)
from ..forms import TimeZoneForm
from ..http import AuthenticatedHttpRequest, see_other
from ..models import ActivityAnswer, SessionEndReason
from ..selectors import membership_of, session_open_of, sessions_open_of, unfamiliar_pause_of
from ..services import user_time_zone_set
from ..sessions import sessions_end
from ..timezones import zone_of


def _profile_page(
    request: AuthenticatedHttpRequest, form: TimeZoneForm, *, status: int = 200
) -> HttpResponse:
    context = {
        "membership": membership_of(request.user),
        "time_zone_form": form,
        "activity": security_activity_of(request.user),
        "current_session_hash": request.session.get(SESSION_HASH_KEY, ""),
    }
    return render(request, "accounts/profile.html", context, status=status)


@login_required
@require_GET
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TimeZoneForm(initial={"time_zone": zone_of(request.user)})
    return _profile_page(request, form)


@login_required
@require_POST
def time_zone(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Profile: the zone the person reads times in."""
    form = TimeZoneForm(request.POST, initial={"time_zone": zone_of(request.user)})
    if not form.is_valid():
        messages.error(request, "Your time zone was not changed: see below.")
        return _profile_page(request, form, status=400)
    chosen = form.cleaned_data["time_zone"]
    user_time_zone_set(user=request.user, time_zone=chosen, request=request)
    messages.success(request, f"Times are now shown in {chosen}.")
    return see_other("accounts:profile")


@login_required
@require_POST
def time_zone_detected(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The browser's zone, sent by static/js/app.js while the person has none stored.

    Answers JSON: whether the zone was stored (then the page reloads to show it).
    """
    form = TimeZoneForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": form.errors["time_zone"][0]}, status=400)
    stored = user_time_zone_set(
        user=request.user,
        time_zone=form.cleaned_data["time_zone"],
        request=request,
        only_if_unset=True,
    )
    return JsonResponse({"stored": stored, "time_zone": zone_of(request.user)})


def _own_answerable_event(request: AuthenticatedHttpRequest, event_id: int) -> AuditEvent:
    event = answerable_event_of(request.user, event_id)
    if event is None:
        raise Http404("No such event of yours to answer about.")
    return event


@login_required
@require_POST
def activity_confirm(request: AuthenticatedHttpRequest, event_id: int) -> HttpResponse:
    """ "Yes, it was me": record it (once) and go back to the Profile."""
    event = _own_answerable_event(request, event_id)
    outcome = activity_check_record(
        user=request.user, event=event, answer=ActivityAnswer.ME, request=request
    )
    if outcome.check.answer == ActivityAnswer.NOT_ME:
        messages.info(request, "You already told us this was not you; your account was secured.")
    else:
        messages.success(request, "Thanks: noted that it was you.")
    return see_other(reverse("accounts:profile") + "#security-activity")


@login_required
@require_http_methods(["GET", "POST"])
def activity_report(request: AuthenticatedHttpRequest, event_id: int) -> HttpResponse:
    """ "No, secure my account": ask, then end every other session, take the password away (this
    session chooses a new one next; an emailed link too) and tell the security team."""
    event = _own_answerable_event(request, event_id)
    if request.method != "POST":
        context = {
            "event": event,
            "title": event_title(event),
            "other_sessions": sessions_open_of(request.user)
            .exclude(session_hash=request.session.get(SESSION_HASH_KEY, ""))
            .count(),
        }
        return render(request, "accounts/activity_report.html", context)
    outcome = activity_check_record(
        user=request.user, event=event, answer=ActivityAnswer.NOT_ME, request=request
    )
    if not outcome.changed:
        messages.info(request, "You already told us this was not you; your account was secured.")
        return see_other(reverse("accounts:profile") + "#security-activity")
    messages.warning(
        request,
        "Your account is secured: your other sessions were signed out and your old password no "
        "longer works. Choose a new password now. Your organization's security team has been "
        "told.",
    )
    return see_other("accounts:password-change")


def _security_context(request: AuthenticatedHttpRequest) -> dict[str, Any]:
    user = request.user
    backup = mfa.backup_device_of(user)
    return {
        "totp_devices": mfa.totp_devices_of(user),
        "passkeys": mfa.passkeys_of(user),
        "passkey_required": mfa.passkey_required_for(user),
        "backup_device": backup,
        "backup_codes_left": backup.token_set.count() if backup is not None else 0,
        "mfa_required": mfa.mfa_required_for(user),
        "sessions": list(sessions_open_of(user)),
        "current_session_hash": request.session.get(SESSION_HASH_KEY, ""),
        "unfamiliar_paused_until": unfamiliar_pause_of(user),
    }


@login_required
@require_GET
@vary_on_headers("HX-Request")
def security(request: AuthenticatedHttpRequest) -> HttpResponse:
    template = "accounts/security.html"
    if request.htmx:
        template += "#sessions"
    return render(request, template, _security_context(request))


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def session_end(request: AuthenticatedHttpRequest, session_hash: str) -> HttpResponse:
    """Ask, then end one of the person's sessions (this one signs out here)."""
    tracked = session_open_of(request.user, session_hash)
    if tracked is None:
        raise Http404("No such session of yours.")
    current = session_hash == request.session.get(SESSION_HASH_KEY)
    if request.method != "POST":
        context = {"tracked": tracked, "current": current}
        return render(request, "accounts/session_end.html", context)
    if current:
        sessions_end(
            user=request.user,
            reason=SessionEndReason.REVOKED_BY_USER,
            request=request,
            only_hash=session_hash,
        )
        logout(request)
        messages.info(request, "This session was signed out.")
        if request.htmx:
            return HttpResponseClientRedirect(reverse("accounts:login"))
        return see_other("accounts:login")
    sessions_end(
        user=request.user,
        reason=SessionEndReason.REVOKED_BY_USER,
        request=request,
        only_hash=session_hash,
    )
    return _sessions_response(request, "That session was signed out.")


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def sessions_end_others(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Ask, then end every session of the person's but this one."""
    if request.method != "POST":
        others = [
            s
            for s in sessions_open_of(request.user)
            if s.session_hash != request.session.get(SESSION_HASH_KEY)
        ]
        return render(request, "accounts/sessions_end_others.html", {"others": others})
    ended = sessions_end(
        user=request.user,
        reason=SessionEndReason.REVOKED_BY_USER,
        request=request,
        keep_current=True,
    )
    if not ended:
        return _sessions_response(request, "You were not signed in anywhere else.", info=True)
    return _sessions_response(request, f"Signed out {ended} other session{pluralize(ended)}.")


def _sessions_response(
    request: AuthenticatedHttpRequest, message: str, *, info: bool = False
) -> HttpResponse:
    if request.htmx:
        context = {**_security_context(request), "sessions_message": message}
        return render(request, "accounts/security.html#sessions", context)
    (messages.info if info else messages.success)(request, message)
    return see_other("accounts:security")
