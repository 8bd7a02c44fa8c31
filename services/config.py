"""One Settings object for the whole service, read from FANOUT_* environment variables.

Embedded defaults need no server: everything lives under FANOUT_HOME (default ./var) — a
SQLite database, the media store, the built site, the outbox and a durable filesystem broker
for real Celery worker processes. Setting FANOUT_DATABASE_URL (PostgreSQL), FANOUT_BROKER_URL
(Redis) and FANOUT_STORAGE_URL (s3://bucket?endpoint=http://minio:9000) switches to real
services, which is what docker-compose.yml does.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FANOUT_", extra="ignore")

    home: Path = Field(default=Path("var"), description="Root of all local state")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite under home")
    broker_url: str | None = Field(default=None, description="Celery broker; default filesystem under home")
    broker_prefix: str = Field(default="", description="Redis key prefix: several installs, one Redis")
    storage_url: str | None = Field(default=None, description="s3://bucket?endpoint=URL; default home/media")
    public_url: str = Field(default="http://127.0.0.1:8000/site/", description="Where readers see the site")
    secret_key: str | None = Field(default=None, description="Fernet key for credentials; default home/secret.key")
    timezone: str = "Asia/Shanghai"
    site_title: str = "群众满意度提升 · 融媒体中心"
    site_description: str = "县融媒体中心：群众满意度提升行动系列报道"
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    # Delivery reliability knobs (DESIGN.md "Delivery state machine").
    max_attempts: int = 5
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 900.0  # well below Redis' visibility_timeout (3600 s)
    stale_seconds: float = 120.0  # a planned/ready delivery with no worker progress is re-enqueued
    render_time_limit: float = 600.0
    publish_time_limit: float = 120.0
    # A rendering/publishing claim older than its time limit plus this margin belongs to a dead
    # worker (the task's own hard limit has passed): the sweep takes it over.
    lease_margin_seconds: float = 60.0
    # Deliveries of one story version on one channel that need no encoding go out together: one
    # task renders once, claims and records the group in one statement or transaction and sends
    # the posts concurrently (services/dispatch.py `deliver`). 1 = one task per delivery.
    publish_batch_size: int = Field(default=20, ge=1, le=50)
    log_format: str = "json"  # workers and beat: "json" (one object per line, with ids) or "text"
    metrics_token: str | None = None
    # Alerts (services/alerts.py): Apprise URLs, comma-separated; thresholds, 0 turns a rule off.
    alert_urls: str = ""
    alert_release_hours: float = 24.0
    alert_queue_minutes: float = 30.0
    alert_beat_minutes: float = 5.0
    alert_token_days: float = 7.0
    channels_login_days: float = 30.0  # 视频号: renew the staff member's QR-code login this often (unconfirmed)  # when set, /metrics wants `Authorization: Bearer <token>`
    max_lateness_minutes: float = 180.0  # a slot released later than this becomes "missed"
    gap_lead_workdays: int = 2  # open slots this many working days ahead are flagged (seeds: 提前两个工作日)
    tick_seconds: float = 60.0  # how often beat runs the release tick
    font_path: str | None = None  # CJK font for overlays and demo media
    demo_video_seconds: float = 6.0

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home / 'fanout.db'}"

    @property
    def is_embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def broker_dir(self) -> Path:
        return self.resolved_home / "broker"

    @property
    def site_dir(self) -> Path:
        return self.resolved_home / "site"

    @property
    def media_dir(self) -> Path:
        return self.resolved_home / "media"

    @property
    def cache_dir(self) -> Path:
        return self.resolved_home / "cache"

    @property
    def outbox_dir(self) -> Path:
        return self.resolved_home / "outbox"

    @property
    def run_dir(self) -> Path:
        return self.resolved_home / "run"

    def ensure_dirs(self) -> None:
        for path in (self.resolved_home, self.site_dir, self.media_dir, self.cache_dir,
                     self.outbox_dir, self.run_dir, self.broker_dir):
            path.mkdir(parents=True, exist_ok=True)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and `fanout` subcommands that change the env)."""
    get_settings.cache_clear()
