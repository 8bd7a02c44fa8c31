"""Account health against the database: token expiry, last success and error, outbox age,
the 视频号 login to renew — and what each makes the status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from services import account_health, dispatch
from services.accounts import add_account
from services.audit import events
from services.db import session_scope
from services.errors import ValidationError
from services.models import ChannelAccount, Delivery, utcnow
from services.users import create_user
from tests.helpers import RecordingQueue, approve, make_story


def test_health_rows_and_the_login_to_renew(home, settings, storage, tmp_path):
    now = utcnow()
    with session_scope() as session:
        site = add_account(session, settings, "website", "网站").id
        create_user(session, "ops1", roles=["ops"], password="pw-ops1-1234")
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)  # before the video-only accounts exist (an image story)
    with session_scope() as session:
        douyin = add_account(session, settings, "douyin", "区融媒抖音号", credentials={
            "client_key": "k", "access_token": "a", "refresh_token": "r", "open_id": "o",
            "refresh_expires_at": (now + timedelta(days=2)).isoformat()}).id
        channels = add_account(session, settings, "wechat_channels", "区融媒视频号").id
        weibo = add_account(session, settings, "weibo", "无凭据微博").id
    with session_scope() as session:
        created = dispatch.plan_publication(session, RecordingQueue(), story_id, account_ids=[site]).created
        session.execute(update(Delivery).where(Delivery.id == created[0]).values(
            state="failed", last_error="HTTP 500 five times", last_error_code="500", updated_at=now))
    with session_scope() as session:
        rows = {r.account.id: r for r in account_health.health(session, settings, now=now)}
    assert rows[site].status == "warn" and rows[site].last_error_code == "500"
    assert rows[douyin].status == "warn" and any("授权将于" in why for why in rows[douyin].reasons)
    assert rows[douyin].token_expires_at is not None and rows[douyin].has_credentials
    assert rows[weibo].status == "warn" and any("缺少接口凭据" in why for why in rows[weibo].reasons)
    assert rows[channels].status == "warn" and "未登记视频号扫码登录时间" in rows[channels].reasons

    with session_scope() as session:
        from services.users import find_user

        ops = find_user(session, "ops1")
        with pytest.raises(ValidationError):
            account_health.record_login(session, site, ops)
        account_health.record_login(session, channels, ops, now=now - timedelta(days=40))
    with session_scope() as session:
        stale = {r.account.id: r for r in account_health.health(session, settings, now=now)}[channels]
        assert stale.status == "bad" and "视频号登录已到期" in stale.reasons[0]
        account_health.record_login(session, channels, find_user(session, "ops1"), now=now)
    with session_scope() as session:
        fresh = {r.account.id: r for r in account_health.health(session, settings, now=now)}[channels]
        assert fresh.status == "ok" and fresh.login_due_at > now + timedelta(days=29)
        assert "account.login" in [e.action for e in events(session, limit=20)]
        assert session.get(ChannelAccount, channels).settings[account_health.LOGIN_SETTING]


def test_only_expiries_a_person_acts_on_warn_and_alert(home, settings):
    """公众号's 2-hour cached token and Douyin's access token are renewed by Fanout itself: they
    neither turn the account 注意 nor raise a token_expiry alert; Douyin's refresh token and a
    Weibo token's expires_at do."""
    from services import alerts

    now = utcnow()
    in_1h, in_2d = (now + timedelta(hours=1)).isoformat(), (now + timedelta(days=2)).isoformat()
    with session_scope() as session:
        gzh = add_account(session, settings, "wechat_mp", "黄山区发布", credentials={
            "appid": "wx1", "secret": "s", "access_token": "t", "access_token_expires_at": in_1h}).id
        douyin_ok = add_account(session, settings, "douyin", "抖音一", credentials={
            "client_key": "k", "access_token": "a", "refresh_token": "r", "open_id": "o",
            "access_expires_at": in_1h, "refresh_expires_at": (now + timedelta(days=25)).isoformat()}).id
        douyin_due = add_account(session, settings, "douyin", "抖音二", credentials={
            "client_key": "k", "access_token": "a", "refresh_token": "r", "open_id": "o",
            "access_expires_at": in_1h, "refresh_expires_at": in_2d}).id
        weibo = add_account(session, settings, "weibo", "微博", credentials={"access_token": "w", "expires_at": in_2d}).id
    with session_scope() as session:
        rows = {r.account.id: r for r in account_health.health(session, settings, now=now)}
        fired = {c.key for c in alerts.conditions(session, settings, now) if c.rule == "token_expiry"}
    assert rows[gzh].token_expires_at is None and rows[gzh].status == "ok", rows[gzh].reasons
    assert rows[douyin_ok].token_expires_at > now + timedelta(days=24) and rows[douyin_ok].status == "ok"
    assert rows[douyin_due].status == "warn" and rows[weibo].status == "warn"
    assert fired == {f"token_expiry:{douyin_due}:refresh_expires_at", f"token_expiry:{weibo}:expires_at"}
