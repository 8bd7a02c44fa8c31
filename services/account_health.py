"""Account health (账号状态): per channel account, what breaks before it breaks.

For each account: its mode and whether it has the credentials its channel needs; the
soonest expiry a person must act on (`authorisation_expiries`: a Weibo token's `expires_at`,
Douyin's refresh token — not the tokens Fanout renews by itself: 公众号's cached access token,
Douyin's access token, refreshed by the hourly upkeep); the last success and the last
error with its code; outbox packages waiting and how long the oldest has waited; and for
视频号 (no API: a staff member's QR-code login on channels.weixin.qq.com) when the login was
last renewed — recorded by ops with `record_login` — and when it is due again.

Also what the platforms said, kept on the account row by services/accounts.py: the hourly
upkeep's warnings (channel `maintain()`, e.g. a refresh token that cannot be renewed) and
when it ran; and the last quota a platform reported — 公众号's openapi/quota/get, Weibo's
rate_limit_status, or a "quota used up" error of Weibo, Douyin or 公众号 — with when it was
seen. A platform that reported none shows 平台未提供. Quota counts as used up until its reset
time passes or the account publishes again after it was seen.

`status` sums it up as ok / warn / bad, with the reasons in Chinese for the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels import registry
from services import audit
from services.config import Settings
from services.errors import NotFound, ValidationError
from services.models import ChannelAccount, Delivery, DeliveryState as S, User, utcnow
from services.secrets import decrypt_credentials
from services.users import require_role

LOGIN_SETTING = "login_renewed_at"  # an account setting (ISO UTC) written by record_login
# Expiries Fanout handles itself (channels' token caches and refreshes): no person acts on them,
# and a failed refresh shows up as an upkeep warning instead.
SELF_RENEWED = frozenset({"access_token_expires_at",  # 公众号: the 2-hour access token cache
                          "access_expires_at"})  # Douyin: the access token, refreshed from the refresh token
OUTBOX_WARN_HOURS = 12.0


@dataclass
class AccountHealth:
    account: ChannelAccount
    channel_zh: str
    has_credentials: bool
    token_expires_at: datetime | None
    last_success: datetime | None
    last_error: str | None
    last_error_code: str | None
    last_error_at: datetime | None
    outbox_waiting: int
    outbox_oldest_hours: float | None
    login_renewed_at: datetime | None
    login_due_at: datetime | None
    upkeep_warnings: list[str] = field(default_factory=list)
    upkeep_at: datetime | None = None  # None: the upkeep never ran for this account
    quota: dict[str, Any] | None = None  # None: the platform never said (平台未提供)
    quota_at: datetime | None = None
    quota_resets_at: datetime | None = None
    quota_used_up: bool = False
    status: str = "ok"  # ok | warn | bad
    reasons: list[str] = field(default_factory=list)


def _aware(moment: Any) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def authorisation_expiries(credentials: dict[str, Any]) -> dict[str, datetime]:
    """The credentials' `*expires_at` values a person must renew before (see SELF_RENEWED)."""
    out = {}
    for key, value in credentials.items():
        if key.endswith("expires_at") and key not in SELF_RENEWED and value:
            moment = _aware(value)
            if moment is not None:
                out[key] = moment
    return out


def health(session: Session, settings: Settings, now: datetime | None = None) -> list[AccountHealth]:
    now = now or utcnow()
    classes = registry()
    out = []
    for account in session.scalars(select(ChannelAccount).order_by(ChannelAccount.channel, ChannelAccount.name)):
        cls = classes.get(account.channel)
        credentials = decrypt_credentials(settings, account.credentials_encrypted)
        needed = getattr(cls, "credential_keys", ()) if cls else ()
        expiries = list(authorisation_expiries(credentials).values())
        last_success = session.scalar(select(func.max(Delivery.published_at)).where(
            Delivery.account_id == account.id, Delivery.state == S.PUBLISHED.value))
        failed = session.execute(select(Delivery.last_error, Delivery.last_error_code, Delivery.updated_at).where(
            Delivery.account_id == account.id, Delivery.state == S.FAILED.value)
            .order_by(Delivery.updated_at.desc()).limit(1)).first()
        waiting, oldest = session.execute(select(func.count(), func.min(Delivery.updated_at)).where(
            Delivery.account_id == account.id, Delivery.state == S.OUTBOX.value)).one()
        renewed = _aware((account.settings or {}).get(LOGIN_SETTING))
        is_channels = account.channel == "wechat_channels"
        due = renewed + timedelta(days=settings.channels_login_days) if is_channels and renewed else None
        row = AccountHealth(
            account=account, channel_zh=(cls.title_zh if cls else account.channel),
            has_credentials=all(credentials.get(k) for k in needed),
            token_expires_at=min(expiries) if expiries else None,
            last_success=_aware(last_success), last_error=failed.last_error if failed else None,
            last_error_code=failed.last_error_code if failed else None,
            last_error_at=_aware(failed.updated_at) if failed else None,
            outbox_waiting=int(waiting), outbox_oldest_hours=(now - _aware(oldest)).total_seconds() / 3600
            if oldest else None, login_renewed_at=renewed, login_due_at=due,
            upkeep_warnings=list(account.upkeep_warnings or []), upkeep_at=_aware(account.upkeep_at),
            quota=dict(account.quota) if account.quota else None, quota_at=_aware(account.quota_at))
        _judge_quota(row, now)
        _judge(row, account, now, settings, bool(needed))
        out.append(row)
    return out


