"""The rendition cache's numbers for ops: size, hits and misses, and how long encodes take.

Read at request time from the `renditions` table every process writes (the dashboard and
/metrics both call this; no process keeps counts of its own). Where the numbers come from
(services/renditions.py keeps them):

* size — rows in the cache index and the sum of their bytes (twins sharing one file count
  their bytes once per row: the index's view, not the disk's);
* hits — `cache_hits`: times `ensure_renditions` served a rendition without encoding;
* misses — `cache_misses`: times one had to be encoded (a row from before migration 0008 counts
  as the one encode that made it);
* hit rate — hits / (hits + misses) over the rows in the index now; None before any lookup;
* render time — each encode's share of its batch's wall time (`encode_seconds`), for the rows
  encoded within a window: count, median and p95 (nearest rank) and the slowest, per profile.
  Only a row's latest encode is kept, so a rendition encoded twice in the window counts once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.models import RenditionRecord, utcnow

DASHBOARD_WINDOW = timedelta(days=7)  # render times on the dashboard: encodes of the last 7 days


def cache_totals(session: Session) -> dict[str, Any]:
    """Renditions, bytes, hits, misses and the hit rate (None when nothing was looked up)."""
    rows = by_profile(session).values()
    totals = {key: sum(row[key] for row in rows) for key in ("renditions", "bytes", "hits", "misses")}
    done = totals["hits"] + totals["misses"]
    return {**totals, "hit_rate": totals["hits"] / done if done else None}


def by_profile(session: Session) -> dict[str, dict[str, int]]:
    """Per profile: renditions, bytes, hits and misses (the /metrics counters' labels)."""
    rows = session.execute(select(
        RenditionRecord.profile, func.count(), func.coalesce(func.sum(RenditionRecord.bytes), 0),
        func.coalesce(func.sum(RenditionRecord.cache_hits), 0), func.coalesce(func.sum(RenditionRecord.cache_misses), 0))
        .group_by(RenditionRecord.profile).order_by(RenditionRecord.profile))
    return {profile: {"renditions": int(n), "bytes": int(size), "hits": int(hits), "misses": int(misses)}
            for profile, n, size, hits, misses in rows}


def render_seconds(session: Session, since: datetime) -> dict[str, list[float]]:
    """Encode time (seconds) of every rendition encoded since `since`, per profile, sorted."""
    times: dict[str, list[float]] = defaultdict(list)
    for profile, seconds in session.execute(select(RenditionRecord.profile, RenditionRecord.encode_seconds).where(
            RenditionRecord.encoded_at >= since, RenditionRecord.encode_seconds.is_not(None))):
        times[profile].append(float(seconds))
    return {profile: sorted(values) for profile, values in sorted(times.items())}


def nearest_rank(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0 < q <= 1) by nearest rank: a value that was really measured."""
    if not sorted_values:
        raise ValueError("no values")
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def render_summary(session: Session, now: datetime | None = None,
                   window: timedelta = DASHBOARD_WINDOW) -> list[dict[str, Any]]:
    """Per profile, the encodes of the last `window`: count, median, p95 and max seconds."""
    since = (now or utcnow()) - window
    return [{"profile": profile, "count": len(values), "median": nearest_rank(values, 0.5),
             "p95": nearest_rank(values, 0.95), "max": values[-1]}
            for profile, values in render_seconds(session, since).items()]
