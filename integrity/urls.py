from django.urls import path

from . import views

app_name = "integrity"

urlpatterns = [
    path("settings/security/integrity/", views.integrity, name="integrity"),
    path("settings/security/integrity/verify/", views.verify, name="verify"),
]
