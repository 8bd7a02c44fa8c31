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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Protocol

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from channels import get_channel
from channels.base import AccountData, OutcomeUnknownError, PermanentChannelError, Post, Receipt, TransientChannelError
from media import MediaError
from services import audit, logs, outbox, ratelimit, rendering, review
from services.accounts import account_data
from services.config import Settings, get_settings
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
PLAN_CHUNK = 500  # accounts per multi-row INSERT when planning (8 values each: far below SQLite's 32,766)


class TaskQueue(Protocol):
    """How the domain asks for work without importing Celery (worker.py implements it)."""

    def render(self, delivery_id: int, countdown: float | None = None) -> None: ...
    def deliver(self, delivery_ids: list[int], countdown: float | None = None) -> None: ...
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
                     account_ids: list[int] | None = None, release_at: datetime | None = None,
                     batch_size: int | None = None) -> PlanResult:
    """One delivery per enabled account for the story's current version; idempotent.

    `batch_size`: deliveries per `deliver` task (default: the setting publish_batch_size)."""
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
    light: dict[str, list[int]] = {}  # channel -> created deliveries whose renditions are all cached
    inserted: dict[int, int] = {}  # account id -> delivery id created by this call
    for n in range(0, len(accounts), PLAN_CHUNK):  # one multi-row INSERT per chunk
        stmt = _insert_ignore(session).values([{
            "story_id": story.id, "story_version_id": version.id, "account_id": account.id,
            "state": S.PLANNED.value, "attempts": 0, "release_at": release_at or now, "created_at": now,
            "updated_at": now,
        } for account in accounts[n:n + PLAN_CHUNK]]).on_conflict_do_nothing(
            index_elements=["story_version_id", "account_id"]).returning(Delivery.id, Delivery.account_id)
        inserted.update({account_id: delivery_id for delivery_id, account_id in session.execute(stmt)})
    earlier: dict[int, int] = {}
    if len(inserted) < len(accounts):
        earlier = {account_id: delivery_id for account_id, delivery_id in session.execute(
            select(Delivery.account_id, Delivery.id).where(
                Delivery.story_version_id == version.id,
                Delivery.account_id.in_([a.id for a in accounts if a.id not in inserted])))}
    for account in accounts:
        if account.id not in inserted:
            existing.append(earlier[account.id])
            continue
        delivery_id = inserted[account.id]
        created.append(delivery_id)
        if account.channel not in media_work:
            if story_view is None:
                story_view = rendering.story_data(session, version, release_at or now)
            media_work[account.channel] = rendering.needs_media_work(session, account.channel, story_view)
        if not media_work[account.channel]:
            light.setdefault(account.channel, []).append(delivery_id)
    names = {a.id: f"{a.channel}/{a.name}" for a in accounts}
    _log_many(session, [(delivery_id, "-", S.PLANNED.value, f"planned for {names[account_id]}")
                        for account_id, delivery_id in inserted.items()], None)
    audit.record(session, actor=actor, action="publish", object_type="story", object_id=story.id,
                 story_version=version.number,
                 summary=f"planned {len(created)} deliveries ({len(existing)} already planned)",
                 data={"created": created, "existing": existing})
    light_ids = {i for ids in light.values() for i in ids}
    heavy = [i for i in created if i not in light_ids]
    # Encodes go to the media queue; deliveries with nothing to encode render and publish on the
    # publish queue, a group per channel in one task (a fan-out to dozens of accounts is one
    # encode + a few tasks of N posts each).
    setting = max(1, batch_size or get_settings().publish_batch_size)
    batches = []
    for channel_name, ids in light.items():
        size = min(setting, get_channel(channel_name).max_parallel_posts or setting)
        batches += [ids[n:n + size] for n in range(0, len(ids), size)]
    after_commit(session, lambda: ([queue.render(i) for i in heavy], [queue.deliver(b) for b in batches]))
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
def deliver(settings: Settings, storage: Storage, queue: TaskQueue, delivery_ids: int | Iterable[int], *,
            worker: str = "") -> dict[int, str]:
    """Render and publish a group of deliveries that need no encoding (the publish queue's path).

    A fan-out of one story version to many accounts of a channel is one task: the channel's
    render runs once, the claims are one conditional UPDATE for the group, the outcomes are
    recorded in one transaction, and the posts go out concurrently (a thread each, all claimed
    together and sent at once, so each is sent within its own lease as on the single path).
    A delivery that must wait for its account's rate limit or goes to the outbox continues
    alone on the single path (`publish_delivery`). Every step is still a conditional
    transition: a task delivered twice finds nothing to claim; a worker lost midway leaves
    `rendering` (the sweep re-plans it) or `publishing` (→ unknown → reconcile), never a
    second send. Returns each delivery's outcome.
    """
    ids = sorted({int(delivery_ids)} if isinstance(delivery_ids, int) else {int(i) for i in delivery_ids})
    outcomes: dict[int, str] = {i: "skipped" for i in ids}
    with session_scope() as session:
        claimed = _claim_many(session, ids, S.PLANNED, S.RENDERING, worker, "render started", claimed_by=worker)
        # left `ready` by an earlier run of this task that died after rendering: publish alone
        unclaimed = set(ids) - set(claimed)
        for delivery_id in session.scalars(select(Delivery.id).where(
                Delivery.id.in_(unclaimed), Delivery.state == S.READY.value)) if unclaimed else ():
            after_commit(session, lambda i=delivery_id: queue.publish(i))
            outcomes[delivery_id] = "handed-on"
        groups: dict[tuple[int, Any, str], list[Delivery]] = {}
        for delivery in session.scalars(select(Delivery).where(Delivery.id.in_(claimed)).order_by(Delivery.id)):
            groups.setdefault((delivery.story_version_id, delivery.release_at, delivery.account.channel),
                              []).append(delivery)
        jobs = []
        for (version_id, release_at, channel_name), members in groups.items():
            version = members[0].version
            jobs.append(_GroupJob(
                channel=channel_name, version_id=version_id, version_created=version.created_at,
                story=rendering.story_data(session, version, release_at, public_url=settings.public_url),
                approved=review.approved_hashes(session, version_id, [d.account_id for d in members]),
                members=[(d.id, d.account_id, d.story_id) for d in members],
                accounts={d.account_id: account_data(settings, d.account) for d in members}))
    for job in jobs:
        outcomes.update(_deliver_group(settings, storage, queue, job, worker))
    return outcomes


