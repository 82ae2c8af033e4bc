from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo and synthetic data for development and benchmarks (as Zulip's zilencer): the brief's
    demo organizations (`manage.py seed_demo`) and bulk events (`manage.py generate_events`)."""

    name = "demo"
    verbose_name = "Demo and synthetic data"
