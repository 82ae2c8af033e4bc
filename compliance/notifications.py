"""The overdue email to a review's assignees: owed from the moment the review is marked overdue
(Review.overdue_email_pending, set with review.overdue) until a send succeeds, so the sweep sends
what a failed send left (at least once, never lost). The body is a template."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from .models import Review, ReviewStatus
from .selectors import review_assignees

logger = logging.getLogger(__name__)


def review_overdue_notify(*, review_id: int) -> bool:
    """Email the assignees of an overdue review if it is still owed; whether an email went."""
    review = (
        Review.objects.filter(pk=review_id, overdue_email_pending=True)
        .select_related("schedule", "organization")
        .first()
    )
    if review is None:
        return False
    recipients = [user.email for user in review_assignees(review) if user.email]
    if recipients and review.status == ReviewStatus.OPEN:
        link = settings.ALERTS_BASE_URL.rstrip("/") + reverse(
            "compliance:review-detail", kwargs={"pk": review.pk}
        )
        body = render_to_string(
            "compliance/email/review_overdue.txt", {"review": review, "link": link}
        )
        send_mail(
            f"Activity Monitor: the review “{review.schedule.name}” is overdue"[:200],
            body,
            None,
            recipients,
            fail_silently=False,
            connection=get_connection(timeout=settings.SWEEP_EMAIL_TIMEOUT_SECONDS),
        )
    Review.objects.filter(pk=review.pk).update(overdue_email_pending=False)
    return bool(recipients)


def review_overdue_notify_pending(*, limit: int = 200) -> int:
    """Send every overdue email still owed; how many went. One failure never stops the rest."""
    sent = 0
    pending = Review.objects.filter(overdue_email_pending=True).values_list("pk", flat=True)
    for review_id in list(pending[:limit]):
        try:
            sent += review_overdue_notify(review_id=review_id)
        except Exception:
            logger.exception("review %s: overdue email failed; the next sweep retries", review_id)
    return sent
