"""The ops dashboard in a real browser, against real workers and a platform fake.

Seeded: the desk, an ops user, two signed-webhook accounts on the loopback receiver
(tests/fakes/webhook.py), one approved story. The receiver refuses the first POST with an HTTP
400 (a permanent error), so after the release one delivery is `failed` and one `published` —
through the real workers and the real channel code. In the browser, ops opens 运维看板: the
totals and the per-channel table show those numbers (checked against the database), the
workers are listed. Ops opens 失败与异常, reads the platform's reason, clicks 重试; the workers
publish it; the dashboard, refreshing itself without a reload, then counts two published and
no failure; the worker table shows each worker's load, memory and finished tasks, the cache
card its hit rate. Then a 公众号 account (on its loopback fake) and a Douyin account whose
refresh token was revoked get the hourly upkeep: 账号状态 shows the 公众号's daily quota as the
fake reported it, the Douyin warning, and 平台未提供 for the webhooks. Screenshots of both pages
go to /tmp/ops-dashboard.png and /tmp/ops-accounts.png.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.e2e.conftest import assert_real_png
from tests.fakes.webhook import FakeWebhookReceiver
from tests.helpers import add_upkeep_accounts, approve, desk, make_story

pytestmark = [pytest.mark.browser, pytest.mark.celery]

SECRET = "e2e-ops-secret"
SHOT = Path("/tmp/ops-dashboard.png")
ACCOUNTS_SHOT = Path("/tmp/ops-accounts.png")


def _states() -> dict[str, int]:
    from services.db import session_scope
    from services.models import Delivery

    with session_scope() as session:
        return dict(session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all())


def _wait(predicate, timeout: float = 120) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; deliveries: {_states()}")
        time.sleep(0.3)


def test_ops_sees_the_numbers_retries_a_failure_and_sees_it_published(server: str, browser_page, workers,
                                                                       settings, storage, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    import worker
    from services import dispatch
    from services.accounts import add_account
    from services.db import session_scope
    from services.users import create_user

    with FakeWebhookReceiver(SECRET) as fake:
        with session_scope() as session:
            desk(session)
            create_user(session, "ops1", roles=["ops"], password="pw-ops1-123")
            for name in ("市融媒体平台", "省级聚合平台"):
                add_account(session, settings, "webhook", name, api_base=fake.hook_url, credentials={"secret": SECRET},
                            account_settings={"status_url": fake.status_url})
            story_id = make_story(session, storage, tmp_path, title="运维看板测试稿件")
        approve(settings, storage, story_id)
        fake.misbehave("status", path="/hooks/fanout", status=400, times=1)
        with session_scope() as session:
            dispatch.plan_publication(session, worker.task_queue(), story_id)
        _wait(lambda: _states() == {"failed": 1, "published": 1})

        page = browser_page
        page.goto(f"{server}/login")
        page.get_by_label("用户名").fill("ops1")
        page.get_by_label("密码").fill("pw-ops1-123")
        page.get_by_role("button", name="登录").click()
        page.get_by_role("link", name="运维看板", exact=True).click()
        panel = page.locator("#ops-panel")
        expect(panel.locator(".totals")).to_contain_text("已发布 1")
        expect(panel.locator(".totals")).to_contain_text("失败 1")
        row = panel.locator("table.by-channel tbody tr")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(0)).to_have_text("合作平台")
        expect(row.locator("td").nth(1)).to_have_text("1")  # published
        expect(row.locator("td").nth(3)).to_have_text("1")  # failed
        expect(panel).to_contain_text("publish")  # the publish worker is listed

        page.get_by_role("link", name="失败与异常").first.click()
        failure = page.locator("table.failures tbody tr")
        expect(failure).to_have_count(1)
        expect(failure).to_contain_text("HTTP 400")
        failure.get_by_role("button", name="重试").click()
        expect(page.locator("p.flash")).to_contain_text("已重试发布任务")
        _wait(lambda: _states() == {"published": 2})

        page.goto(f"{server}/ops")
        page.evaluate("window.fanoutRefreshOps()")  # the panel's own refresh, without a reload
        expect(panel.locator(".totals")).to_contain_text("已发布 2")
        expect(panel.locator(".totals")).not_to_contain_text("失败")
        workers_rows = panel.locator("table.workers tbody tr")
        expect(workers_rows).to_have_count(2)
        for i in range(2):  # load, memory and task counts from each worker's own heartbeat
            expect(workers_rows.nth(i).locator("td").nth(5)).to_contain_text("MB")
            expect(workers_rows.nth(i).locator("td").nth(4)).to_contain_text("核")
        expect(panel.locator("section.cache h2")).to_contain_text("命中率")
        page.screenshot(path=str(SHOT), full_page=True)
        assert_real_png(SHOT)
        assert max(fake.posts.values()) == 1 and len(fake.posts) == 2  # the retry posted once

    from services.accounts import maintain_accounts
    from tests.fakes.douyin import FakeDouyin
    from tests.fakes.wechat_mp import FakeWechatMp

    with FakeWechatMp() as mp, FakeDouyin() as douyin:
        mp.daily_quota, mp.submits = 100, 3
        with session_scope() as session:
            add_upkeep_accounts(session, settings, mp, douyin)
        report = maintain_accounts(settings)
    assert list(report) == ["douyin/乡镇抖音号"], report
    page.get_by_role("link", name="账号状态").click()
    rows = page.locator("table.accounts tbody tr")
    expect(rows).to_have_count(4)
    gzh = rows.filter(has_text="黄山区发布")
    expect(gzh.locator("td.quota")).to_contain_text("剩余 97 / 100 次（每天）")
    expect(gzh.locator(".badge")).to_have_text("正常")
    dy = rows.filter(has_text="乡镇抖音号")
    expect(dy.locator(".badge")).to_have_text("注意")
    expect(dy.locator("ul.upkeep-warnings li")).to_contain_text("could not refresh the access token")
    expect(rows.filter(has_text="市融媒体平台").locator("td.quota")).to_have_text("平台未提供")
    page.screenshot(path=str(ACCOUNTS_SHOT), full_page=True)
    assert_real_png(ACCOUNTS_SHOT)
