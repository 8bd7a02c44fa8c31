"""Alerts: rules evaluated every minute by beat, sent through Apprise, once until resolved.

Rules (thresholds are settings; 0 turns a rule off):

| rule | fires when | setting (default) |
|---|---|---|
| `release_gap` | a slot due within N hours has no story | FANOUT_ALERT_RELEASE_HOURS (24) |
| `failed` | a delivery is `failed` (one alert per delivery) | — |
| `queue_old` | the oldest waiting delivery is older than N minutes | FANOUT_ALERT_QUEUE_MINUTES (30) |
| `no_worker` | no live worker serves the media or publish queue | — |
| `beat_silent` | beat has not ticked for N minutes | FANOUT_ALERT_BEAT_MINUTES (5) |
| `token_expiry` | a live account's credential a person must renew (account_health.authorisation_expiries) expires within N days | FANOUT_ALERT_TOKEN_DAYS (7) |

`check` evaluates every rule into a set of firing conditions, each with a stable key
("failed:42", "no_worker:publish"). A key without an open alert row opens one and is sent
("【Fanout 告警】…"); an open row whose key no longer fires is resolved and sent
("【Fanout 已恢复】…"); a row that keeps firing is only touched. So each alert goes out once
until it resolves, however many processes run the check (the open row is found under the
key; on PostgreSQL two concurrent checks are serialised by a row lock on the control row).

Targets are Apprise URLs (FANOUT_ALERT_URLS, comma-separated): `wecombot://KEY` (企业微信群机器人),
`dingtalk://TOKEN`, `mailto://…`, `json://host/path` (a JSON webhook), … A send failure is
logged and the alert stays un-notified, so the next check sends it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.account_health import authorisation_expiries
from services.config import Settings
from services.dashboard import BEAT_TICK
from services.models import Alert, ChannelAccount, ControlFlag, Delivery, DeliveryState as S, Slot, utcnow
from services.ops import live_workers
from services.secrets import decrypt_credentials

log = logging.getLogger("fanout.alerts")

QUEUES = ("media", "publish")
MAX_FAILED_ALERTS = 50  # one check never sends more than this many failed-delivery alerts


@dataclass(frozen=True)
class Condition:
    key: str
    rule: str
    message: str  # Chinese: what ops reads in the group chat


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def conditions(session: Session, settings: Settings, now: datetime) -> list[Condition]:
    """Every condition firing now."""
    from channels import registry

    names = {name: cls.title_zh or name for name, cls in registry().items()}
    out: list[Condition] = []
    if settings.alert_release_hours > 0:
        for slot in session.scalars(select(Slot).where(
                Slot.state == "open", Slot.release_at >= now,
                Slot.release_at <= now + timedelta(hours=settings.alert_release_hours)).order_by(Slot.release_at)):
            local = _aware(slot.release_at).astimezone(timezone(timedelta(hours=8)))
            name = slot.series.name if slot.series else "定时发布"
            out.append(Condition(f"release_gap:{slot.id}", "release_gap",
                                 f"缺稿：{name} 第 {slot.issue_number} 期将于 {local:%m月%d日 %H:%M} 发布，尚未排入稿件"))
    for delivery in session.scalars(select(Delivery).where(Delivery.state == S.FAILED.value)
                                    .order_by(Delivery.id.desc()).limit(MAX_FAILED_ALERTS)):
        where = f"{names.get(delivery.account.channel, delivery.account.channel)}「{delivery.account.name}」"
        out.append(Condition(f"failed:{delivery.id}", "failed",
                             f"发布失败：稿件 {delivery.story_id} → {where}（任务 #{delivery.id}）："
                             f"{(delivery.last_error or '')[:200]}"))
    if settings.alert_queue_minutes > 0:
        oldest = session.scalar(select(Delivery.updated_at).where(
            Delivery.state.in_([S.PLANNED.value, S.READY.value, S.RETRY_WAIT.value])).order_by(Delivery.updated_at))
        if oldest is not None and now - _aware(oldest) > timedelta(minutes=settings.alert_queue_minutes):
            minutes = int((now - _aware(oldest)).total_seconds() // 60)
            out.append(Condition("queue_old", "queue_old", f"积压：最久的待发布任务已等待 {minutes} 分钟"))
    served = {q for worker in live_workers(session) for q in worker.queues.split(",") if q}
    for queue in QUEUES:
        if queue not in served:
            out.append(Condition(f"no_worker:{queue}", "no_worker", f"没有在线的 {queue} 工作进程，相关任务不会执行"))
    if settings.alert_beat_minutes > 0:
        tick = session.get(ControlFlag, BEAT_TICK)
        last = _aware(tick.changed_at) if tick else None
        if last is None or now - last > timedelta(minutes=settings.alert_beat_minutes):
            since = f"最近一次在 {last.astimezone(timezone(timedelta(hours=8))):%m月%d日 %H:%M}" if last else "从未运行"
            out.append(Condition("beat_silent", "beat_silent", f"调度（beat）已停止：{since}，到点的期次不会发布"))
    if settings.alert_token_days > 0:
        horizon = now + timedelta(days=settings.alert_token_days)
        for account in session.scalars(select(ChannelAccount).where(ChannelAccount.enabled.is_(True),
                                                                    ChannelAccount.mode == "live")):
            credentials = decrypt_credentials(settings, account.credentials_encrypted)
            for key, expires in sorted(authorisation_expiries(credentials).items()):
                if expires <= horizon:
                    what = {"refresh_expires_at": "刷新令牌"}.get(key, "授权")
                    out.append(Condition(f"token_expiry:{account.id}:{key}", "token_expiry",
                                         f"授权即将过期：{names.get(account.channel, account.channel)}「{account.name}」"
                                         f"的{what}将于 {expires.astimezone(timezone(timedelta(hours=8))):%m月%d日 %H:%M} 过期，"
                                         "请尽快重新授权"))
    return out


def send(settings: Settings, title: str, body: str) -> bool:
    """Send one message to every configured Apprise URL; False when nothing was delivered."""
    urls = [u.strip() for u in (settings.alert_urls or "").split(",") if u.strip()]
    if not urls:
        log.info("alert (no FANOUT_ALERT_URLS configured): %s %s", title, body)
        return True
    import apprise

    notifier = apprise.Apprise()
    for url in urls:
        if not notifier.add(url):
            log.error("alert target not understood by Apprise: %s", url.split("://", 1)[0] + "://…")
    try:
        return bool(notifier.notify(title=title, body=body))
    except Exception:  # noqa: BLE001 - a broken target must not stop the check
        log.exception("alert send failed")
        return False


def check(session: Session, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Open, keep, resolve and send (see the module docstring); returns what happened."""
    now = now or utcnow()
    if session.get_bind().dialect.name == "postgresql":  # one check at a time across processes
        session.execute(select(ControlFlag.name).where(ControlFlag.name == BEAT_TICK).with_for_update())
    firing = {c.key: c for c in conditions(session, settings, now)}
    open_rows = {row.key: row for row in session.scalars(select(Alert).where(Alert.resolved_at.is_(None)))}
    opened, resolved, resent = [], [], []
    for key, condition in firing.items():
        row = open_rows.get(key)
        if row is None:
            row = Alert(key=key, rule=condition.rule, message=condition.message, opened_at=now, last_seen=now,
                        notified=False)
            session.add(row)
            opened.append(key)
        else:
            row.last_seen = now
        if not row.notified:
            row.notified = send(settings, "【Fanout 告警】", condition.message)
            if key not in opened:
                resent.append(key)
    for key, row in open_rows.items():
        if key in firing:
            continue
        row.resolved_at = now
        resolved.append(key)
        if row.notified:
            send(settings, "【Fanout 已恢复】", row.message)
    session.flush()
    return {"opened": opened, "resolved": resolved, "resent": resent, "firing": sorted(firing)}


def open_alerts(session: Session) -> list[Alert]:
    return list(session.scalars(select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.opened_at)))
