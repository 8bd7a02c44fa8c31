"""The `fanout` command as a person runs it: real subprocesses, exit codes, one-line errors.

`fanout publish --wait` and `fanout demo` start embedded worker processes when none runs, and
must end with every delivery published and valid feeds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest

from tests.helpers import jpeg


def fanout(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def test_help_lists_every_command(home):
    result = fanout("--help")
    assert result.returncode == 0
    for command in ("up", "web", "worker", "beat", "db", "story", "account", "publish", "deliveries", "demo",
                    "user", "audit", "flower", "submit", "review", "status", "withdraw", "ask", "answer", "reapprove"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), command


@pytest.mark.parametrize("command", [("story", "import"), ("delivery", "retry"), ("report",)])
def test_a_subcommand_help_exits_zero_with_its_usage(home, command):
    result = fanout(*command, "--help")
    assert result.returncode == 0 and "error:" not in result.stderr
    assert re.match(rf"Usage: .* {' '.join(command)} \[OPTIONS\]", result.stdout), result.stdout


def test_accounts_never_show_credentials(home, tmp_path):
    secret_file = tmp_path / "wp.json"
    secret_file.write_text(json.dumps({"secret": "s3cr3t-value"}), encoding="utf-8")
    assert fanout("account", "add", "website", "县融媒体网站").returncode == 0
    added = fanout("account", "add", "rss", "订阅", "--credentials-file", str(secret_file), "--set", "feed_max_items=20")
    assert added.returncode == 0, added.stderr
    listed = fanout("account", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["channel"], r["name"], r["has_credentials"]) for r in rows] == [
        ("rss", "订阅", True), ("website", "县融媒体网站", False)]
    assert rows[0]["settings"] == {"feed_max_items": "20"}
    assert "s3cr3t-value" not in listed.stdout + listed.stderr
    duplicate = fanout("account", "add", "website", "县融媒体网站")
    assert duplicate.returncode == 1 and duplicate.stderr.strip() == "error: account website/县融媒体网站 already exists"
    unknown = fanout("account", "add", "myspace", "x")
    assert unknown.returncode == 1 and "unknown channel 'myspace'" in unknown.stderr


BAD_STORY_ADDS = [
    ("missing body file", lambda t: ["--title", "t", "--body-file", str(t / "none.md")], "body file not found"),
    ("empty title", lambda t: ["--title", " ", "--body-file", str(t / "body.md")], "title must not be empty"),
    ("non-image as image", lambda t: ["--title", "t", "--body-file", str(t / "body.md"), "--image", str(t / "body.md")],
     "body.md"),
    ("missing image", lambda t: ["--title", "t", "--body-file", str(t / "body.md"), "--image", str(t / "gone.jpg")],
     "file not found"),
    ("image as video", lambda t: ["--title", "t", "--body-file", str(t / "body.md"), "--video", str(t / "ok.jpg")],
     "expected a video"),
]


@pytest.mark.parametrize("case,args,message", BAD_STORY_ADDS, ids=[row[0] for row in BAD_STORY_ADDS])
def test_story_add_refuses_bad_input_with_one_line(home, tmp_path, case, args, message):
    (tmp_path / "body.md").write_text("正文", encoding="utf-8")
    jpeg(tmp_path / "ok.jpg")
    result = fanout("story", "add", *args(tmp_path))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert json.loads(fanout("story", "list", "--json").stdout) == []
    media = home / "media"
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


@pytest.mark.celery
def test_publish_wait_starts_embedded_workers_and_publishes_once(home, tmp_path):
    body = tmp_path / "body.md"
    body.write_text("# 小标题\n\n正文<script>alert(1)</script>[链接](javascript:alert(1))", encoding="utf-8")
    assert fanout("account", "add", "website", "网站").returncode == 0
    assert fanout("account", "add", "rss", "RSS").returncode == 0
    added = fanout("story", "add", "--title", "命令行发布", "--body-file", str(body),
                   "--image", str(jpeg(tmp_path / "pic.jpg")), "--alt", "配图说明", "--label", "群众满意度提升行动之测试篇")
    assert added.returncode == 0, added.stderr
    story_id = added.stdout.strip()
    assert story_id.isdigit()
    refused = fanout("publish", story_id)
    assert refused.returncode == 3, refused.stderr  # nothing unreviewed goes out
    assert refused.stderr.strip().splitlines() == [
        f"error: story {story_id} v1 is not approved (review state: draft); it needs 初审, 复审 and 终审 first"]
    for name, role, level in (("bianji", "editor", None), ("chushen", "reviewer", "1"), ("fushen", "reviewer", "2"),
                              ("zhongshen", "reviewer", "3")):
        made = fanout("user", "add", name, "--role", role, *(["--level", level] if level else []), "--unit", "县融媒体中心")
        assert made.returncode == 0 and re.search(r"^password: \S{12,}$", made.stdout, re.MULTILINE), made.stdout
    submitted = fanout("submit", story_id, "--as", "bianji")
    assert submitted.returncode == 0 and "submitted for 初审" in submitted.stdout, submitted.stderr
    skipped = fanout("review", story_id, "--as", "fushen", "--approve")
    assert skipped.returncode == 1 and "not a level-1 reviewer" in skipped.stderr
    for name in ("chushen", "fushen", "zhongshen"):
        signed = fanout("review", story_id, "--as", name, "--approve", "--comment", "同意", "--ack", "all")
        assert signed.returncode == 0, signed.stderr
    status = fanout("status", story_id)
    assert status.returncode == 0 and f"story {story_id} v1: approved (已通过三审)" in status.stdout
    assert all(f"{level} approve" in status.stdout for level in ("初审", "复审", "终审"))
    result = fanout("publish", story_id, "--wait", "--timeout", "240", timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "started embedded workers" in result.stderr
    assert result.stdout.count(" published ") == 2
    again = fanout("publish", story_id)
    assert again.returncode == 0 and "0 new deliveries, 2 already planned" in again.stdout
    rows = json.loads(fanout("deliveries", "--story", story_id, "--json").stdout)
    assert [r["state"] for r in rows] == ["published", "published"]
    page = (home / "site" / "stories" / story_id / "index.html").read_text(encoding="utf-8")
    assert "命令行发布" in page and "<script>alert" not in page
    assert "javascript:" not in page and "链接" in page  # the bad link is reduced to its text
    audit = fanout("audit", "--story", story_id, "--json")
    assert {"create", "submit", "approve", "publish"} <= {row["action"] for row in json.loads(audit.stdout)}


@pytest.mark.celery
def test_demo_builds_the_campaign_and_releases_the_first_day(home):
    start = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=3)).date()
    result = fanout("demo", "--timeout", "400", "--start", start.isoformat(), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "day 1 released: 2 stories" in result.stdout
    assert result.stdout.count(" published ") == 4  # issue 1 of both series, on the website and RSS
    site = Path(home) / "site"
    for name in ("feed.xml", "atom.xml"):
        parsed = feedparser.parse(str(site / name))
        assert parsed.bozo == 0, (name, parsed.get("bozo_exception"))
        assert len(parsed.entries) == 2
    index = (site / "index.html").read_text(encoding="utf-8")
    assert index.count('class="card"') == 2 and "群众满意度提升行动之基础教育篇" in index
    assert "短视频｜课后服务“5+2”全覆盖" in index and "<video" in (site / "index.html").read_text() + "".join(
        p.read_text(encoding="utf-8") for p in site.glob("**/*.html"))
    assert (Path(home) / "admin-password.txt").exists()
    series = {row["name"]: row for row in json.loads(fanout("series", "list", "--json").stdout)}
    assert set(series) == {"群众满意度提升系列图文报道", "群众满意度提升系列短视频"}
    for row in series.values():  # six themed issues a day apart from the start date, the first released
        assert row["start"] == start.isoformat() and row["slots"] == {"released": 1, "filled": 5}
    slots = json.loads(fanout("series", "show", "群众满意度提升系列图文报道", "--json").stdout)
    assert [s["day"] for s in slots] == [(start + timedelta(days=i)).isoformat() for i in range(6)]
    assert [s["release_at"][11:16] for s in slots] == ["08:00"] * 6
    again = fanout("demo", "--timeout", "200", timeout=300)  # idempotent: loads and releases nothing new
    assert again.returncode == 0 and again.stdout.count(" published ") == 4
    assert json.loads(fanout("series", "list", "--json").stdout)[0]["slots"] == {"released": 1, "filled": 5}


def test_failures_and_delivery_actions_from_the_cli(home, settings, storage, tmp_path):
    from sqlalchemy import update

    from services import dispatch
    from services.db import session_scope
    from services.models import Delivery
    from services.users import create_user
    from tests.helpers import RecordingQueue, add_site_accounts, approve, make_story

    with session_scope() as session:
        add_site_accounts(session, settings)
        create_user(session, "ops1", roles=["ops"], password="pw-ops1-1234")
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)
    with session_scope() as session:
        website_id, _rss = dispatch.plan_publication(session, RecordingQueue(), story_id).created
        session.execute(update(Delivery).where(Delivery.id == website_id).values(
            state="unknown", last_error="no answer in 30s after sending", last_error_code="unknown"))
    rows = json.loads(fanout("failures", "--json").stdout)
    assert [(r["id"], r["kind"], r["can_reconcile"]) for r in rows] == [(website_id, "unknown", True)]
    refused = fanout("delivery", "give-up", str(website_id), "--reason", "x", "--as", "editor")
    assert refused.returncode != 0 and "error:" in refused.stderr
    done = fanout("delivery", "give-up", str(website_id), "--reason", "平台确认未发出", "--as", "ops1")
    assert done.returncode == 0, done.stderr
    with session_scope() as session:
        delivery = session.get(Delivery, website_id)
        assert delivery.state == "failed" and "平台确认未发出" in delivery.last_error


def test_report_writes_the_quarterly_table(home, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "q4.xlsx"
    done = fanout("report", "--from", "2026-10-01", "--to", "2026-12-31", "--format", "xlsx", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "2026年第4季度" in done.stdout
    book = load_workbook(out)
    assert book[book.sheetnames[0]]["B2"].value == "责任单位"
    bad = fanout("report", "--from", "2026/10/01", "-o", str(tmp_path / "x.csv"), "--format", "csv")
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr and not (tmp_path / "x.csv").exists()
