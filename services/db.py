"""Engine and sessions, plus "run this after the commit" for enqueueing tasks.

SQLite (the embedded default) is shared by the web process and several worker processes, so
it runs in WAL mode with a busy timeout; PostgreSQL needs nothing special. Work that must only
happen once the data is durable — sending a Celery task that names a row — is registered
with `after_commit(session, fn)` and runs only if the transaction commits (the warehouse
pattern: a task never races the row it refers to).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.config import get_settings

_AFTER_COMMIT = "fanout_after_commit"


_ENGINES: dict[str, Engine] = {}
_FACTORIES: dict[str, sessionmaker[Session]] = {}


def engine_for(url: str) -> Engine:
    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = _create_engine(url)
    return engine


POOL_SIZE = 12
POOL_OVERFLOW = 20


def _create_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        # Kept connections: a publish worker's 8 threads plus its heartbeat, with room; past
        # pool_size a connection is opened and closed per checkout (a PostgreSQL backend fork each).
        return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001 - DB-API objects
        # SQLAlchemy's recipe: let us emit BEGIN ourselves instead of pysqlite.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):  # noqa: ANN001
        # IMMEDIATE takes the write lock up front: two processes that read-then-update never
        # deadlock on a lock upgrade (SQLITE_BUSY_SNAPSHOT); they queue on busy_timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def get_engine() -> Engine:
    return engine_for(get_settings().db_url)


def dispose_engines() -> None:
    """Close pooled connections and forget engines (after fork, and between tests)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
    _FACTORIES.clear()


def _factory(url: str) -> sessionmaker[Session]:
    factory = _FACTORIES.get(url)
    if factory is None:
        factory = _FACTORIES[url] = sessionmaker(bind=engine_for(url), expire_on_commit=False)
    return factory


def new_session() -> Session:
    return _factory(get_settings().db_url)()


@contextlib.contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error, always close."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Run `fn` once the session's current transaction commits; drop it on rollback."""
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks = session.info.pop(_AFTER_COMMIT, [])
    for fn in callbacks:
        fn()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
