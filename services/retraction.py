"""Retraction (撤稿): take a story down from every channel whose API allows it; list the rest.

`retract_story` is one decision, made under the story's row lock and audited with its reason:

* the story becomes `retracted`, so no tick, slot or button publishes it again;
* deliveries not yet sent (planned, rendering, ready, retry_wait, held) are cancelled →
  `retracted` (nothing reached a platform);
* published deliveries on channels with a delete API and a live account → `retracting`,
  and a `retract` task per delivery calls the channel's `retract` (Weibo destroy, Douyin
  delete, 公众号 freepublish/delete, WordPress trash, webhook "story.retracted", the site);
* published deliveries that a person posted (outbox) or whose channel cannot delete
  (视频号) are listed for **removal by hand**, and so are outbox packages still waiting
  (their package is withdrawn: the delivery is cancelled);
* deliveries in flight (`publishing`) or whose outcome is `unknown` are listed to **check by
  hand**: they may be on the platform; the sweep reconciles them and ops then retracts again.

`retract_delivery` (the task) is safe to run twice: a second run finds the delivery already
`retracted`. A transient platform error keeps it `retracting` and asks again with backoff
(bounded by `max_attempts`); a refusal puts it back to `published` with the reason and it
joins the by-hand list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels import get_channel
from channels.base import PermanentChannelError, Receipt, TransientChannelError
from services import audit
from services.accounts import account_data
from services.config import Settings
from services.db import after_commit, session_scope
from services.dispatch import TaskQueue, transition
from services.errors import ValidationError
from services.models import Delivery, DeliveryState as S, Story, StoryStatus, User
from services.stories import get_story
from services.users import require_role

log = logging.getLogger("fanout.retraction")

REASON_MAX = 500
NOT_SENT = (S.PLANNED, S.RENDERING, S.READY, S.RETRY_WAIT, S.HELD)
RETRACT_BACKOFF_SECONDS = 30.0


@dataclass
class RetractPlan:
    story_id: int
    reason: str
    by_api: list[int] = field(default_factory=list)  # retract tasks enqueued
    cancelled: list[int] = field(default_factory=list)  # never reached a platform
    by_hand: list[dict] = field(default_factory=list)  # a person must delete these
    to_check: list[dict] = field(default_factory=list)  # in flight / unknown: may be posted


def _row(delivery: Delivery, why: str) -> dict:
    return {"id": delivery.id, "channel": delivery.account.channel, "account": delivery.account.name,
            "state": delivery.state, "url": delivery.remote_url, "why": why}


def retract_story(session: Session, queue: TaskQueue, story_id: int, reason: str, actor: User) -> RetractPlan:
    """Decide, for every delivery of the story, how it comes down (see the module docstring)."""
    require_role(actor, "editor", "ops", "admin")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("a retraction needs a reason", "撤稿必须填写原因")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"reason over {REASON_MAX} characters", f"撤稿原因不能超过 {REASON_MAX} 字")
    story = get_story(session, story_id)
    session.execute(select(Story.id).where(Story.id == story_id).with_for_update())
    plan = RetractPlan(story_id=story_id, reason=reason)
    deliveries = list(session.scalars(select(Delivery).where(Delivery.story_id == story_id).order_by(Delivery.id)))
    worker = f"user:{actor.username}"
    for delivery in deliveries:
        channel = get_channel(delivery.account.channel)
        state = S(delivery.state)
        if state in NOT_SENT or state == S.OUTBOX:
            if transition(session, delivery.id, [state], S.RETRACTED, worker=worker,
                          message=f"cancelled by retraction before sending: {reason}"):
                plan.cancelled.append(delivery.id)
                if state == S.OUTBOX:
                    plan.by_hand.append(_row(delivery, "人工发布包已撤回，如已手动发出请删除"))
        elif state == S.PUBLISHED:
            by_hand = (delivery.account.mode == "outbox" or not channel.supports_retract
                       or not channel.supports_live or (delivery.remote_id or "").startswith(("http://", "https://")))
            if by_hand:
                plan.by_hand.append(_row(delivery, "该渠道不能通过接口删除，请人工删除"))
            elif transition(session, delivery.id, [S.PUBLISHED], S.RETRACTING, worker=worker,
                            message=f"retraction requested: {reason}", attempts=0):
                plan.by_api.append(delivery.id)
        elif state in (S.PUBLISHING, S.UNKNOWN, S.RETRACTING):
            if state != S.RETRACTING:
                plan.to_check.append(_row(delivery, "发布结果未确认，可能已发出，请核实后再撤稿"))
    session.execute(Story.__table__.update().where(Story.id == story_id)
                    .values(status=StoryStatus.RETRACTED.value))
    audit.record(session, actor=actor, action="retract", object_type="story", object_id=story_id,
                 story_version=story.current.number if story.current else None,
                 summary=f"retracted: {reason} (by API {len(plan.by_api)}, cancelled {len(plan.cancelled)}, "
                         f"by hand {len(plan.by_hand)}, to check {len(plan.to_check)})",
                 data={"reason": reason, "by_api": plan.by_api, "cancelled": plan.cancelled,
                       "by_hand": [r["id"] for r in plan.by_hand], "to_check": [r["id"] for r in plan.to_check]})
    ids = list(plan.by_api)
    after_commit(session, lambda: [queue.retract(i) for i in ids])
    return plan


def retract_delivery(settings: Settings, queue: TaskQueue, delivery_id: int, *, worker: str = "") -> str:
    """retracting → the channel's delete call → retracted (or back to published, refused)."""
    with session_scope() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.state != S.RETRACTING.value:
            return "skipped"
        receipt = Receipt(remote_id=delivery.remote_id or "", url=delivery.remote_url)
        account = account_data(settings, delivery.account)
        tries = delivery.attempts  # reset to 0 when the retraction was requested
    try:
        get_channel(account.channel).retract(receipt, account)
    except TransientChannelError as exc:
        with session_scope() as session:
            attempts = (tries or 0) + 1
            if attempts >= settings.max_attempts:
                transition(session, delivery_id, [S.RETRACTING], S.PUBLISHED, worker=worker,
                           message=f"retraction gave up after {attempts} tries: {exc}",
                           last_error=f"retraction failed: {exc}", last_error_code="retract_failed")
                return "gave-up"
            transition(session, delivery_id, [S.RETRACTING], S.RETRACTING, worker=worker,
                       message=f"retraction will retry: {exc}", attempts=attempts, last_error=str(exc))
            delay = exc.retry_after if exc.retry_after is not None else RETRACT_BACKOFF_SECONDS * attempts
            after_commit(session, lambda: queue.retract(delivery_id, countdown=delay))
        return "retry"
    except (PermanentChannelError, Exception) as exc:  # noqa: BLE001 - refused: a person takes over
        if not isinstance(exc, PermanentChannelError):
            log.exception("delivery %s retract crashed", delivery_id)
        with session_scope() as session:
            transition(session, delivery_id, [S.RETRACTING], S.PUBLISHED, worker=worker,
                       message=f"retraction refused: {exc}", last_error=f"retraction refused: {exc}",
                       last_error_code=getattr(exc, "code", None) or "retract_failed")
        return "refused"
    with session_scope() as session:
        if transition(session, delivery_id, [S.RETRACTING], S.RETRACTED, worker=worker,
                      message=f"removed from {account.channel}/{account.name}"):
            return S.RETRACTED.value
    return "lost-claim"
