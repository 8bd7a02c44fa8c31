"""The ops dashboard's numbers (运维看板), read from the database and the broker.

`overview` gathers what an ops engineer checks at a glance: workers online (queues, pool,
concurrency, last heartbeat), queue depths, deliveries by state and channel, throughput and
failures per hour over the last 24 hours and per day over the last 30 days, the oldest waiting
delivery, beat's last tick, the next releases due and whether each has its story, outbox
packages waiting, the rendition cache's size and hit rate, and how long encodes took per
profile (services/rendition_stats.py). Everything is computed at request time from
what every process shares (the same source as /metrics): no process keeps state of its own.

Beat's last tick is the `beat_tick` control row the tick task touches (`record_tick`); a
silent beat shows as an old time there.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import rendition_stats
from services.config import Settings
from services.metrics import by_state_total, snapshot
from services.models import ControlFlag, Delivery, DeliveryState as S, Slot, utcnow
from services.ops import live_workers

BEAT_TICK = "beat_tick"
NEXT_RELEASES_HOURS = 48
BEAT_SILENT_AFTER = timedelta(minutes=3)


def record_tick(session: Session, summary: str) -> None:
    """Called by the tick task: when beat last ran, and what it did."""
    row = session.get(ControlFlag, BEAT_TICK) or ControlFlag(name=BEAT_TICK, active=False)
    row.reason, row.changed_at = summary[:500], utcnow()
    session.add(row)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _series(session: Session, column: Any, state: str, start: datetime, step: timedelta, count: int) -> list[int]:
    """Deliveries in `state` whose `column` falls in each of `count` buckets of `step` from `start`."""
    buckets = [0] * count
    for (moment,) in session.execute(select(column).where(Delivery.state == state, column >= start)):
        index = int((_aware(moment) - start) / step)
        if 0 <= index < count:
            buckets[index] += 1
    return buckets


def activity(session: Session, now: datetime) -> dict[str, Any]:
    """Published and failed per hour (24 h) and per day (30 days), and the failure rates."""
    hour_start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=29)
    hours = {"published": _series(session, Delivery.published_at, S.PUBLISHED.value, hour_start, timedelta(hours=1), 24),
             "failed": _series(session, Delivery.updated_at, S.FAILED.value, hour_start, timedelta(hours=1), 24)}
    days = {"published": _series(session, Delivery.published_at, S.PUBLISHED.value, day_start, timedelta(days=1), 30),
            "failed": _series(session, Delivery.updated_at, S.FAILED.value, day_start, timedelta(days=1), 30)}

    def rate(block: dict[str, list[int]]) -> float:
        done = sum(block["published"]) + sum(block["failed"])
        return sum(block["failed"]) / done if done else 0.0

    return {"hour_start": hour_start, "day_start": day_start, "hours": hours, "days": days,
            "failure_rate_24h": rate(hours), "failure_rate_30d": rate(days)}


def overview(session: Session, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    snap = snapshot(session, settings)
    channels = sorted({channel for (_state, channel) in snap["deliveries"]})
    states = [s.value for s in S]
    table = [{"channel": c, "counts": {s: snap["deliveries"].get((s, c), 0) for s in states}} for c in channels]
    oldest = session.execute(select(Delivery.id, Delivery.state, Delivery.updated_at)
                             .where(Delivery.state.in_([S.PLANNED.value, S.READY.value, S.RETRY_WAIT.value]))
                             .order_by(Delivery.updated_at, Delivery.id).limit(1)).first()
    tick = session.get(ControlFlag, BEAT_TICK)
    tick_at = _aware(tick.changed_at) if tick else None
    upcoming = list(session.scalars(select(Slot).where(
        Slot.release_at >= now, Slot.release_at <= now + timedelta(hours=NEXT_RELEASES_HOURS),
        Slot.state.in_(["open", "filled"])).order_by(Slot.release_at, Slot.id).limit(20)))
    return {
        "now": now,
        "workers": live_workers(session),
        "queue_depth": snap["queue_depth"],
        "states": states,
        "by_channel": table,
        "totals": {s: by_state_total(snap["deliveries"], s) for s in states},
        "oldest_waiting": ({"id": oldest.id, "state": oldest.state,
                            "seconds": (now - _aware(oldest.updated_at)).total_seconds()} if oldest else None),
        "beat": {"at": tick_at, "summary": tick.reason if tick else "",
                 "silent": tick_at is None or now - tick_at > BEAT_SILENT_AFTER},
        "next_releases": [{"slot": slot, "has_story": slot.story_id is not None} for slot in upcoming],
        "outbox_waiting": snap["outbox_waiting"],
        "cache": snap["cache"],
        "render": rendition_stats.render_summary(session, now),
        "activity": activity(session, now),
    }
