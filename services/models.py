"""SQLAlchemy 2 models: stories and their versions, assets, accounts, deliveries, users, audit.

The delivery states are DESIGN.md's state machine. Uniqueness that the reliability story
depends on is declared here, not checked in code: one delivery per (story version × account),
one rendition per (asset × profile × profile version), one asset per sha256.

Timestamps are stored in UTC; `UTCDateTime` hands back timezone-aware datetimes on SQLite too.
Review (issue 3) and campaigns/schedules (issue 4) add their own tables; Story.status and
StoryVersion.label are the hooks they use.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# --------------------------------------------------------------------------- users


class Role(str, enum.Enum):
    EDITOR = "editor"
    REVIEWER = "reviewer"
    OPS = "ops"
    ADMIN = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    unit: Mapped[str] = mapped_column(String(128), default="")  # 责任单位
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    roles: Mapped[list["UserRole"]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                                   lazy="selectin")

    def has_role(self, role: Role | str) -> bool:
        value = role.value if isinstance(role, Role) else role
        return any(r.role == value for r in self.roles)

    @property
    def role_names(self) -> list[str]:
        return sorted({r.role for r in self.roles})


class UserRole(Base):
    """A role a user holds; reviewers hold one row per review level (1, 2, 3)."""

    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role", "level"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    level: Mapped[int | None] = mapped_column(Integer, nullable=True)

    user: Mapped[User] = relationship(back_populates="roles")


# --------------------------------------------------------------------------- stories


class Asset(Base):
    """A source media file, content addressed: the sha256 of its bytes is its identity."""

    __tablename__ = "assets"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # image | video
    mime: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    storage_key: Mapped[str] = mapped_column(String(255))
    original_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RenditionRecord(Base):
    """The cache index of derived media: one row per (asset, profile, profile version)."""

    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("asset_sha256", "profile", "profile_version", "params"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_sha256: Mapped[str] = mapped_column(ForeignKey("assets.sha256"))
    profile: Mapped[str] = mapped_column(String(64))
    profile_version: Mapped[int] = mapped_column(Integer)
    params: Mapped[str] = mapped_column(String(128), default="")  # e.g. in/out points (issue 5)
    storage_key: Mapped[str] = mapped_column(String(255))
    mime: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Cache bookkeeping (services/renditions.py; the ops dashboard and /metrics read it):
    # times this rendition was served without encoding, times it had to be encoded (a row
    # made before migration 0008 counts as the one encode that made it), and the last
    # encode's share of its batch's wall time in seconds, and when that encode ran.
    cache_hits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cache_misses: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    encode_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    encoded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StoryStatus(str, enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETRACTED = "retracted"


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=StoryStatus.DRAFT.value)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    versions: Mapped[list["StoryVersion"]] = relationship(
        back_populates="story", order_by="StoryVersion.number", cascade="all, delete-orphan")

    @property
    def current(self) -> "StoryVersion":
        return self.versions[-1]


class StoryVersion(Base):
    """An immutable snapshot of a story's content. Edits make a new version."""

    __tablename__ = "story_versions"
    __table_args__ = (UniqueConstraint("story_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    short_title: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    body_markdown: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    theme: Mapped[str] = mapped_column(String(64), default="")
    unit: Mapped[str] = mapped_column(String(128), default="")
    label: Mapped[str] = mapped_column(String(200), default="")
    project: Mapped[str] = mapped_column(String(128), default="", server_default="")  # 民生实事项目, a label variable
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), nullable=True, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # 三审三校 (services/review.py): draft → submitted → level1 → level2 → approved,
    # or rejected / superseded. `review_round` counts submissions; signatures bind to a round.
    review_state: Mapped[str] = mapped_column(String(16), default="draft")
    review_round: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    story: Mapped[Story] = relationship(back_populates="versions")
    media: Mapped[list["StoryMedia"]] = relationship(
        order_by="StoryMedia.position", cascade="all, delete-orphan", lazy="selectin")


class StoryMedia(Base):
    """A version's use of an asset: as cover, body image or video, with alt text."""

    __tablename__ = "story_media"
    __table_args__ = (UniqueConstraint("version_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("story_versions.id", ondelete="CASCADE"))
    asset_sha256: Mapped[str] = mapped_column(ForeignKey("assets.sha256"))
    role: Mapped[str] = mapped_column(String(16))  # cover | image | video
    position: Mapped[int] = mapped_column(Integer)
    alt: Mapped[str] = mapped_column(String(255), default="")
    caption: Mapped[str] = mapped_column(String(255), default="")
    in_point: Mapped[float | None] = mapped_column(Float, nullable=True)  # video: editor's in/out (seconds)
    out_point: Mapped[float | None] = mapped_column(Float, nullable=True)

    asset: Mapped[Asset] = relationship(lazy="joined")


# --------------------------------------------------------------------------- review


class ReviewState(str, enum.Enum):
    DRAFT = "draft"            # being written; the author may edit and submit
    SUBMITTED = "submitted"    # waiting for 初审 (level 1)
    LEVEL1 = "level1"          # 初审 signed, waiting for 复审 (level 2)
    LEVEL2 = "level2"          # 复审 signed, waiting for 终审 (level 3)
    APPROVED = "approved"      # 终审 signed: may be published
    REJECTED = "rejected"      # sent back to the author with an opinion
    SUPERSEDED = "superseded"  # a newer version replaced it


class Signature(Base):
    """One reviewer's decision on one level of one version, bound to what each channel gets."""

    __tablename__ = "signatures"
    __table_args__ = (UniqueConstraint("version_id", "review_round", "level"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("story_versions.id", ondelete="CASCADE"), index=True)
    review_round: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)  # 1 初审, 2 复审, 3 终审
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(16))  # approve | reject
    opinion: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    post_hashes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # account id -> Post hash
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    acknowledged: Mapped[list[str]] = mapped_column(JSON, default=list)  # warning keys acknowledged

    reviewer: Mapped[User] = relationship(lazy="joined")


class ChannelApproval(Base):
    """A 终审 reviewer's re-approval of one account's changed rendering of an approved version."""

    __tablename__ = "channel_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("story_versions.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    post_hash: Mapped[str] = mapped_column(String(64))
    approved_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewQuestion(Base):
    """拿不准的问题及时请示: a reviewer's question to the next level, and its answer."""

    __tablename__ = "review_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("story_versions.id", ondelete="CASCADE"), index=True)
    from_level: Mapped[int] = mapped_column(Integer)
    asked_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    question: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    asked_by: Mapped[User] = relationship(foreign_keys=[asked_by_id], lazy="joined")
    answered_by: Mapped[User | None] = relationship(foreign_keys=[answered_by_id], lazy="joined")


class ProofRun(Base):
    """The findings of one run of the automatic proof checks (校) on a version."""

    __tablename__ = "proof_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("story_versions.id", ondelete="CASCADE"), index=True)
    trigger: Mapped[str] = mapped_column(String(32))  # submit | sign:1 | sign:2 | sign:3 | view
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


# --------------------------------------------------------------------------- campaigns & schedules


class Campaign(Base):
    """A publicity campaign (e.g. 群众满意度提升行动): dates, label template, themes, phases."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    label_template: Mapped[str] = mapped_column(String(200), default="")  # e.g. "…之{project}民生实事"
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    phases: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{name, from, to}]
    focus_months: Mapped[list[int]] = mapped_column(JSON, default=list)  # 集中宣传月, e.g. [5, 11]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Series(Base):
    """A 栏目 that releases one issue per cadence day at a fixed time on fixed accounts."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # 图文 | 短视频 | 新闻发布会 | 访谈 | other
    cadence: Mapped[str] = mapped_column(String(16))  # daily | workdays | dates
    dates: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO dates for cadence "dates"
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    issue_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    release_time: Mapped[str] = mapped_column(String(5))  # HH:MM, Asia/Shanghai
    holidays: Mapped[str] = mapped_column(String(16), default="publish")  # publish | skip | workdays
    account_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship(lazy="joined")


class Slot(Base):
    """One issue of a series: a release day, its 第N期 number, and the story queued into it.

    A slot without a series is an explicit schedule: one story at a given time on the accounts
    in `account_ids` (issue_number 0). The tick, freeze and the late/missed rules treat both alike.
    """

    __tablename__ = "slots"
    __table_args__ = (UniqueConstraint("series_id", "day"), Index("ix_slots_state_release", "state", "release_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), nullable=True)
    day: Mapped[date] = mapped_column(Date)
    issue_number: Mapped[int] = mapped_column(Integer)
    release_at: Mapped[datetime] = mapped_column(UTCDateTime)
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | filled | released | missed
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    account_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)  # explicit schedules
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    series: Mapped[Series | None] = relationship(lazy="joined")

    @property
    def title_zh(self) -> str:
        """How calendars and logs name the slot: 栏目 第N期, or 定时发布 for an explicit one."""
        return f"{self.series.name} 第{self.issue_number}期" if self.series else "定时发布"


class ControlFlag(Base):
    """Service-wide switches such as the release freeze (a day of national mourning)."""

    __tablename__ = "control_flags"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --------------------------------------------------------------------------- accounts


class AccountMode(str, enum.Enum):
    LIVE = "live"
    OUTBOX = "outbox"


class ChannelAccount(Base):
    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("channel", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    mode: Mapped[str] = mapped_column(String(16), default=AccountMode.LIVE.value)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    api_base: Mapped[str | None] = mapped_column(String(255), nullable=True)
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the hourly upkeep (channel maintain()) last said — [] when all was well — and when;
    # the last quota a platform reported for the account (services/accounts.record_quota).
    upkeep_warnings: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    upkeep_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    quota: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    quota_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# --------------------------------------------------------------------------- deliveries


class DeliveryState(str, enum.Enum):
    PLANNED = "planned"
    RENDERING = "rendering"
    READY = "ready"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    RETRY_WAIT = "retry_wait"
    FAILED = "failed"
    UNKNOWN = "unknown"
    RETRACTED = "retracted"
    HELD = "held"
    RETRACTING = "retracting"  # a retraction asked the platform to delete it (services/retraction.py)
    OUTBOX = "outbox"  # package written (services/outbox.py), waiting for a person to post it


FINAL_STATES = frozenset({DeliveryState.PUBLISHED.value, DeliveryState.FAILED.value,
                          DeliveryState.RETRACTED.value})


class Delivery(Base):
    """One story version going to one channel account. Every state change is conditional."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("story_version_id", "account_id"),
        Index("ix_deliveries_state_updated", "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    story_version_id: Mapped[int] = mapped_column(ForeignKey("story_versions.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PLANNED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)  # render | publish
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    release_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    post_json: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    post_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    remote_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # what the platform said about a post whose outcome is unknown (e.g. 公众号's publish_id),
    # handed back to the channel's reconcile by whichever worker runs it
    reconcile_hint: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    account: Mapped[ChannelAccount] = relationship(lazy="joined")
    version: Mapped[StoryVersion] = relationship()


class DeliveryLog(Base):
    """Every transition of a delivery, for the story page and the ops failure list."""

    __tablename__ = "delivery_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")


# --------------------------------------------------------------------------- audit & ops


class AuditEvent(Base):
    """Append-only: the ORM refuses updates and deletes, and so do database triggers."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(64), default="system")
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    story_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WorkerHeartbeat(Base):
    """Written by each worker every few seconds; `fanout publish --wait` and ops read it."""

    __tablename__ = "worker_heartbeats"

    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    queues: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer)
    pool: Mapped[str] = mapped_column(String(32), default="")
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Load, as of the last heartbeat (services/ops.py): the host's load averages and CPUs,
    # resident memory of the worker and its pool's processes, tasks running and finished.
    load_1m: Mapped[float | None] = mapped_column(Float, nullable=True)
    load_5m: Mapped[float | None] = mapped_column(Float, nullable=True)
    load_15m: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rss_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tasks_active: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tasks_done: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


@event.listens_for(AuditEvent, "before_update")
def _audit_is_append_only_update(_mapper, _conn, _target):  # noqa: ANN001
    raise PermissionError("audit events are append-only")


@event.listens_for(AuditEvent, "before_delete")
def _audit_is_append_only_delete(_mapper, _conn, _target):  # noqa: ANN001
    raise PermissionError("audit events are append-only")


class Alert(Base):
    """One firing alert condition (services/alerts.py): sent once when it opens, once when it resolves."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_key_resolved", "key", "resolved_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128))  # e.g. "failed:42", "no_worker:publish"
    rule: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    notified: Mapped[bool] = mapped_column(Boolean, default=False)

