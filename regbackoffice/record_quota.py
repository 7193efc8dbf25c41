"""A per-client quota on submitted records, counted in the rate limiter's storage.

The count is of records, not requests (a batch of 500 costs 500), kept in Redis when the
app has it (shared by every app server) and in memory otherwise. A storage outage never
refuses a station: the quota is a brake on abuse, not part of the record's validity.
"""

from __future__ import annotations

import math
import time

from flask import current_app
from limits import parse

from .extensions import limiter

SCOPE = "api-records"


def retry_after(app_id: str, records: int) -> int | None:
    """Count ``records`` against the client's quota; the seconds to wait when over it."""
    setting = current_app.config.get("API_RECORD_RATE_LIMIT") or ""
    if not setting.strip():
        return None
    limit = parse(setting)
    try:
        strategy = limiter.limiter
        if strategy.hit(limit, SCOPE, app_id, cost=records):
            return None
        reset, _remaining = strategy.get_window_stats(limit, SCOPE, app_id)
    except Exception:  # the limiter's storage (Redis) is away: let the records in
        current_app.logger.warning("record quota unavailable", exc_info=True)
        return None
    return max(1, math.ceil(reset - time.time()))
