"""What ops needs to know about the running system: which workers are alive, on which queues.

Workers write a heartbeat row every few seconds (worker.py); a row older than `max_age` means
the worker is gone. `fanout publish --wait` uses this to decide whether to start embedded
workers; the ops dashboard (a later issue) reads it too.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.db import session_scope
from services.models import WorkerHeartbeat, utcnow


def beat_heartbeat(hostname: str, *, queues: str, pid: int, pool: str, concurrency: int) -> None:
    with session_scope() as session:
        row = session.get(WorkerHeartbeat, hostname)
        if row is None:
            session.add(WorkerHeartbeat(hostname=hostname, queues=queues, pid=pid, pool=pool,
                                        concurrency=concurrency, started_at=utcnow(), last_seen=utcnow()))
        else:
            row.queues, row.pid, row.pool, row.concurrency, row.last_seen = queues, pid, pool, concurrency, utcnow()


def forget_worker(hostname: str) -> None:
    with session_scope() as session:
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.hostname == hostname))


def live_workers(session: Session, *, max_age: float = 20.0) -> list[WorkerHeartbeat]:
    cutoff = utcnow() - timedelta(seconds=max_age)
    return list(session.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.last_seen >= cutoff)
                                .order_by(WorkerHeartbeat.hostname)))


def queues_served(session: Session, *, max_age: float = 20.0) -> set[str]:
    served: set[str] = set()
    for worker in live_workers(session, max_age=max_age):
        served.update(q for q in worker.queues.split(",") if q)
    return served
