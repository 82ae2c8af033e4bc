"""Settings → Security → Streams: destinations, their health, test events, pause, replay."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import Capability, require
from accounts.http import AuthenticatedHttpRequest, see_other
from accounts.models import Organization

from . import delivery, selectors, services
from .forms import DestinationForm, ReplayForm
from .models import StreamDestination, Transport

# A new HTTPS destination's signing secret, kept in the session for the one page that shows it
# after the redirect: never in the URL, a message or an event, and gone once shown.
_SHOW_ONCE_KEY = "streams.secret_once"


def _refuse_unless_enterprise(organization: Organization) -> None:
    if not organization.has_api:
        raise PermissionDenied(
            f"Streams are part of the Enterprise tier; {organization.name} is on "
            f"{organization.get_tier_display()}."
        )


def _enterprise(request: AuthenticatedHttpRequest) -> Organization:
    """The organization, if its administrators may stream; PermissionDenied otherwise."""
    organization = require(request, Capability.MANAGE_STREAMS)
    _refuse_unless_enterprise(organization)
    return organization


def _destination_or_404(
    request: AuthenticatedHttpRequest, destination_id: int
) -> StreamDestination:
    organization = require(request, Capability.MANAGE_STREAMS)
    destination = selectors.destination_for(
        organization=organization, destination_id=destination_id
    )
    if destination is None:
        raise Http404("No such stream destination in your organization.")
    _refuse_unless_enterprise(organization)  # a tier that changed since it was added
    return destination


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET"])
def stream_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_STREAMS)
    rows = []
    if organization.has_api:
        rows = [
            (destination, selectors.lag_of(destination))
            for destination in selectors.destinations_for(organization=organization)
        ]
    shown = request.session.pop(_SHOW_ONCE_KEY, None)
    return _no_store(
        render(
            request,
            "streams/stream_list.html",
            {
                "organization": organization,
                "rows": rows,
                "transports": Transport.choices,
                "secret_once": shown,
            },
        )
    )


@login_required
@require_http_methods(["GET", "POST"])
def stream_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_STREAMS)
    transport = request.GET.get("transport", "")
    if transport not in Transport.values:
        # Which transport? (Other tiers read here why there is none.)
        return render(
            request,
            "streams/stream_pick.html",
            {"organization": organization, "transports": Transport.choices, "asked": transport},
            status=400 if transport or request.method == "POST" else 200,
        )
    _refuse_unless_enterprise(organization)
    form = DestinationForm(request.POST if request.method == "POST" else None, transport=transport)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        destination = services.stream_destination_create(
            organization=organization,
            actor=request.user,
            name=data["name"],
            transport=transport,
            fmt=data["format"],
            host=data.get("host", ""),
            port=data.get("port"),
            url=data.get("url", ""),
            ca_certificate=data.get("ca_certificate", ""),
            secret=data.get("secret", ""),
            bucket=data.get("bucket", ""),
            key_prefix=data.get("key_prefix", ""),
            region=data.get("region", ""),
            access_key_id=data.get("access_key_id", ""),
            request=request,
        )
        if destination.transport == Transport.HTTPS:
            request.session[_SHOW_ONCE_KEY] = {
                "name": destination.name,
                "secret": destination.secret,
            }
        messages.success(
            request,
            f"Added the stream “{destination.name}”. It sends events from now on; use Replay to "
            "send earlier ones.",
        )
        return see_other("streams:stream-list")
    if request.method == "POST":
        messages.error(request, "The destination was not added: correct the fields below.")
    return _no_store(
        render(
            request,
            "streams/stream_form.html",
            {"form": form, "transport_label": Transport(transport).label, "destination": None},
            status=400 if request.method == "POST" else 200,
        )
    )


@login_required
@require_http_methods(["GET", "POST"])
def stream_edit(request: AuthenticatedHttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination_or_404(request, destination_id)
    form = DestinationForm(
        request.POST if request.method == "POST" else None,
        transport=destination.transport,
        instance=destination,
    )
    if request.method == "POST" and form.is_valid():
        changed = services.stream_destination_update(
            destination=destination,
            actor=request.user,
            changes=form.changes(),
            secret=form.cleaned_data.get("secret", ""),
            access_key_id=form.cleaned_data.get("access_key_id", ""),
            request=request,
        )
        if changed:
            messages.success(request, f"Saved the stream “{destination.name}”.")
        else:
            messages.info(request, "Nothing changed.")
        return see_other("streams:stream-list")
    if request.method == "POST":
        messages.error(request, "The destination was not saved: correct the fields below.")
    return _no_store(
        render(
            request,
            "streams/stream_form.html",
            {
                "form": form,
                "transport_label": destination.get_transport_display(),
                "destination": destination,
            },
            status=400 if request.method == "POST" else 200,
        )
    )


@login_required
@require_POST
def stream_test(request: AuthenticatedHttpRequest, destination_id: int) -> HttpResponse:
    """Send one test event now and say whether it arrived."""
    destination = _destination_or_404(request, destination_id)
    problem = delivery.stream_test_send(destination=destination, actor=request.user)
    if problem:
        messages.error(request, f"The test event to “{destination.name}” failed: {problem}")
    else:
        messages.success(request, f"The test event (id 0) reached “{destination.name}”.")
    return see_other("streams:stream-list")


@login_required
@require_POST
def stream_pause(request: AuthenticatedHttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination_or_404(request, destination_id)
    if request.POST.get("action") == "resume":
        if services.stream_destination_resume(
            destination=destination, actor=request.user, request=request
        ):
            messages.success(
                request, f"Resumed “{destination.name}”: it continues from where it stopped."
            )
        else:
            messages.info(request, f"“{destination.name}” was not paused.")
    elif services.stream_destination_pause(
        destination=destination, actor=request.user, request=request
    ):
        messages.success(
            request, f"Paused “{destination.name}”. Resuming sends everything since, in order."
        )
    else:
        messages.info(request, f"“{destination.name}” was already paused.")
    return see_other("streams:stream-list")


@login_required
@require_http_methods(["GET", "POST"])
def stream_replay(request: AuthenticatedHttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination_or_404(request, destination_id)
    retention_days = destination.organization.retention_days
    form = ReplayForm(
        request.POST if request.method == "POST" else None, retention_days=retention_days
    )
    if request.method == "POST" and form.is_valid():
        since = form.cleaned_data["since"]
        services.stream_destination_replay(
            destination=destination, actor=request.user, since=since, request=request
        )
        messages.success(
            request,
            f"“{destination.name}” sends every event from {since:%Y-%m-%d} (UTC) again, then "
            "continues with new ones. Receivers may see some twice: deduplicate by id.",
        )
        return see_other("streams:stream-list")
    return render(
        request,
        "streams/stream_replay.html",
        {"form": form, "destination": destination},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def stream_delete(request: AuthenticatedHttpRequest, destination_id: int) -> HttpResponse:
    """Ask, then remove the destination."""
    destination = _destination_or_404(request, destination_id)
    if request.method != "POST":
        return render(request, "streams/stream_delete.html", {"destination": destination})
    services.stream_destination_delete(destination=destination, actor=request.user, request=request)
    messages.success(request, f"Removed the stream “{destination.name}”. Nothing more is sent.")
    return see_other("streams:stream-list")
