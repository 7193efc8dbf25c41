"""Pre-aggregated counts for the city dashboard (rebuilt by ``stats.summaries``).

The archive and the filling records are too large to group on every page view (1,000,000
cylinders, 10,000,000 fillings); these small tables hold their monthly totals.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Model, UTCDateTime


class RegistrationStat(Model):
    """Cylinders registered per month (使用登记日期), district and filling medium."""

    __tablename__ = "stat_registrations"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    district_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    medium_code: Mapped[str] = mapped_column(String(3), primary_key=True)
    cylinders: Mapped[int] = mapped_column(Integer, nullable=False)


class ViolationStat(Model):
    """违规充装 reported through the API per month, district and reason.

    ``district_code`` is the cylinder's district, else the sending unit's, else ''. The
    reason ``*`` row counts the violating fillings themselves (one filling may carry several
    reasons).
    """

    __tablename__ = "stat_violations"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    district_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    reason: Mapped[str] = mapped_column(String(30), primary_key=True)
    fillings: Mapped[int] = mapped_column(Integer, nullable=False)


class StepDurationStat(Model):
    """How long one workflow step took, as a histogram of exact durations in seconds.

    Per month the step ended, district and step (``accept``/``approve``/``certify``); the
    dashboard's medians are read from it and rounded once, for display (a histogram of
    rounded values would round twice: 5.125 days shown as 5.2).
    """

    __tablename__ = "stat_step_days"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    district_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    step: Mapped[str] = mapped_column(String(10), primary_key=True)
    seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    applications: Mapped[int] = mapped_column(Integer, nullable=False)


class StatRefresh(Model):
    """When each summary was last rebuilt (shown on the dashboard)."""

    __tablename__ = "stat_refreshes"

    name: Mapped[str] = mapped_column(String(30), primary_key=True)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
