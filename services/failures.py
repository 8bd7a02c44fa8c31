"""What ops must look at: failed, unknown, held and stuck deliveries — and what ops may do.

`failures` lists them with the platform's reason and code, filterable by channel, account and
error code. "Stuck" means past what the state machine allows without a person: a rendering or
publishing claim older than its time limit plus the lease margin (a dead worker the sweep has
not taken over yet: beat may be down), a retry overdue by more than `OVERDUE_SECONDS`, a
planned/ready delivery untouched for `STALE_FACTOR` × the sweep's stale time.

Actions, each audited on the story with who and why:
* `retry` — failed → planned, attempts reset, render enqueued. Refused for a failure that may
  have been posted (`unreconciled`): retrying could post twice; reconcile or give up instead.
* `reconcile` — unknown: ask the platform again now.
* `give_up` — unknown, retry_wait, held, planned, ready → failed with the person's reason; for
  an unknown one the reason says it may be on the platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from services import audit
from services.config import Settings
from services.dispatch import TaskQueue, transition
from services.errors import NotFound, ValidationError
from services.models import ChannelAccount, Delivery, DeliveryState as S, User, utcnow
from services.users import require_role

OVERDUE_SECONDS = 300.0
STALE_FACTOR = 5
MAYBE_POSTED_CODES = frozenset({"unreconciled"})
GIVE_UP_FROM = (S.UNKNOWN, S.RETRY_WAIT, S.HELD, S.PLANNED, S.READY)


@dataclass(frozen=True)
class FailureRow:
    delivery: Delivery
    kind: str  # failed | unknown | held | stuck
    why: str  # the platform's reason, or what is stuck and since when
    code: str | None
    can_retry: bool
    can_reconcile: bool
    can_give_up: bool


def _stuck_clause(settings: Settings, now: datetime):  # noqa: ANN202 - SQL expression
    dead_render = now - timedelta(seconds=settings.render_time_limit + settings.lease_margin_seconds)
    dead_publish = now - timedelta(seconds=settings.publish_time_limit + settings.lease_margin_seconds)
    stale = now - timedelta(seconds=settings.stale_seconds * STALE_FACTOR)
    return or_(
        and_(Delivery.state == S.RENDERING.value, Delivery.updated_at < dead_render),
        and_(Delivery.state.in_([S.PUBLISHING.value, S.RETRACTING.value]), Delivery.updated_at < dead_publish),
        and_(Delivery.state == S.RETRY_WAIT.value, Delivery.next_attempt_at < now - timedelta(seconds=OVERDUE_SECONDS)),
        and_(Delivery.state.in_([S.PLANNED.value, S.READY.value]), Delivery.updated_at < stale),
    )


def failures(session: Session, settings: Settings, *, channel: str | None = None, account_id: int | None = None,
             code: str | None = None, now: datetime | None = None, limit: int = 500) -> list[FailureRow]:
    """Failed, unknown, held and stuck deliveries, newest change first."""
    now = now or utcnow()
    query = (select(Delivery).join(ChannelAccount, Delivery.account_id == ChannelAccount.id)
             .where(or_(Delivery.state.in_([S.FAILED.value, S.UNKNOWN.value, S.HELD.value]),
                        _stuck_clause(settings, now)))
             .order_by(Delivery.updated_at.desc(), Delivery.id.desc()).limit(limit))
    if channel:
        query = query.where(ChannelAccount.channel == channel)
    if account_id:
        query = query.where(Delivery.account_id == account_id)
    if code:
        query = query.where(Delivery.last_error_code == code)
    rows = []
    for delivery in session.scalars(query):
        state = delivery.state
        kind = state if state in (S.FAILED.value, S.UNKNOWN.value, S.HELD.value) else "stuck"
        why = delivery.last_error or ""
        if kind == "stuck":
            why = f"{state} since {delivery.updated_at:%Y-%m-%d %H:%M} UTC" + (f" ({why})" if why else "")
        rows.append(FailureRow(
            delivery=delivery, kind=kind, why=why, code=delivery.last_error_code,
            can_retry=state == S.FAILED.value and delivery.last_error_code not in MAYBE_POSTED_CODES,
            can_reconcile=state == S.UNKNOWN.value,
            can_give_up=state in {s.value for s in GIVE_UP_FROM},
        ))
    return rows


def counts(rows: list[FailureRow]) -> dict[str, int]:
    out = {"failed": 0, "unknown": 0, "held": 0, "stuck": 0}
    for row in rows:
        out[row.kind] += 1
    return out


def _delivery(session: Session, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", "发布任务不存在")
    return delivery


def _audit(session: Session, actor: User, delivery: Delivery, action: str, summary: str,
           data: dict[str, Any] | None = None) -> None:
    audit.record(session, actor=actor, action=action, object_type="story", object_id=delivery.story_id,
                 story_version=delivery.version.number if delivery.version else None,
                 summary=f"delivery {delivery.id} ({delivery.account.channel}/{delivery.account.name}): {summary}",
                 data={"delivery_id": delivery.id, **(data or {})})


def retry(session: Session, queue: TaskQueue, delivery_id: int, actor: User) -> Delivery:
    require_role(actor, "ops")
    delivery = _delivery(session, delivery_id)
    if delivery.last_error_code in MAYBE_POSTED_CODES:
        raise ValidationError(f"delivery {delivery_id} may be on the platform already; retrying could post twice",
                              "该任务可能已发出，重试可能重复发布；请先核实平台上是否已有，再放弃或人工登记")
    previous = delivery.last_error or ""
    if not transition(session, delivery_id, [S.FAILED], S.PLANNED, worker=f"user:{actor.username}",
                      message=f"retried by {actor.username}", attempts=0, retry_stage=None, next_attempt_at=None,
                      last_error=None, last_error_code=None, claimed_by=None):
        raise ValidationError(f"delivery {delivery_id} is {delivery.state}, not failed", "只有失败的任务可以重试")
    _audit(session, actor, delivery, "delivery.retry", f"retried (was: {previous[:200]})")
    from services.db import after_commit

    after_commit(session, lambda: queue.render(delivery_id))
    session.refresh(delivery)
    return delivery


def reconcile(session: Session, queue: TaskQueue, delivery_id: int, actor: User) -> Delivery:
    require_role(actor, "ops")
    delivery = _delivery(session, delivery_id)
    if delivery.state != S.UNKNOWN.value:
        raise ValidationError(f"delivery {delivery_id} is {delivery.state}, not unknown", "只有结果待核实的任务可以核实")
    _audit(session, actor, delivery, "delivery.reconcile", "asked the platform again")
    from services.db import after_commit

    after_commit(session, lambda: queue.reconcile(delivery_id))
    return delivery


def give_up(session: Session, delivery_id: int, actor: User, reason: str) -> Delivery:
    require_role(actor, "ops")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("giving up needs a reason", "放弃任务必须填写原因")
    delivery = _delivery(session, delivery_id)
    was = delivery.state
    note = " (it may be on the platform: check there)" if was == S.UNKNOWN.value else ""
    if not transition(session, delivery_id, list(GIVE_UP_FROM), S.FAILED, worker=f"user:{actor.username}",
                      message=f"given up by {actor.username}: {reason}{note}",
                      last_error=f"given up by {actor.username}: {reason}{note}", last_error_code="given_up"):
        raise ValidationError(f"delivery {delivery_id} is {was}; nothing to give up", "该任务当前状态不能放弃")
    _audit(session, actor, delivery, "delivery.give_up", f"given up from {was}: {reason}")
    session.refresh(delivery)
    return delivery
