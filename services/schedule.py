"""Campaigns, series (栏目), their daily slots, queueing, and the release tick.

The database schedule is the source of truth (DESIGN.md: never ETA tasks for future posts):
a series materialises one `Slot` per release day (services/cadence.py decides the days, the
official holiday rules included); an approved story is queued into a slot; beat runs `tick`
every minute and each due, filled slot is released exactly once — by a conditional UPDATE
`filled → released`, however often, however late and however many tick processes run — and
its deliveries are planned in the same transaction (their own unique key makes that idempotent
too). A slot released later than `max_lateness` becomes `missed` for a person to decide; a tick
that was missed releases late on the next run and says so. A freeze holds every release and
every queued delivery; a resume lets what is due go.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services import audit, cadence, dispatch
from services.config import Settings
from services.errors import Conflict, NotFound, ValidationError
from services.models import (
    Campaign,
    ChannelAccount,
    ControlFlag,
    Delivery,
    DeliveryState as D,
    ReviewState,
    Series,
    Slot,
    User,
    utcnow,
)
from services.users import require_role

log = logging.getLogger("fanout.schedule")

KINDS = ("图文", "短视频", "新闻发布会", "访谈", "other")
FREEZE = "freeze"
SLOT_HORIZON = 366  # slots materialised ahead for an open-ended series (days)


@dataclass
class TickResult:
    released: list[int] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    frozen: bool = False


# --------------------------------------------------------------------------- campaigns & series


def add_campaign(session: Session, name: str, *, label_template: str = "", starts_on: date | None = None,
                 ends_on: date | None = None, themes: list[str] | None = None, actor: User | None = None) -> Campaign:
    if actor is not None:
        require_role(actor, "editor", "admin")
    name = name.strip()
    if not name:
        raise ValidationError("campaign name must not be empty", "活动名称不能为空")
    if starts_on and ends_on and ends_on < starts_on:
        raise ValidationError("campaign ends before it starts", "活动结束日期早于开始日期")
    if session.scalar(select(Campaign).where(Campaign.name == name)):
        raise Conflict(f"campaign {name!r} already exists", f"活动“{name}”已存在")
    campaign = Campaign(name=name, label_template=label_template.strip(), starts_on=starts_on, ends_on=ends_on,
                        themes=list(themes or []))
    session.add(campaign)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="campaign", object_id=campaign.id,
                 summary=f"campaign {name}")
    return campaign


def rule_of(series: Series) -> cadence.SeriesRule:
    hour, minute = (int(x) for x in series.release_time.split(":"))
    return cadence.SeriesRule(cadence=series.cadence, start=series.starts_on, release_time=time(hour, minute),
                              holidays=series.holidays, dates=tuple(date.fromisoformat(d) for d in series.dates),
                              end=series.ends_on, count=series.issue_count)


def add_series(session: Session, settings: Settings, name: str, *, campaign: str, kind: str, cadence_name: str,
               start: date, release_time: str, holidays: str = "publish", dates: list[date] | None = None,
               end: date | None = None, count: int | None = None, accounts: list[str] | None = None,
               actor: User | None = None) -> Series:
    if actor is not None:
        require_role(actor, "editor", "admin")
    owner = session.scalar(select(Campaign).where(Campaign.name == campaign))
    if owner is None:
        raise NotFound(f"no campaign {campaign!r}", f"活动“{campaign}”不存在")
    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {', '.join(KINDS)}", f"栏目类型须为：{'、'.join(KINDS)}")
    try:
        hour, minute = (int(x) for x in release_time.split(":"))
        time(hour, minute)
    except ValueError:
        raise ValidationError(f"release time must be HH:MM, got {release_time!r}", "发布时间格式应为 HH:MM") from None
    if session.scalar(select(Series).where(Series.name == name)):
        raise Conflict(f"series {name!r} already exists", f"栏目“{name}”已存在")
    account_ids = [_account_id(session, ref) for ref in accounts or []]
    series = Series(campaign_id=owner.id, name=name.strip(), kind=kind, cadence=cadence_name,
                    dates=[d.isoformat() for d in dates or []], starts_on=start, ends_on=end, issue_count=count,
                    release_time=f"{hour:02d}:{minute:02d}", holidays=holidays, account_ids=account_ids)
    try:
        cadence.validate(rule_of(series))
    except cadence.CadenceError as exc:
        raise ValidationError(str(exc), exc.message_zh) from None
    session.add(series)
    session.flush()
    extend_slots(session, series)
    audit.record(session, actor=actor, action="create", object_type="series", object_id=series.id,
                 summary=f"series {name}: {cadence.describe_zh(rule_of(series))}")
    return series


def _account_id(session: Session, ref: str) -> int:
    """An account named by id, by `channel/name`, or by a unique name."""
    if str(ref).isdigit():
        account = session.get(ChannelAccount, int(ref))
    elif "/" in ref:
        channel, name = ref.split("/", 1)
        account = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == channel,
                                                              ChannelAccount.name == name))
    else:
        found = session.scalars(select(ChannelAccount).where(ChannelAccount.name == ref)).all()
        account = found[0] if len(found) == 1 else None
    if account is None:
        raise NotFound(f"no account {ref!r} (use an id or channel/name)", f"账号“{ref}”不存在")
    return account.id


def extend_slots(session: Session, series: Series, *, horizon_days: int = SLOT_HORIZON) -> int:
    """Materialise the series' slots up to its end, its count, or `horizon_days` ahead."""
    zone = ZoneInfo("Asia/Shanghai")
    existing = {d for (d,) in session.execute(select(Slot.day).where(Slot.series_id == series.id))}
    until = max(series.starts_on, datetime.now(zone).date()) + timedelta(days=horizon_days)
    added = 0
    rule = rule_of(series)
    moments = cadence.release_datetimes(rule, until=until)
    number = 0
    while True:
        try:
            moment = next(moments)
        except StopIteration:
            break
        except cadence.CadenceError as exc:  # holiday data ends (chinese-calendar covers to 2026)
            log.warning("series %s: slots laid out only up to the holiday data's end: %s", series.name, exc)
            break
        number += 1
        if moment.date() in existing:
            continue
        session.add(Slot(series_id=series.id, day=moment.date(), issue_number=number, release_at=moment))
        added += 1
    session.flush()
    return added


