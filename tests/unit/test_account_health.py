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


def test_upkeep_warnings_are_kept_shown_and_cleared(home, settings):
    """maintain() warnings, once only logged, are kept per account: the account turns 注意 with
    the warning listed, and the next clean upkeep clears it."""
    from datetime import datetime, timezone

    from services.accounts import account_data, maintain_accounts, store_credentials
    from tests.fakes.douyin import FakeDouyin

    now = datetime.now(timezone.utc)
    with FakeDouyin() as fake:
        creds = fake.issue()
        soon = (now + timedelta(hours=2)).isoformat(timespec="seconds")
        with session_scope() as session:
            broken = add_account(session, settings, "douyin", "乡镇抖音号", api_base=fake.url,
                                 credentials={**creds, "refresh_token": "rft.revoked", "access_expires_at": soon}).id
            site = add_account(session, settings, "website", "网站").id
        with session_scope() as session:
            before = {r.account.id: r for r in account_health.health(session, settings, now=now)}
        assert before[broken].upkeep_at is None and before[broken].upkeep_warnings == []
        report = maintain_accounts(settings, now)
        with session_scope() as session:
            stored = session.get(ChannelAccount, broken)
            assert stored.upkeep_warnings == report["douyin/乡镇抖音号"] and stored.upkeep_at == now
            rows = {r.account.id: r for r in account_health.health(session, settings, now=now)}
        row = rows[broken]
        assert row.status == "warn" and row.upkeep_warnings == report["douyin/乡镇抖音号"]
        assert "令牌维护提示 1 条（见“令牌维护”）" in row.reasons
        assert rows[site].upkeep_warnings == [] and rows[site].upkeep_at == now  # ran, said nothing
        assert all(creds["client_secret"] not in w for w in row.upkeep_warnings)

        with session_scope() as session:  # a person authorised the account again
            store_credentials(settings, broken, {**fake.issue(), "access_expires_at": soon})
        later = now + timedelta(minutes=1)
        assert maintain_accounts(settings, later) == {}
        with session_scope() as session:
            row = {r.account.id: r for r in account_health.health(session, settings, now=later)}[broken]
            assert account_data(settings, session.get(ChannelAccount, broken)).credentials["refresh_token"]
        assert row.upkeep_warnings == [] and row.upkeep_at == later and row.status == "ok", row.reasons


def test_quota_the_platforms_report_is_kept_and_judged(home, settings, storage, tmp_path):
    """公众号 (openapi/quota/get) and Weibo (rate_limit_status) say what is left when the hourly
    upkeep asks; a 45009 answer is none left until Shanghai midnight or the next post; the
    website never reports one."""
    from datetime import datetime, timezone

    from services.accounts import maintain_accounts
    from tests.fakes.wechat_mp import FakeWechatMp
    from tests.fakes.weibo import FakeWeibo

    now = datetime.now(timezone.utc)
    with FakeWechatMp() as mp, FakeWeibo() as weibo:
        mp.daily_quota, mp.submits = 100, 37
        weibo.posts_per_hour = 30
        with session_scope() as session:
            gzh = add_account(session, settings, "wechat_mp", "黄山区发布", api_base=mp.url,
                              credentials={"appid": mp.appid, "secret": mp.secret}).id
            wb = add_account(session, settings, "weibo", "黄山区微博", api_base=weibo.url,
                             credentials=weibo.credentials()).id
            site = add_account(session, settings, "website", "网站").id
        assert maintain_accounts(settings, now) == {}
        with session_scope() as session:
            rows = {r.account.id: r for r in account_health.health(session, settings, now=now)}
        assert rows[gzh].quota["remaining"] == 63 and rows[gzh].quota["limit"] == 100
        assert rows[gzh].quota["period"] == "day" and rows[gzh].quota_at is not None
        assert rows[gzh].quota_resets_at.utcoffset() is not None and rows[gzh].quota_resets_at > now
        assert not rows[gzh].quota_used_up and rows[gzh].status == "ok", rows[gzh].reasons
        assert (rows[wb].quota["remaining"], rows[wb].quota["limit"], rows[wb].quota["period"]) == (30, 30, "hour")
        assert rows[site].quota is None

        mp.inject("/cgi-bin/openapi/quota/get", 45009, "reach max api daily quota limit")
        maintain_accounts(settings, now)
        with session_scope() as session:
            row = {r.account.id: r for r in account_health.health(session, settings, now=now)}[gzh]
        assert row.quota["remaining"] == 0 and row.quota["source"] == "errcode 45009" and row.quota_used_up
        assert row.status == "warn" and any(why.startswith("平台调用配额已用尽") and "重置" in why for why in row.reasons)
        with session_scope() as session:
            tomorrow = {r.account.id: r for r in account_health.health(
                session, settings, now=row.quota_resets_at + timedelta(seconds=1))}[gzh]
        assert not tomorrow.quota_used_up  # the reset time has passed

    # A post that went out after the quota was seen used up means it is not used up any more.
    story_id = None
    with session_scope() as session:
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)
    with session_scope() as session:
        created = dispatch.plan_publication(session, RecordingQueue(), story_id, account_ids=[site]).created
        session.execute(update(ChannelAccount).where(ChannelAccount.id == gzh).values(
            quota={"remaining": 0, "resets_at": None, "source": "error 2190001"}, quota_at=now - timedelta(hours=1)))
        session.execute(update(Delivery).where(Delivery.id == created[0]).values(account_id=gzh))
    with session_scope() as session:
        before = {r.account.id: r for r in account_health.health(session, settings, now=now)}[gzh]
        session.execute(update(Delivery).where(Delivery.id == created[0]).values(state="published", published_at=now))
    with session_scope() as session:
        after = {r.account.id: r for r in account_health.health(session, settings, now=now)}[gzh]
    assert before.quota_used_up and not after.quota_used_up


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
