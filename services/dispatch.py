"""Deliveries: plan, claim, render, publish, reconcile, sweep — DESIGN.md's state machine.

    planned → rendering → ready → publishing → published
    (+ retry_wait, failed, unknown, retracted, held)

Rules this module keeps:
* Planning inserts one row per (story version × account) under a unique key with
  ON CONFLICT DO NOTHING, and enqueues only the rows it created, after the commit.
* Every transition is `UPDATE … WHERE id = :id AND state IN (:expected)`; a worker acts only
  when its UPDATE changed a row, so a task Celery delivers twice does nothing the second time.
* No transaction is held open across an encode or an HTTP call.
* A publish that may have reached the platform (timeout after sending, a crash mid-call)
  becomes `unknown` and is reconciled by asking the platform, never blindly re-sent.
* Errors before sending are retried with exponential backoff, jitter and Retry-After, at most
  `max_attempts` attempts (each publish claim and each failed render counts one); delays stay
  below Redis' visibility timeout (config.py).
* `sweep` (run by beat every minute) re-enqueues work whose message was lost and moves
  deliveries whose worker died: a stuck `rendering` back to `planned`, a stuck `publishing` to
  `unknown` → reconcile.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Protocol

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from channels import get_channel
from channels.base import AccountData, OutcomeUnknownError, PermanentChannelError, Post, Receipt, TransientChannelError
from media import MediaError
from services import audit, logs, outbox, ratelimit, rendering, review
from services.accounts import account_data
from services.config import Settings
from services.db import after_commit, session_scope
from services.errors import NotApproved, NotFound, ValidationError
from services.models import (
    FINAL_STATES,
    ChannelAccount,
    Delivery,
    DeliveryLog,
    DeliveryState as S,
    Story,
    StoryVersion,
    ReviewState,
    StoryStatus,
    User,
    utcnow,
)
from services.storage import Storage
from services.stories import get_story
from services.users import require_role

log = logging.getLogger("fanout.dispatch")


class TaskQueue(Protocol):
    """How the domain asks for work without importing Celery (worker.py implements it)."""

    def render(self, delivery_id: int, countdown: float | None = None) -> None: ...
    def deliver(self, delivery_id: int, countdown: float | None = None) -> None: ...
    def publish(self, delivery_id: int, countdown: float | None = None) -> None: ...
    def reconcile(self, delivery_id: int, countdown: float | None = None) -> None: ...
    def retract(self, delivery_id: int, countdown: float | None = None) -> None: ...
    def prepare_review(self, version_id: int) -> None: ...


@dataclass
class PlanResult:
    story_id: int
    version: int
    created: list[int]
    existing: list[int]


# --------------------------------------------------------------------------- transitions


def transition(session: Session, delivery_id: int, expected: Iterable[S | str], to: S | str, *,
               worker: str | None = None, message: str = "", extra_where: Any = None, **values: Any) -> bool:
    """Move a delivery from one of `expected` to `to`; True only if this call made the change."""
    expected_values = [e.value if isinstance(e, S) else e for e in expected]
    to_value = to.value if isinstance(to, S) else to
    where = [Delivery.id == delivery_id, Delivery.state.in_(expected_values)]
    if extra_where is not None:
        where.append(extra_where)
    # the log's from-state: known when only one state was expected (no extra round trip)
    current = expected_values[0] if len(expected_values) == 1 else session.scalar(
        select(Delivery.state).where(Delivery.id == delivery_id))
    result = session.execute(
        update(Delivery).where(*where).values(state=to_value, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    session.add(DeliveryLog(delivery_id=delivery_id, from_state=current or "?", to_state=to_value,
                            worker=worker, message=message[:2000]))
    return True


def _insert_ignore(session: Session):  # noqa: ANN202 - dialect-specific insert construct
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(Delivery)
    if dialect == "sqlite":
        return sqlite.insert(Delivery)
    raise RuntimeError(f"unsupported database dialect {dialect}")


# --------------------------------------------------------------------------- planning


def plan_publication(session: Session, queue: TaskQueue, story_id: int, *, actor: User | None = None,
                     account_ids: list[int] | None = None, release_at: datetime | None = None) -> PlanResult:
    """One delivery per enabled account for the story's current version; idempotent."""
    if actor is not None:
        require_role(actor, "editor", "ops")
    story = get_story(session, story_id)
    version = story.current
    if version.review_state != ReviewState.APPROVED.value:
        raise NotApproved(
            f"story {story_id} v{version.number} is not approved (review state: {version.review_state}); "
            "it needs 初审, 复审 and 终审 first",
            f"稿件 {story_id} 第 {version.number} 版尚未通过三审（当前：{review.STATE_ZH.get(version.review_state, version.review_state)}），不能发布")
    if story.status == StoryStatus.RETRACTED.value and session.scalar(
            select(Delivery.id).where(Delivery.story_version_id == version.id).limit(1)) is not None:
        raise ValidationError(
            f"story {story_id} v{version.number} was retracted; edit it and pass review again to publish a new version",
            f"稿件 {story_id} 第 {version.number} 版已撤稿；如需重发，请修改后重新送审")
    query = select(ChannelAccount).where(ChannelAccount.enabled.is_(True)).order_by(ChannelAccount.id)
    if account_ids:
        query = query.where(ChannelAccount.id.in_(account_ids))
    accounts = list(session.scalars(query))
    if not accounts:
        raise ValidationError("no enabled channel account to publish to; add one with `fanout account add`",
                              "没有可用的发布账号，请先添加渠道账号")
    now = utcnow()
    created: list[int] = []
    existing: list[int] = []
    story_view = None
    media_work: dict[str, bool] = {}  # channel -> would rendering encode something?
    light: list[int] = []  # created deliveries whose renditions are all cached
    for account in accounts:
        stmt = _insert_ignore(session).values(
            story_id=story.id, story_version_id=version.id, account_id=account.id, state=S.PLANNED.value,
            attempts=0, release_at=release_at or now, created_at=now, updated_at=now,
        ).on_conflict_do_nothing(index_elements=["story_version_id", "account_id"]).returning(Delivery.id)
        delivery_id = session.scalar(stmt)  # None when the row already existed
        inserted = delivery_id is not None
        if not inserted:
            delivery_id = session.scalar(select(Delivery.id).where(
                Delivery.story_version_id == version.id, Delivery.account_id == account.id))
        (created if inserted else existing).append(delivery_id)
        if inserted:
            session.add(DeliveryLog(delivery_id=delivery_id, from_state="-", to_state=S.PLANNED.value,
                                    message=f"planned for {account.channel}/{account.name}"))
            if account.channel not in media_work:
                if story_view is None:
                    story_view = rendering.story_data(session, version, release_at or now)
                media_work[account.channel] = rendering.needs_media_work(session, account.channel, story_view)
            if not media_work[account.channel]:
                light.append(delivery_id)
    audit.record(session, actor=actor, action="publish", object_type="story", object_id=story.id,
                 story_version=version.number,
                 summary=f"planned {len(created)} deliveries ({len(existing)} already planned)",
                 data={"created": created, "existing": existing})
    heavy = [i for i in created if i not in set(light)]
    # Encodes go to the media queue; a delivery with nothing to encode renders and publishes
    # in one task on the publish queue (a fan-out to dozens of accounts is one encode + N posts).
    after_commit(session, lambda: ([queue.render(i) for i in heavy], [queue.deliver(i) for i in light]))
    return PlanResult(story_id=story.id, version=version.number, created=created, existing=existing)