def list_series(session: Session) -> list[Series]:
    return list(session.scalars(select(Series).order_by(Series.id)))


def slots_of(session: Session, series_id: int) -> list[Slot]:
    return list(session.scalars(select(Slot).where(Slot.series_id == series_id).order_by(Slot.day)))


def find_series(session: Session, ref: str) -> Series:
    series = session.get(Series, int(ref)) if str(ref).isdigit() else \
        session.scalar(select(Series).where(Series.name == ref))
    if series is None:
        raise NotFound(f"no series {ref!r}", f"栏目“{ref}”不存在")
    return series


# --------------------------------------------------------------------------- queue


def queue_story(session: Session, story_id: int, series_ref: str, *, day: date | None = None,
                now: datetime | None = None, actor: User | None = None) -> Slot:
    """Put an approved story into the next open slot of a series (or the slot of `day`)."""
    from services.stories import get_story

    if actor is not None:
        require_role(actor, "editor", "ops")
    story = get_story(session, story_id)
    if story.current.review_state != ReviewState.APPROVED.value:
        from services.errors import NotApproved

        raise NotApproved(f"story {story_id} v{story.current.number} is not approved; only approved stories are queued",
                          f"稿件 {story_id} 尚未通过三审，不能排期")
    series = find_series(session, series_ref)
    now = now or utcnow()
    if session.scalar(select(Slot.id).where(Slot.series_id == series.id, Slot.story_id == story_id,
                                            Slot.state.in_(["filled", "released"]))):
        raise Conflict(f"story {story_id} is already queued in {series.name}", "该稿件已在本栏目排期")
    query = select(Slot).where(Slot.series_id == series.id, Slot.state == "open", Slot.release_at > now)
    if day is not None:
        query = query.where(Slot.day == day)
    slot = session.scalar(query.order_by(Slot.day).limit(1).with_for_update(of=Slot))
    if slot is None:
        what = f"on {day.isoformat()}" if day else "ahead"
        raise ValidationError(f"series {series.name} has no open slot {what}", f"栏目“{series.name}”没有可用的空档期")
    claimed = session.execute(update(Slot).where(Slot.id == slot.id, Slot.state == "open")
                              .values(state="filled", story_id=story_id).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise Conflict("that slot was just taken; try again", "该期刚被占用，请重试")
    session.refresh(slot)
    audit.record(session, actor=actor, action="queue", object_type="story", object_id=story_id,
                 story_version=story.current.number,
                 summary=f"queued in {series.name} 第{slot.issue_number}期 {slot.day.isoformat()} {series.release_time}")
    return slot


def unqueue(session: Session, slot_id: int, *, actor: User | None = None) -> None:
    slot = session.get(Slot, slot_id)
    if slot is None or slot.state != "filled":
        raise ValidationError("only a filled, unreleased slot can be emptied", "只有已排期且未发布的期次可以撤下")
    story_id = slot.story_id
    slot.state, slot.story_id = "open", None
    audit.record(session, actor=actor, action="unqueue", object_type="story", object_id=story_id,
                 summary=f"removed from {slot.series.name} 第{slot.issue_number}期")


# --------------------------------------------------------------------------- freeze


def is_frozen(session: Session) -> bool:
    flag = session.get(ControlFlag, FREEZE)
    return bool(flag and flag.active)


def freeze(session: Session, reason: str, actor: User) -> int:
    """Hold every release and every queued delivery (admin only, audited, with a reason)."""
    require_role(actor, "admin")
    if not reason.strip():
        raise ValidationError("a freeze needs a reason", "暂停发布须填写原因")
    flag = session.get(ControlFlag, FREEZE) or ControlFlag(name=FREEZE)
    flag.active, flag.reason, flag.changed_by_id, flag.changed_at = True, reason.strip(), actor.id, utcnow()
    session.add(flag)
    held = 0
    for (delivery_id,) in session.execute(select(Delivery.id).where(
            Delivery.state.in_([D.PLANNED.value, D.READY.value, D.RETRY_WAIT.value]))).all():
        if dispatch.transition(session, delivery_id, [D.PLANNED, D.READY, D.RETRY_WAIT], D.HELD,
                               message=f"frozen: {reason}", last_error=f"frozen: {reason}", last_error_code="frozen"):
            held += 1
    audit.record(session, actor=actor, action="freeze", object_type="system", object_id=FREEZE,
                 summary=f"froze all releases: {reason} ({held} deliveries held)")
    return held


def resume(session: Session, queue: dispatch.TaskQueue, actor: User) -> int:
    require_role(actor, "admin")
    flag = session.get(ControlFlag, FREEZE)
    if flag is None or not flag.active:
        raise ValidationError("releases are not frozen", "当前没有暂停发布")
    flag.active, flag.changed_by_id, flag.changed_at = False, actor.id, utcnow()
    resumed = 0
    for delivery in session.scalars(select(Delivery).where(Delivery.state == D.HELD.value,
                                                           Delivery.last_error_code == "frozen")).all():
        target = D.READY if delivery.post_json else D.PLANNED
        if dispatch.transition(session, delivery.id, [D.HELD], target, message="resumed", last_error=None,
                               last_error_code=None):
            send = queue.publish if target is D.READY else queue.render
            dispatch.after_commit(session, lambda i=delivery.id, s=send: s(i))
            resumed += 1
    audit.record(session, actor=actor, action="resume", object_type="system", object_id=FREEZE,
                 summary=f"resumed releases ({resumed} deliveries sent on)")
    return resumed


# --------------------------------------------------------------------------- the tick


def tick(session: Session, settings: Settings, queue: dispatch.TaskQueue, *, now: datetime | None = None) -> TickResult:
    """Release every due, filled slot exactly once; mark very late ones missed."""
    now = now or utcnow()
    result = TickResult()
    if is_frozen(session):
        result.frozen = True
        return result
    max_late = timedelta(minutes=settings.max_lateness_minutes)
    due = session.scalars(select(Slot).where(Slot.state.in_(["filled", "open"]), Slot.release_at <= now)
                          .order_by(Slot.release_at)).all()
    for slot in due:
        lateness = now - slot.release_at
        if slot.state == "open" or lateness > max_late:
            reason = "no story queued" if slot.state == "open" else f"released {lateness} late, over the limit"
            if session.execute(update(Slot).where(Slot.id == slot.id, Slot.state == slot.state)
                               .values(state="missed", note=reason)
                               .execution_options(synchronize_session=False)).rowcount == 1:
                result.missed.append(slot.id)
                audit.record(session, actor=None, action="missed", object_type="slot", object_id=slot.id,
                             summary=f"{slot.series.name} 第{slot.issue_number}期 {slot.day}: {reason}")
            continue
        claimed = session.execute(update(Slot).where(Slot.id == slot.id, Slot.state == "filled")
                                  .values(state="released", released_at=now)
                                  .execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            continue  # another tick released it
        accounts = list(slot.series.account_ids or []) or None
        dispatch.plan_publication(session, queue, slot.story_id, account_ids=accounts, release_at=slot.release_at)
        result.released.append(slot.id)
        if lateness > timedelta(minutes=2):
            result.late.append(slot.id)
            log.warning("slot %s (%s 第%s期) released %s late", slot.id, slot.series.name, slot.issue_number, lateness)
    return result


def gaps(session: Session, *, now: datetime | None = None, lead_days: int = 2) -> list[Slot]:
    """Open slots due within `lead_days` (the seeds ask for materials two working days ahead)."""
    now = now or utcnow()
    return list(session.scalars(select(Slot).where(Slot.state == "open", Slot.release_at > now,
                                                   Slot.release_at <= now + timedelta(days=lead_days))
                                .order_by(Slot.release_at)))


def slot_view(slot: Slot) -> dict[str, Any]:
    return {"id": slot.id, "series": slot.series.name, "day": slot.day.isoformat(), "issue": slot.issue_number,
            "release_at": slot.release_at.astimezone(ZoneInfo("Asia/Shanghai")).isoformat(), "state": slot.state,
            "story_id": slot.story_id, "note": slot.note}