def _judge_quota(row: AccountHealth, now: datetime) -> None:
    """Used up: the platform's last figure was 0, its reset time (if it gave one) is still
    ahead, and no post went out after it was seen."""
    if row.quota is None:
        return
    row.quota_resets_at = _aware(row.quota.get("resets_at"))
    row.quota_used_up = (row.quota.get("remaining") == 0
                         and (row.quota_resets_at is None or row.quota_resets_at > now)
                         and not (row.last_success and row.quota_at and row.last_success > row.quota_at))


def _judge(row: AccountHealth, account: ChannelAccount, now: datetime, settings: Settings, needs: bool) -> None:
    def bad(reason: str) -> None:
        row.status = "bad"
        row.reasons.append(reason)

    def warn(reason: str) -> None:
        if row.status == "ok":
            row.status = "warn"
        row.reasons.append(reason)

    if not account.enabled:
        warn("已停用")
    if account.mode == "live" and needs and not row.has_credentials:
        warn("缺少接口凭据：内容将进入人工发布")
    if row.token_expires_at is not None:
        if row.token_expires_at <= now:
            bad("授权已过期，需重新授权")
        elif row.token_expires_at <= now + timedelta(days=settings.alert_token_days or 7):
            warn(f"授权将于 {row.token_expires_at.astimezone(timezone(timedelta(hours=8))):%m月%d日} 过期")
    if row.last_error_at and (row.last_success is None or row.last_error_at > row.last_success):
        warn(f"最近一次发布失败（{row.last_error_code or '未知'}）")
    if row.upkeep_warnings and account.mode == "live":  # upkeep only runs for live accounts
        warn(f"令牌维护提示 {len(row.upkeep_warnings)} 条（见“令牌维护”）")
    if row.quota_used_up:
        warn("平台调用配额已用尽" + (f"，{row.quota_resets_at.astimezone(timezone(timedelta(hours=8))):%m月%d日 %H:%M} 重置"
                                   if row.quota_resets_at else ""))
    if row.outbox_oldest_hours is not None and row.outbox_oldest_hours > OUTBOX_WARN_HOURS:
        warn(f"人工发布包已等待 {row.outbox_oldest_hours:.0f} 小时")
    if account.channel == "wechat_channels":
        if row.login_renewed_at is None:
            warn("未登记视频号扫码登录时间")
        elif row.login_due_at is not None and row.login_due_at <= now:
            bad("视频号登录已到期，请重新扫码登录")


def record_login(session: Session, account_id: int, actor: User, now: datetime | None = None) -> ChannelAccount:
    """Ops renewed the 视频号 QR-code login: remember when (audited)."""
    require_role(actor, "ops", "editor")
    account = session.get(ChannelAccount, account_id)
    if account is None:
        raise NotFound(f"no account {account_id}", "渠道账号不存在")
    if account.channel != "wechat_channels":
        raise ValidationError("only 视频号 accounts have a QR-code login to renew", "只有视频号账号需要登记扫码登录")
    moment = (now or utcnow()).isoformat(timespec="seconds")
    account.settings = {**(account.settings or {}), LOGIN_SETTING: moment}
    audit.record(session, actor=actor, action="account.login", object_type="account", object_id=account.id,
                 summary=f"{account.channel}/{account.name}: QR-code login renewed at {moment}")
    return account