@dataclass
class _GroupJob:
    """What one render of a (story version × release time × channel) group needs, read in one session."""

    channel: str
    version_id: int
    version_created: datetime
    story: Any  # channels.base.StoryData
    approved: dict[int, str | None]
    members: list[tuple[int, int, int]]  # (delivery id, account id, story id)
    accounts: dict[int, AccountData]


def _deliver_group(settings: Settings, storage: Storage, queue: TaskQueue, job: _GroupJob,
                   worker: str) -> dict[int, str]:
    ids = [delivery_id for delivery_id, _account, _story in job.members]
    try:
        renditions = rendering.renditions_for(settings, storage, job.channel, job.story)
        check = rendering.approval_post(job.channel, job.story, renditions, job.version_created).content_hash()
        post = rendering.render(job.channel, job.story, renditions)
    except (PermanentChannelError, MediaError) as exc:
        reason = exc.reason if isinstance(exc, MediaError) else str(exc)
        with session_scope() as session:
            for delivery_id in ids:
                transition(session, delivery_id, [S.RENDERING], S.FAILED, worker=worker, message=reason,
                           last_error=reason, last_error_code=getattr(exc, "code", None) or "render")
        log.warning("deliveries %s render failed permanently: %s", ids, reason)
        return {i: S.FAILED.value for i in ids}
    except Exception as exc:  # unexpected: each retries a bounded number of times
        log.exception("deliveries %s render crashed", ids)
        with session_scope() as session:
            return {i: _fail_or_retry(session, settings, queue, i, S.RENDERING, "render",
                                      f"{exc.__class__.__name__}: {exc}", "render", None, worker) for i in ids}
    channel = get_channel(job.channel)
    outcomes: dict[int, str] = {}
    post_json, post_hash = post.to_json(), post.content_hash()
    with session_scope() as session:
        fine: list[int] = []
        for delivery_id, account_id, story_id in job.members:
            approved = job.approved.get(account_id)
            if check == approved:
                fine.append(delivery_id)
                continue
            reason = _held_reason(job.channel, approved)
            transition(session, delivery_id, [S.RENDERING], S.HELD, worker=worker, message=reason,
                       post_json=post_json, post_hash=post_hash, last_error=reason, last_error_code="needs_reapproval")
            outcomes[delivery_id] = S.HELD.value
            with logs.bound(delivery_id=delivery_id, story_id=story_id, account_id=account_id):
                log.warning("delivery %s held: %s", delivery_id, reason)
        alone, now = [], []
        for delivery_id, account_id, _story in job.members:
            if delivery_id not in fine:
                continue
            account = job.accounts[account_id]
            if ratelimit.account_interval(channel, account.settings) > 0 or outbox.goes_to_outbox(channel, account):
                alone.append(delivery_id)  # the single path waits for the slot / writes the package
            else:
                now.append(delivery_id)
        rendered = {"post_json": post_json, "post_hash": post_hash, "last_error": None, "last_error_code": None,
                    "retry_stage": None, "next_attempt_at": None}
        for delivery_id in _claim_many(session, alone, S.RENDERING, S.READY, worker, "rendered", **rendered):
            after_commit(session, lambda i=delivery_id: queue.publish(i))
            outcomes[delivery_id] = "handed-on"
        # rendered and claimed for sending in one UPDATE; the trail still shows both steps
        sending = _claim_many(session, now, S.RENDERING, S.PUBLISHING, worker, "rendered", claimed_by=worker,
                              attempts=Delivery.attempts + 1, via=(S.READY, "publish started"), **rendered)
    if not sending:
        return outcomes
    try:
        post = _post_with_paths(storage, post)
    except Exception as exc:  # nothing was sent yet: safe to retry
        with session_scope() as session:
            for delivery_id in sending:
                outcomes[delivery_id] = _fail_or_retry(
                    session, settings, queue, delivery_id, S.PUBLISHING, "publish",
                    f"before sending: {exc.__class__.__name__}: {exc}", "prepare", None, worker)
        return outcomes
    account_of = {delivery_id: job.accounts[account_id] for delivery_id, account_id, _story in job.members}

    def send(delivery_id: int) -> Receipt | BaseException:
        try:
            return channel.publish(post, account_of[delivery_id])
        except Exception as exc:  # settled below, in the task's thread
            return exc

    if len(sending) == 1:
        results = [send(sending[0])]
    else:
        with ThreadPoolExecutor(max_workers=len(sending), thread_name_prefix="fanout-send") as pool:
            results = list(pool.map(send, sending))
    with session_scope() as session:
        receipts = {d: r for d, r in zip(sending, results) if isinstance(r, Receipt)}
        story_of = {d: story_id for d, _a, story_id in job.members}
        for delivery_id in _record_published_many(session, receipts, worker):
            outcomes[delivery_id] = S.PUBLISHED.value
            account = account_of[delivery_id]
            with logs.bound(delivery_id=delivery_id, story_id=story_of[delivery_id], account_id=account.id):
                log.info("delivery %s published on %s/%s as %s", delivery_id, account.channel, account.name,
                         receipts[delivery_id].remote_id)
        for delivery_id, result in zip(sending, results):
            if delivery_id not in receipts:
                account = account_of[delivery_id]
                with logs.bound(delivery_id=delivery_id, story_id=story_of[delivery_id], account_id=account.id):
                    outcomes[delivery_id] = _settle(session, settings, queue, delivery_id, account, result, worker)
            elif delivery_id not in outcomes:
                outcomes[delivery_id] = "lost-claim"
        for story_id in {s for d, _a, s in job.members if outcomes.get(d) == S.PUBLISHED.value}:
            _mark_story_published(session, story_id, job.version_id)
    return outcomes


