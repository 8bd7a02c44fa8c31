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
from services.labels import template_fields
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
    Story,
    StoryVersion,
    User,
    utcnow,
)
from services.users import require_role

log = logging.getLogger("fanout.schedule")

KINDS = ("图文", "短视频", "新闻发布会", "访谈", "other")
SLOT_STATES_ZH = {"open": "空档", "filled": "已排期", "released": "已发布", "missed": "已错过", "cancelled": "已取消"}
ZONE = ZoneInfo("Asia/Shanghai")
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
                 ends_on: date | None = None, themes: list[str] | None = None,
                 phases: list[dict[str, str]] | None = None, focus_months: list[int] | None = None,
                 actor: User | None = None) -> Campaign:
    """A campaign; `phases` are [{name, from, to}] (准备期/执行期/…), `focus_months` 集中宣传月."""
    if actor is not None:
        require_role(actor, "editor", "admin")
    name = name.strip()
    if not name:
        raise ValidationError("campaign name must not be empty", "活动名称不能为空")
    if starts_on and ends_on and ends_on < starts_on:
        raise ValidationError("campaign ends before it starts", "活动结束日期早于开始日期")
    template_fields(label_template.strip())
    for phase in phases or []:
        if not phase.get("name") or date.fromisoformat(phase["to"]) < date.fromisoformat(phase["from"]):
            raise ValidationError(f"phase {phase!r} needs a name and from <= to", "活动阶段须有名称，且开始日期不晚于结束日期")
    if any(not 1 <= int(m) <= 12 for m in focus_months or []):
        raise ValidationError("focus months are 1..12", "集中宣传月应为 1 至 12")
    if session.scalar(select(Campaign).where(Campaign.name == name)):
        raise Conflict(f"campaign {name!r} already exists", f"活动“{name}”已存在")
    campaign = Campaign(name=name, label_template=label_template.strip(), starts_on=starts_on, ends_on=ends_on,
                        themes=list(themes or []), phases=list(phases or []),
                        focus_months=[int(m) for m in focus_months or []])
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
    existing = {d for (d,) in session.execute(select(Slot.day).where(Slot.series_id == series.id))}
    until = max(series.starts_on, datetime.now(ZONE).date()) + timedelta(days=horizon_days)
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


def _approved_story(session: Session, story_id: int) -> Story:
    from services.errors import NotApproved
    from services.stories import get_story

    story = get_story(session, story_id)
    if story.current.review_state != ReviewState.APPROVED.value:
        raise NotApproved(f"story {story_id} v{story.current.number} is not approved; only approved stories are queued",
                          f"稿件 {story_id} 尚未通过三审，不能排期")
    return story


def _check_campaign(session: Session, version: StoryVersion, series: Series) -> None:
    """A series carries its campaign's label: a story of another campaign, or one without the label, is refused."""
    if version.campaign_id is not None and version.campaign_id != series.campaign_id:
        other = session.get(Campaign, version.campaign_id)
        raise ValidationError(f"the story belongs to campaign {other.name!r}, the series to {series.campaign.name!r}",
                              f"稿件属于活动“{other.name}”，与栏目所属活动“{series.campaign.name}”不同")
    if version.campaign_id is None and series.campaign.label_template:
        raise ValidationError(f"the story is not linked to campaign {series.campaign.name!r} and lacks its label; "
                              "edit the story and choose the campaign",
                              f"稿件未关联活动“{series.campaign.name}”，缺少活动标签；请编辑稿件并选择该活动")


def _lock_slot(session: Session, slot_id: int) -> Slot:
    slot = session.scalar(select(Slot).where(Slot.id == slot_id).with_for_update(of=Slot))
    if slot is None:
        raise NotFound(f"no slot {slot_id}", f"期次 {slot_id} 不存在")
    return slot


def _movable(slot: Slot, now: datetime, *, want: tuple[str, ...] = ("filled",)) -> None:
    if slot.state not in want:
        states = "、".join(SLOT_STATES_ZH[w] for w in want)
        raise ValidationError(f"slot {slot.id} is {slot.state}; expected {' or '.join(want)}",
                              f"{slot.title_zh}（{slot.day:%m月%d日}）状态为{SLOT_STATES_ZH.get(slot.state, slot.state)}，只能操作{states}的期次")
    if slot.release_at <= now:
        raise ValidationError(f"slot {slot.id} is already due", f"{slot.title_zh}（{slot.day:%m月%d日}）已到发布时间，不能再调整")


def queue_story(session: Session, story_id: int, series_ref: str, *, day: date | None = None,
                now: datetime | None = None, actor: User | None = None) -> Slot:
    """Put an approved story into the next open slot of a series (or the slot of `day`)."""
    if actor is not None:
        require_role(actor, "editor", "ops")
    story = _approved_story(session, story_id)
    series = find_series(session, series_ref)
    _check_campaign(session, story.current, series)
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


