"""The city dashboard's numbers: ``summaries`` (write side) and ``tables`` (read side)."""

# Queued by dotted path before the job registry (``jobs.job``); remove after one release.
from .summaries import refresh_dashboard_stats

__all__ = ["refresh_dashboard_stats"]