# --------------------------------------------------------------------------- render stage


def _retry_delay(settings: Settings, attempts: int, retry_after: float | None) -> float:
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(0, attempts - 1))
    delay *= 0.5 + random.random()  # full jitter around the exponential step
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, settings.retry_max_seconds)


def _fail_or_retry(session: Session, settings: Settings, queue: TaskQueue, delivery_id: int, from_state: S,
                   stage: str, error: str, code: str | None, retry_after: float | None, worker: str) -> str:
    attempts = session.scalar(select(Delivery.attempts).where(Delivery.id == delivery_id)) or 0
    if stage == "render":  # a publish claim counts its own attempt; a failed render counts here
        attempts += 1
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(attempts=attempts))
    if attempts >= settings.max_attempts:
        transition(session, delivery_id, [from_state], S.FAILED, worker=worker,
                   message=f"gave up after {attempts} attempts: {error}",
                   last_error=f"gave up after {attempts} attempts: {error}", last_error_code=code)
        return S.FAILED.value
    delay = _retry_delay(settings, attempts, retry_after)
    if transition(session, delivery_id, [from_state], S.RETRY_WAIT, worker=worker,
                  message=f"retry in {delay:.1f}s: {error}", retry_stage=stage,
                  next_attempt_at=utcnow() + timedelta(seconds=delay), last_error=error, last_error_code=code):
        send = queue.render if stage == "render" else queue.publish
        after_commit(session, lambda: send(delivery_id, countdown=delay))
    return S.RETRY_WAIT.value


