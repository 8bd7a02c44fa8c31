"""The one Celery app: queues, routes, house Task defaults, beat schedule. Thin.

Tasks carry delivery ids, never objects, and call one service function each. House defaults
(DESIGN.md "Known pitfalls"): acks_late + task_reject_on_worker_lost (a SIGKILLed child's
message comes back; the conditional claim in services/dispatch.py makes the redelivery a
no-op), JSON only, prefetch 1, soft/hard time limits, bounded retries owned by the DB state
machine (never ETA tasks for future posts), Redis visibility_timeout above every countdown.

Broker: FANOUT_BROKER_URL (Redis) when set, else kombu's filesystem transport under
FANOUT_HOME/broker — durable across restarts and shared by every local worker process.
Queues: `media` (prefork; ffmpeg is multi-threaded) and `publish` (threads; HTTP-bound).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from typing import Any

from celery import Celery, Task, signals

from services.config import Settings, get_settings

log = logging.getLogger("fanout.worker")

MEDIA_QUEUE = "media"
ACCOUNT_UPKEEP_SECONDS = 3600  # token upkeep: Douyin access tokens live 15 days, refresh tokens 30
PUBLISH_QUEUE = "publish"
HEARTBEAT_SECONDS = 5.0


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": PUBLISH_QUEUE,
        "task_routes": {
            "fanout.render_delivery": {"queue": MEDIA_QUEUE},
            "fanout.publish_delivery": {"queue": PUBLISH_QUEUE},
            "fanout.deliver": {"queue": PUBLISH_QUEUE},
            "fanout.reconcile_delivery": {"queue": PUBLISH_QUEUE},
            "fanout.retract_delivery": {"queue": PUBLISH_QUEUE},
            "fanout.prepare_review": {"queue": MEDIA_QUEUE},
            "fanout.tick": {"queue": PUBLISH_QUEUE},
            "fanout.maintain_accounts": {"queue": PUBLISH_QUEUE},
            "fanout.noop": {"queue": PUBLISH_QUEUE},
            "fanout.check_alerts": {"queue": PUBLISH_QUEUE},
        },
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "timezone": settings.timezone,
        "enable_utc": True,
        "beat_schedule": {
            "tick": {"task": "fanout.tick", "schedule": settings.tick_seconds},
            "maintain-accounts": {"task": "fanout.maintain_accounts", "schedule": ACCOUNT_UPKEEP_SECONDS},
            "check-alerts": {"task": "fanout.check_alerts", "schedule": settings.tick_seconds},
        },
        "beat_schedule_filename": str(settings.run_dir / "celerybeat-schedule"),
    }
    if settings.broker_url:
        config["broker_url"] = settings.broker_url
        # Unacked messages return after this; every countdown stays far below it.
        config["broker_transport_options"] = {"visibility_timeout": 3600}
        if settings.broker_prefix:
            config["broker_transport_options"]["global_keyprefix"] = settings.broker_prefix
    else:
        queue_dir = settings.broker_dir / "queue"
        config["broker_url"] = "filesystem://"
        config["broker_transport_options"] = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "control_folder": str(settings.broker_dir / "control"),
            "store_processed": False,
            "polling_interval": 0.2,
        }
    return config


class FanoutTask(Task):
    """House defaults for every task; retries are the state machine's, not Celery's."""

    acks_late = True
    reject_on_worker_lost = True
    max_retries = 0
    ignore_result = True


app = Celery("fanout", task_cls=FanoutTask, set_as_current=False)


def _lazy_config() -> dict[str, Any]:
    """The app's configuration, read from the settings when Celery first needs it.

    Registered with `add_defaults` rather than written into `conf` from an `on_configure`
    handler: that handler runs while the configuration is still pending, and an update there
    can re-enter the pending configuration (RecursionError) when `app.amqp` already exists —
    Celery then carries on with its defaults, i.e. an AMQP broker on localhost.
    """
    settings = get_settings()
    settings.ensure_dirs()
    for sub in ("queue", "control"):
        (settings.broker_dir / sub).mkdir(parents=True, exist_ok=True)
    return celery_config(settings)


app.add_defaults(_lazy_config)


_connections = threading.local()  # per thread: {(broker url, options): kombu Connection}


def _broker_connection(config: dict[str, Any]):  # noqa: ANN202 - a kombu Connection
    """This thread's open connection to the broker `config` names (kombu connections are not
    thread-safe; one per thread, reused across sends: opening one costs more than a send)."""
    key = (config["broker_url"], repr(sorted(config["broker_transport_options"].items())))
    cache = getattr(_connections, "by_key", None)
    if cache is None:
        cache = _connections.by_key = {}
    connection = cache.get(key)
    if connection is None:
        connection = cache[key] = app.connection_for_write(
            config["broker_url"], transport_options=config["broker_transport_options"])
    return connection


def _drop_connection(config: dict[str, Any]) -> None:
    key = (config["broker_url"], repr(sorted(config["broker_transport_options"].items())))
    connection = getattr(_connections, "by_key", {}).pop(key, None)
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.release()


class CeleryTaskQueue:
    """services.dispatch.TaskQueue on top of this app: ids only, routed by task name.

    Sends go to the broker the settings in force when the queue was made name (not the app's
    process-wide pool: an entry point always talks to the broker its settings name), over a
    connection kept per thread and broker; a send that fails on a stale connection (the
    broker restarted) is retried once on a fresh one.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings or get_settings()

    def _send(self, task: Task, argument: int | list[int], countdown: float | None) -> None:
        config = celery_config(self._settings)
        try:
            task.apply_async((argument,), countdown=countdown, connection=_broker_connection(config))
        except Exception:  # noqa: BLE001 - a dead connection: once more on a new one
            _drop_connection(config)
            task.apply_async((argument,), countdown=countdown, connection=_broker_connection(config))

    def render(self, delivery_id: int, countdown: float | None = None) -> None:
        self._send(render_delivery, delivery_id, countdown)

    def deliver(self, delivery_ids: list[int], countdown: float | None = None) -> None:
        self._send(deliver_delivery, [int(i) for i in delivery_ids], countdown)

    def publish(self, delivery_id: int, countdown: float | None = None) -> None:
        self._send(publish_delivery, delivery_id, countdown)

    def reconcile(self, delivery_id: int, countdown: float | None = None) -> None:
        self._send(reconcile_delivery, delivery_id, countdown)

    def retract(self, delivery_id: int, countdown: float | None = None) -> None:
        self._send(retract_delivery, delivery_id, countdown)

    def prepare_review(self, version_id: int) -> None:
        self._send(prepare_review, version_id, None)


