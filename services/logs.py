"""Structured logs: one JSON object per line, carrying the ids ops search by.

Every record gets the ids bound in the current context — `task_id` and `task` (set by
worker.py around each Celery task), `delivery_id`, `story_id`, `account_id` (bound by
services/dispatch.py once it has loaded the delivery) — next to `ts` (UTC, ISO 8601), `level`,
`logger` and `msg`; an exception adds `exc`. Context variables, not thread-locals: the publish
pool's threads and any asyncio code each see their own ids.

`FANOUT_LOG_FORMAT=json` (the default for workers and beat; `text` keeps the plain lines a
person reads in a terminal) picks the formatter in `configure`.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

IDS = ("task_id", "task", "delivery_id", "story_id", "account_id")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("fanout_log_ids", default={})


def bind(**ids: Any) -> contextvars.Token:
    """Add ids to this context's log records (None values are dropped); returns a reset token."""
    merged = {**_context.get(), **{k: v for k, v in ids.items() if v is not None}}
    return _context.set(merged)


def reset(token: contextvars.Token) -> None:
    _context.reset(token)


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    token = bind(**ids)
    try:
        yield
    finally:
        reset(token)


def scoped(func):  # noqa: ANN001, ANN201 - a decorator
    """Ids bound inside `func` are gone when it returns (the caller's stay as they were)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _context.set(dict(_context.get()))
        try:
            return func(*args, **kwargs)
        finally:
            _context.reset(token)

    return wrapper


def current() -> dict[str, Any]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_context.get())
        for key in IDS:  # ids passed per call: log.info(..., extra={"delivery_id": 7})
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    """Route the root logger through one stderr handler in `fmt` ("json" or "text")."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