def _due_retry(stage: str):  # noqa: ANN202 - SQL expression
    return and_(Delivery.state == S.RETRY_WAIT.value, Delivery.retry_stage == stage,
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= utcnow()))


@logs.scoped
def deliver(settings: Settings, storage: Storage, queue: TaskQueue, delivery_id: int, *,
            worker: str = "") -> str:
    """Render, then publish in the same task (the publish queue's path when nothing needs
    encoding). A worker lost in between leaves the delivery `ready`: the sweep re-sends it."""
    outcome = render_delivery(settings, storage, queue, delivery_id, worker=worker, then_publish=False)
    if outcome != S.READY.value:
        return outcome
    return publish_delivery(settings, storage, queue, delivery_id, worker=worker)


@logs.scoped
def render_delivery(settings: Settings, storage: Storage, queue: TaskQueue, delivery_id: int, *,
                    worker: str = "", then_publish: bool = True) -> str:
    """planned → rendering → ready: make the renditions, run the channel's pure render.

    `then_publish`: hand the publish to the publish queue (False: the caller publishes)."""
    with session_scope() as session:
        claimed = transition(session, delivery_id, [S.PLANNED, S.RETRY_WAIT], S.RENDERING, worker=worker,
                             extra_where=or_(Delivery.state == S.PLANNED.value, _due_retry("render")),
                             claimed_by=worker, message="render started")
        if not claimed:
            return "skipped"
        delivery = session.get(Delivery, delivery_id)
        logs.bind(delivery_id=delivery_id, story_id=delivery.story_id, account_id=delivery.account_id)
        story = rendering.story_data(session, delivery.version, delivery.release_at, public_url=settings.public_url)
        channel_name, account_id = delivery.account.channel, delivery.account_id
        version_id, version_created = delivery.story_version_id, delivery.version.created_at
        approved = review.approved_hash(session, version_id, account_id)
    try:
        renditions = rendering.renditions_for(settings, storage, channel_name, story)
        check = rendering.approval_post(channel_name, story, renditions, version_created).content_hash()
        post = rendering.render(channel_name, story, renditions)
    except (PermanentChannelError, MediaError) as exc:
        reason = exc.reason if isinstance(exc, MediaError) else str(exc)
        with session_scope() as session:
            transition(session, delivery_id, [S.RENDERING], S.FAILED, worker=worker, message=reason,
                       last_error=reason, last_error_code=getattr(exc, "code", None) or "render")
        log.warning("delivery %s render failed permanently: %s", delivery_id, reason)
        return S.FAILED.value
    except Exception as exc:  # unexpected: retry a bounded number of times
        log.exception("delivery %s render crashed", delivery_id)
        with session_scope() as session:
            return _fail_or_retry(session, settings, queue, delivery_id, S.RENDERING, "render",
                                  f"{exc.__class__.__name__}: {exc}", "render", None, worker)
    if check != approved:
        reason = (f"the {channel_name} rendering of this version differs from what was approved; "
                  "a 终审 reviewer must re-approve this channel" if approved else
                  f"no approved rendering for this account ({channel_name}); a 终审 reviewer must approve it")
        with session_scope() as session:
            transition(session, delivery_id, [S.RENDERING], S.HELD, worker=worker, message=reason,
                       post_json=post.to_json(), post_hash=post.content_hash(), last_error=reason,
                       last_error_code="needs_reapproval")
        log.warning("delivery %s held: %s", delivery_id, reason)
        return S.HELD.value
    with session_scope() as session:
        if transition(session, delivery_id, [S.RENDERING], S.READY, worker=worker, message="rendered",
                      post_json=post.to_json(), post_hash=post.content_hash(), last_error=None,
                      last_error_code=None, retry_stage=None, next_attempt_at=None):
            if then_publish:
                after_commit(session, lambda: queue.publish(delivery_id))
            return S.READY.value
    return "lost-claim"


