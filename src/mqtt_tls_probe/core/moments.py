"""Moments as reports show them: ISO-8601 in UTC, and whole days left.

Rule: pure and free of ``cryptography``, so that reports of a success can be
rendered without it (connect's cold start is measured).
"""

from __future__ import annotations

from datetime import datetime

_SECONDS_PER_DAY = 86400


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z, to the second."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def days_until(moment: datetime, now: datetime) -> int:
    """Whole days from ``now`` to ``moment``; negative once it has passed."""
    return int((moment - now).total_seconds() // _SECONDS_PER_DAY)