def unqueue(session: Session, slot_id: int, *, now: datetime | None = None, actor: User | None = None) -> Slot:
    """Empty a filled slot (an explicit schedule is cancelled instead); the story stays approved."""
    if actor is not None:
        require_role(actor, "editor", "ops")
    slot = _lock_slot(session, slot_id)
    _movable(slot, now or utcnow())
    story_id = slot.story_id
    if slot.series_id is None:
        slot.state = "cancelled"
    else:
        slot.state, slot.story_id = "open", None
    audit.record(session, actor=actor, action="unqueue", object_type="story", object_id=story_id,
                 summary=f"removed from {slot.title_zh} {slot.day.isoformat()}")
    return slot


def move_story(session: Session, slot_id: int, to_day: date, *, now: datetime | None = None,
               actor: User | None = None) -> Slot:
    """Move a queued story to another day of its series: into an open slot, or swapping with a filled one."""
    if actor is not None:
        require_role(actor, "editor", "ops")
    now = now or utcnow()
    source = _lock_slot(session, slot_id)
    if source.series_id is None:
        raise ValidationError("an explicit schedule is moved by rescheduling it", "定时发布请取消后重新设定时间")
    target_id = session.scalar(select(Slot.id).where(Slot.series_id == source.series_id, Slot.day == to_day))
    if target_id is None:
        raise ValidationError(f"{source.series.name} has no slot on {to_day.isoformat()}",
                              f"栏目“{source.series.name}”在 {to_day:%m月%d日} 没有期次")
    if target_id == source.id:
        return source
    target = _lock_slot(session, target_id)
    if target.state == "filled":
        swap_slots(session, source.id, target.id, now=now, actor=actor)
        return target
    _movable(source, now)
    _movable(target, now, want=("open",))
    story_id = source.story_id
    source.state, source.story_id = "open", None
    target.state, target.story_id = "filled", story_id
    audit.record(session, actor=actor, action="move", object_type="story", object_id=story_id,
                 summary=f"moved in {target.series.name}: 第{source.issue_number}期 {source.day} → "
                         f"第{target.issue_number}期 {target.day}")
    return target


def swap_slots(session: Session, first_id: int, second_id: int, *, now: datetime | None = None,
               actor: User | None = None) -> None:
    """Exchange the stories of two filled, not yet due slots of one series."""
    if actor is not None:
        require_role(actor, "editor", "ops")
    now = now or utcnow()
    first, second = (_lock_slot(session, i) for i in sorted((first_id, second_id)))
    if first.series_id is None or first.series_id != second.series_id:
        raise ValidationError("only two slots of the same series can be swapped", "只能对调同一栏目的两期")
    for slot in (first, second):
        _movable(slot, now)
    first.story_id, second.story_id = second.story_id, first.story_id
    audit.record(session, actor=actor, action="swap", object_type="series", object_id=first.series_id,
                 summary=f"swapped {first.series.name} 第{first.issue_number}期 ({first.day}) and "
                         f"第{second.issue_number}期 ({second.day})")


def reorder(session: Session, series_ref: str, story_ids: list[int], *, now: datetime | None = None,
            actor: User | None = None) -> list[Slot]:
    """Put the series' queued, not yet due stories into its filled slots in the given order."""
    if actor is not None:
        require_role(actor, "editor", "ops")
    now = now or utcnow()
    series = find_series(session, series_ref)
    slots = list(session.scalars(select(Slot).where(Slot.series_id == series.id, Slot.state == "filled",
                                                    Slot.release_at > now).order_by(Slot.day).with_for_update(of=Slot)))
    queued = [slot.story_id for slot in slots]
    if sorted(queued) != sorted(story_ids):
        raise ValidationError(f"the new order must list exactly the queued stories {queued}",
                              "新顺序须恰好包含本栏目已排期、未发布的全部稿件")
    for slot, story_id in zip(slots, story_ids):
        slot.story_id = story_id
    audit.record(session, actor=actor, action="reorder", object_type="series", object_id=series.id,
                 summary=f"reordered {series.name}: {queued} → {story_ids}")
    return slots


