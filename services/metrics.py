"""Prometheus metrics, read from the database and the broker at scrape time.

Workers are separate processes (several machines, with docker-compose), so counters kept in
one process's memory would show one worker's share. Every number here is read when Prometheus
scrapes `/metrics` instead, from what all processes share:

* `fanout_deliveries{state,channel}` — deliveries by state and channel (gauge);
* `fanout_publish_latency_seconds` — release → published of the deliveries published in the
  last `LATENCY_WINDOW` (histogram, buckets in `LATENCY_BUCKETS`: a daily series is fine at
  minutes, a breaking story wants seconds);
* `fanout_queue_depth{queue}` — messages waiting on the broker (Redis LLEN, or the files of
  the embedded filesystem broker);
* `fanout_workers{queue}` — workers with a live heartbeat per queue;
* `fanout_oldest_waiting_delivery_seconds` — age of the oldest planned/ready/retry_wait one;
* `fanout_outbox_waiting` — packages waiting for a person;
* `fanout_rendition_cache_hits_total{profile}` / `fanout_rendition_cache_misses_total{profile}`
  — renditions served from the cache / encoded, counted on the cache's rows
  (services/rendition_stats.py; a row removed from the index takes its counts with it);
* `fanout_rendition_cache_renditions` / `fanout_rendition_cache_bytes` — the cache's size;
* `fanout_render_seconds{profile}` — encode time of the renditions encoded in the last
  `RENDER_WINDOW` (histogram, `RENDER_BUCKETS`; a batch's time shared among what it made);
* `fanout_worker_tasks_active{worker}`, `fanout_worker_tasks_done_total{worker}`,
  `fanout_worker_rss_bytes{worker}`, `fanout_worker_load1{worker}` — from each live worker's
  last heartbeat (services/ops.py).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import rendition_stats
from services.config import Settings
from services.models import ChannelAccount, Delivery, DeliveryState as S, utcnow
from services.ops import live_workers

QUEUES = ("media", "publish")
LATENCY_WINDOW = timedelta(hours=24)
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
RENDER_WINDOW = timedelta(hours=24)
RENDER_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
WAITING = (S.PLANNED.value, S.READY.value, S.RETRY_WAIT.value)


def queue_depths(settings: Settings) -> dict[str, int]:
    """Messages waiting per queue on the broker; -1 when the broker cannot be asked."""
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")):
        import redis

        try:
            client = redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)
            return {q: int(client.llen(f"{settings.broker_prefix}{q}")) for q in QUEUES}
        except redis.RedisError:
            return {q: -1 for q in QUEUES}
    folder = settings.broker_dir / "queue"
    names = [p.name for p in folder.glob("*.msg")] if folder.is_dir() else []
    return {q: sum(1 for n in names if n.endswith(f".{q}.msg")) for q in QUEUES}


def snapshot(session: Session, settings: Settings) -> dict[str, Any]:
    """The numbers behind /metrics (and the ops dashboard), read now."""
    now = utcnow()
    by_state = Counter({(state, channel): n for state, channel, n in session.execute(
        select(Delivery.state, ChannelAccount.channel, func.count())
        .join(ChannelAccount, Delivery.account_id == ChannelAccount.id)
        .group_by(Delivery.state, ChannelAccount.channel))})
    latencies = []
    for published, released in session.execute(select(Delivery.published_at, Delivery.release_at).where(
            Delivery.state == S.PUBLISHED.value, Delivery.published_at >= now - LATENCY_WINDOW)):
        if published is not None and released is not None:
            latencies.append(max(0.0, (_aware(published) - _aware(released)).total_seconds()))
    oldest = session.scalar(select(func.min(Delivery.updated_at)).where(Delivery.state.in_(WAITING)))
    workers = Counter()
    alive = live_workers(session)
    for worker in alive:
        for queue in filter(None, worker.queues.split(",")):
            workers[queue] += 1
    return {
        "worker_load": [{"worker": w.hostname, "active": w.tasks_active, "done": w.tasks_done,
                         "rss_bytes": w.rss_bytes, "load1": w.load_1m} for w in alive],
        "cache": rendition_stats.cache_totals(session),
        "cache_by_profile": rendition_stats.by_profile(session),
        "render_seconds": rendition_stats.render_seconds(session, now - RENDER_WINDOW),
        "deliveries": by_state,
        "latencies": latencies,
        "queue_depth": queue_depths(settings),
        "workers": {q: workers.get(q, 0) for q in sorted(set(QUEUES) | set(workers))},
        "oldest_waiting": (now - _aware(oldest)).total_seconds() if oldest is not None else 0.0,
        "outbox_waiting": by_state_total(by_state, S.OUTBOX.value),
    }


def by_state_total(by_state: Counter, state: str) -> int:
    return sum(n for (s, _channel), n in by_state.items() if s == state)


def _aware(moment):  # noqa: ANN001, ANN202 - SQLite returns naive UTC datetimes
    from datetime import timezone

    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def exposition(session: Session, settings: Settings) -> tuple[bytes, str]:
    """The Prometheus text format of `snapshot`, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

    data = snapshot(session, settings)

    class Snapshot:
        def collect(self):  # noqa: ANN202 - prometheus_client's collector protocol
            deliveries = GaugeMetricFamily("fanout_deliveries", "Deliveries by state and channel",
                                           labels=["state", "channel"])
            for (state, channel), n in sorted(data["deliveries"].items()):
                deliveries.add_metric([state, channel], n)
            yield deliveries
            buckets, total = _histogram(data["latencies"], LATENCY_BUCKETS)
            yield HistogramMetricFamily("fanout_publish_latency_seconds",
                                        "Release to published, deliveries published in the last 24 hours",
                                        buckets=buckets, sum_value=total)
            depth = GaugeMetricFamily("fanout_queue_depth", "Messages waiting on the broker", labels=["queue"])
            for queue, n in data["queue_depth"].items():
                depth.add_metric([queue], n)
            yield depth
            workers = GaugeMetricFamily("fanout_workers", "Workers with a live heartbeat", labels=["queue"])
            for queue, n in data["workers"].items():
                workers.add_metric([queue], n)
            yield workers
            yield GaugeMetricFamily("fanout_oldest_waiting_delivery_seconds",
                                    "Age of the oldest planned/ready/retry_wait delivery", value=data["oldest_waiting"])
            yield GaugeMetricFamily("fanout_outbox_waiting", "Outbox packages waiting for a person",
                                    value=data["outbox_waiting"])
            yield from _cache_metrics(data)
            yield from _worker_metrics(data)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _histogram(values: list[float], bounds: tuple[float, ...]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative buckets (le=bound, then +Inf) and the sum of `values`."""
    buckets = [(repr(bound), float(sum(1 for v in values if v <= bound))) for bound in bounds]
    buckets.append(("+Inf", float(len(values))))
    return buckets, float(sum(values))


def _cache_metrics(data: dict[str, Any]):  # noqa: ANN202 - yields prometheus_client metric families
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    hits = CounterMetricFamily("fanout_rendition_cache_hits", "Renditions served from the cache, by profile",
                               labels=["profile"])
    misses = CounterMetricFamily("fanout_rendition_cache_misses", "Renditions encoded (cache misses), by profile",
                                 labels=["profile"])
    for profile, row in data["cache_by_profile"].items():
        hits.add_metric([profile], row["hits"])
        misses.add_metric([profile], row["misses"])
    yield hits
    yield misses
    yield GaugeMetricFamily("fanout_rendition_cache_renditions", "Renditions in the cache index",
                            value=data["cache"]["renditions"])
    yield GaugeMetricFamily("fanout_rendition_cache_bytes", "Bytes of the renditions in the cache index",
                            value=data["cache"]["bytes"])
    render = HistogramMetricFamily("fanout_render_seconds",
                                   "Encode time of the renditions encoded in the last 24 hours, by profile",
                                   labels=["profile"])
    for profile, values in data["render_seconds"].items():
        buckets, total = _histogram(values, RENDER_BUCKETS)
        render.add_metric([profile], buckets, total)
    yield render


def _worker_metrics(data: dict[str, Any]):  # noqa: ANN202 - yields prometheus_client metric families
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    active = GaugeMetricFamily("fanout_worker_tasks_active", "Tasks a worker is running (last heartbeat)",
                               labels=["worker"])
    done = CounterMetricFamily("fanout_worker_tasks_done", "Tasks a worker finished since it started",
                               labels=["worker"])
    rss = GaugeMetricFamily("fanout_worker_rss_bytes", "Resident memory of a worker and its pool processes",
                            labels=["worker"])
    load = GaugeMetricFamily("fanout_worker_load1", "1-minute load average of a worker's host", labels=["worker"])
    for row in data["worker_load"]:
        for family, key in ((active, "active"), (done, "done"), (rss, "rss_bytes"), (load, "load1")):
            if row[key] is not None:
                family.add_metric([row["worker"]], row[key])
    yield active
    yield done
    yield rss
    yield load
