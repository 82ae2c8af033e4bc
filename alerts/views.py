"""Alert triage (analysts, administrators), rules and webhooks (administrators), own alerts."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import Capability, can, require
from accounts.http import AuthenticatedHttpRequest, see_other
from accounts.lockout import lockout_release
from accounts.models import SessionEndReason
from accounts.sessions import sessions_end
from audit.models import Reason

from . import selectors, triage
from .forms import AlertFilterForm, AssignForm, NoteForm, ResolveForm, RuleForm, WebhookForm
from .models import Alert, AlertRule, RuleKind, WebhookEndpoint
from .rules import RULES, alert_rule_update, alert_rules_ensure, effective_parameters
from .webhooks import webhook_endpoint_create, webhook_endpoint_delete

PAGE_SIZE = 50


def _alert_for_triage(request: AuthenticatedHttpRequest, pk: int) -> Alert:
    """The alert if the user may triage it; another organization's alert does not exist."""
    require(request, Capability.TRIAGE_ALERTS)
    alert = selectors.alerts_for_triage(user=request.user).filter(pk=pk).first()
    if alert is None:
        raise Http404("No such alert.")
    return alert


def _audit_log_link(**filters: str) -> str:
    return "/settings/security/audit-log/?" + urlencode({k: v for k, v in filters.items() if v})


def _network_of(alert: Alert) -> str:
    network = alert.details.get("network") if isinstance(alert.details, dict) else None
    return network if isinstance(network, str) else ""


def _vary(response: HttpResponse) -> HttpResponse:
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- Triage ----------------------------------------------------------------------------------


@login_required
@require_GET
def alert_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    require(request, Capability.TRIAGE_ALERTS)
    form = AlertFilterForm(
        request.GET or None, assignable=selectors.assignable_users(user=request.user)
    )
    template = "alerts/alert_list.html#results" if request.htmx else "alerts/alert_list.html"
    if request.GET and not form.is_valid():
        context = {"form": form, "alerts": [], "more": None}
        return _vary(render(request, template, context, status=400))
    data = form.cleaned_data if request.GET else {}
    alerts = selectors.alerts_triage_list(
        user=request.user,
        status=data.get("status", ""),
        kind=data.get("rule", ""),
        severity=data.get("severity", ""),
        subject=data.get("user", ""),
        assignee=data.get("assignee", ""),
        sort=data.get("sort") or selectors.DEFAULT_ALERT_SORT,
        after=data.get("after"),
    )
    if alerts is None:  # a page mark that names no alert of theirs (gone, or made up)
        form.add_error("after", "That page of alerts no longer exists; start from the first.")
        context = {"form": form, "alerts": [], "more": None}
        return _vary(render(request, template, context, status=400))
    page = list(alerts[: PAGE_SIZE + 1])
    more = None
    if len(page) > PAGE_SIZE:
        page = page[:PAGE_SIZE]
        query = request.GET.copy()
        query["after"] = str(page[-1].pk)
        more = "?" + query.urlencode()
    context = {"form": form, "alerts": page, "more": more}
    return _vary(render(request, template, context))


def _detail_context(
    request: AuthenticatedHttpRequest, alert: Alert, **forms: object
) -> dict[str, object]:
    events = list(
        selectors.events_by_ids(organization_id=alert.organization_id, ids=alert.event_ids)
    )
    for event in events:
        event.audit_user_link = _audit_log_link(user=event.actor_label)  # type: ignore[attr-defined]
        event.audit_ip_link = _audit_log_link(ip=event.ip_address or "")  # type: ignore[attr-defined]
    assignable = selectors.assignable_users(user=request.user)
    return {
        "alert": alert,
        "events": events,
        "answers": selectors.answers_by_alert([alert]).get(alert.pk, []),
        "audit_user_link": _audit_log_link(user=alert.subject_label)
        if alert.subject_user_id
        else "",
        "audit_ip_link": _audit_log_link(ip=alert.subject_ip or ""),
        # A finding about a network (credential stuffing from several of its addresses).
        "subject_network": "" if alert.subject_ip else _network_of(alert),
        "audit_network_link": _audit_log_link(ip=_network_of(alert)),
        "ack_form": forms.get("ack_form") or NoteForm(),
        "assign_form": forms.get("assign_form")
        or AssignForm(assignable=assignable, initial={"assignee": alert.assignee_id}),
        "resolve_form": forms.get("resolve_form") or ResolveForm(),
        "error": forms.get("error"),
        # The actions the alert calls for, to those who may take them (accounts.access).
        "subject_account": selectors.subject_account_of(alert=alert)
        if can(request.user, Capability.MANAGE_MEMBERS)
        else None,
    }


