"""gunicorn's settings: `gunicorn -c gunicorn.conf.py activity_monitor.wsgi` (compose, Dockerfile).

gunicorn writes its access and error logs itself, in the master and the workers, outside Django's
LOGGING. This file gives both logs the redaction filter Django's own loggers use, so a request line
or referer with a password-reset token (/password-reset/reset/<uidb64>/<token>/), an API token or a
?token= never reaches the output in clear. `--access-logfile` and `--error-logfile` are replaced
by the handlers below; send the output where it should go from the container's stdout/stderr.
"""

from __future__ import annotations

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "audit.logging.RedactSecretsFilter"}},
    "formatters": {
        "generic": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
        },
        # gunicorn formats the request line itself (access_log_format); this adds nothing.
        "access": {"format": "%(message)s"},
    },
    "handlers": {
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "filters": ["redact"],
            "stream": "ext://sys.stdout",
        },
        "error": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "filters": ["redact"],
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"level": "INFO", "handlers": ["error"]},
    "loggers": {
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
    },
}