# --------------------------------------------------------------------------- publish stage


def _post_with_paths(storage: Storage, post: Post) -> Post:
    return post.with_paths({f.key: str(storage.local_path(f.key)) for f in post.files})


def _record_published(session: Session, delivery_id: int, receipt: Receipt, worker: str, message: str) -> bool:
    ok = transition(session, delivery_id, [S.PUBLISHING], S.PUBLISHED, worker=worker, message=message,
                    remote_id=receipt.remote_id, remote_url=receipt.url, published_at=utcnow(),
                    last_error=None, last_error_code=None, retry_stage=None, next_attempt_at=None)
    if ok:
        story_id = session.scalar(select(Delivery.story_id).where(Delivery.id == delivery_id))
        version_id = session.scalar(select(Delivery.story_version_id).where(Delivery.id == delivery_id))
        session.execute(update(Story).where(Story.id == story_id, or_(
            Story.status == StoryStatus.DRAFT.value,
            # a corrected version of a retracted story, published again
            and_(Story.status == StoryStatus.RETRACTED.value,
                 select(func.max(StoryVersion.id)).where(StoryVersion.story_id == story_id).scalar_subquery()
                 == version_id)))
            .values(status=StoryStatus.PUBLISHED.value))
    return ok


@logs.scoped
def publish_delivery(settings: Settings, storage: Storage, queue: TaskQueue, delivery_id: int, *,
                     worker: str = "") -> str:
    """ready → publishing → published (or retry_wait / failed / unknown / outbox).

    Before claiming, the account's rate limit (services/ratelimit.py, shared by every worker
    process) is asked for a slot; without one the task comes back later and nothing changes.
    """
    wait = _throttle(settings, delivery_id)
    if wait:
        # wait in retry_wait (attempts unchanged) so the sweep sends it when due, not every minute;
        # the countdown stays below the broker's visibility timeout (retry_max_seconds)
        with session_scope() as session:
            if transition(session, delivery_id, [S.READY, S.RETRY_WAIT], S.RETRY_WAIT, worker=worker,
                          extra_where=or_(Delivery.state == S.READY.value, _due_retry("publish")),
                          message=f"account rate limit: next slot in {wait:.0f}s", retry_stage="publish",
                          next_attempt_at=utcnow() + timedelta(seconds=wait)):
                after_commit(session, lambda: queue.publish(delivery_id,
                                                            countdown=min(wait, settings.retry_max_seconds)))
        return "throttled"
    with session_scope() as session:
        claimed = transition(session, delivery_id, [S.READY, S.RETRY_WAIT], S.PUBLISHING, worker=worker,
                             extra_where=or_(Delivery.state == S.READY.value, _due_retry("publish")),
                             claimed_by=worker, attempts=Delivery.attempts + 1, message="publish started")
        if not claimed:
            return "skipped"
        delivery = session.get(Delivery, delivery_id)
        logs.bind(delivery_id=delivery_id, story_id=delivery.story_id, account_id=delivery.account_id)
        post = Post.from_json(delivery.post_json)
        account = account_data(settings, delivery.account)
    try:
        channel = get_channel(account.channel)
        post = _post_with_paths(storage, post)
        to_outbox = outbox.goes_to_outbox(channel, account)
        if to_outbox:
            where = outbox.write_package(settings, channel, post, account, delivery_id=delivery_id)
    except Exception as exc:  # nothing was sent yet: safe to retry
        with session_scope() as session:
            return _fail_or_retry(session, settings, queue, delivery_id, S.PUBLISHING, "publish",
                                  f"before sending: {exc.__class__.__name__}: {exc}", "prepare", None, worker)
    if to_outbox:
        with session_scope() as session:
            transition(session, delivery_id, [S.PUBLISHING], S.OUTBOX, worker=worker,
                       message=f"outbox package written: {where.name}; waiting for a person to post it",
                       last_error=None, last_error_code=None)
        return S.OUTBOX.value
    try:
        receipt = channel.publish(post, account)
    except TransientChannelError as exc:
        with session_scope() as session:
            return _fail_or_retry(session, settings, queue, delivery_id, S.PUBLISHING, "publish", str(exc),
                                  exc.code, exc.retry_after, worker)
    except PermanentChannelError as exc:
        with session_scope() as session:
            transition(session, delivery_id, [S.PUBLISHING], S.FAILED, worker=worker, message=str(exc),
                       last_error=str(exc), last_error_code=exc.code)
        return S.FAILED.value
    except Exception as exc:  # OutcomeUnknownError, or a crash mid-call: it may have been posted
        reason = f"{exc.__class__.__name__}: {exc}"
        if not isinstance(exc, OutcomeUnknownError):
            log.exception("delivery %s publish crashed", delivery_id)
        with session_scope() as session:
            if transition(session, delivery_id, [S.PUBLISHING], S.UNKNOWN, worker=worker,
                          message=f"outcome unknown: {reason}", last_error=reason,
                          last_error_code=getattr(exc, "code", None) or "unknown",
                          reconcile_hint=getattr(exc, "hint", None) or None):
                after_commit(session, lambda: queue.reconcile(delivery_id, countdown=2.0))
        return S.UNKNOWN.value
    with session_scope() as session:
        if _record_published(session, delivery_id, receipt, worker, f"published as {receipt.remote_id}"):
            log.info("delivery %s published on %s/%s as %s", delivery_id, account.channel, account.name,
                     receipt.remote_id)
            return S.PUBLISHED.value
    return "lost-claim"