@login_required
@require_GET
def alert_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    alert = _alert_for_triage(request, pk)
    return render(request, "alerts/alert_detail.html", _detail_context(request, alert))


def _triage_response(
    request: AuthenticatedHttpRequest, alert: Alert, *, status: int = 200, **forms: object
) -> HttpResponse:
    """The triage panel for HTMX, else back to the page (or the page with the error)."""
    if request.htmx:
        response = render(
            request,
            "alerts/alert_detail.html#triage",
            _detail_context(request, alert, **forms),
            status=status,
        )
        return _vary(response)
    if status != 200:
        return _vary(
            render(
                request,
                "alerts/alert_detail.html",
                _detail_context(request, alert, **forms),
                status=status,
            )
        )
    return see_other("alerts:alert-detail", pk=alert.pk)


def _triage_step(
    request: AuthenticatedHttpRequest,
    alert: Alert,
    form: Form,
    *,
    form_name: str,
    step: Callable[..., Alert],
    done: str,
) -> HttpResponse:
    """Take a triage step with the form's fields as its keywords; answer with the triage panel.

    `form_name` is the form's name in the panel's context; `done` the message on success,
    formatted with the alert.
    """
    if not form.is_valid():
        return _triage_response(request, alert, status=400, **{form_name: form})
    try:
        alert = step(alert=alert, actor=request.user, request=request, **form.cleaned_data)
    except triage.AlertStateError as exc:
        return _triage_response(request, alert, status=400, error=str(exc))
    messages.success(request, done.format(alert=alert))
    return _triage_response(request, alert)


