"""Per-account request spacing that holds across every worker process.

Celery's `rate_limit` is per worker and per task type (DESIGN.md pitfalls), so a Weibo account
allowed ~30 posts an hour would get 30 per worker. Here every publish asks `try_acquire(key,
interval)` first: it returns 0 and takes the slot when the account's last post was at least
`interval` seconds ago, otherwise the seconds still to wait (nothing is taken, so messages
that are re-enqueued or redelivered never pile up reservations). The caller sends the task
back with that countdown instead of holding a worker thread.

Two backends with one behaviour:
* `RedisLimiter` (when the broker is Redis): one Lua script, atomic on the server, using the
  server's clock so workers on machines with skewed clocks agree.
* `FileLimiter` (the embedded filesystem broker: one machine): an fcntl-locked JSON file in
  FANOUT_HOME/run.

`account_interval` says where the numbers come from: the larger of the channel's
`min_seconds_between_requests`, 3600 / the channel's `posts_per_hour` (Weibo: about 30 an hour,
../shared/channels.md), and the account's own `min_interval_seconds` / `posts_per_hour` settings.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Protocol

KEY_PREFIX = "fanout:rate:"

_LUA = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local interval = tonumber(ARGV[1])
if t - last >= interval then
  redis.call('SET', KEYS[1], tostring(t), 'EX', math.ceil(interval) + 60)
  return '0'
end
return tostring(interval - (t - last))
"""


class RateLimiter(Protocol):
    def try_acquire(self, key: str, interval: float) -> float: ...


class RedisLimiter:
    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._script = self._client.register_script(_LUA)

    def try_acquire(self, key: str, interval: float) -> float:
        if interval <= 0:
            return 0.0
        return float(self._script(keys=[KEY_PREFIX + key], args=[repr(float(interval))]))


class FileLimiter:
    def __init__(self, path: Path) -> None:
        self.path = path

    def try_acquire(self, key: str, interval: float) -> float:
        if interval <= 0:
            return 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            try:
                state: dict[str, float] = json.loads(fh.read() or "{}")
            except ValueError:
                state = {}
            now = time.time()
            last = float(state.get(key, 0.0))
            if now - last < interval:
                return interval - (now - last)
            state = {k: v for k, v in state.items() if now - v < 86_400}  # forget idle accounts
            state[key] = now
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(state))
            fh.flush()
            os.fsync(fh.fileno())
        return 0.0


def limiter_for(settings: Any) -> RateLimiter:
    url = settings.broker_url or ""
    if url.startswith(("redis://", "rediss://")):
        return RedisLimiter(url)
    return FileLimiter(settings.run_dir / "ratelimit.json")


def account_interval(channel: Any, account_settings: Mapping[str, Any] | None) -> float:
    """Seconds between two posts of one account, from the channel and the account's own settings
    (no credentials needed: see the module docstring)."""

    def setting(key: str) -> Any:
        value = (account_settings or {}).get(key)
        return None if value in (None, "") else value

    candidates = [float(getattr(channel, "min_seconds_between_requests", 0.0) or 0.0)]
    per_hour = getattr(channel, "posts_per_hour", None)
    if per_hour:
        candidates.append(3600.0 / float(per_hour))
    own = setting("posts_per_hour")
    if own:
        candidates.append(3600.0 / float(own))
    own_interval = setting("min_interval_seconds")
    if own_interval:
        candidates.append(float(own_interval))
    return max(candidates)
