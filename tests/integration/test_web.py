"""The web app through FastAPI's TestClient: health, OpenAPI, login, CSRF, the JSON API, uploads,
and the built site it serves.

Covers: /healthz with the database dialect; /openapi.json lists the API; `/` sends a visitor to
the login page; a wrong password gives 401 with the Chinese message and a `login_failed` audit
event; a good login shows the story list; a form POST without its CSRF token is refused (403);
the API wants a login (401) and accepts HTTP Basic; API validation errors carry `detail_zh`;
roles decide who may create; the upload form refuses a path in a file name and a non-image
cover (422, Chinese message, nothing stored) and accepts a real JPEG. End to end: a story whose
Markdown carries a script, a javascript: link and an onerror handler is planned, rendered and
published in-process to the website and RSS, and neither /site/stories/<id>/ nor
/site/feed.xml carries anything executable; /site/ lists it and the API shows the deliveries.
"""

from __future__ import annotations

import html
import io
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from tests.helpers import RecordingQueue, add_upkeep_accounts, approve

EDITOR = ("editor1", "editor-pass-123")
OPS = ("ops1", "ops-pass-123")
EVIL_BODY = """第一段正文。

<script>alert(1)</script>

[点我](javascript:alert(1))

<img src=x onerror=alert(1)>

<a href="javascript:alert(2)">再点我</a>

最后一段。
"""



# --------------------------------------------------------------------------- fixtures & helpers


@pytest.fixture
def users(home: Path) -> dict[str, int]:
    from services.db import session_scope
    from services.users import create_user

    ids = {}
    with session_scope() as session:
        for (name, password), roles in ((EDITOR, ["editor"]), (OPS, ["ops"])):
            user, _ = create_user(session, name, roles=roles, password=password, display_name=f"{name}显示名")
            ids[name] = user.id
    return ids


@pytest.fixture
def client(home: Path, users: dict[str, int]) -> Iterator[TestClient]:
    from services.web.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "page carries no CSRF token"
    return match.group(1)


def login(client: TestClient, username: str, password: str) -> Any:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf": token, "next": "/"},
                       follow_redirects=False)


def story_count() -> int:
    from services.db import session_scope
    from services.models import Story

    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Story))


