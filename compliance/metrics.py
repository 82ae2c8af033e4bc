"""What compliance tells /metrics (operations.metrics): reviews still to sign, and overdue."""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from operations.metrics import PREFIX

from .models import Review, ReviewStatus


def review_metrics() -> list[Metric]:
    now = timezone.now()
    counts = Review.objects.filter(status=ReviewStatus.OPEN).aggregate(
        due=Count("id", filter=Q(due_at__gt=now)), overdue=Count("id", filter=Q(due_at__lte=now))
    )
    reviews = GaugeMetricFamily(
        PREFIX + "reviews_unsigned",
        "Log reviews of every organization not signed off yet: due, or past their due time.",
        labels=["state"],
    )
    for state in ("due", "overdue"):
        reviews.add_metric([state], counts[state])
    return [reviews]
