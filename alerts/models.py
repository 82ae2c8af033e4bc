"""Models for alerts (built in its own issue)."""
