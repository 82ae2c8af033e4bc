FROM python:3.11-slim
# Containers take their settings from the environment only, never from a .env file.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DOTENV_FILE=""
WORKDIR /app
COPY pyproject.toml ./
RUN pip install --no-cache-dir .
COPY . .
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput
EXPOSE 8000
# gunicorn.conf.py: bind 0.0.0.0:8000, WEB_CONCURRENCY workers (3), access and error logs with
# secrets redacted.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "activity_monitor.wsgi"]