def task_queue() -> CeleryTaskQueue:
    return CeleryTaskQueue()


def _context() -> tuple[Settings, Any, CeleryTaskQueue]:
    from services.storage import open_storage

    settings = get_settings()
    return settings, open_storage(settings), CeleryTaskQueue()


def _worker_name(task: Task) -> str:
    return f"{task.request.hostname or socket.gethostname()}:{os.getpid()}"


@app.task(name="fanout.render_delivery", bind=True, soft_time_limit=540, time_limit=600)
def render_delivery(self: Task, delivery_id: int) -> str:
    from services import dispatch

    settings, storage, queue = _context()
    return dispatch.render_delivery(settings, storage, queue, int(delivery_id), worker=_worker_name(self))


@app.task(name="fanout.deliver", bind=True, soft_time_limit=100, time_limit=120)
def deliver_delivery(self: Task, delivery_ids: list[int] | int) -> dict[str, str]:
    """Render (nothing to encode: the renditions are cached) and publish a group of deliveries of
    one story version and channel, in one task (services/dispatch.py `deliver`)."""
    from services import dispatch

    settings, storage, queue = _context()
    outcomes = dispatch.deliver(settings, storage, queue, delivery_ids, worker=_worker_name(self))
    return {str(k): v for k, v in outcomes.items()}


@app.task(name="fanout.publish_delivery", bind=True, soft_time_limit=100, time_limit=120)
def publish_delivery(self: Task, delivery_id: int) -> str:
    from services import dispatch

    settings, storage, queue = _context()
    return dispatch.publish_delivery(settings, storage, queue, int(delivery_id), worker=_worker_name(self))


@app.task(name="fanout.reconcile_delivery", bind=True, soft_time_limit=100, time_limit=120)
def reconcile_delivery(self: Task, delivery_id: int) -> str:
    from services import dispatch

    settings, storage, queue = _context()
    return dispatch.reconcile_delivery(settings, storage, queue, int(delivery_id), worker=_worker_name(self))


@app.task(name="fanout.retract_delivery", bind=True, soft_time_limit=100, time_limit=120)
def retract_delivery(self: Task, delivery_id: int) -> str:
    from services import retraction

    settings, _storage, queue = _context()
    return retraction.retract_delivery(settings, queue, int(delivery_id), worker=_worker_name(self))


@app.task(name="fanout.prepare_review", soft_time_limit=540, time_limit=600)
def prepare_review(version_id: int) -> int:
    """After a submission: make the renditions reviewers' previews need, before they sign."""
    from services import review

    settings, storage, _queue = _context()
    return review.warm_previews(settings, storage, int(version_id))


@app.task(name="fanout.tick", soft_time_limit=50, time_limit=60)
def tick() -> dict[str, Any]:
    """Every minute from beat: release due slots (exactly once), then recover lost work."""
    from services import dispatch, schedule
    from services.db import session_scope

    from services.dashboard import record_tick

    settings, _storage, queue = _context()
    with session_scope() as session:
        released = schedule.tick(session, settings, queue)
    result = {"released": released.released, "late": released.late, "missed": released.missed,
              "frozen": released.frozen, **dispatch.sweep(settings, queue)}
    with session_scope() as session:
        record_tick(session, " ".join(f"{k}={v if isinstance(v, (int, bool)) else len(v)}" for k, v in result.items()))
    return result


@app.task(name="fanout.check_alerts", soft_time_limit=50, time_limit=60)
def check_alerts() -> dict[str, Any]:
    """Every minute from beat: open, keep or resolve alerts and send them (services/alerts.py)."""
    from services import alerts
    from services.db import session_scope

    with session_scope() as session:
        return alerts.check(session, get_settings())