def _throttle(settings: Settings, delivery_id: int) -> float:
    """0 when the delivery may be sent now (slot taken), else seconds to wait (with jitter)."""
    with session_scope() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.state not in (S.READY.value, S.RETRY_WAIT.value):
            return 0.0  # the claim decides what happens
        due_at = delivery.next_attempt_at
        if delivery.state == S.RETRY_WAIT.value and due_at is not None and (
                due_at if due_at.tzinfo else due_at.replace(tzinfo=timezone.utc)) > utcnow():
            return 0.0  # not due: the claim skips it
        channel = get_channel(delivery.account.channel)
        spacing = AccountData(id=delivery.account_id, channel=delivery.account.channel, name=delivery.account.name,
                              settings=dict(delivery.account.settings or {}))
        interval = ratelimit.account_interval(channel, spacing)
        if interval <= 0:
            return 0.0  # no limit: no credentials decrypted on this hot path
        account = account_data(settings, delivery.account)
    if outbox.goes_to_outbox(channel, account):
        return 0.0
    wait = ratelimit.limiter_for(settings).try_acquire(f"account:{account.id}", interval)
    return wait + random.uniform(0, min(5.0, wait * 0.1)) if wait > 0 else 0.0


@logs.scoped
def reconcile_delivery(settings: Settings, storage: Storage, queue: TaskQueue, delivery_id: int, *,
                       worker: str = "") -> str:
    """unknown → ask the platform → published, or ready (certainly not posted) → publish."""
    with session_scope() as session:
        if not transition(session, delivery_id, [S.UNKNOWN], S.PUBLISHING, worker=worker,
                          claimed_by=worker, message="reconciling"):
            return "skipped"
        delivery = session.get(Delivery, delivery_id)
        logs.bind(delivery_id=delivery_id, story_id=delivery.story_id, account_id=delivery.account_id)
        post = Post.from_json(delivery.post_json)
        account = account_data(settings, delivery.account)
        hint = dict(delivery.reconcile_hint or {})
    try:
        channel = get_channel(account.channel)
        extra = {"hint": hint} if hint else {}
        receipt = channel.reconcile(_post_with_paths(storage, post), account, **extra)
    except OutcomeUnknownError as exc:  # still undecided on the platform: ask again later
        with session_scope() as session:
            if transition(session, delivery_id, [S.PUBLISHING], S.UNKNOWN, worker=worker,
                          message=f"still unknown, will ask again: {exc}", last_error=f"reconcile: {exc}",
                          reconcile_hint={**hint, **exc.hint} or None):
                after_commit(session, lambda: queue.reconcile(delivery_id, countdown=settings.retry_base_seconds))
        return S.UNKNOWN.value
    except Exception as exc:
        with session_scope() as session:
            transition(session, delivery_id, [S.PUBLISHING], S.UNKNOWN, worker=worker,
                       message=f"reconcile failed, will ask again: {exc}", last_error=f"reconcile: {exc}")
        return S.UNKNOWN.value
    with session_scope() as session:
        if receipt is not None:
            _record_published(session, delivery_id, receipt, worker, f"reconciled: found {receipt.remote_id}")
            return S.PUBLISHED.value
        attempts = session.scalar(select(Delivery.attempts).where(Delivery.id == delivery_id)) or 0
        if attempts >= settings.max_attempts:  # the platform keeps not answering yet not listing it
            transition(session, delivery_id, [S.PUBLISHING], S.FAILED, worker=worker,
                       message=f"not found on the platform after {attempts} attempts: check by hand",
                       last_error=f"outcome unknown after {attempts} attempts and not found on the platform",
                       last_error_code="unreconciled")
            return S.FAILED.value
        if transition(session, delivery_id, [S.PUBLISHING], S.READY, worker=worker,
                      message="reconciled: not on the platform, publishing again"):
            after_commit(session, lambda: queue.publish(delivery_id))
    return S.READY.value