def _record_published_many(session: Session, receipts: dict[int, Receipt], worker: str) -> list[int]:
    """publishing → published for a group in one executemany UPDATE (one round trip where the
    driver pipelines it); returns the ids this call moved (a claim the sweep took over stays)."""
    if not receipts:
        return []
    table, now = Delivery.__table__, utcnow()
    result = session.execute(
        update(table).where(table.c.id == bindparam("b_id"), table.c.state == S.PUBLISHING.value)
        .values(state=S.PUBLISHED.value, updated_at=now, published_at=now, remote_id=bindparam("b_remote_id"),
                remote_url=bindparam("b_remote_url"), last_error=None, last_error_code=None, retry_stage=None,
                next_attempt_at=None),
        [{"b_id": d, "b_remote_id": r.remote_id, "b_remote_url": r.url} for d, r in receipts.items()])
    if result.rowcount == len(receipts):
        moved = sorted(receipts)
    else:  # some claim was lost meanwhile: keep only the rows that now carry this call's receipt
        moved = sorted(d for d, state, remote_id in session.execute(
            select(Delivery.id, Delivery.state, Delivery.remote_id).where(Delivery.id.in_(list(receipts))))
            if state == S.PUBLISHED.value and remote_id == receipts[d].remote_id)
    _log_many(session, [(d, S.PUBLISHING.value, S.PUBLISHED.value, f"published as {receipts[d].remote_id}")
                        for d in moved], worker)
    return moved


def _log_many(session: Session, rows: list[tuple[int, str, str, str]], worker: str | None) -> None:
    """DeliveryLog rows (delivery id, from, to, message) in one multi-row INSERT."""
    if rows:
        now = utcnow()
        session.execute(insert(DeliveryLog.__table__), [
            {"delivery_id": d, "at": now, "from_state": a, "to_state": b, "worker": worker, "message": m[:2000]}
            for d, a, b, m in rows])