@app.task(name="fanout.noop", ignore_result=True)
def noop(counter_key: str | None = None) -> None:
    """Does nothing (but count itself in Redis when asked): bench/bench_fanout.py's baseline."""
    if counter_key:
        import redis

        client = getattr(noop, "_client", None)
        if client is None:
            client = noop._client = redis.Redis.from_url(get_settings().broker_url or "redis://127.0.0.1:6379/0")
        client.incr(counter_key)


@app.task(name="fanout.maintain_accounts", soft_time_limit=240, time_limit=300)
def maintain_accounts() -> dict[str, list[str]]:
    """Hourly from beat: refresh tokens before they expire (Douyin, 公众号); warnings are logged."""
    from services.accounts import maintain_accounts as run

    return run(get_settings())


# --------------------------------------------------------------------------- worker lifecycle


@signals.worker_init.connect
def _import_task_code(**_kwargs: Any) -> None:
    """Import what the tasks run before the first one arrives (a release right after a restart
    should not wait for imports; forked pool children inherit them)."""
    import channels
    from services import dispatch, retraction  # noqa: F401 - imported for their side effect: loaded

    channels.registry()  # imports every channel module

DELIVERY_TASKS = frozenset({"fanout.render_delivery", "fanout.publish_delivery", "fanout.reconcile_delivery",
                            "fanout.retract_delivery", "fanout.deliver"})
_log_tokens: dict[str, Any] = {}


@signals.setup_logging.connect
def _setup_logging(loglevel: Any = None, **_kwargs: Any) -> None:
    """Workers and beat log JSON lines with ids (services/logs.py); FANOUT_LOG_FORMAT=text for plain."""
    from services import logs

    level = loglevel if isinstance(loglevel, int) else logging.getLevelName(str(loglevel or "INFO").upper())
    logs.configure(get_settings().log_format, level=level if isinstance(level, int) else logging.INFO)


@signals.task_prerun.connect
def _bind_task_ids(task_id: str | None = None, task: Any = None, args: Any = None, **_kwargs: Any) -> None:
    from services import logs

    name = getattr(task, "name", None)
    delivery_id = args[0] if name in DELIVERY_TASKS and args else None
    if isinstance(delivery_id, list):  # fanout.deliver: a group; one id is still one delivery
        delivery_id = delivery_id[0] if len(delivery_id) == 1 else None
    _log_tokens[task_id or ""] = logs.bind(task_id=task_id, task=name, delivery_id=delivery_id)


@signals.task_postrun.connect
def _unbind_task_ids(task_id: str | None = None, **_kwargs: Any) -> None:
    from services import logs

    token = _log_tokens.pop(task_id or "", None)
    if token is not None:
        try:
            logs.reset(token)
        except ValueError:  # bound in another context (should not happen): leave it
            pass


@signals.worker_process_init.connect
def _after_fork(**_kwargs: Any) -> None:
    from services.db import dispose_engines

    dispose_engines()  # never share a parent's pooled connections across fork


_heartbeat_stop = threading.Event()


def _task_counts() -> tuple[int, int]:
    """(running, finished) tasks of this worker, from Celery's own bookkeeping in the main
    process (celery.worker.state, what `celery inspect stats` reports). It sees every pool's
    tasks, where task_prerun/postrun signals would only fire here for the threads pool: the
    prefork pool runs them in its child processes."""
    from celery.worker import state

    active = len(state.active_requests)
    return active, max(0, state.all_total_count[0] - active)


@signals.worker_ready.connect
def _start_heartbeat(sender: Any = None, **_kwargs: Any) -> None:
    from services.ops import beat_heartbeat, sample_load

    consumer = sender
    hostname = consumer.hostname
    queues = ",".join(sorted(q.name for q in consumer.task_consumer.queues)) if consumer.task_consumer else ""
    pool = consumer.pool.__class__.__module__.rsplit(".", 1)[-1] if consumer.pool else ""
    concurrency = getattr(consumer.controller, "concurrency", 1) or 1

    def loop() -> None:
        while not _heartbeat_stop.is_set():
            try:
                active, done = _task_counts()
                load = sample_load(os.getpid(), tasks_active=active, tasks_done=done)
                beat_heartbeat(hostname, queues=queues, pid=os.getpid(), pool=pool, concurrency=concurrency,
                               load=load)
            except Exception:  # the DB may be briefly away; the next beat tries again
                log.warning("heartbeat failed", exc_info=True)
            _heartbeat_stop.wait(HEARTBEAT_SECONDS)

    threading.Thread(target=loop, name="fanout-heartbeat", daemon=True).start()
    log.info("worker %s ready on queues %s", hostname, queues)


@signals.worker_shutdown.connect
def _stop_heartbeat(sender: Any = None, **_kwargs: Any) -> None:
    from services.ops import forget_worker

    _heartbeat_stop.set()
    try:
        forget_worker(sender.hostname if sender is not None else "")
    except Exception:
        log.warning("could not remove heartbeat", exc_info=True)