# --------------------------------------------------------------------------- sweep


def sweep(settings: Settings, queue: TaskQueue, *, now: datetime | None = None) -> dict[str, int]:
    """Recover lost messages and dead workers. Safe to run anywhere, any number of times."""
    now = now or utcnow()
    stale = now - timedelta(seconds=settings.stale_seconds)
    counts = {"render": 0, "publish": 0, "reconcile": 0, "revived": 0, "unknown": 0, "retract": 0}
    with session_scope() as session:
        rows = session.execute(select(Delivery.id, Delivery.state, Delivery.retry_stage).where(or_(
            and_(Delivery.state.in_([S.PLANNED.value, S.READY.value]), Delivery.updated_at < stale),
            and_(Delivery.state == S.RETRY_WAIT.value, Delivery.next_attempt_at <= now),
            and_(Delivery.state == S.UNKNOWN.value, Delivery.updated_at < now - timedelta(seconds=30)),
        ))).all()
        for delivery_id, state, stage in rows:
            if state == S.PLANNED.value or (state == S.RETRY_WAIT.value and stage == "render"):
                after_commit(session, lambda i=delivery_id: queue.render(i))
                counts["render"] += 1
            elif state == S.UNKNOWN.value:
                after_commit(session, lambda i=delivery_id: queue.reconcile(i))
                counts["reconcile"] += 1
            else:
                after_commit(session, lambda i=delivery_id: queue.publish(i))
                counts["publish"] += 1
        dead_render = now - timedelta(seconds=settings.render_time_limit + settings.lease_margin_seconds)
        for (delivery_id,) in session.execute(select(Delivery.id).where(
                Delivery.state == S.RENDERING.value, Delivery.updated_at < dead_render)).all():
            if transition(session, delivery_id, [S.RENDERING], S.PLANNED, message="render worker lost; re-planned"):
                after_commit(session, lambda i=delivery_id: queue.render(i))
                counts["revived"] += 1
        dead_publish = now - timedelta(seconds=settings.publish_time_limit + settings.lease_margin_seconds)
        for (delivery_id,) in session.execute(select(Delivery.id).where(
                Delivery.state == S.PUBLISHING.value, Delivery.updated_at < dead_publish)).all():
            if transition(session, delivery_id, [S.PUBLISHING], S.UNKNOWN,
                          message="publish worker lost mid-call; outcome unknown",
                          last_error="publish worker lost mid-call", last_error_code="worker-lost"):
                after_commit(session, lambda i=delivery_id: queue.reconcile(i))
                counts["unknown"] += 1
        # a retraction whose message was lost (deleting twice is harmless: the post is gone)
        for (delivery_id,) in session.execute(select(Delivery.id).where(
                Delivery.state == S.RETRACTING.value, Delivery.updated_at < dead_publish)).all():
            after_commit(session, lambda i=delivery_id: queue.retract(i))
            counts["retract"] += 1
    return counts


