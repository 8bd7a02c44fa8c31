"""Hourly account upkeep (beat → fanout.maintain_accounts → services.accounts.maintain_accounts):
a Douyin access token near expiry is refreshed against the platform and the new tokens are
stored encrypted; an account that cannot be kept alive gives ops a warning, not a crash."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.accounts import account_data, add_account, maintain_accounts
from services.db import session_scope
from services.models import ChannelAccount
from tests.fakes.douyin import FakeDouyin


def test_upkeep_refreshes_and_stores_tokens_and_warns_for_the_broken(home, settings):
    now = datetime.now(timezone.utc)
    with FakeDouyin() as fake:
        creds = fake.issue()
        soon = (now + timedelta(hours=2)).isoformat(timespec="seconds")
        with session_scope() as session:
            good = add_account(session, settings, "douyin", "区融媒抖音号", api_base=fake.url,
                               credentials={**creds, "access_expires_at": soon}).id
            add_account(session, settings, "douyin", "乡镇抖音号", api_base=fake.url,
                        credentials={**creds, "refresh_token": "rft.revoked", "access_expires_at": soon})
            add_account(session, settings, "douyin", "人工号", mode="outbox")  # no upkeep in outbox mode
        report = maintain_accounts(settings, now)
        with session_scope() as session:
            stored = account_data(settings, session.get(ChannelAccount, good)).credentials
            raw = session.get(ChannelAccount, good).credentials_encrypted
    assert stored["access_token"] != creds["access_token"]
    assert datetime.fromisoformat(stored["access_expires_at"]) > now + timedelta(days=14)
    assert stored["access_token"].encode() not in raw  # encrypted at rest
    assert list(report) == ["douyin/乡镇抖音号"], report
    assert all(creds["client_secret"] not in w for w in report["douyin/乡镇抖音号"])
