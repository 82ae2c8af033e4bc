"""Settings → Security → Reviews (the schedule, due reviews, sign-off, history) and the
monitoring checklist with its log-analysis guide and retention acknowledgement."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import Capability, access_for, require
from accounts.http import AuthenticatedHttpRequest, see_other

from . import selectors, services
from .forms import GuideForm, ItemMarkForm, ReviewOpenForm, ScheduleForm, SignOffForm
from .models import Review, ReviewStatus


def _posted(request: AuthenticatedHttpRequest) -> QueryDict | None:
    """The form's data on a POST, even an empty one (an empty POST is bad input, not a GET)."""
    return request.POST if request.method == "POST" else None


def _review_for(request: AuthenticatedHttpRequest, pk: int) -> Review:
    organization = require(request, Capability.VIEW_REVIEWS)
    review = selectors.review_get(organization=organization, pk=pk)
    services.review_prepare(review=review)
    return review


def _signer_or_403(request: AuthenticatedHttpRequest, review: Review) -> None:
    right = selectors.may_sign(user=request.user, review=review)
    if not right.allowed:
        raise PermissionDenied(right.reason)


@login_required
@require_GET
def reviews(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.VIEW_REVIEWS)
    now = timezone.now()
    # The page works without the beat: the defaults and the due reviews are made on the way.
    services.review_schedules_ensure(organization=organization)
    services.reviews_open_due(organization=organization, now=now)
    due = [
        (review, selectors.may_sign(user=request.user, review=review).allowed)
        for review in selectors.reviews_due(organization)
    ]
    context = {
        "organization": organization,
        "schedules": selectors.schedules_of(organization),
        "due": due,
        "history": selectors.reviews_history(organization),
        "now": now,
    }
    return render(request, "compliance/reviews.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def schedule_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_REVIEWS)
    form = ScheduleForm(_posted(request), organization=organization)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.review_schedule_create(
            organization=organization,
            actor=request.user,
            name=data["name"],
            focus=data["focus"],
            frequency=data["frequency"],
            assigned_role=data["assigned_role"],
            assignee=data["assignee"],
            request=request,
        )
        messages.success(request, f"Added the review “{data['name']}”.")
        return see_other("compliance:reviews")
    return render(
        request,
        "compliance/schedule_form.html",
        {"form": form, "schedule": None},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def schedule_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    organization = require(request, Capability.MANAGE_REVIEWS)
    schedule = selectors.schedule_get(organization=organization, pk=pk)
    initial = {
        "name": schedule.name,
        "focus": schedule.focus,
        "frequency": schedule.frequency,
        "assigned_role": schedule.assigned_role,
        "assignee": schedule.assignee,
        "active": schedule.active,
    }
    form = ScheduleForm(
        _posted(request), initial=initial, organization=organization, schedule_pk=schedule.pk
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        changed = services.review_schedule_update(
            schedule=schedule,
            actor=request.user,
            changes={key: data[key] for key in initial},
            request=request,
        )
        messages.success(
            request, "Saved the schedule." if changed else "Nothing changed in the schedule."
        )
        return see_other("compliance:reviews")
    return render(
        request,
        "compliance/schedule_form.html",
        {"form": form, "schedule": schedule},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def review_open(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    organization = require(request, Capability.MANAGE_REVIEWS)
    schedule = selectors.schedule_get(organization=organization, pk=pk)
    form = ReviewOpenForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        start, end = form.period()
        try:
            review = services.review_open(schedule=schedule, start=start, end=end)
        except services.ReviewRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, "Opened the review of that period.")
            return see_other("compliance:review-detail", pk=review.pk)
    return render(
        request,
        "compliance/review_open.html",
        {"form": form, "schedule": schedule},
        status=400 if form.errors else 200,
    )


@login_required
@require_GET
def review_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    review = _review_for(request, pk)
    items = list(selectors.review_items(review))
    right = selectors.may_sign(user=request.user, review=review)
    states = selectors.alert_states(review.organization, items)
    context = {
        "review": review,
        "rows": [(item, states.get(item.alert_id or 0, "")) for item in items],
        "may_sign": right.allowed and review.status == ReviewStatus.OPEN,
        "why_not": right.reason,
        "unmarked": sum(1 for item in items if not item.decision),
        "only_own": selectors.only_own_changes(items=items, user=request.user),
        "mark_form": ItemMarkForm(),
    }
    return render(request, "compliance/review_detail.html", context)


@login_required
@require_POST
def review_item_mark(request: AuthenticatedHttpRequest, pk: int, item_pk: int) -> HttpResponse:
    review = _review_for(request, pk)
    _signer_or_403(request, review)
    item = review.items.filter(pk=item_pk).first()
    if item is None:
        raise Http404("No such item in this review.")
    form = ItemMarkForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "Choose Expected or Followed up (a note is 500 characters at most)."
        )
        return see_other(f"{review_url(review)}#item-{item.pk}")
    try:
        services.review_item_mark(
            review=review,
            item=item,
            user=request.user,
            decision=form.cleaned_data["decision"],
            note=form.cleaned_data["note"],
        )
    except services.ReviewRefused as refused:
        messages.error(request, str(refused))
    return see_other(f"{review_url(review)}#item-{item.pk}")


def review_url(review: Review) -> str:
    from django.urls import reverse

    return reverse("compliance:review-detail", kwargs={"pk": review.pk})


# Not atomic: a wrong password must be recorded and counted whatever happens next (as
# accounts' other password rechecks); the sign-off is one transaction of its own.
@transaction.non_atomic_requests
@sensitive_post_parameters("password")
@login_required
@require_http_methods(["GET", "POST"])
def review_sign_off(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    review = _review_for(request, pk)
    _signer_or_403(request, review)
    if review.status != ReviewStatus.OPEN:
        messages.info(request, "This review is already signed off.")
        return see_other("compliance:review-detail", pk=review.pk)
    items = list(review.items.all())
    blocker = ""
    if selectors.only_own_changes(items=items, user=request.user):
        blocker = "Everything under review is your own doing: someone else must sign it off."
    elif unmarked := sum(1 for item in items if not item.decision):
        blocker = f"{unmarked} item{'s' if unmarked != 1 else ''} still to mark before signing off."
    # Refused before the password is asked: nothing to count against the person.
    form = SignOffForm(request.user, None if blocker else (_posted(request)), request=request)
    if request.method == "POST" and not blocker and form.is_valid():
        try:
            services.review_sign_off(
                review=review, user=request.user, note=form.cleaned_data["note"], request=request
            )
        except services.ReviewRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, "Signed off. The review is in the history.")
            return see_other("compliance:reviews")
    failed = request.method == "POST" and (bool(blocker) or bool(form.errors))
    if failed and not blocker:
        messages.error(request, "Not signed off: see below.")
    return render(
        request,
        "compliance/review_sign_off.html",
        {"review": review, "form": form, "blocker": blocker, "items": len(items)},
        status=400 if failed else 200,
    )


@login_required
@require_GET
def checklist(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.VIEW_REVIEWS)
    rows = services.checklist_refresh(organization=organization, now=timezone.now())
    done = sum(1 for row in rows if row.checked.status == "done")
    return render(
        request,
        "compliance/checklist.html",
        {"organization": organization, "rows": rows, "done": done},
    )


@login_required
@require_http_methods(["GET", "POST"])
def retention_acknowledge(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.VIEW_RETENTION)
    facts = selectors.retention_facts(organization)
    if request.method == "POST":
        if not facts["frameworks"]:
            messages.error(
                request, "Declare the frameworks you follow on the Retention page first."
            )
            return see_other("compliance:retention-acknowledge")
        services.retention_acknowledge(
            organization=organization, actor=request.user, request=request
        )
        messages.success(request, "Acknowledged the retention and its warnings.")
        return see_other("compliance:checklist")
    return render(
        request,
        "compliance/retention_acknowledge.html",
        {
            "organization": organization,
            "facts": facts,
            "latest": selectors.retention_acknowledgement_latest(organization),
        },
    )


@login_required
@require_GET
def guide(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.VIEW_REVIEWS)
    current = selectors.guide_of(organization)
    access = access_for(request.user)
    return render(
        request,
        "compliance/guide.html",
        {
            "guide": current,
            "reading": selectors.guide_readers(organization, current),
            "acknowledged": selectors.guide_acknowledged_by(
                organization, request.user, current.version
            ),
            "may_edit": access.can(Capability.MANAGE_REVIEWS),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def guide_edit(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_REVIEWS)
    current = selectors.guide_of(organization)
    form = GuideForm(_posted(request), initial={"body": current.body})
    if request.method == "POST" and form.is_valid():
        saved = services.guide_update(
            organization=organization,
            actor=request.user,
            body=form.cleaned_data["body"],
            request=request,
        )
        messages.success(
            request,
            f"Saved version {saved.version}: everyone acknowledges it again."
            if saved
            else "Nothing changed in the guide.",
        )
        return see_other("compliance:guide")
    return render(
        request,
        "compliance/guide_edit.html",
        {"form": form, "guide": current},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def guide_acknowledge(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.VIEW_REVIEWS)
    try:
        version = int(request.POST.get("version", ""))
    except ValueError:
        messages.error(request, "That form is out of date: read the guide again.")
        return see_other("compliance:guide")
    try:
        services.guide_acknowledge(
            organization=organization, user=request.user, version=version, request=request
        )
    except services.ReviewRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Recorded that you read version {version} of the guide.")
    return see_other("compliance:guide")
