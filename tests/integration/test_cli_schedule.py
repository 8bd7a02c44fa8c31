"""The schedule commands as a person runs them: campaign and series laying out slots, queueing an
approved story (refused for a draft), `fanout tick --now`, freeze/resume. Dates are relative to
today (queueing looks for the next open slot from now); the official holiday rules are covered
against real calendar data in tests/unit/test_cadence.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.db import session_scope
from tests.helpers import add_site_accounts, approve, desk, make_story
from tests.integration.test_cli import fanout


def test_campaign_series_queue_tick_freeze(home, settings, storage, tmp_path):
    start = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=7)
    release = lambda minute: f"{start.isoformat()}T18:{minute:02d}:00+08:00"  # noqa: E731
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
    made = fanout("campaign", "add", "群众满意度提升行动", "--label", "群众满意度提升行动之{theme}篇",
                  "--from", start.isoformat(), "--theme", "基础教育")
    assert made.returncode == 0, made.stderr
    with session_scope() as session:
        draft = make_story(session, storage, tmp_path, title="草稿不能排期", campaign="群众满意度提升行动")
        ready = make_story(session, storage, tmp_path, title="国庆前的报道", campaign="群众满意度提升行动")
    approve(settings, storage, ready)
    added = fanout("series", "add", "短视频", "--campaign", "群众满意度提升行动", "--kind", "短视频",
                   "--cadence", "daily", "--start", start.isoformat(), "--count", "3", "--time", "18:30",
                   "--account", "website/网站")
    assert added.returncode == 0, added.stderr
    assert f"3 slots, first {start.isoformat()}" in added.stdout and "推出一期" in added.stdout
    listed = json.loads(fanout("series", "list", "--json").stdout)
    assert listed[0]["slots"] == {"open": 3} and listed[0]["holidays"] == "publish"
    bad = fanout("series", "add", "坏栏目", "--campaign", "群众满意度提升行动", "--kind", "图文", "--cadence", "daily",
                 "--start", start.isoformat(), "--time", "25:99")
    assert bad.returncode == 1 and "release time must be HH:MM" in bad.stderr

    refused = fanout("queue", str(draft), "--series", "短视频")
    assert refused.returncode == 3 and "not approved" in refused.stderr
    queued = fanout("queue", str(ready), "--series", "短视频")
    assert queued.returncode == 0 and queued.stdout.strip() == f"story {ready} queued: 短视频 第1期 {start.isoformat()} 18:30"

    admin = fanout("user", "add", "root1", "--role", "admin")
    assert admin.returncode == 0
    assert fanout("freeze", "--reason", "全国哀悼日", "--as", "root1").returncode == 0
    frozen = fanout("tick", "--now", release(31))
    assert frozen.stdout.strip() == "releases are frozen: nothing released"
    assert fanout("resume", "--as", "root1").returncode == 0
    ticked = fanout("tick", "--now", release(35))
    assert ticked.stdout.strip() == "released 1 slots (1 late), 0 missed", ticked.stdout + ticked.stderr
    again = fanout("tick", "--now", release(36))
    assert again.stdout.strip() == "released 0 slots (0 late), 0 missed"
    rows = json.loads(fanout("deliveries", "--story", str(ready), "--json").stdout)
    assert [r["channel"] for r in rows] == ["website"]  # only the series' account
    slots = json.loads(fanout("series", "list", "--json").stdout)[0]["slots"]
    assert slots == {"released": 1, "open": 2}