# --------------------------------------------------------------------------- queries


def deliveries_for(session: Session, *, story_id: int | None = None, limit: int = 500) -> list[Delivery]:
    query = select(Delivery).order_by(Delivery.id).limit(limit)
    if story_id is not None:
        query = query.where(Delivery.story_id == story_id)
    return list(session.scalars(query))


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id, "story_id": delivery.story_id, "version": delivery.version.number,
        "account_id": delivery.account_id, "channel": delivery.account.channel, "account": delivery.account.name,
        "state": delivery.state, "attempts": delivery.attempts, "remote_id": delivery.remote_id,
        "remote_url": delivery.remote_url, "last_error": delivery.last_error,
        "last_error_code": delivery.last_error_code, "post_hash": delivery.post_hash,
        "published_at": delivery.published_at.isoformat() if delivery.published_at else None,
        "updated_at": delivery.updated_at.isoformat(),
    }


def get_delivery(session: Session, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", "发布任务不存在")
    return delivery


def wait_until_final(story_ids: list[int], *, timeout: float, poll: float = 0.3,
                     sweeper: Any = None, sweep_every: float = 5.0) -> list[dict[str, Any]]:
    """Block until every delivery of the stories is final (published/failed/retracted)."""
    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic() + sweep_every
    while True:
        with session_scope() as session:
            views = [delivery_view(d) for sid in story_ids for d in deliveries_for(session, story_id=sid)]
        if views and all(v["state"] in FINAL_STATES or v["state"] in (S.HELD.value, S.OUTBOX.value) for v in views):
            return views  # held / outbox wait for a person (re-approval, freeze, hand posting): stop waiting
        if time.monotonic() > deadline:
            raise TimeoutError(f"deliveries not final after {timeout:.0f}s: "
                               + ", ".join(f"#{v['id']}={v['state']}" for v in views if v["state"] not in FINAL_STATES))
        if sweeper is not None and time.monotonic() >= next_sweep:
            sweeper()
            next_sweep = time.monotonic() + sweep_every
        time.sleep(poll)