def jpeg_bytes(size: tuple[int, int] = (640, 480)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def upload_form(client: TestClient, files: dict[str, tuple[str, bytes, str]], title: str = "上传测试稿件") -> Any:
    token = csrf_of(client.get("/stories/new").text)
    return client.post("/stories/new", data={"title": title, "body": "正文", "alt": "封面图", "csrf": token},
                       files=files, follow_redirects=False)


class _Markup(HTMLParser):
    """Collects tags and attributes of an HTML document or fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(name, value or "") for name, value in attrs]

    handle_startendtag = handle_starttag


def assert_inert(document: str, where: str) -> None:
    """Nothing executable: no script element, no event handler, no javascript: URL anywhere
    (a link with a refused scheme is reduced to its text)."""
    lowered = document.lower()
    assert "<script" not in lowered and "&lt;script" not in lowered, f"{where}: script element"
    assert "alert(1)</script" not in lowered
    assert "onerror" not in lowered, f"{where}: onerror handler"
    assert "javascript:" not in lowered, f"{where}: javascript: URL"
    assert "[点我](" not in document, f"{where}: raw Markdown link shown to readers"
    markup = _Markup()
    markup.feed(document)
    assert "script" not in markup.tags and "iframe" not in markup.tags
    for name, value in markup.attrs:
        assert not name.lower().startswith("on"), f"{where}: event handler attribute {name}"
        assert not re.sub(r"\s", "", value).lower().startswith(("javascript:", "data:text")), \
            f"{where}: {name}={value!r}"


# --------------------------------------------------------------------------- health & docs


def test_healthz_reports_the_database_dialect(client: TestClient, database_url: str) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == database_url.split(":", 1)[0].split("+", 1)[0]


def test_api_docs_load_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert "cdn." not in page.text and "//unpkg" not in page.text
    for asset in re.findall(r'(?:src|href)="(/static/swagger/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset
    assert len(re.findall(r'(?:src|href)="/static/swagger/', page.text)) >= 2


def test_openapi_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/stories", "/api/deliveries", "/api/accounts"):
        assert path in paths, f"{path} missing from OpenAPI"
    assert "post" in paths["/api/stories"]
    assert "/login" not in paths, "UI routes stay out of the API schema"


# --------------------------------------------------------------------------- login & CSRF


def test_root_redirects_to_login(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    page = client.get("/")
    assert page.status_code == 200 and "登录" in page.text and 'name="password"' in page.text


def test_wrong_password_is_401_with_an_audit_event(client: TestClient) -> None:
    from services.db import session_scope
    from services.models import AuditEvent

    response = login(client, EDITOR[0], "not-the-password")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    with session_scope() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "login_failed")))
    assert [e.object_id for e in events] == [EDITOR[0]]
    assert client.get("/", follow_redirects=False).status_code == 303, "a failed login must not log in"


def test_login_shows_the_story_list(client: TestClient) -> None:
    response = login(client, *EDITOR)
    assert response.status_code == 303 and response.headers["location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "<h1>稿件</h1>" in page.text and "editor1显示名" in page.text
    assert "还没有稿件" in page.text


def test_post_without_csrf_token_is_refused(client: TestClient) -> None:
    response = client.post("/login", data={"username": EDITOR[0], "password": EDITOR[1]}, follow_redirects=False)
    assert response.status_code == 403
    assert login(client, *EDITOR).status_code == 303
    response = client.post("/stories/new", data={"title": "无令牌稿件", "csrf": "forged"}, follow_redirects=False)
    assert response.status_code == 403
    assert "表单已过期，请刷新页面后重试" in response.text and "<html" in response.text  # a page, not JSON
    assert story_count() == 0


# --------------------------------------------------------------------------- JSON API


def test_api_requires_authentication(client: TestClient) -> None:
    for path in ("/api/stories", "/api/deliveries", "/api/accounts"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers.get("www-authenticate", "").startswith("Basic")
    assert client.get("/api/me", auth=(EDITOR[0], "wrong")).status_code == 401


def test_api_accepts_http_basic(client: TestClient) -> None:
    response = client.get("/api/me", auth=EDITOR)
    assert response.status_code == 200
    assert response.json()["username"] == EDITOR[0] and response.json()["roles"] == ["editor"]
    assert client.get("/api/stories", auth=EDITOR).json() == []


def test_api_empty_title_is_422_with_chinese_detail(client: TestClient) -> None:
    response = client.post("/api/stories", json={"title": "  "}, auth=EDITOR)
    assert response.status_code == 422
    assert response.json()["detail_zh"] == "标题不能为空"
    assert story_count() == 0


def test_editor_creates_a_story_through_the_api(client: TestClient) -> None:
    response = client.post("/api/stories", auth=EDITOR, json={
        "title": "城区学校新增学位1200个", "body_markdown": "# 标题\n\n正文", "theme": "基础教育",
        "unit": "县教育局", "tags": ["教育"]})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["title"] == "城区学校新增学位1200个" and created["version"] == 1 and created["status"] == "draft"
    listed = client.get("/api/stories", auth=EDITOR).json()
    assert [s["id"] for s in listed] == [created["id"]]
    assert client.get(f"/api/stories/{created['id']}", auth=OPS).json()["deliveries"] == []


def test_ops_may_not_create_stories(client: TestClient) -> None:
    response = client.post("/api/stories", json={"title": "运维不能写稿"}, auth=OPS)
    assert response.status_code == 403
    assert "detail_zh" in response.json()
    assert story_count() == 0


# --------------------------------------------------------------------------- upload form


def test_upload_refuses_a_path_in_the_file_name(client: TestClient, settings) -> None:  # noqa: ANN001
    login(client, *EDITOR)
    response = upload_form(client, {"cover": ("../../evil.jpg", jpeg_bytes(), "image/jpeg")})
    assert response.status_code == 422
    assert "文件名不能包含路径" in response.text
    assert "上传测试稿件" in response.text, "the form keeps what the editor typed"
    assert story_count() == 0
    assert not [p for p in settings.media_dir.rglob("*") if p.is_file()]
    assert not (settings.resolved_home.parent / "evil.jpg").exists()


def test_upload_refuses_a_text_file_as_cover(client: TestClient, settings) -> None:  # noqa: ANN001
    login(client, *EDITOR)
    response = upload_form(client, {"cover": ("封面.jpg", "这不是图片，只是文字。".encode() * 20, "image/jpeg")})
    assert response.status_code == 422
    message = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text, re.S)
    assert message and "封面.jpg" in message.group(1)
    assert re.search(r"[\u4e00-\u9fff]", message.group(1).replace("封面", "")), message.group(1)
    assert story_count() == 0
    assert not [p for p in settings.media_dir.rglob("*") if p.is_file()], "nothing may be stored"


def test_upload_of_a_jpeg_creates_the_story(client: TestClient, settings) -> None:  # noqa: ANN001
    login(client, *EDITOR)
    response = upload_form(client, {"cover": ("cover.jpg", jpeg_bytes(), "image/jpeg")}, title="带封面的稿件")
    assert response.status_code == 303
    match = re.fullmatch(r"/stories/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert "带封面的稿件" in page.text and "cover.jpg" in page.text and "640×480" in page.text
    stored = [p for p in settings.media_dir.rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].suffix == ".jpg"
    story = client.get(f"/api/stories/{match.group(1)}", auth=EDITOR).json()
    assert [(m["role"], m["mime"], m["alt"]) for m in story["media"]] == [("cover", "image/jpeg", "封面图")]


# --------------------------------------------------------------------------- end to end: sanitized site


def _publish_in_process(settings, storage, story_id: int) -> list[int]:  # noqa: ANN001
    from services import dispatch
    from services.db import session_scope

    queue = RecordingQueue()
    approve(settings, storage, story_id)  # nothing unreviewed goes out
    with session_scope() as session:
        planned = dispatch.plan_publication(session, queue, story_id)
    assert len(planned.created) == 2 and queue.of("render") == planned.created
    for delivery_id in planned.created:
        assert dispatch.render_delivery(settings, storage, queue, delivery_id, worker="test") == "ready"
        assert dispatch.publish_delivery(settings, storage, queue, delivery_id, worker="test") == "published"
    assert planned.created[-1] in queue.of("publish")
    return planned.created


def test_site_and_feed_are_sanitized_end_to_end(client: TestClient, settings, storage, tmp_path: Path) -> None:  # noqa: ANN001
    from services.accounts import add_account
    from services.db import session_scope
    from services.stories import MediaInput, StoryInput, create_story

    cover = tmp_path / "cover.jpg"
    cover.write_bytes(jpeg_bytes())
    title = "安全测试：民生实事进展"
    with session_scope() as session:
        story = create_story(session, storage, StoryInput(
            title=title, body_markdown=EVIL_BODY, summary="", theme="社会治安",
            media=[MediaInput(path=cover, role="cover", alt="封面：新校舍")]))
        story_id = story.id
        add_account(session, settings, "website", "县融媒体中心网站")
        add_account(session, settings, "rss", "县融媒体中心订阅")
    delivery_ids = _publish_in_process(settings, storage, story_id)

    page = client.get(f"/site/stories/{story_id}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert title in page.text and "第一段正文。" in page.text and "最后一段。" in page.text
    assert "再点我" in page.text, "the link text stays; only its URL goes"
    assert_inert(page.text, "story page")

    feed = client.get("/site/feed.xml")
    assert feed.status_code == 200
    assert title in feed.text
    assert_inert(feed.text, "feed.xml")
    channel = ET.fromstring(feed.content).find("channel")
    items = channel.findall("item")
    assert [i.findtext("title") for i in items] == [title]
    for element in items[0].iter():  # the HTML carried inside the feed, once unescaped
        if element.text:
            assert_inert(element.text, f"feed.xml <{element.tag}>")

    for internal in ("/site/_data/website.json", "/site/_data/rss.json", "/site/.fanout.lock"):
        assert (settings.site_dir / internal.removeprefix("/site/")).exists()
        assert client.get(internal).status_code == 404, internal  # the channels' records stay private

    index = client.get("/site/")
    assert index.status_code == 200
    assert title in index.text and f"stories/{story_id}/" in index.text
    assert_inert(index.text, "site index")

    api = client.get(f"/api/stories/{story_id}", auth=EDITOR).json()
    assert api["status"] == "published"
    deliveries = {d["channel"]: d for d in api["deliveries"]}
    assert sorted(d["id"] for d in deliveries.values()) == sorted(delivery_ids)
    assert set(deliveries) == {"website", "rss"}
    for delivery in deliveries.values():
        assert delivery["state"] == "published" and delivery["attempts"] == 1
        assert delivery["remote_url"].startswith(settings.public_url)
    assert deliveries["website"]["remote_url"] == f"{settings.public_url}stories/{story_id}/"

    login(client, *EDITOR)
    listing = client.get("/")
    assert "网站 · 已发布" in listing.text and "RSS · 已发布" in listing.text


def test_a_story_written_in_a_campaign_gets_its_label_from_the_template(client, users):
    from services import schedule
    from services.db import session_scope

    with session_scope() as session:
        campaign_id = schedule.add_campaign(session, "乐享太平 民生先行",
                                            label_template="黄山市黄山区30项民生实事之{project}民生实事").id
    assert login(client, *EDITOR).status_code == 303
    page = client.get("/stories/new").text
    assert "乐享太平 民生先行（标签：黄山市黄山区30项民生实事之{project}民生实事）" in page
    token = csrf_of(page)
    missing = client.post("/stories/new", data={"title": "缺项目", "body": "正文", "campaign": str(campaign_id),
                                                "csrf": token}, follow_redirects=False)
    assert missing.status_code == 422 and "活动标签需要填写稿件的项目" in missing.text
    assert 'value="缺项目"' in missing.text  # what the editor typed is kept
    made = client.post("/stories/new", data={"title": "老旧小区改造完成", "body": "正文", "project": "老旧小区改造",
                                             "campaign": str(campaign_id), "csrf": token}, follow_redirects=False)
    assert made.status_code == 303
    story = client.get(made.headers["location"]).text
    assert "黄山市黄山区30项民生实事之老旧小区改造民生实事" in story and "项目：老旧小区改造" in story


@pytest.mark.parametrize(("in_point", "out_point", "status", "expected"), [
    ("0:01", "3", 303, (1.0, 3.0)),
    ("abc", "", 422, "入点应为秒数"),
    ("1", "1.5", 422, "入点和出点之间至少要有 1 秒"),
])
def test_a_video_upload_takes_in_and_out_points(client, settings, tmp_path, in_point, out_point, status, expected):
    from services.db import session_scope
    from services.stories import get_story
    from tests.helpers import video

    assert login(client, *EDITOR).status_code == 303
    clip = video(tmp_path / "clip.mp4", seconds=4).read_bytes()
    token = csrf_of(client.get("/stories/new").text)
    response = client.post("/stories/new", data={"title": "带入出点的视频", "body": "正文", "csrf": token,
                                                 "in_point": in_point, "out_point": out_point},
                           files={"video": ("clip.mp4", clip, "video/mp4")}, follow_redirects=False)
    assert response.status_code == status, response.text[-500:]
    if status == 303:
        story_id = int(response.headers["location"].rsplit("/", 1)[1])
        with session_scope() as session:
            media = get_story(session, story_id).current.media[0]
            assert (media.in_point, media.out_point) == expected
    else:
        assert expected in response.text and story_count() == 0


def test_retract_from_the_story_page_is_audited_and_lists_what_a_person_removes(app, queue, settings, storage,
                                                                                 tmp_path):
    """撤稿 on the story page: a reason is required (Chinese message), the site page goes, the
    outbox account's package is listed for hand removal."""
    from services import dispatch
    from services.accounts import add_account
    from services.db import session_scope
    from services.models import Delivery
    from tests.helpers import add_site_accounts, make_story, run_pipeline

    with session_scope() as session:
        add_site_accounts(session, settings)
        add_account(session, settings, "website", "乡镇网站", mode="outbox")
        story_id = make_story(session, storage, tmp_path, title="撤稿测试")
    approve(settings, storage, story_id)
    recorded = RecordingQueue()
    with session_scope() as session:
        created = dispatch.plan_publication(session, recorded, story_id).created
    run_pipeline(settings, storage, recorded, created)
    client = TestClient(app)
    assert login(client, "editor", "pw-editor-123").status_code == 303
    token = csrf_of(client.get(f"/stories/{story_id}").text)
    refused = client.post(f"/stories/{story_id}/retract", data={"csrf": token, "reason": " "})
    assert refused.status_code == 422 and "撤稿必须填写原因" in refused.text
    done = client.post(f"/stories/{story_id}/retract", data={"csrf": token, "reason": "数据有误"},
                       follow_redirects=True)
    assert done.status_code == 200 and "已撤稿" in done.text and "乡镇网站" in done.text and "需人工处理" in done.text
    assert "本稿件已撤稿" in done.text
    with session_scope() as session:
        states = sorted(session.get(Delivery, i).state for i in created)
    assert states == ["retracted", "retracting", "retracting"]


def test_the_outbox_page_offers_the_package_and_records_the_url(app, queue, settings, storage, tmp_path):
    """人工发布: the waiting package with its texts and checklist, the zip, and the URL form
    (a bad URL gets a Chinese message and changes nothing; a good one publishes)."""
    import zipfile

    from services import dispatch
    from services.accounts import add_account
    from services.db import session_scope
    from services.models import Delivery
    from tests.helpers import make_story, run_pipeline

    with session_scope() as session:
        add_account(session, settings, "website", "乡镇网站", mode="outbox")
        story_id = make_story(session, storage, tmp_path, title="人工发布测试")
    approve(settings, storage, story_id)
    recorded = RecordingQueue()
    with session_scope() as session:
        (delivery_id,) = dispatch.plan_publication(session, recorded, story_id).created
    assert run_pipeline(settings, storage, recorded, [delivery_id]) == ["outbox"]
    client = TestClient(app)
    assert login(client, "editor", "pw-editor-123").status_code == 303
    page = client.get("/outbox")
    assert page.status_code == 200
    assert f"发布任务 #{delivery_id}" in page.text and "下载发布包" in page.text and "登记已发布" in page.text
    assert '<span class="count"' in client.get("/").text  # the nav badge counts it
    archive = client.get(f"/outbox/{delivery_id}.zip")
    assert archive.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert f"fanout-{delivery_id}/manifest.json" in names and f"fanout-{delivery_id}/README.txt" in names
    token = csrf_of(page.text)
    bad = client.post(f"/outbox/{delivery_id}/posted", data={"csrf": token, "url": "not a url"})
    assert bad.status_code == 422 and "请填写帖子的完整链接" in bad.text
    good = client.post(f"/outbox/{delivery_id}/posted", data={"csrf": token, "url": "https://example.cn/p/1"},
                       follow_redirects=True)
    assert "已登记发布任务" in good.text and "没有等待人工发布的内容" in good.text
    with session_scope() as session:
        assert session.get(Delivery, delivery_id).state == "published"


def test_ops_failure_list_actions_and_metrics(app, queue, settings, storage, tmp_path, monkeypatch):
    """运维: the failure list (ops only) retries a failed delivery, which then publishes;
    /metrics gives Prometheus text whose numbers are the database's."""
    from sqlalchemy import update

    from services import dispatch
    from services.db import session_scope
    from services.models import Delivery
    from services.users import create_user
    from tests.helpers import add_site_accounts, make_story, run_pipeline

    with session_scope() as session:
        add_site_accounts(session, settings)
        create_user(session, "ops1", roles=["ops"], password="pw-ops1-1234")
        story_id = make_story(session, storage, tmp_path, title="运维测试")
    approve(settings, storage, story_id)
    recorded = RecordingQueue()
    with session_scope() as session:
        website_id, rss_id = dispatch.plan_publication(session, recorded, story_id).created
    run_pipeline(settings, storage, recorded, [rss_id])
    with session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == website_id).values(
            state="failed", last_error="HTTP 503 three times", last_error_code="503"))
    editor = TestClient(app)
    login(editor, "editor", "pw-editor-123")
    assert editor.get("/ops/failures").status_code == 403
    client = TestClient(app)
    assert login(client, "ops1", "pw-ops1-1234").status_code == 303
    page = client.get("/ops/failures?code=503")
    assert page.status_code == 200 and f"#{website_id}" in page.text and "HTTP 503 three times" in page.text
    assert "失败 1" in page.text and "重试" in page.text
    done = client.post(f"/ops/deliveries/{website_id}/retry", data={"csrf": csrf_of(page.text), "back": "/ops/failures"},
                       follow_redirects=True)
    assert "已重试发布任务" in done.text and "没有失败或异常的发布任务" in done.text
    assert queue.of("render") == [website_id]
    run_pipeline(settings, storage, RecordingQueue(), [website_id])
    with session_scope() as session:
        assert session.get(Delivery, website_id).state == "published"

    text = client.get("/metrics").text
    assert 'fanout_deliveries{channel="website",state="published"} 1.0' in text
    assert 'fanout_deliveries{channel="rss",state="published"} 1.0' in text
    assert "fanout_publish_latency_seconds_count 2.0" in text and 'fanout_queue_depth{queue="publish"}' in text
    monkeypatch.setenv("FANOUT_METRICS_TOKEN", "s3cret")
    from services.config import reset_settings

    reset_settings()
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_reports_page_and_exports(app, queue, settings, storage, tmp_path):
    """统计报表: this quarter by default, the tables and the XLSX / CSV downloads; a bad date is a
    Chinese message."""
    import io as _io

    from openpyxl import load_workbook

    from services import dispatch
    from services.db import session_scope
    from tests.helpers import add_site_accounts, make_story, run_pipeline

    with session_scope() as session:
        add_site_accounts(session, settings)
        story_id = make_story(session, storage, tmp_path, title="报表测试")
    approve(settings, storage, story_id)
    recorded = RecordingQueue()
    with session_scope() as session:
        created = dispatch.plan_publication(session, recorded, story_id).created
    run_pipeline(settings, storage, recorded, created)
    client = TestClient(app)
    login(client, "editor", "pw-editor-123")
    page = client.get("/reports")
    assert page.status_code == 200 and "民生实事宣传情况统计表" in page.text and "季度" in page.text
    assert "合计" in page.text and "各单位发布条次" in page.text
    book = load_workbook(_io.BytesIO(client.get("/reports/export.xlsx").content))
    assert book.sheetnames[0].startswith("民生实事宣传情况统计表")
    csv_text = client.get("/reports/export.csv").content.decode("utf-8-sig")
    assert "责任单位" in csv_text and "失败原因" in csv_text
    bad = client.get("/reports?start=2026-13-01")
    assert bad.status_code == 422 and "日期格式应为" in bad.text


