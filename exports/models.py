"""Models for exports (built in its own issue)."""