def schedule_story(session: Session, story_id: int, at: datetime, accounts: list[str], *,
                   now: datetime | None = None, actor: User | None = None) -> Slot:
    """An explicit schedule besides the series: this story at `at` on these accounts."""
    if actor is not None:
        require_role(actor, "editor", "ops")
    if at.tzinfo is None:
        raise ValidationError("the time needs a zone, e.g. 2026-05-01T08:00+08:00", "发布时间须带时区")
    story = _approved_story(session, story_id)
    if at <= (now or utcnow()):
        raise ValidationError(f"{at.isoformat()} is in the past", "定时发布时间须晚于当前时间")
    if not accounts:
        raise ValidationError("name at least one account", "请至少选择一个发布账号")
    account_ids = sorted({_account_id(session, ref) for ref in accounts})
    if session.scalar(select(Slot.id).where(Slot.series_id.is_(None), Slot.story_id == story_id,
                                            Slot.state == "filled")):
        raise Conflict(f"story {story_id} already has a pending explicit schedule", "该稿件已有待执行的定时发布")
    local = at.astimezone(ZONE)
    slot = Slot(series_id=None, day=local.date(), issue_number=0, release_at=at, story_id=story_id, state="filled",
                account_ids=account_ids, created_by_id=actor.id if actor else None)
    session.add(slot)
    session.flush()
    audit.record(session, actor=actor, action="schedule", object_type="story", object_id=story_id,
                 story_version=story.current.number,
                 summary=f"scheduled for {local:%Y-%m-%d %H:%M} on accounts {account_ids}")
    return slot


