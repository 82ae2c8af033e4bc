"""WSGI entry point (gunicorn activity_monitor.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activity_monitor.settings")
application = get_wsgi_application()
