from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("settings/security/access-reviews/", views.access_reviews, name="access-reviews"),
    path(
        "settings/security/access-reviews/<int:review_id>/",
        views.access_review,
        name="access-review",
    ),
    path(
        "settings/security/access-reviews/<int:review_id>/members/<int:item_id>/",
        views.access_review_decide,
        name="access-review-decide",
    ),
    path(
        "settings/security/access-reviews/<int:review_id>/complete/",
        views.access_review_complete,
        name="access-review-complete",
    ),
    path(
        "settings/security/access-reviews/<int:review_id>/evidence.csv",
        views.access_review_csv,
        name="access-review-csv",
    ),
    path("settings/security/reports/", views.reports, name="reports"),
    path("settings/security/reports/<uuid:report_id>/", views.report, name="report"),
    path(
        "settings/security/reports/<uuid:report_id>/status/",
        views.report_status,
        name="report-status",
    ),
    path(
        "settings/security/reports/<uuid:report_id>/download/",
        views.report_download,
        name="report-download",
    ),
]