@login_required
@require_POST
def alert_acknowledge(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    alert = _alert_for_triage(request, pk)
    form = NoteForm(request.POST)
    return _triage_step(
        request,
        alert,
        form,
        form_name="ack_form",
        step=triage.alert_acknowledge,
        done="Alert acknowledged.",
    )


@login_required
@require_POST
def alert_assign(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    alert = _alert_for_triage(request, pk)
    form = AssignForm(request.POST, assignable=selectors.assignable_users(user=request.user))
    return _triage_step(
        request,
        alert,
        form,
        form_name="assign_form",
        step=triage.alert_assign,
        done="Alert assigned to {alert.assignee}.",
    )


@login_required
@require_POST
def alert_resolve(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    alert = _alert_for_triage(request, pk)
    form = ResolveForm(request.POST)
    return _triage_step(
        request,
        alert,
        form,
        form_name="resolve_form",
        step=triage.alert_resolve,
        done="Alert resolved.",
    )


# --- Actions on the account the alert is about ----------------------------------------------


def _subject_for_action(
    request: AuthenticatedHttpRequest, pk: int
) -> tuple[Alert, selectors.SubjectAccount]:
    """The alert and its subject, for someone who may act on members; 404 for any other alert,
    and for an alert about no member of the organization (an IP address, a former member)."""
    require(request, Capability.MANAGE_MEMBERS)
    alert = _alert_for_triage(request, pk)
    subject = selectors.subject_account_of(alert=alert)
    if subject is None:
        raise Http404("This alert is about no member of your organization.")
    return alert, subject


@login_required
@require_http_methods(["GET", "POST"])
def alert_subject_unlock(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Ask, then unlock the account the alert is about."""
    alert, subject = _subject_for_action(request, pk)
    email = subject.user.email
    if request.method != "POST":
        context = {"alert": alert, "subject": subject, "action": "unlock"}
        return render(request, "alerts/alert_action_confirm.html", context)
    released = lockout_release(
        user=subject.user, reason=Reason.ADMIN_UNLOCK, actor=request.user, request=request
    )
    if released:
        messages.success(request, f"{email} is unlocked.")
    else:
        messages.info(request, f"{email} was not locked.")
    return see_other("alerts:alert-detail", pk=alert.pk)


@login_required
@require_http_methods(["GET", "POST"])
def alert_subject_sign_out(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Ask, then end every session of the account the alert is about."""
    alert, subject = _subject_for_action(request, pk)
    email = subject.user.email
    if subject.user.pk == request.user.pk:
        context = _detail_context(
            request, alert, error="To sign out your own sessions, use Profile → Security."
        )
        return render(request, "alerts/alert_detail.html", context, status=409)
    if request.method != "POST":
        context = {"alert": alert, "subject": subject, "action": "sign-out"}
        return render(request, "alerts/alert_action_confirm.html", context)
    ended = sessions_end(
        user=subject.user,
        reason=SessionEndReason.REVOKED_BY_ADMIN,
        actor=request.user,
        request=request,
    )
    messages.success(request, f"Signed out {ended} session{'s' if ended != 1 else ''} of {email}.")
    return see_other("alerts:alert-detail", pk=alert.pk)


# --- Rules -----------------------------------------------------------------------------------


@login_required
@require_GET
def rule_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.TRIAGE_ALERTS)
    alert_rules_ensure(organization_id=organization.pk)
    rules = [
        (rule, RULES[rule.kind], effective_parameters(rule))
        for rule in selectors.rules_for(user=request.user)
    ]
    return render(request, "alerts/rule_list.html", {"rules": rules})


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: AuthenticatedHttpRequest, kind: str) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ALERT_RULES)
    if kind not in RuleKind.values:
        raise Http404("No such rule.")
    alert_rules_ensure(organization_id=organization.pk)
    rule: AlertRule = selectors.rules_for(user=request.user).get(kind=kind)
    initial = {
        "enabled": rule.enabled,
        "severity": rule.severity,
        "notify_email": rule.notify_email,
        "notify_webhook": rule.notify_webhook,
        **effective_parameters(rule),
    }
    form = RuleForm(request.POST or None, rule=rule, initial=initial)
    if request.method == "POST":
        if not form.is_valid():
            messages.error(request, "The rule was not saved: see below.")
            return render(
                request, "alerts/rule_edit.html", {"form": form, "rule": rule}, status=400
            )
        changed = alert_rule_update(
            rule=rule,
            actor=request.user,
            enabled=form.cleaned_data["enabled"],
            severity=form.cleaned_data["severity"],
            parameters=form.parameters(),
            notify_email=form.cleaned_data["notify_email"],
            notify_webhook=form.cleaned_data["notify_webhook"],
            request=request,
        )
        if changed:
            messages.success(request, f"Saved the rule “{rule.get_kind_display()}”.")
        else:
            messages.info(request, "Nothing changed: those already were the rule's settings.")
        return see_other("alerts:rule-list")
    return render(request, "alerts/rule_edit.html", {"form": form, "rule": rule})


# --- Webhooks --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_WEBHOOKS)
    form = WebhookForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            endpoint = webhook_endpoint_create(
                organization=organization,
                url=form.cleaned_data["url"],
                description=form.cleaned_data["description"],
                actor=request.user,
                request=request,
            )
            # Carried to the next page only: the detail page shows it once and forgets it.
            request.session[_secret_once_key(endpoint.pk)] = endpoint.secret
            messages.success(request, "Webhook added. Verify requests with the secret below.")
            return see_other("alerts:webhook-detail", pk=endpoint.pk)
        messages.error(request, "The webhook was not added: see below.")
        status = 400
    else:
        status = 200
    endpoints = selectors.webhooks_for(user=request.user)
    return render(
        request, "alerts/webhook_list.html", {"form": form, "endpoints": endpoints}, status=status
    )


def _secret_once_key(pk: int) -> str:
    return f"alerts.webhook_secret.{pk}"


def _webhook_for_admin(request: AuthenticatedHttpRequest, pk: int) -> WebhookEndpoint:
    require(request, Capability.MANAGE_WEBHOOKS)
    endpoint = selectors.webhooks_for(user=request.user).filter(pk=pk).first()
    if endpoint is None:
        raise Http404("No such webhook.")
    return endpoint


@login_required
@require_GET
def webhook_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    endpoint = _webhook_for_admin(request, pk)
    response = render(
        request,
        "alerts/webhook_detail.html",
        {
            "endpoint": endpoint,
            "secret": request.session.pop(_secret_once_key(endpoint.pk), None),
            "deliveries": selectors.deliveries_for(endpoint=endpoint),
        },
    )
    # The page may show the secret, once: no cache may keep a copy.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def webhook_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Ask, then remove the webhook."""
    endpoint = _webhook_for_admin(request, pk)
    if request.method != "POST":
        return render(request, "alerts/webhook_delete.html", {"endpoint": endpoint})
    webhook_endpoint_delete(endpoint=endpoint, actor=request.user, request=request)
    messages.success(request, f"Removed the webhook {endpoint.url}. No more alerts are sent to it.")
    return see_other("alerts:webhook-list")


# --- Own alerts ------------------------------------------------------------------------------


@login_required
@require_GET
def my_alerts(request: AuthenticatedHttpRequest) -> HttpResponse:
    alerts = list(selectors.alerts_about_user(user=request.user)[:PAGE_SIZE])
    answers = selectors.answers_by_alert(alerts)
    rows = [(alert, answers.get(alert.pk, [])) for alert in alerts]
    return render(request, "alerts/my_alerts.html", {"rows": rows})