def _held_reason(channel_name: str, approved: str | None) -> str:
    """Why a rendering that is not the approved one waits for a 终审 reviewer."""
    if approved:
        return (f"the {channel_name} rendering of this version differs from what was approved; "
                "a 终审 reviewer must re-approve this channel")
    return f"no approved rendering for this account ({channel_name}); a 终审 reviewer must approve it"


def _claim_many(session: Session, ids: list[int], expected: S, to: S, worker: str, message: str, *,
                via: tuple[S, str] | None = None, **values: Any) -> list[int]:
    """`transition` for a group: one conditional UPDATE; returns the ids this call moved.

    `via` = (state, message): the move passes through that state (logged as two steps)."""
    if not ids:
        return []
    moved = sorted(session.scalars(
        update(Delivery).where(Delivery.id.in_(ids), Delivery.state == expected.value)
        .values(state=to.value, updated_at=utcnow(), **values).returning(Delivery.id)
        .execution_options(synchronize_session=False)).all())
    if via is None:
        _log_many(session, [(i, expected.value, to.value, message) for i in moved], worker)
    else:
        middle, second = via
        _log_many(session, [row for i in moved for row in (
            (i, expected.value, middle.value, message), (i, middle.value, to.value, second))], worker)
    return moved


@logs.scoped
def render_delivery(settings: Settings, storage: Storage, queue: TaskQueue, delivery_id: int, *,
                    worker: str = "") -> str:
    """planned → rendering → ready: make the renditions, run the channel's pure render, hand the
    publish to the publish queue."""
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
        reason = _held_reason(channel_name, approved)
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
        story_id, version_id = session.execute(select(Delivery.story_id, Delivery.story_version_id)
                                               .where(Delivery.id == delivery_id)).one()
        _mark_story_published(session, story_id, version_id)
    return ok


def _mark_story_published(session: Session, story_id: int, version_id: int) -> None:
    """A draft story (or a corrected version of a retracted one) is published once a delivery is."""
    session.execute(update(Story).where(Story.id == story_id, or_(
        Story.status == StoryStatus.DRAFT.value,
        and_(Story.status == StoryStatus.RETRACTED.value,
             select(func.max(StoryVersion.id)).where(StoryVersion.story_id == story_id).scalar_subquery()
             == version_id)))
        .values(status=StoryStatus.PUBLISHED.value))


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
        result: Receipt | BaseException = channel.publish(post, account)
    except Exception as exc:  # settled below: what it means depends on its kind
        result = exc
    with session_scope() as session:
        return _settle(session, settings, queue, delivery_id, account, result, worker)


def _settle(session: Session, settings: Settings, queue: TaskQueue, delivery_id: int, account: AccountData,
            result: Receipt | BaseException, worker: str) -> str:
    """Record what one send came to (the delivery is `publishing`, claimed by this worker):
    a receipt → published; transient → retry_wait (or failed once out of attempts); permanent →
    failed with the platform's reason; anything else — OutcomeUnknownError, or a crash mid-call —
    may have been posted → unknown, and reconcile asks the platform."""
    if isinstance(result, Receipt):
        if _record_published(session, delivery_id, result, worker, f"published as {result.remote_id}"):
            log.info("delivery %s published on %s/%s as %s", delivery_id, account.channel, account.name,
                     result.remote_id)
            return S.PUBLISHED.value
        return "lost-claim"
    if isinstance(result, TransientChannelError):
        return _fail_or_retry(session, settings, queue, delivery_id, S.PUBLISHING, "publish", str(result),
                              result.code, result.retry_after, worker)
    if isinstance(result, PermanentChannelError):
        transition(session, delivery_id, [S.PUBLISHING], S.FAILED, worker=worker, message=str(result),
                   last_error=str(result), last_error_code=result.code)
        return S.FAILED.value
    reason = f"{result.__class__.__name__}: {result}"
    if not isinstance(result, OutcomeUnknownError):
        log.error("delivery %s publish crashed", delivery_id, exc_info=result)
    if transition(session, delivery_id, [S.PUBLISHING], S.UNKNOWN, worker=worker,
                  message=f"outcome unknown: {reason}", last_error=reason,
                  last_error_code=getattr(result, "code", None) or "unknown",
                  reconcile_hint=getattr(result, "hint", None) or None):
        after_commit(session, lambda: queue.reconcile(delivery_id, countdown=2.0))
    return S.UNKNOWN.value


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
        interval = ratelimit.account_interval(channel, delivery.account.settings)
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