def test_account_health_page_and_channels_login(app, queue, settings):
    from services.accounts import add_account
    from services.db import session_scope
    from services.users import create_user

    with session_scope() as session:
        channels = add_account(session, settings, "wechat_channels", "区融媒视频号").id
        create_user(session, "ops1", roles=["ops"], password="pw-ops1-1234")
    client = TestClient(app)
    assert login(client, "ops1", "pw-ops1-1234").status_code == 303
    page = client.get("/ops/accounts")
    assert page.status_code == 200 and "区融媒视频号" in page.text and "未登记视频号扫码登录时间" in page.text
    done = client.post(f"/ops/accounts/{channels}/login", data={"csrf": csrf_of(page.text)}, follow_redirects=True)
    assert "已登记「区融媒视频号」的视频号扫码登录" in done.text and "未登记视频号扫码登录时间" not in done.text
    assert "平台未提供" in done.text and "未运行" in done.text  # no quota reported, no upkeep yet


def test_account_page_shows_quota_and_upkeep_warnings_from_the_platforms(app, queue, settings):
    """The upkeep against the 公众号 fake stores its quota answer; a Douyin account whose refresh
    token was revoked gets its warning kept; /ops/accounts shows both, in Chinese around them."""
    from datetime import datetime, timezone

    from services.accounts import maintain_accounts
    from services.db import session_scope
    from services.users import create_user
    from tests.fakes.douyin import FakeDouyin
    from tests.fakes.wechat_mp import FakeWechatMp

    with FakeWechatMp() as mp, FakeDouyin() as douyin:
        mp.daily_quota, mp.submits = 100, 12
        with session_scope() as session:
            add_upkeep_accounts(session, settings, mp, douyin)
            create_user(session, "ops1", roles=["ops"], password="pw-ops1-1234")
        report = maintain_accounts(settings, datetime.now(timezone.utc))
    client = TestClient(app)
    assert login(client, "ops1", "pw-ops1-1234").status_code == 303
    page = client.get("/ops/accounts").text
    assert "剩余 88 / 100 次（每天）" in page and "openapi/quota/get" in page
    [warning] = report["douyin/乡镇抖音号"][:1]
    assert "令牌维护提示" in page and warning in html.unescape(page)
