from django.urls import path

from . import views

app_name = "compliance"

urlpatterns = [
    path("settings/security/reviews/", views.reviews, name="reviews"),
    path("settings/security/reviews/schedules/add/", views.schedule_add, name="schedule-add"),
    path(
        "settings/security/reviews/schedules/<int:pk>/", views.schedule_edit, name="schedule-edit"
    ),
    path(
        "settings/security/reviews/schedules/<int:pk>/open/",
        views.review_open,
        name="review-open",
    ),
    path("settings/security/reviews/<int:pk>/", views.review_detail, name="review-detail"),
    path(
        "settings/security/reviews/<int:pk>/items/<int:item_pk>/",
        views.review_item_mark,
        name="review-item-mark",
    ),
    path(
        "settings/security/reviews/<int:pk>/sign-off/",
        views.review_sign_off,
        name="review-sign-off",
    ),
    path("settings/security/checklist/", views.checklist, name="checklist"),
    path(
        "settings/security/checklist/retention/",
        views.retention_acknowledge,
        name="retention-acknowledge",
    ),
    path("settings/security/checklist/guide/", views.guide, name="guide"),
    path("settings/security/checklist/guide/edit/", views.guide_edit, name="guide-edit"),
    path(
        "settings/security/checklist/guide/acknowledge/",
        views.guide_acknowledge,
        name="guide-acknowledge",
    ),
]
