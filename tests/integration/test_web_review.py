"""The review (三审三校) web UI through FastAPI's TestClient, on the real review service.

Covers: the inbox per level and the nav badge follow a story as it moves; the whole flow
editor submit → 初审 → 复审 → 终审 through the web forms ends approved with the publish button
(the submission queues the preview warm-up, and a broker refusing it does not fail the
submission; the publish form plans deliveries); each rule refused with its Chinese message, status
403/422 and nothing changed — the author signing, one reviewer signing two levels, a stale
page signing a skipped level, a rejection without opinion, an unacknowledged warning (then
acknowledged: approved), a blocking sensitive word; rejection shown to the author with its
opinion; withdrawal before the first sign-off only; escalation and answer; the preview
iframes are sandboxed without scripts and load their media through the token route only;
the version diff after editing an approved story; the audit page; the proofing word lists
(admin only, validated, audited); the JSON review API and publish-before-approval → 409;
re-approving a held channel.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from tests.helpers import RecordingQueue, approve, desk, jpeg, make_story

SENSITIVE = "违规示例词"

pytestmark = pytest.mark.usefixtures("queue")  # every test records what the app sends


# --------------------------------------------------------------------------- fixtures & helpers


@pytest.fixture
def story_id(settings, storage, tmp_path: Path) -> int:  # noqa: ANN001
    """The desk (editor, r1, r2, r3), a website and an RSS account, and one draft story."""
    from services.accounts import add_account
    from services.db import session_scope

    with session_scope() as session:
        desk(session)
        add_account(session, settings, "website", "县融媒体中心网站")
        add_account(session, settings, "rss", "县融媒体中心订阅")
        return make_story(session, storage, tmp_path, title="城区新增公办学位1200个",
                          body="今年秋季学期，城区新增公办学位。\n\n第二段：新建两所学校。\n\n第三段。")


def add_user(name: str, roles: list[str], levels: list[int] | None = None) -> None:
    from services.db import session_scope
    from services.users import create_user

    with session_scope() as session:
        create_user(session, name, roles=roles, levels=levels, password=f"pw-{name}-123")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "page carries no CSRF token"
    return match.group(1)


def client_for(app, name: str) -> TestClient:  # noqa: ANN001
    """A browser of its own, logged in as `name` (password pw-<name>-123)."""
    client = TestClient(app)
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": f"pw-{name}-123", "csrf": token,
                                           "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def post_form(client: TestClient, page: str, action: str, data: dict[str, Any] | None = None) -> Any:
    """POST a form the way a browser does: CSRF token taken from the page it is on."""
    form = {"csrf": csrf_of(client.get(page).text), **(data or {})}
    return client.post(action, data=form, follow_redirects=False)


def sign(client: TestClient, story: int, decision: str, opinion: str = "", ack: tuple[str, ...] = (),
         level: int | None = None) -> Any:
    """Sign from the review page; `level` defaults to the one the page shows (the hidden field)."""
    page = client.get(f"/review/{story}").text
    if level is None:
        match = re.search(r'name="level" value="(\d)"', page)
        assert match, "the review page shows no sign form"
        level = int(match.group(1))
    data = {"csrf": csrf_of(page), "decision": decision, "opinion": opinion, "ack": list(ack), "level": str(level)}
    return client.post(f"/review/{story}/sign", data=data, follow_redirects=False)


def status(story: int) -> dict[str, Any]:
    from services import review
    from services.db import session_scope

    with session_scope() as session:
        return review.status(session, story)


def snapshot(story: int) -> tuple[str, int, int]:
    """What a refused action must leave unchanged: state, number of signatures, round."""
    current = status(story)
    return current["review_state"], len(current["signatures"]), current["round"]


def alert_of(html: str) -> str:
    match = re.search(r'<p class="error banner" role="alert">(.*?)</p>', html, re.S)
    assert match, "the page shows no error message"
    return match.group(1)


def submit(app, story: int, as_user: str = "editor") -> None:  # noqa: ANN001
    response = post_form(client_for(app, as_user), f"/stories/{story}", f"/stories/{story}/submit")
    assert response.status_code == 303, response.text
    assert status(story)["review_state"] == "submitted"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def tags(html: str, name: str) -> list[dict[str, str | None]]:
    parser = _Tags()
    parser.feed(html)
    return [attrs for tag, attrs in parser.found if tag == name]


def section_count(html: str, level: int) -> int:
    match = re.search(rf'id="level-{level}-title">[^<]*<span class="count(?: zero)?">(\d+)</span>', html)
    assert match, f"no section for level {level}"
    return int(match.group(1))


def nav_badge(html: str) -> int:
    match = re.search(r'class="nav-review">审核(?: <span class="count"[^>]*>(\d+)</span>)?</a>', html)
    assert match, "no 审核 link in the nav"
    return int(match.group(1) or 0)


# --------------------------------------------------------------------------- inbox & the whole flow


def test_inbox_counts_follow_the_story(app, story_id: int) -> None:  # noqa: ANN001
    r1, r2, r3 = (client_for(app, n) for n in ("r1", "r2", "r3"))
    inbox = r1.get("/review").text
    assert section_count(inbox, 1) == 0 and "没有等待初审的稿件" in inbox
    assert "全部待审：初审 0 篇 · 复审 0 篇 · 终审 0 篇" in inbox

    submit(app, story_id)
    inbox = r1.get("/review").text
    assert section_count(inbox, 1) == 1 and nav_badge(inbox) == 1
    assert "全部待审：初审 1 篇 · 复审 0 篇 · 终审 0 篇" in inbox
    row = re.search(r'<tr>\s*<td>%d</td>.*?</tr>' % story_id, inbox, re.S).group(0)
    assert "城区新增公办学位1200个" in row and "群众满意度提升行动之测试篇" in row  # title, label
    assert "editor" in row and "无问题" in row  # author; no findings
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", row), "submitted time"
    assert nav_badge(r2.get("/review").text) == 0 and section_count(r2.get("/review").text, 2) == 0

    assert sign(r1, story_id, "approve", "同意").status_code == 303
    assert section_count(r1.get("/review").text, 1) == 0
    inbox = r2.get("/review").text
    assert section_count(inbox, 2) == 1 and nav_badge(inbox) == 1
    assert "全部待审：初审 0 篇 · 复审 1 篇 · 终审 0 篇" in inbox

    assert sign(r2, story_id, "approve", "同意").status_code == 303
    assert section_count(r2.get("/review").text, 2) == 0 and section_count(r3.get("/review").text, 3) == 1
    assert sign(r3, story_id, "approve", "同意").status_code == 303
    inbox = r3.get("/review").text
    assert section_count(inbox, 3) == 0 and nav_badge(inbox) == 0
    assert "全部待审：初审 0 篇 · 复审 0 篇 · 终审 0 篇" in inbox


def test_full_flow_through_the_forms_ends_with_the_publish_button(app, story_id: int,  # noqa: ANN001
                                                                  queue: RecordingQueue) -> None:
    from services import review
    from services.db import session_scope

    editor = client_for(app, "editor")
    page = editor.get(f"/stories/{story_id}").text
    assert "草稿" in page and "提交审核" in page
    assert "通过三审后才能发布" in page and "发布到全部渠道" not in page
    response = post_form(editor, f"/stories/{story_id}", f"/stories/{story_id}/submit")
    assert response.status_code == 303
    page = editor.get(f"/stories/{story_id}").text
    assert "已提交审核，等待初审" in page and "待初审" in page and "等待初审" in page
    assert "发布到全部渠道" not in page
    with session_scope() as session:
        assert queue.of("prepare_review") == [review.current_version(session, story_id)[1].id], \
            "the submission warms the previews on the media queue"

    listing = editor.get("/").text
    assert '<span class="badge review-submitted">待初审</span>' in listing

    for name, level_zh, next_state in (("r1", "初审", "待复审"), ("r2", "复审", "待终审"), ("r3", "终审", "已通过三审")):
        reviewer = client_for(app, name)
        review_page = reviewer.get(f"/review/{story_id}").text
        assert f"当前等待：<strong>{level_zh}</strong>" in review_page
        response = sign(reviewer, story_id, "approve", f"{level_zh}同意")
        assert response.status_code == 303 and response.headers["location"] == f"/review/{story_id}"
        after = reviewer.get(f"/review/{story_id}").text
        assert f"已签署{level_zh}：通过" in after and next_state in after

    current = status(story_id)
    assert current["review_state"] == "approved"
    assert [(s["level"], s["reviewer"], s["decision"]) for s in current["signatures"]] == [
        (1, "r1", "approve"), (2, "r2", "approve"), (3, "r3", "approve")]
    page = editor.get(f"/stories/{story_id}").text
    assert "已通过三审" in page and "发布到全部渠道" in page and "通过三审后才能发布" not in page
    for opinion in ("初审同意", "复审同意", "终审同意"):
        assert opinion in page  # the signatures on the story page
    assert '<span class="badge review-approved">已通过三审</span>' in editor.get("/").text

    response = post_form(editor, f"/stories/{story_id}", f"/stories/{story_id}/publish")
    assert response.status_code == 303
    assert len(queue.of("render")) == 2, "one delivery per account"


# --------------------------------------------------------------------------- refusals


def test_the_author_cannot_sign_their_own_story(app, settings, storage, tmp_path: Path) -> None:  # noqa: ANN001
    from sqlalchemy import select

    from services.db import session_scope
    from services.models import User
    from services.stories import MediaInput, StoryInput, create_story

    add_user("author1", ["editor", "reviewer"], [1])
    with session_scope() as session:
        desk(session)
        author = session.scalar(select(User).where(User.username == "author1"))
        story = create_story(session, storage, StoryInput(
            title="作者自审测试", body_markdown="正文。",
            media=[MediaInput(path=jpeg(tmp_path / "c.jpg"), role="cover", alt="封面")]), actor=author)
        own = story.id
    submit(app, own, as_user="author1")
    client = client_for(app, "author1")
    assert section_count(client.get("/review").text, 1) == 0, "the inbox leaves out one's own stories"
    page = client.get(f"/review/{own}").text
    assert "作者不能审核自己的稿件" in page and 'id="sign-form"' not in page
    before = snapshot(own)
    response = sign(client, own, "approve", "自己通过", level=1)
    assert response.status_code == 403
    assert alert_of(response.text) == "作者不能审核自己的稿件"
    assert snapshot(own) == before


def test_one_reviewer_cannot_sign_two_levels(app, story_id: int) -> None:  # noqa: ANN001
    add_user("r12", ["reviewer"], [1, 2])
    submit(app, story_id)
    client = client_for(app, "r12")
    assert sign(client, story_id, "approve", "同意").status_code == 303
    assert status(story_id)["review_state"] == "level1"
    page = client.get(f"/review/{story_id}").text
    assert "您已签署本版本的初审" in page and 'id="sign-form"' not in page
    before = snapshot(story_id)
    response = sign(client, story_id, "approve", "再签复审", level=2)
    assert response.status_code == 403
    assert alert_of(response.text) == "您已签署本版本的初审，三审须由三位不同的审核人完成"
    assert snapshot(story_id) == before


def test_a_stale_page_cannot_sign_a_skipped_level(app, story_id: int) -> None:  # noqa: ANN001
    submit(app, story_id)
    before = snapshot(story_id)
    response = sign(client_for(app, "r3"), story_id, "approve", "越级", level=3)
    assert response.status_code == 422
    assert alert_of(response.text) == "稿件正在等待初审，不能越级签署终审"
    assert snapshot(story_id) == before
    # r1's page was loaded while waiting for 初审; r1 signs; the same page posted again is stale
    r1 = client_for(app, "r1")
    assert sign(r1, story_id, "approve", "同意").status_code == 303
    response = sign(r1, story_id, "approve", "再来一次", level=1)
    assert response.status_code == 422
    assert alert_of(response.text) == "稿件正在等待复审，不能越级签署初审"
    assert len(status(story_id)["signatures"]) == 1


def test_a_rejection_needs_an_opinion_and_reaches_the_author(app, story_id: int) -> None:  # noqa: ANN001
    submit(app, story_id)
    r1 = client_for(app, "r1")
    before = snapshot(story_id)
    response = sign(r1, story_id, "reject", "   ")
    assert response.status_code == 422
    assert alert_of(response.text) == "退回稿件须填写审核意见"
    assert snapshot(story_id) == before

    assert sign(r1, story_id, "reject", "标题数字需核实，请补充来源").status_code == 303
    assert status(story_id)["review_state"] == "rejected"
    editor = client_for(app, "editor")
    page = editor.get(f"/stories/{story_id}").text
    box = re.search(r'<div class="card rejected".*?</div>', page, re.S)
    assert box, "the rejection is shown prominently"
    assert "稿件被初审退回" in box.group(0) and "标题数字需核实，请补充来源" in box.group(0)
    assert "已退回" in page and "重新提交审核" in page and "通过三审后才能发布" in page
    assert post_form(editor, f"/stories/{story_id}", f"/stories/{story_id}/submit").status_code == 303
    assert status(story_id)["round"] == 2 and status(story_id)["review_state"] == "submitted"


def test_a_warning_must_be_acknowledged(app, settings, storage, tmp_path: Path) -> None:  # noqa: ANN001
    from services.db import session_scope
    from services.stories import MediaInput, StoryInput, create_story

    with session_scope() as session:
        users = desk(session)
        story = create_story(session, storage, StoryInput(
            title="缺少替代文字的稿件", body_markdown="正文。",
            media=[MediaInput(path=jpeg(tmp_path / "c.jpg"), role="cover", alt="")]), actor=users["editor"])
        story_id = story.id
    submit(app, story_id)
    r1 = client_for(app, "r1")
    page = r1.get(f"/review/{story_id}").text
    assert "第 1 张图片（封面图）缺少替代文字" in page
    boxes = [a for a in tags(page, "input") if a.get("name") == "ack"]
    assert [(b["type"], b["value"], b["form"]) for b in boxes] == [("checkbox", "alt:1", "sign-form")]
    assert "我已确认" in page
    assert "1 个提示" in r1.get("/review").text

    before = snapshot(story_id)
    response = sign(r1, story_id, "approve", "同意")
    assert response.status_code == 422
    assert alert_of(response.text) == "以下提示需确认后才能签署：第 1 张图片（封面图）缺少替代文字"
    assert snapshot(story_id) == before
    assert "同意" in response.text, "the opinion typed is kept"

    assert sign(r1, story_id, "approve", "同意", ack=("alt:1",)).status_code == 303
    current = status(story_id)
    assert current["review_state"] == "level1" and current["signatures"][0]["acknowledged"] == ["alt:1"]


def test_a_blocking_finding_stops_approval(app, settings, storage, tmp_path: Path) -> None:  # noqa: ANN001
    from services import proofing
    from services.db import session_scope

    proofing.write_word_list(settings, "sensitive", f"# 测试词表\n{SENSITIVE}\n")
    with session_scope() as session:
        desk(session)
        story_id = make_story(session, storage, tmp_path, body=f"正文提到了{SENSITIVE}这个词。")
    submit(app, story_id)
    r1 = client_for(app, "r1")
    assert "1 个必须修改" in r1.get("/review").text
    page = r1.get(f"/review/{story_id}").text
    finding = re.search(r'<li class="finding block">.*?</li>', page, re.S)
    assert finding and f"含敏感词“{SENSITIVE}”（1 处）" in finding.group(0)
    assert "只能退回" in page
    before = snapshot(story_id)
    response = sign(r1, story_id, "approve", "同意")
    assert response.status_code == 422
    assert alert_of(response.text) == f"存在必须修改的问题：含敏感词“{SENSITIVE}”（1 处）"
    assert snapshot(story_id) == before
    assert sign(r1, story_id, "reject", f"请删除“{SENSITIVE}”").status_code == 303, "rejecting still works"


# --------------------------------------------------------------------------- withdraw, questions


def test_a_broker_that_refuses_the_warm_up_does_not_fail_the_submission(app, story_id: int,  # noqa: ANN001
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from services.web import app as web_app

    class DownBroker(RecordingQueue):
        def prepare_review(self, version_id: int) -> None:
            raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(web_app, "_queue", DownBroker)
    response = post_form(client_for(app, "editor"), f"/stories/{story_id}", f"/stories/{story_id}/submit")
    assert response.status_code == 303
    assert status(story_id)["review_state"] == "submitted"
    response = TestClient(app).post(f"/api/stories/{story_id}/withdraw", auth=("editor", "pw-editor-123"))
    assert response.status_code == 200 and response.json()["review_state"] == "draft"
    response = TestClient(app).post(f"/api/stories/{story_id}/submit", auth=("editor", "pw-editor-123"))
    assert response.status_code == 200 and response.json()["review_state"] == "submitted"


def test_withdraw_only_before_the_first_sign_off(app, story_id: int) -> None:  # noqa: ANN001
    editor = client_for(app, "editor")
    submit(app, story_id)
    page = editor.get(f"/stories/{story_id}").text
    assert f'action="/stories/{story_id}/withdraw"' in page
    assert post_form(editor, f"/stories/{story_id}", f"/stories/{story_id}/withdraw").status_code == 303
    assert status(story_id)["review_state"] == "draft"
    assert "已撤回，稿件回到草稿状态" in editor.get(f"/stories/{story_id}").text

    submit(app, story_id)
    assert sign(client_for(app, "r1"), story_id, "approve", "同意").status_code == 303
    page = editor.get(f"/stories/{story_id}").text
    assert f'action="/stories/{story_id}/withdraw"' not in page
    before = snapshot(story_id)
    response = post_form(editor, f"/stories/{story_id}", f"/stories/{story_id}/withdraw")
    assert response.status_code == 422
    assert alert_of(response.text) == "稿件已开始审核，不能撤回"
    assert snapshot(story_id) == before
    response = post_form(client_for(app, "r2"), f"/stories/{story_id}", f"/stories/{story_id}/withdraw")
    assert response.status_code == 403 and alert_of(response.text) == "只有作者可以撤回稿件"


def test_escalate_and_answer(app, story_id: int) -> None:  # noqa: ANN001
    submit(app, story_id)
    r1, r2 = client_for(app, "r1"), client_for(app, "r2")
    assert "向复审请示" in r1.get(f"/review/{story_id}").text
    response = post_form(r1, f"/review/{story_id}", f"/review/{story_id}/ask", {"question": "  "})
    assert response.status_code == 422 and alert_of(response.text) == "请示内容不能为空"

    question = "第二段的学校名称是否需要写全称？"
    response = post_form(r1, f"/review/{story_id}", f"/review/{story_id}/ask", {"question": question})
    assert response.status_code == 303
    assert "已向复审请示" in r1.get(f"/review/{story_id}").text
    inbox = r2.get("/review").text
    assert "待我答复的请示" in inbox and question in inbox
    assert question not in r1.get("/review").text, "nothing is addressed to 初审"
    page = r2.get(f"/review/{story_id}").text
    forms = [a["action"] for a in tags(page, "form") if "/answer" in (a.get("action") or "")]
    assert len(forms) == 1
    assert not [a for a in tags(r1.get(f"/review/{story_id}").text, "form") if "/answer" in (a.get("action") or "")]

    response = post_form(r1, f"/review/{story_id}", forms[0], {"answer": "初审不能答复"})
    assert response.status_code == 403 and alert_of(response.text) == "只有复审审核人可以答复"
    response = post_form(r2, f"/review/{story_id}", forms[0], {"answer": "写全称：城区第一实验小学"})
    assert response.status_code == 303
    page = r1.get(f"/review/{story_id}").text
    assert "写全称：城区第一实验小学" in page and "等待复审答复" not in page
    assert "待我答复的请示" not in r2.get("/review").text
    questions = status(story_id)["questions"]
    assert [(q["asked_by"], q["answered_by"]) for q in questions] == [("r1", "r2")]


# --------------------------------------------------------------------------- preview & diff


def test_previews_are_sandboxed_iframes_without_scripts(app, settings, storage, tmp_path: Path) -> None:  # noqa: ANN001
    from services import review
    from services.accounts import add_account
    from services.db import session_scope
    from services.stories import MediaInput, StoryInput, create_story

    with session_scope() as session:
        users = desk(session)
        add_account(session, settings, "website", "网站")
        add_account(session, settings, "rss", "订阅")
        story_id = create_story(session, storage, StoryInput(
            title='预览"测试"<b>粗</b>', summary="摘要",
            body_markdown="第一段。\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n末段。",
            media=[MediaInput(path=jpeg(tmp_path / "c.jpg"), role="cover", alt="封面")]), actor=users["editor"]).id
    submit(app, story_id)
    r1 = client_for(app, "r1")
    page = r1.get(f"/review/{story_id}").text
    assert "<script" not in page.lower() and "onerror=" not in page.lower()
    frames = tags(page, "iframe")
    assert len(frames) == 2
    for frame in frames:
        assert "sandbox" in frame and frame["sandbox"] is not None
        assert "allow-scripts" not in frame["sandbox"] and "allow-same-origin" not in frame["sandbox"]
        doc = frame["srcdoc"] or ""
        assert '预览&#34;测试&#34;&lt;b&gt;粗&lt;/b&gt;' in doc or "预览&quot;测试&quot;&lt;b&gt;粗&lt;/b&gt;" in doc
        assert "<script" not in doc.lower() and "onerror" not in doc.lower()
        policies = [m["content"] for m in tags(doc, "meta") if m.get("http-equiv") == "Content-Security-Policy"]
        assert len(policies) == 1 and "script-src 'none'" in policies[0]
        assert "第一段。" in doc and "末段。" in doc

    with session_scope() as session:
        _story, version = review.current_version(session, story_id)
        hashes = {p.account.channel: p.post_hash for p in review.previews(session, settings, storage, version)}
    for channel in ("website", "rss"):
        assert f"<code title=\"发布内容的 sha256\">{hashes[channel][:12]}</code>" in page

    # the website frame's media and stylesheet load through the preview route, without cookies
    website = next(f["srcdoc"] for f in frames if "story-page" in (f["srcdoc"] or ""))
    base = re.search(r'<base href="([^"]+)">', website).group(1)
    anonymous = TestClient(app)
    image = re.search(r'<img src="([^"]+)"', website).group(1)
    response = anonymous.get(urljoin(base, image))
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"
    css = re.search(r'<link rel="stylesheet" href="([^"]+)"', website).group(1)
    assert anonymous.get(urljoin(base, css).split("?")[0]).headers["content-type"].startswith("text/css")
    forged = re.sub(r"/preview/(\d+)/[0-9a-f]+/", r"/preview/\1/" + "0" * 32 + "/", urljoin(base, image))
    assert anonymous.get(forged).status_code == 404
    other_version = re.sub(r"/preview/(\d+)/", lambda m: f"/preview/{int(m.group(1)) + 1}/", urljoin(base, image))
    assert anonymous.get(other_version).status_code == 404
    assert anonymous.get(urljoin(base, "../../_data/website.json")).status_code == 404


def test_the_diff_shows_the_edit_after_approval(app, settings, storage, story_id: int) -> None:  # noqa: ANN001
    from services.db import session_scope
    from services.stories import StoryInput, edit_story

    submit(app, story_id)
    assert "无已通过的旧版本" in client_for(app, "r1").get(f"/review/{story_id}").text
    with session_scope() as session:  # back to draft, then through the real review
        from services import review

        review.withdraw(session, story_id, desk(session)["editor"])
    approve(settings, storage, story_id)
    with session_scope() as session:
        edit_story(session, storage, story_id, StoryInput(
            title="城区新增公办学位1300个", summary="摘要", theme="基础教育", unit="县教育局",
            label="群众满意度提升行动之测试篇",
            body_markdown="今年秋季学期，城区新增公办学位。\n\n第二段：新建三所学校。\n\n第三段。"),
            actor=desk(session)["editor"])
    submit(app, story_id)
    page = client_for(app, "r1").get(f"/review/{story_id}").text
    assert "第 1 版（已通过） → 第 2 版" in page and "无已通过的旧版本" not in page
    diff = page[page.index('id="diff-title"'):page.index('id="signatures-title"')]
    assert "<del>2</del>" in diff and "<ins>3</ins>" in diff  # title 1200 → 1300
    assert "<del>两</del>" in diff and "<ins>三</ins>" in diff  # body: 两所 → 三所
    assert re.search(r'<tr class="change"><td class="no">3</td><td class="old">第二段：新建<del>两</del>所学校。</td>'
                     r'<td class="no">3</td><td class="new">第二段：新建<ins>三</ins>所学校。</td></tr>', diff)
    assert "未修改" in diff  # label and summary


# --------------------------------------------------------------------------- audit & proofing word lists


def test_the_audit_page_lists_the_review(app, story_id: int) -> None:  # noqa: ANN001
    add_user("admin1", ["admin"])
    add_user("ops1", ["ops"])
    submit(app, story_id)
    r1 = client_for(app, "r1")
    assert sign(r1, story_id, "approve", "同意").status_code == 303
    assert sign(client_for(app, "r2"), story_id, "reject", "图片说明有误").status_code == 303

    admin = client_for(app, "admin1")
    page = admin.get(f"/audit?story={story_id}").text
    rows = re.findall(r'<tr class="action-(\w+)">(.*?)</tr>', page, re.S)
    assert [a for a, _ in rows] == ["reject", "approve", "submit", "create"]
    text = {a: body for a, body in rows}
    assert "提交审核" in text["submit"] and "审核通过" in text["approve"] and "审核退回" in text["reject"]
    assert "r2" in text["reject"] and "图片说明有误" in text["reject"] and "第 1 版" in text["reject"]
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text["submit"])
    everything = client_for(app, "ops1").get("/audit").text
    assert "登录" in everything and everything.count('class="action-') > len(rows)
    assert 'href="/audit"' in everything and 'href="/admin/proofing"' not in everything  # ops nav
    assert 'href="/admin/proofing"' in page  # admin nav
    for name in ("editor", "r1"):
        response = client_for(app, name).get("/audit")
        assert response.status_code == 403, name
        assert 'href="/audit"' not in client_for(app, name).get("/").text


def test_proofing_word_lists_are_admin_only_validated_and_audited(app, settings, home: Path) -> None:  # noqa: ANN001
    from services import audit, proofing
    from services.db import session_scope

    add_user("admin1", ["admin"])
    with session_scope() as session:
        desk(session)
    for name in ("editor", "r1"):
        client = client_for(app, name)
        assert client.get("/admin/proofing").status_code == 403
        response = post_form(client, "/", "/admin/proofing", {"name": "sensitive", "text": "坏词\n"})
        assert response.status_code == 403
    assert SENSITIVE not in proofing.read_word_list(settings, "sensitive")

    admin = client_for(app, "admin1")
    page = admin.get("/admin/proofing").text
    assert "敏感词" in page and "易错字" in page and "再接再励→再接再厉" in page
    assert len([t for t in tags(page, "textarea") if t.get("name") == "text"]) == 2

    response = post_form(admin, "/admin/proofing", "/admin/proofing",
                         {"name": "sensitive", "text": f"# 本中心敏感词\n{SENSITIVE}\n另一个词\n"})
    assert response.status_code == 303
    assert SENSITIVE in proofing.read_word_list(settings, "sensitive")
    assert "已保存敏感词表（2 条）" in admin.get("/admin/proofing").text

    typos_before = proofing.read_word_list(settings, "typos")
    response = post_form(admin, "/admin/proofing", "/admin/proofing", {"name": "typos", "text": "没有箭头的一行\n"})
    assert response.status_code == 422
    assert alert_of(response.text).startswith("错别字表第 1 行格式应为“错→对”")
    assert "没有箭头的一行" in response.text, "the text typed is kept"
    assert proofing.read_word_list(settings, "typos") == typos_before

    with session_scope() as session:
        events = [e for e in audit.events(session) if e.action == "proofing"]
        assert [(e.actor_name, e.object_type, e.object_id) for e in events] == [("admin1", "wordlist", "sensitive")]
        assert "2 entries" in events[0].summary


# --------------------------------------------------------------------------- JSON API


def test_review_api(app, story_id: int) -> None:  # noqa: ANN001
    add_user("admin1", ["admin"])
    client = TestClient(app)
    editor, r1, r2 = ("editor", "pw-editor-123"), ("r1", "pw-r1-123"), ("r2", "pw-r2-123")

    assert client.post(f"/api/stories/{story_id}/submit", auth=r1).status_code == 403
    response = client.post(f"/api/stories/{story_id}/submit", auth=editor)
    assert response.status_code == 200, response.text
    assert response.json()["review_state"] == "submitted" and response.json()["findings"] == []
    body = client.get(f"/api/stories/{story_id}/review", auth=r1).json()
    assert body["waiting_for"] == "初审" and body["review_state_zh"] == "待初审"

    response = client.post(f"/api/stories/{story_id}/review", auth=r2, json={"decision": "approve", "level": 2})
    assert response.status_code == 422 and response.json()["detail_zh"] == "稿件正在等待初审，不能越级签署复审"
    response = client.post(f"/api/stories/{story_id}/review", auth=r1, json={"decision": "reject"})
    assert response.status_code == 422 and response.json()["detail_zh"] == "退回稿件须填写审核意见"
    response = client.post(f"/api/stories/{story_id}/review", auth=editor,
                           json={"decision": "approve", "acknowledge": "all"})
    assert response.status_code == 403 and "detail_zh" in response.json()
    assert client.post(f"/api/stories/{story_id}/review", auth=r1, json={"decision": "maybe"}).status_code == 422

    response = client.post(f"/api/stories/{story_id}/review", auth=r1,
                           json={"decision": "approve", "opinion": "同意", "acknowledge": "all", "level": 1})
    assert response.status_code == 200, response.text
    assert response.json()["review_state"] == "level1"
    assert [(s["level_zh"], s["reviewer"]) for s in response.json()["signatures"]] == [("初审", "r1")]

    response = client.post(f"/api/stories/{story_id}/publish", auth=editor)
    assert response.status_code == 409
    assert "尚未通过三审" in response.json()["detail_zh"] and "not approved" in response.json()["detail"]

    assert client.get(f"/api/audit?story_id={story_id}", auth=editor).status_code == 403
    events = client.get(f"/api/audit?story_id={story_id}", auth=("admin1", "pw-admin1-123")).json()
    assert [e["action"] for e in events] == ["approve", "submit", "create"]
    assert events[0]["actor"] == "r1" and events[0]["story_version"] == 1

    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/stories/{story_id}/submit", "/api/stories/{story_id}/review", "/api/audit"):
        assert path in paths, path


def test_publish_api_refuses_an_unapproved_story(app, story_id: int) -> None:  # noqa: ANN001
    client = TestClient(app)
    response = client.post(f"/api/stories/{story_id}/publish", auth=("editor", "pw-editor-123"))
    assert response.status_code == 409
    assert response.json()["detail_zh"] == f"稿件 {story_id} 第 1 版尚未通过三审（当前：草稿），不能发布"
    response = post_form(client_for(app, "editor"), f"/stories/{story_id}", f"/stories/{story_id}/publish")
    assert response.status_code == 409 and "尚未通过三审" in response.text


# --------------------------------------------------------------------------- held channel


@pytest.fixture
def held_delivery(settings, storage, story_id: int) -> Iterator[int]:  # noqa: ANN001
    """An approved story whose website rendering no longer matches what 终审 signed."""
    from sqlalchemy import select

    from services import dispatch
    from services.db import session_scope
    from services.models import Signature

    approve(settings, storage, story_id)
    queue = RecordingQueue()
    with session_scope() as session:
        planned = dispatch.plan_publication(session, queue, story_id)
        final = session.scalar(select(Signature).where(Signature.level == 3))
        website = next(d for d in dispatch.deliveries_for(session, story_id=story_id)
                       if d.account.channel == "website")
        final.post_hashes = {**final.post_hashes, str(website.account_id): "0" * 64}
        delivery_id = website.id
    assert delivery_id in planned.created
    assert dispatch.render_delivery(settings, storage, queue, delivery_id, worker="test") == "held"
    yield delivery_id


def test_a_final_reviewer_reapproves_a_held_channel(app, story_id: int, held_delivery: int,  # noqa: ANN001
                                                    queue: RecordingQueue) -> None:
    from services import dispatch
    from services.db import session_scope

    button = f'action="/deliveries/{held_delivery}/reapprove"'
    editor = client_for(app, "editor")
    page = editor.get(f"/stories/{story_id}").text
    assert button not in page and "需终审重新审核此渠道" in page
    response = post_form(editor, f"/stories/{story_id}", f"/deliveries/{held_delivery}/reapprove")
    assert response.status_code == 403 and alert_of(response.text) == "只有终审审核人可以重新审核渠道内容"

    r3 = client_for(app, "r3")
    page = r3.get(f"/stories/{story_id}").text
    assert button in page and "重新审核此渠道" in page
    response = post_form(r3, f"/stories/{story_id}", f"/deliveries/{held_delivery}/reapprove")
    assert response.status_code == 303
    with session_scope() as session:
        assert dispatch.get_delivery(session, held_delivery).state == "planned"
    assert queue.of("render") == [held_delivery]
    assert button not in r3.get(f"/stories/{story_id}").text
