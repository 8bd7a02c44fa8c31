"""What ops needs to know about the running system: which workers are alive, on which queues,
and how loaded they are.

Workers write a heartbeat row every few seconds (worker.py); a row older than `max_age` means
the worker is gone. `fanout publish --wait` uses this to decide whether to start embedded
workers; the ops dashboard and /metrics read it too.

Each heartbeat carries a `WorkerLoad` sampled in the worker's main process (`sample_load`):

* `load_1m/5m/15m` — the host's load averages (`os.getloadavg`) and `cpu_count` (os.cpu_count)
  to read them against;
* `rss_bytes` — resident memory of the worker's main process plus every process below it (the
  prefork pool's children and the ffmpeg they run), from /proc (Linux); None elsewhere;
* `tasks_active` / `tasks_done` — tasks running now and finished since the worker started, as
  the worker's main process counts them for every pool (what `celery inspect stats` reports);
  worker.py hands them in.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.db import session_scope
from services.models import WorkerHeartbeat, utcnow


@dataclass(frozen=True)
class WorkerLoad:
    load_1m: float | None = None
    load_5m: float | None = None
    load_15m: float | None = None
    cpu_count: int | None = None
    rss_bytes: int | None = None
    tasks_active: int | None = None
    tasks_done: int | None = None


def tree_rss_bytes(pid: int, proc: Path = Path("/proc")) -> int | None:
    """Resident bytes of process `pid` and all its descendants (/proc/<pid>/statm), or None
    where there is no /proc. A process that exits while being read is skipped."""
    if not (proc / str(pid) / "statm").is_file():
        return None
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; split after the last ")"
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            total += int((proc / str(current) / "statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(children.get(current, ()))
    return total


def sample_load(pid: int, *, tasks_active: int | None = None, tasks_done: int | None = None) -> WorkerLoad:
    """The host's load and the memory of worker process `pid` (and its pool), now."""
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):
        one = five = fifteen = None
    return WorkerLoad(load_1m=one, load_5m=five, load_15m=fifteen, cpu_count=os.cpu_count(),
                      rss_bytes=tree_rss_bytes(pid), tasks_active=tasks_active, tasks_done=tasks_done)


def beat_heartbeat(hostname: str, *, queues: str, pid: int, pool: str, concurrency: int,
                   load: WorkerLoad | None = None) -> None:
    values = asdict(load) if load is not None else {}
    with session_scope() as session:
        row = session.get(WorkerHeartbeat, hostname)
        if row is None:
            session.add(WorkerHeartbeat(hostname=hostname, queues=queues, pid=pid, pool=pool,
                                        concurrency=concurrency, started_at=utcnow(), last_seen=utcnow(), **values))
        else:
            row.queues, row.pid, row.pool, row.concurrency, row.last_seen = queues, pid, pool, concurrency, utcnow()
            for key, value in values.items():
                setattr(row, key, value)


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
