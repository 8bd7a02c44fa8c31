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


def test_editing_the_queue_explicit_schedules_gaps_and_release_by_hand(home, settings, storage, tmp_path):
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    start = today + timedelta(days=10)
    made = fanout("campaign", "add", "乐享太平 民生先行", "--label", "黄山市黄山区30项民生实事之{project}民生实事",
                  "--phase", f"执行期:{start.isoformat()}:{(start + timedelta(days=30)).isoformat()}",
                  "--focus-month", "5", "--focus-month", "11")
    assert made.returncode == 0, made.stderr
    bad_phase = fanout("campaign", "add", "坏活动", "--phase", "执行期-2026")
    assert bad_phase.returncode == 1 and "NAME:FROM:TO" in bad_phase.stderr
    bad_label = fanout("campaign", "add", "坏模板", "--label", "{county}民生实事")
    assert bad_label.returncode == 1 and "may use only" in bad_label.stderr
    listed = json.loads(fanout("campaign", "list", "--json").stdout)
    assert [(c["name"], c["phases"][0]["name"], c["focus_months"]) for c in listed] == [
        ("乐享太平 民生先行", "执行期", [5, 11])]
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
    assert fanout("series", "add", "民生实事", "--campaign", "乐享太平 民生先行", "--kind", "图文", "--cadence",
                  "daily", "--start", start.isoformat(), "--count", "4", "--time", "09:00").returncode == 0
    ids = []
    for project in ("老旧小区改造", "农村公路提升"):
        with session_scope() as session:
            from services.stories import StoryInput, create_story

            ids.append(create_story(session, storage, StoryInput(
                title=f"{project}进展", body_markdown="正文。", theme="民生", project=project,
                campaign="乐享太平 民生先行"), actor=desk(session)["editor"]).id)
        approve(settings, storage, ids[-1])
    for story_id in ids:
        assert fanout("queue", str(story_id), "--series", "民生实事").returncode == 0
    slots = json.loads(fanout("series", "show", "民生实事", "--json").stdout)
    assert [(s["issue"], s["state"], s["story_id"]) for s in slots] == [
        (1, "filled", ids[0]), (2, "filled", ids[1]), (3, "open", None), (4, "open", None)]

    swapped = fanout("slot", "swap", str(slots[0]["id"]), str(slots[1]["id"]))
    assert swapped.returncode == 0 and f"story {ids[1]}" in swapped.stdout.splitlines()[0]
    moved = fanout("slot", "move", str(slots[0]["id"]), "--to", (start + timedelta(days=3)).isoformat())
    assert moved.returncode == 0 and "第4期" in moved.stdout and f"story {ids[1]}" in moved.stdout
    reordered = fanout("series", "reorder", "民生实事", str(ids[1]), str(ids[0]))
    assert reordered.returncode == 0, reordered.stderr
    assert reordered.stdout.splitlines() == [f"{(start + timedelta(days=1)).isoformat()} 第2期 story {ids[1]}",
                                             f"{(start + timedelta(days=3)).isoformat()} 第4期 story {ids[0]}"]
    unqueued = fanout("slot", "unqueue", str(slots[1]["id"]))
    assert unqueued.returncode == 0 and "open" in unqueued.stdout
    again = fanout("slot", "unqueue", str(slots[1]["id"]))
    assert again.returncode == 1 and "expected filled" in again.stderr

    when = f"{(today + timedelta(days=2)).isoformat()}T15:30"
    scheduled = fanout("schedule", str(ids[1]), "--at", when, "--account", "website/网站")
    assert scheduled.returncode == 0 and "定时发布" in scheduled.stdout and "15:30 filled" in scheduled.stdout
    past = fanout("schedule", str(ids[1]), "--at", "2020-01-01T08:00", "--account", "website/网站")
    assert past.returncode == 1 and "in the past" in past.stderr
    tick = fanout("tick", "--now", f"{(today + timedelta(days=2)).isoformat()}T15:31:00+08:00")
    assert tick.stdout.strip() == "released 1 slots (0 late), 0 missed"
    rows = json.loads(fanout("deliveries", "--story", str(ids[1]), "--json").stdout)
    assert [r["channel"] for r in rows] == ["website"]

    gaps = fanout("gaps", "--lead", "60", "--json")
    assert [g["issue"] for g in json.loads(gaps.stdout)] == [1, 2, 3]  # 第4期 holds ids[0]
    assert "0 open slots within 0 working days" in fanout("gaps", "--lead", "0").stdout

    release = fanout("slot", "release", str(slots[3]["id"]))  # a person releases 第4期 ahead of its day
    assert release.returncode == 0 and "released" in release.stdout
    assert len(json.loads(fanout("deliveries", "--story", str(ids[0]), "--json").stdout)) == 2
    empty = fanout("slot", "release", str(slots[2]["id"]))
    assert empty.returncode == 1 and "no story to release" in empty.stderr