def release_now(session: Session, queue: dispatch.TaskQueue, slot_id: int, *, now: datetime | None = None,
                actor: User | None = None) -> Slot:
    """A person's decision: release a filled or missed slot now (e.g. one the max-lateness rule held)."""
    if actor is not None:
        require_role(actor, "editor", "ops")
    now = now or utcnow()
    if is_frozen(session):
        raise ValidationError("releases are frozen", "发布已暂停（冻结中），不能立即发布")
    slot = _lock_slot(session, slot_id)
    if slot.state not in ("filled", "missed") or slot.story_id is None:
        raise ValidationError(f"slot {slot.id} is {slot.state} and has no story to release",
                              f"{slot.title_zh}（{slot.day:%m月%d日}）没有可发布的稿件")
    _approved_story(session, slot.story_id)
    before = slot.state
    claimed = session.execute(update(Slot).where(Slot.id == slot.id, Slot.state == before)
                              .values(state="released", released_at=now, note=f"released by hand ({before})")
                              .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise Conflict("the slot changed meanwhile; reload", "该期状态刚被改变，请刷新")
    dispatch.plan_publication(session, queue, slot.story_id, account_ids=_accounts_of(slot), release_at=now)
    audit.record(session, actor=actor, action="release", object_type="slot", object_id=slot.id,
                 summary=f"{slot.title_zh} {slot.day} released by hand (was {before})")
    session.refresh(slot)
    return slot


def _accounts_of(slot: Slot) -> list[int] | None:
    if slot.series_id is None:
        return list(slot.account_ids or [])
    return list(slot.series.account_ids or []) or None


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


def _not_releasable(session: Session, slot: Slot) -> str | None:
    """Why a due, filled slot cannot go out now (its story was edited and is in review again, or no
    account is enabled); None when it can."""
    version = session.scalar(select(StoryVersion).where(StoryVersion.story_id == slot.story_id)
                             .order_by(StoryVersion.number.desc()).limit(1))
    if version is None or version.review_state != ReviewState.APPROVED.value:
        return "the story's current version is not approved"
    query = select(ChannelAccount.id).where(ChannelAccount.enabled.is_(True))
    accounts = _accounts_of(slot)
    if accounts:
        query = query.where(ChannelAccount.id.in_(accounts))
    if session.scalar(query.limit(1)) is None:
        return "no enabled account to publish to"
    return None


def tick(session: Session, settings: Settings, queue: dispatch.TaskQueue, *, now: datetime | None = None) -> TickResult:
    """Release every due, filled slot exactly once; mark very late or unreleasable ones missed."""
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
        reason = None
        if slot.state == "open":
            reason = "no story queued"
        elif lateness > max_late:
            reason = f"released {lateness} late, over the limit of {max_late}"
        else:
            reason = _not_releasable(session, slot)
        if reason:
            if session.execute(update(Slot).where(Slot.id == slot.id, Slot.state == slot.state)
                               .values(state="missed", note=reason)
                               .execution_options(synchronize_session=False)).rowcount == 1:
                result.missed.append(slot.id)
                log.warning("slot %s (%s %s) missed: %s", slot.id, slot.title_zh, slot.day, reason)
                audit.record(session, actor=None, action="missed", object_type="slot", object_id=slot.id,
                             summary=f"{slot.title_zh} {slot.day}: {reason}")
            continue
        claimed = session.execute(update(Slot).where(Slot.id == slot.id, Slot.state == "filled")
                                  .values(state="released", released_at=now)
                                  .execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            continue  # another tick released it
        dispatch.plan_publication(session, queue, slot.story_id, account_ids=_accounts_of(slot),
                                  release_at=slot.release_at)
        result.released.append(slot.id)
        if lateness > timedelta(minutes=2):
            result.late.append(slot.id)
            note = f"released {int(lateness.total_seconds() // 60)} minutes late"
            session.execute(update(Slot).where(Slot.id == slot.id).values(note=note)
                            .execution_options(synchronize_session=False))
            log.warning("slot %s (%s %s) released %s late", slot.id, slot.title_zh, slot.day, lateness)
    return result


# --------------------------------------------------------------------------- gaps & calendar


def _workday(day: date) -> bool:
    """Official working day (make-up days included); Monday-Friday beyond the holiday data."""
    import chinese_calendar

    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


def gap_deadline(today: date, lead_workdays: int) -> date:
    """The last release day an editor must fill by now: `lead_workdays` working days after today
    (the seeds: 提前两个工作日 hand in the materials)."""
    day, left = today, lead_workdays
    while left > 0:
        day += timedelta(days=1)
        if _workday(day):
            left -= 1
    return day


def gaps(session: Session, *, now: datetime | None = None, lead_workdays: int = 2) -> list[Slot]:
    """Open slots of days up to `lead_workdays` working days ahead: the editors must fill them now."""
    now = now or utcnow()
    until = gap_deadline(now.astimezone(ZONE).date(), lead_workdays)
    return list(session.scalars(select(Slot).where(Slot.state == "open", Slot.release_at > now, Slot.day <= until)
                                .order_by(Slot.release_at)))


@dataclass
class CalendarEntry:
    """One slot as a calendar shows it, with the per-channel states of its story's deliveries."""

    slot_id: int
    series_id: int | None
    series: str  # the series' name, or 定时发布
    kind: str
    day: date
    time: str  # HH:MM Asia/Shanghai
    issue: int
    state: str
    state_zh: str
    story_id: int | None
    story_title: str
    unit: str
    theme: str
    note: str
    gap: bool  # open and due within the lead time: editors must fill it
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # {channel, account, state}


def calendar(session: Session, first: date, last: date, *, series_id: int | None = None,
             now: datetime | None = None, lead_workdays: int = 2) -> list[CalendarEntry]:
    """Every slot from `first` to `last` (one series, or all with explicit schedules), in time order."""
    now = now or utcnow()
    query = select(Slot).where(Slot.day >= first, Slot.day <= last)
    if series_id is not None:
        query = query.where(Slot.series_id == series_id)
    slots = list(session.scalars(query.order_by(Slot.release_at, Slot.id)))
    story_ids = {s.story_id for s in slots if s.story_id}
    versions: dict[int, StoryVersion] = {}
    deliveries: dict[int, list[Delivery]] = {}
    if story_ids:
        for version in session.scalars(select(StoryVersion).where(StoryVersion.story_id.in_(story_ids))
                                       .order_by(StoryVersion.number)):
            versions[version.story_id] = version  # the last one wins: the current version
        for delivery in session.scalars(select(Delivery).where(Delivery.story_id.in_(story_ids))
                                        .order_by(Delivery.id)):
            deliveries.setdefault(delivery.story_id, []).append(delivery)
    deadline = gap_deadline(now.astimezone(ZONE).date(), lead_workdays)
    entries = []
    for slot in slots:
        version = versions.get(slot.story_id) if slot.story_id else None
        accounts = set(_accounts_of(slot) or [])
        shown: dict[int, Delivery] = {}
        if slot.state == "released":
            for delivery in deliveries.get(slot.story_id, []):
                if not accounts or delivery.account_id in accounts:
                    shown[delivery.account_id] = delivery  # the newest version's delivery per account
        entries.append(CalendarEntry(
            slot_id=slot.id, series_id=slot.series_id, series=slot.series.name if slot.series else "定时发布",
            kind=slot.series.kind if slot.series else "定时", day=slot.day,
            time=f"{slot.release_at.astimezone(ZONE):%H:%M}", issue=slot.issue_number, state=slot.state,
            state_zh=SLOT_STATES_ZH.get(slot.state, slot.state), story_id=slot.story_id,
            story_title=version.title if version else "", unit=version.unit if version else "",
            theme=version.theme if version else "", note=slot.note,
            gap=slot.state == "open" and slot.release_at > now and slot.day <= deadline,
            deliveries=[{"channel": d.account.channel, "account": d.account.name, "state": d.state,
                         "delivery_id": d.id} for d in shown.values()]))
    return entries


def slot_view(slot: Slot) -> dict[str, Any]:
    return {"id": slot.id, "series": slot.series.name if slot.series else None, "day": slot.day.isoformat(),
            "issue": slot.issue_number, "release_at": slot.release_at.astimezone(ZONE).isoformat(),
            "state": slot.state, "story_id": slot.story_id, "note": slot.note,
            "accounts": _accounts_of(slot) if slot.series_id is None else None}
