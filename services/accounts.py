"""Channel accounts: which platform account a story goes to, in live or outbox mode.

Credentials are JSON in the platform's own names (DESIGN.md "Channel contract"), encrypted at
rest; `account_data` decrypts them only to hand a channel its `AccountData`, with per-account
settings merged over the service defaults (site directory, public URL, site title).

What the platforms say about an account is kept on its row for account health (账号状态):
the hourly upkeep's warnings (`maintain_accounts` → `upkeep_warnings`, `upkeep_at`; an empty
list when all was well) and the last quota a platform reported (`AccountData.report_quota` →
`record_quota` → `quota`, `quota_at`). Both are written in short transactions of their own
and never fail the publish or the upkeep that reported them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels import registry
from channels.base import AccountData
from services import audit
from services.config import Settings
from services.errors import Conflict, NotFound, ValidationError
from services.models import AccountMode, ChannelAccount, User
from services.secrets import decrypt_credentials, encrypt_credentials

MODES = tuple(m.value for m in AccountMode)
log = logging.getLogger("fanout.accounts")


def read_credentials_file(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"credentials file not found: {path}", "凭据文件不存在") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"credentials file is not readable JSON: {path}: {exc}", "凭据文件不是有效的 JSON") from None
    if not isinstance(data, dict):
        raise ValidationError("credentials file must hold a JSON object", "凭据文件须为 JSON 对象")
    return data


def add_account(session: Session, settings: Settings, channel: str, name: str, *, mode: str = "live",
                api_base: str | None = None, credentials: dict[str, Any] | None = None,
                account_settings: dict[str, Any] | None = None, actor: User | None = None) -> ChannelAccount:
    known = registry()
    if channel not in known:
        raise ValidationError(f"unknown channel {channel!r}; known: {', '.join(sorted(known))}", "未知渠道")
    if mode not in MODES:
        raise ValidationError(f"mode must be one of {', '.join(MODES)}", "模式须为 live 或 outbox")
    name = name.strip()
    if not name:
        raise ValidationError("account name must not be empty", "账号名称不能为空")
    if api_base and not api_base.startswith(("http://", "https://")):
        raise ValidationError("--api-base must be an http(s) URL", "API 地址须为 http(s) 网址")
    if session.scalar(select(ChannelAccount).where(ChannelAccount.channel == channel, ChannelAccount.name == name)):
        raise Conflict(f"account {channel}/{name} already exists", f"账号 {name} 已存在")
    account = ChannelAccount(
        channel=channel, name=name, mode=mode, api_base=api_base, settings=dict(account_settings or {}),
        credentials_encrypted=encrypt_credentials(settings, credentials) if credentials else None,
    )
    session.add(account)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="account", object_id=account.id,
                 summary=f"{channel}/{name} mode={mode}")
    return account


def list_accounts(session: Session, *, enabled_only: bool = False) -> list[ChannelAccount]:
    query = select(ChannelAccount).order_by(ChannelAccount.channel, ChannelAccount.name)
    if enabled_only:
        query = query.where(ChannelAccount.enabled.is_(True))
    return list(session.scalars(query))


def get_account(session: Session, account_id: int) -> ChannelAccount:
    account = session.get(ChannelAccount, account_id)
    if account is None:
        raise NotFound(f"no account {account_id}", "账号不存在")
    return account


def public_view(account: ChannelAccount) -> dict[str, Any]:
    """What the CLI and the API show: never the credentials themselves."""
    return {
        "id": account.id, "channel": account.channel, "name": account.name, "mode": account.mode,
        "enabled": account.enabled, "api_base": account.api_base,
        "has_credentials": bool(account.credentials_encrypted), "settings": dict(account.settings or {}),
        "upkeep_warnings": account.upkeep_warnings,
        "upkeep_at": account.upkeep_at.isoformat() if account.upkeep_at else None,
        "quota": account.quota, "quota_at": account.quota_at.isoformat() if account.quota_at else None,
    }


def account_data(settings: Settings, account: ChannelAccount) -> AccountData:
    merged = {
        "site_dir": str(settings.site_dir),
        "public_url": settings.public_url,
        "site_title": settings.site_title,
        "site_description": settings.site_description,
        "outbox_dir": str(settings.outbox_dir),
        "timezone": settings.timezone,
    }
    merged.update(account.settings or {})
    account_id = account.id

    def save(credentials: Mapping[str, Any]) -> None:  # a channel refreshed a token: keep it, encrypted
        store_credentials(settings, account_id, dict(credentials))

    def quota(figures: Mapping[str, Any]) -> None:  # a platform said how much quota is left
        record_quota(account_id, figures)

    return AccountData(
        id=account.id, channel=account.channel, name=account.name, mode=account.mode,
        api_base=account.api_base, credentials=decrypt_credentials(settings, account.credentials_encrypted),
        settings=merged, save_credentials=save, report_quota=quota,
    )


def _own_update(what: str, account_id: int, **values: Any) -> None:
    """One UPDATE of the account row in a transaction of its own; a failure is logged, not raised."""
    from sqlalchemy import update
    from sqlalchemy.exc import SQLAlchemyError

    from services.db import session_scope

    try:
        with session_scope() as session:
            session.execute(update(ChannelAccount).where(ChannelAccount.id == account_id).values(**values))
    except SQLAlchemyError:
        log.warning("could not record the %s of account %s", what, account_id, exc_info=True)


def record_quota(account_id: int, figures: Mapping[str, Any]) -> None:
    """Keep the latest quota a platform reported for the account (see AccountData.note_quota)."""
    from services.models import utcnow

    _own_update("quota", account_id, quota=dict(figures), quota_at=utcnow())


def record_upkeep(account_id: int, warnings: list[str], at: Any) -> None:
    """Keep what the account's upkeep said last ([] when all was well) and when."""
    _own_update("upkeep warnings", account_id, upkeep_warnings=list(warnings), upkeep_at=at)


def store_credentials(settings: Settings, account_id: int, credentials: dict[str, Any]) -> None:
    """Replace an account's credentials (encrypted) in a transaction of its own: a channel
    calls this mid-publish, outside the dispatcher's transactions. Never logged."""
    from sqlalchemy import update

    from services.db import session_scope

    with session_scope() as session:
        session.execute(update(ChannelAccount).where(ChannelAccount.id == account_id)
                        .values(credentials_encrypted=encrypt_credentials(settings, credentials)))


def maintain_accounts(settings: Settings, now: Any = None) -> dict[str, list[str]]:
    """Run every enabled live account's channel upkeep (token refresh and renewal); returns
    "channel/name" -> warnings for ops (English), and keeps each account's warnings ([] when
    none) on its row for account health. One account's failure never stops the rest."""
    from datetime import datetime, timezone

    from channels import get_channel
    from services.db import session_scope

    now = now or datetime.now(timezone.utc)
    with session_scope() as session:
        accounts = [account_data(settings, a) for a in list_accounts(session, enabled_only=True)
                    if a.mode == AccountMode.LIVE.value]
    report: dict[str, list[str]] = {}
    for account in accounts:
        where = f"{account.channel}/{account.name}"
        try:
            warnings = get_channel(account.channel).maintain(account, now)
        except Exception as exc:  # noqa: BLE001 - a broken account must not hide the others
            warnings = [f"upkeep failed: {exc.__class__.__name__}: {exc}"]
        for warning in warnings:
            log.warning("account %s: %s", where, warning)
        record_upkeep(account.id, list(warnings), now)
        if warnings:
            report[where] = list(warnings)
    return report
