"""channels/wechat_mp.py against tests/fakes/wechat_mp.py on loopback (channels.md, 公众号).

Rows of (what the fake is told → expected outcome) for publish; then render (limits, label
first, digest, crops, files), the token cache (process + credentials, refresh 5 minutes early,
refresh once on 40001/42001), reconcile, retract, maintain, the outbox package, and that no
credential reaches an exception message, repr or traceback.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from channels import wechat_mp
from channels.base import (
    AccountData,
    ChannelError,
    OutcomeUnknownError,
    PermanentChannelError,
    Post,
    Receipt,
    RenderError,
    StoryData,
    TransientChannelError,
)
from channels.wechat_mp import (
    PublishPending,
    WechatMpChannel,
    byline,
    crop_box,
    cut_text,
)
from tests.fakes.wechat_mp import FakeWechatMp
from tests.unit.test_channel_website import LABEL, MediaLibrary, _jpeg, make_story

LINK = "https://www.hsq.gov.cn/rmt/stories/7/"


# ----------------------------------------------------------------------------- helpers


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def wechat_story(lib: MediaLibrary, story_id: int = 7, *, images: int = 2, square: bool = True,
                 **kwargs: Any) -> tuple[StoryData, dict[str, dict]]:
    """make_story plus the 公众号 renditions: wechat_cover(+square) of the cover, wechat_body of each image."""
    story, renditions = make_story(lib, story_id, images=images, **kwargs)
    out = {k: dict(v) for k, v in renditions.items()}
    for item in story.media:
        if item.kind != "image":
            continue
        seed = f"{item.sha256[:8]}"
        out[item.sha256]["wechat_body"] = lib.rendition("wechat_body", _jpeg(1080, 720, seed + "-body"),
                                                        "image/jpeg", 1080, 720)
        if item.role == "cover":
            out[item.sha256]["wechat_cover"] = lib.rendition("wechat_cover", _jpeg(900, 383, seed + "-cover"),
                                                             "image/jpeg", 900, 383)
            if square:
                out[item.sha256]["wechat_cover_square"] = lib.rendition(
                    "wechat_cover_square", _jpeg(500, 500, seed + "-square"), "image/jpeg", 500, 500)
    return replace(story, link=LINK, short_title="新学校投入使用"), out


class Saved(list):
    def __call__(self, creds: Any) -> None:
        self.append(dict(creds))


def account_for(fake: FakeWechatMp, saved: Saved | None = None, creds: dict | None = None,
                **settings: Any) -> AccountData:
    return AccountData(
        id=3, channel="wechat_mp", name="黄山区发布", api_base=fake.url,
        credentials={"appid": fake.appid, "secret": fake.secret, **(creds or {})},
        settings={"poll_interval": 0.01, "poll_timeout": 2.0, **settings},
        save_credentials=saved)


def issue_token(fake: FakeWechatMp) -> str:
    r = requests.get(f"{fake.url}/cgi-bin/token", params={"grant_type": "client_credential", "appid": fake.appid,
                                                          "secret": fake.secret}, timeout=5).json()
    return r["access_token"]


def cached(token: str, minutes: float = 100) -> dict[str, str]:
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    return {"access_token": token, "access_token_expires_at": expires.isoformat(timespec="seconds")}


@pytest.fixture(autouse=True)
def clean_caches():
    wechat_mp.reset_caches()
    yield
    wechat_mp.reset_caches()


@pytest.fixture()
def fake():
    with FakeWechatMp() as server:
        yield server


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


@pytest.fixture()
def ch() -> WechatMpChannel:
    return WechatMpChannel()


def rendered(ch: WechatMpChannel, lib: MediaLibrary, story_id: int = 7, **kwargs: Any) -> Post:
    story, renditions = wechat_story(lib, story_id, **kwargs)
    return ch.render(story, renditions).with_paths(lib.paths)


def assert_no_credentials(exc: BaseException, fake: FakeWechatMp, account: AccountData | None = None) -> None:
    text = str(exc) + repr(exc) + "".join(traceback.format_exception(exc))
    secrets = [fake.secret, *fake.tokens]
    if account is not None:
        secrets += [v for k, v in account.credentials.items() if k in ("secret", "access_token")]
    for secret in secrets:
        assert secret not in text, "a credential leaked into an exception"


# ----------------------------------------------------------------------------- publish rows


def _seed_then(kind: str) -> Callable[[FakeWechatMp], dict]:
    def setup(fake: FakeWechatMp) -> dict:
        token = issue_token(fake)
        if kind == "expire":
            fake.expire_token()
        elif kind == "invalidate":
            fake.invalidate_tokens()
        return cached(token)
    return setup


def _set(**attrs: Any) -> Callable[[FakeWechatMp], dict]:
    def setup(fake: FakeWechatMp) -> dict:
        for name, value in attrs.items():
            setattr(fake, name, value)
        return {}
    return setup


def _call(method: str, *args: Any, **kwargs: Any) -> Callable[[FakeWechatMp], dict]:
    def setup(fake: FakeWechatMp) -> dict:
        getattr(fake, method)(*args, **kwargs)
        return {}
    return setup


ROWS = [
    # (id, setup(fake) -> extra credentials, settings, error type or None, code, posts made, token issues)
    ("published", _set(), {}, None, None, 1, 1),
    ("publishing-twice-then-published", _set(status_sequence=[1, 1, 0]), {}, None, None, 1, 1),
    ("expired-cached-token-refreshed-once", _seed_then("expire"), {}, None, None, 1, 1),
    ("invalidated-cached-token-refreshed-once", _seed_then("invalidate"), {}, None, None, 1, 1),
    ("unknown-token-refreshed", lambda f: cached("ACCESS_not_issued_by_the_platform"), {}, None, None, 1, 1),
    ("token-refused-after-refresh", _set(force_token_error=42001), {}, PermanentChannelError, "42001", 0, 2),
    ("ip-not-whitelisted", _set(ip_whitelisted=False), {}, PermanentChannelError, "40164", 0, 0),
    ("bad-secret", lambda f: {"secret": "another-secret-entirely"}, {}, PermanentChannelError, "40125", 0, 0),
    ("busy-on-token", _call("inject", "/cgi-bin/token", -1, "system error"), {}, TransientChannelError, "-1", 0, 0),
    ("minute-quota-on-upload", _call("inject", "/cgi-bin/media/uploadimg", 45011, "api minute-quota reach limit"),
     {}, TransientChannelError, "45011", 0, 1),
    ("daily-quota", _set(daily_quota=0), {}, TransientChannelError, "45009", 0, 1),
    ("draft-failed-publish-checks", _set(submit_error=(53503, "draft check failed")), {},
     PermanentChannelError, "53503", 0, 1),
    ("manual-save-needed", _set(submit_error=(53505, "save it by hand")), {}, PermanentChannelError, "53505", 0, 1),
    ("content-too-long-said-platform", _call("inject", "/cgi-bin/draft/add", 45002, "content size out of limit"),
     {}, PermanentChannelError, "45002", 0, 1),
    ("empty-content-said-platform", _call("inject", "/cgi-bin/draft/add", 44003, "empty content"),
     {}, PermanentChannelError, "44003", 0, 1),
    ("cover-media-id-gone-reuploaded", _call("inject", "/cgi-bin/draft/add", 40007, "invalid media_id"),
     {}, None, None, 1, 1),
    ("cover-media-id-bad-twice", _call("inject", "/cgi-bin/draft/add", 40007, "invalid media_id", times=2),
     {}, PermanentChannelError, "40007", 0, 1),
    ("originality-check-failed", _set(status_sequence=[1, 2]), {}, PermanentChannelError, "publish_status_2", 1, 1),
    ("publish-failed", _set(status_sequence=[3]), {}, PermanentChannelError, "publish_status_3", 1, 1),
    ("rejected-by-review", _set(status_sequence=[1, 4]), {}, PermanentChannelError, "publish_status_4", 1, 1),
    ("banned", _set(status_sequence=[6]), {}, PermanentChannelError, "publish_status_6", 1, 1),
    ("still-publishing-at-poll-timeout", _set(status_sequence=[1]), {"poll_timeout": 0.2},
     PublishPending, "publishing", 1, 1),
    ("status-call-fails-after-submit", _call("misbehave", "status", path="/cgi-bin/freepublish/get", status=502),
     {}, PublishPending, "502", 1, 1),
    ("http-503-on-draft", _call("misbehave", "status", path="/cgi-bin/draft/add", status=503), {},
     TransientChannelError, "503", 0, 1),
    ("http-429-on-upload", _call("misbehave", "retry_after", path="/cgi-bin/media/uploadimg", seconds=7), {},
     TransientChannelError, "429", 0, 1),
    ("reset-on-submit", _call("misbehave", "reset", path="/cgi-bin/freepublish/submit"), {},
     OutcomeUnknownError, None, 0, 1),
    ("hang-after-submit", _call("misbehave", "hang_after", path="/cgi-bin/freepublish/submit", seconds=1.5),
     {"read_timeout": 0.5}, OutcomeUnknownError, None, 1, 1),
    ("hang-after-upload-is-transient", _call("misbehave", "hang_after", path="/cgi-bin/media/uploadimg", seconds=1.5),
     {"read_timeout": 0.5}, TransientChannelError, None, 0, 1),
]


@pytest.mark.parametrize("case,setup,settings,error,code,posts,issues", ROWS, ids=[r[0] for r in ROWS])
def test_publish_outcomes(ch, lib, fake, case, setup, settings, error, code, posts, issues):
    post = rendered(ch, lib)
    creds = setup(fake)
    before = fake.count.token_issues
    account = account_for(fake, creds=creds, **settings)
    if error is None:
        receipt = ch.publish(post, account)
        assert isinstance(receipt, Receipt)
        assert receipt.remote_id.startswith("ARTICLE_") and receipt.url.startswith("http://mp.weixin.qq.com/s?")
        assert receipt.extra["article_id"] == receipt.remote_id and receipt.extra["publish_id"]
        assert fake.published_titles() == [post.fields["title"]]
    else:
        with pytest.raises(error) as raised:
            ch.publish(post, account)
        exc = raised.value
        if code is not None:
            assert exc.code == code
        assert_no_credentials(exc, fake, account)
        if error is TransientChannelError and code == "429":
            assert exc.retry_after == 7.0
        if code == "40164":
            assert "40164" in str(exc) and "IP白名单" in str(exc) and "whitelist" in str(exc)
        if error is PublishPending:
            assert exc.publish_id in str(exc) and exc.publish_id in fake.jobs
    assert sum(fake.posts.values()) == posts
    assert not fake.posts or max(fake.posts.values()) == 1
    assert fake.count.token_issues - before == issues


def test_daily_quota_waits_until_shanghai_midnight(ch, lib, fake, monkeypatch):
    fake.daily_quota = 0
    now = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # 23:30 in Asia/Shanghai
    monkeypatch.setattr(WechatMpChannel, "now", lambda self: now)
    with pytest.raises(TransientChannelError) as raised:
        ch.publish(rendered(ch, lib), account_for(fake))
    assert raised.value.code == "45009"
    assert raised.value.retry_after == 30 * 60 + WechatMpChannel.quota_reset_margin
    assert fake.paths().count("/cgi-bin/draft/delete") == 1 and fake.drafts == {}  # no orphan draft
    fake.daily_quota = None
    ch.publish(rendered(ch, lib), account_for(fake))  # the retry
    assert len(fake.drafts) == 1 and sum(fake.posts.values()) == 1


def test_quota_reported_by_maintain_and_by_the_daily_quota_error(ch, lib, fake, monkeypatch):
    """openapi/quota/get (asked only when someone records quotas) and errcode 45009 both reach
    note_quota; the daily quota resets at midnight in Asia/Shanghai."""
    seen: list[dict] = []
    now = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # 23:30 in Asia/Shanghai
    monkeypatch.setattr(WechatMpChannel, "now", lambda self: now)
    fake.daily_quota = 2
    ch.publish(rendered(ch, lib), account_for(fake))
    assert ch.maintain(account_for(fake), now) == [] and "/cgi-bin/openapi/quota/get" not in fake.paths()
    recording = replace(account_for(fake), report_quota=seen.append)
    assert ch.maintain(recording, now) == []
    midnight = "2026-11-23T00:00:00+08:00"
    assert seen == [{"remaining": 1, "limit": 2, "period": "day", "resets_at": midnight,
                     "what": "freepublish/submit calls per day", "source": "openapi/quota/get"}]
    ch.publish(rendered(ch, lib, 8), recording)
    with pytest.raises(TransientChannelError):
        ch.publish(rendered(ch, lib, 9), recording)
    assert seen[-1] == {"remaining": 0, "limit": None, "period": "day", "resets_at": midnight,
                        "what": "daily API quota", "source": "errcode 45009"}
    fake.inject("/cgi-bin/openapi/quota/get", 76022, "could not use this cgi_path")
    assert ch.maintain(recording, now) == [] and len(seen) == 2  # a failed quota query is only a missing number


@pytest.mark.parametrize("code,retry_after", [("-1", WechatMpChannel.busy_retry_after),
                                              ("45011", WechatMpChannel.minute_quota_retry_after)])
def test_busy_codes_carry_retry_after(ch, lib, fake, code, retry_after):
    fake.inject("/cgi-bin/draft/add", int(code))
    with pytest.raises(TransientChannelError) as raised:
        ch.publish(rendered(ch, lib), account_for(fake))
    assert raised.value.code == code and raised.value.retry_after == retry_after


def test_publish_sends_what_the_platform_expects(ch, lib, fake):
    post = rendered(ch, lib, images=3)
    receipt = ch.publish(post, account_for(fake, open_comment="1", only_fans_can_comment="0"))
    # every body image uploaded through uploadimg, the cover through add_material
    assert fake.count.uploadimg == 3 and fake.count.add_material == 1
    uploads = [r for r in fake.requests if r.path == "/cgi-bin/media/uploadimg"]
    assert all(set(r.files) == {"media"} and r.files["media"].content_type == "image/jpeg" for r in uploads)
    material = next(r for r in fake.requests if r.path == "/cgi-bin/material/add_material")
    assert material.query["type"] == "image"
    draft_req = next(r for r in fake.requests if r.path == "/cgi-bin/draft/add")
    # raw UTF-8 JSON, not \u escapes
    assert draft_req.header("Content-Type") == "application/json; charset=utf-8"
    assert post.fields["title"].encode("utf-8") in draft_req.body and b"\\u" not in draft_req.body
    article = draft_req.json["articles"][0]
    assert article["need_open_comment"] == 1 and article["only_fans_can_comment"] == 0
    assert article["content_source_url"] == LINK
    assert article["pic_crop_235_1"] == "0_0_1_1" and article["pic_crop_1_1"] == "0.287222_0_0.712778_1"
    assert article["thumb_media_id"] in fake.materials
    # the placeholders were swapped for the uploaded URLs; the platform kept every image
    assert wechat_mp.PLACEHOLDER not in article["content"]
    srcs = [s.replace("&amp;", "&") for s in re.findall(r'<img src="([^"]+)"', article["content"])]
    assert len(srcs) == 3 and all(s in fake.images for s in srcs)
    assert fake.count.stripped_images == 0 and fake.count.stripped_scripts == 0
    submit = next(r for r in fake.requests if r.path == "/cgi-bin/freepublish/submit")
    assert submit.json == {"media_id": next(iter(fake.drafts))}
    assert receipt.extra["draft_media_id"] == submit.json["media_id"]
    # the secret goes to /cgi-bin/token only, the access_token only in query strings
    for r in fake.requests:
        blob = json.dumps(r.query) + r.body.decode("utf-8", "replace")
        if r.path != "/cgi-bin/token":
            assert fake.secret not in blob and "access_token" in r.query
        for token in fake.tokens:
            assert token not in r.body.decode("utf-8", "replace")


def test_fake_refuses_cjk_escapes_and_checks_uploads(fake):
    token = issue_token(fake)
    url = f"{fake.url}/cgi-bin/draft/add?access_token={token}"
    escaped = json.dumps({"articles": [{"title": "新学校"}]})  # ensure_ascii=True: \u65b0...
    r = requests.post(url, data=escaped, headers={"Content-Type": "application/json"}, timeout=5).json()
    assert r["errcode"] == 47001
    up = f"{fake.url}/cgi-bin/media/uploadimg?access_token={token}"
    gif = requests.post(up, files={"media": ("a.gif", b"GIF89a....", "image/gif")}, timeout=5).json()
    big = requests.post(up, files={"media": ("a.jpg", b"\xff\xd8\xff" + b"0" * (1024 * 1024), "image/jpeg")},
                        timeout=5).json()
    ok = requests.post(up, files={"media": ("a.png", _png(4, 4), "image/png")}, timeout=5).json()
    assert gif["errcode"] == 40005 and big["errcode"] == 40009 and ok["url"].startswith("http://mmbiz.qpic.cn/")
    # an old token stays valid for 5 minutes after a new one is issued, then 40001
    issue_token(fake)
    get = f"{fake.url}/cgi-bin/freepublish/batchget?access_token={token}"
    assert "errcode" not in requests.post(get, json={"offset": 0, "count": 5}, timeout=5).json()
    fake.advance(301)
    assert requests.post(get, json={"offset": 0, "count": 5}, timeout=5).json()["errcode"] == 40001


# ----------------------------------------------------------------------------- tokens


def test_token_is_cached_in_process_and_credentials(ch, lib, fake):
    saved = Saved()
    ch.publish(rendered(ch, lib, 1), account_for(fake, saved))
    assert fake.count.token_issues == 1
    assert saved and saved[-1]["access_token"] in fake.tokens
    expires = datetime.fromisoformat(saved[-1]["access_token_expires_at"])
    assert expires.utcoffset() == timedelta(0)
    assert abs((expires - datetime.now(UTC)).total_seconds() - 7200) < 30
    assert saved[-1]["appid"] == fake.appid and saved[-1]["secret"] == fake.secret  # merged, not replaced
    ch.publish(rendered(ch, lib, 2), account_for(fake))  # same process: no new token
    assert fake.count.token_issues == 1
    wechat_mp.reset_caches()  # another process: the credentials carry the token
    ch.publish(rendered(ch, lib, 3), account_for(fake, creds={k: saved[-1][k] for k in
                                                              ("access_token", "access_token_expires_at")}))
    assert fake.count.token_issues == 1


def test_token_is_refreshed_five_minutes_early(ch, lib, fake):
    token = issue_token(fake)
    saved = Saved()
    ch.publish(rendered(ch, lib), account_for(fake, saved, creds=cached(token, minutes=4)))
    assert fake.count.token_issues == 2 and saved[-1]["access_token"] != token
    wechat_mp.reset_caches()
    fresh = issue_token(fake)
    ch.publish(rendered(ch, lib, 8), account_for(fake, creds=cached(fresh, minutes=6)))
    assert fake.count.token_issues == 3  # 6 minutes left: still used


def test_refresh_happens_once_per_call_and_the_call_is_retried(ch, lib, fake):
    token = issue_token(fake)
    fake.invalidate_tokens()
    post = rendered(ch, lib)
    ch.publish(post, account_for(fake, creds=cached(token)))
    refused = [r for r in fake.requests if r.query.get("access_token") == token]
    assert len(refused) == 1  # the first call was refused, then everything used the new token
    assert fake.paths().count("/cgi-bin/token") == 2


def test_no_credentials_in_errors_when_the_token_call_fails(ch, lib, fake):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    account = replace(account_for(fake), api_base=f"http://127.0.0.1:{port}")
    with pytest.raises(TransientChannelError) as raised:
        ch.publish(rendered(ch, lib), account)
    assert_no_credentials(raised.value, fake)
    assert fake.secret not in repr(account)
    fake.misbehave("hang_after", path="/cgi-bin/token", seconds=1.5)
    with pytest.raises(TransientChannelError) as raised:
        ch.publish(rendered(ch, lib), account_for(fake, read_timeout=0.5))
    assert_no_credentials(raised.value, fake)


# ----------------------------------------------------------------------------- render


def test_render_article(ch, lib):
    story, renditions = wechat_story(lib, images=3, video=True)
    post = ch.render(story, renditions)
    f = post.fields
    assert post.channel == "wechat_mp" and f["title"] == story.title
    content = f["content"]
    assert content.startswith(f"<p>{LABEL}</p>")  # label first
    assert "<script" not in content and "alert(" not in content
    assert "<h3>建设进展</h3>" in content  # Markdown ## under the page title
    # the cover leads, then the body, then the gallery; all by placeholder
    assert len(f["body_images"]) == 3 and content.count(wechat_mp.PLACEHOLDER) == 3
    first_img = content.index(wechat_mp.PLACEHOLDER)
    assert first_img < content.index("今年以来") < content.rindex(wechat_mp.PLACEHOLDER)
    assert 'alt="第1张图片：学生在新教室上课"' in content and "摄影：李明" in content
    assert "阅读原文" in content  # the video is not embedded; readers are sent to the site
    assert f["digest"].startswith(f"【{LABEL}】") and len(f["digest"]) <= 128
    assert f["author"] == "融媒体中心记者 王芳" and f["content_source_url"] == LINK
    assert f["tags"] == ["教育", "民生实事"]
    roles = [(pf.role, pf.key.rsplit("/", 1)[-1]) for pf in post.files]
    assert roles[:2] == [("cover", "wechat_cover"), ("cover_square", "wechat_cover_square")]
    assert [r for r, _ in roles[2:]] == ["body"] * 3 and {p for _, p in roles[2:]} == {"wechat_body"}
    assert f["thumb"] == post.files[0].key and f["cover_square"] == post.files[1].key
    assert not any(pf.mime == "video/mp4" for pf in post.files)
    again = WechatMpChannel().render(story, renditions)
    assert again.content_hash() == post.content_hash()
    assert Post.from_json(json.loads(json.dumps(post.to_json(), ensure_ascii=False))) == post


def test_external_images_in_markdown_are_dropped(ch, lib):
    story, renditions = wechat_story(lib, images=1, body="正文。![外链](https://example.com/x.jpg)\n\n<img src=x onerror=alert(1)>")
    content = ch.render(story, renditions).fields["content"]
    assert "example.com" not in content and "onerror" not in content
    assert content.count("<img") == 1  # only the cover's body image


TITLE_ROWS = [
    ("fits", "黄" * 32, "", "黄" * 32, None),
    ("too-long-short-title-used", "黄" * 33, "短标题", "短标题", None),
    ("too-long-no-short-title", "黄" * 33, "", None, "never cut"),
    ("too-long-short-too-long", "黄" * 40, "山" * 33, None, "short title has 33"),
    ("empty", "  ", "", None, "empty"),
]


@pytest.mark.parametrize("case,title,short,expected,error", TITLE_ROWS, ids=[r[0] for r in TITLE_ROWS])
def test_title_is_never_cut(ch, lib, case, title, short, expected, error):
    story, renditions = wechat_story(lib)
    story = replace(story, title=title, short_title=short)
    if error:
        with pytest.raises(RenderError, match=error):
            ch.render(story, renditions)
    else:
        assert ch.render(story, renditions).fields["title"] == expected


def test_render_refuses_what_the_platform_would(ch, lib):
    story, renditions = wechat_story(lib)
    cover = story.media[0]
    with pytest.raises(RenderError, match="needs a cover"):
        ch.render(replace(story, media=tuple(replace(m, role="image") for m in story.media)), renditions)
    no_cover_rendition = {**renditions, cover.sha256: {k: v for k, v in renditions[cover.sha256].items()
                                                       if k != "wechat_cover"}}
    with pytest.raises(RenderError, match="wechat_cover"):
        ch.render(story, no_cover_rendition)
    gallery = story.media[1]
    big = replace(renditions[gallery.sha256]["wechat_body"], bytes=1_000_001)
    with pytest.raises(RenderError, match="at most 1000000"):
        ch.render(story, {**renditions, gallery.sha256: {**renditions[gallery.sha256], "wechat_body": big}})
    gif = replace(renditions[gallery.sha256]["wechat_body"], mime="image/gif")
    with pytest.raises(RenderError, match="jpg/png"):
        ch.render(story, {**renditions, gallery.sha256: {**renditions[gallery.sha256], "wechat_body": gif}})
    missing = {**renditions, gallery.sha256: {}}
    with pytest.raises(RenderError, match="wechat_body"):
        ch.render(story, missing)
    with pytest.raises(RenderError, match="characters"):
        ch.render(replace(story, body_markdown="长" * 19_900), renditions)
    ch.render(replace(story, body_markdown="长" * 19_000), renditions)  # fits with room for 2 URLs
    bare = {**renditions, cover.sha256: {k: v for k, v in renditions[cover.sha256].items() if k != "wechat_body"}}
    with pytest.raises(RenderError, match="no content"):
        ch.render(replace(story, body_markdown="<script>x</script>", media=(cover,)), bare)


def test_square_cover_is_optional(ch, lib):
    story, renditions = wechat_story(lib, square=False)
    post = ch.render(story, renditions)
    assert post.fields["cover_square"] == "" and [f.role for f in post.files][0:2] == ["cover", "body"]


def test_digest_is_cut_at_a_sentence_end(ch, lib):
    story, renditions = wechat_story(lib)
    summary = "今年新建学校三所。" * 20
    digest = ch.render(replace(story, summary=summary), renditions).fields["digest"]
    assert len(digest) <= 128 and digest.endswith("。") and digest.startswith(f"【{LABEL}】")
    assert ch.render(replace(story, summary="短摘要。"), renditions).fields["digest"] == f"【{LABEL}】短摘要。"
    no_label = ch.render(replace(story, label="", summary="短摘要。"), renditions)
    assert no_label.fields["digest"] == "短摘要。" and not no_label.fields["content"].startswith("<p></p>")


@pytest.mark.parametrize("author,expected", [
    ("融媒体中心记者 王芳", "融媒体中心记者 王芳"),
    ("王芳、李明、张华、赵强、孙丽、周杰", "王芳、李明、张华、赵强、孙丽等"),
    ("记者 王芳 李明 张华 赵强 孙丽 周杰", "记者 王芳 李明 张华 赵强等"),
    ("黄山区融媒体中心全媒体记者欧阳明月", ""),  # never a truncated name
])
def test_byline_keeps_whole_names(author, expected):
    assert byline(author, 16) == expected and len(byline(author, 16)) <= 16


@pytest.mark.parametrize("width,height,aspect,expected", [
    (900, 383, 2.35, "0_0_1_1"),
    (900, 383, 1.0, "0.287222_0_0.712778_1"),
    (500, 500, 1.0, "0_0_1_1"),
    (1000, 1000, 2.35, "0_0.287234_1_0.712766"),
    (2350, 1000, 2.35, "0_0_1_1"),
])
def test_crop_boxes(width, height, aspect, expected):
    assert crop_box(width, height, aspect) == expected


@pytest.mark.parametrize("text,limit,expected", [
    ("短。", 10, "短。"),
    ("第一句话。第二句话很长很长很长。", 10, "第一句话。"),
    ("他说：“好。”然后很长很长很长很长", 10, "他说：“好。”"),
    ("一二三四五六七，八九十一二三四五", 10, "一二三四五六七…"),
    ("一二三四五六七八九十一二三", 10, "一二三四五六七八九…"),
])
def test_cut_text(text, limit, expected):
    assert cut_text(text, limit) == expected


# ----------------------------------------------------------------------------- reconcile / retract


def test_publish_reconcile_retract(ch, lib, fake):
    post = rendered(ch, lib)
    account = account_for(fake)
    assert ch.reconcile(post, account) is None
    receipt = ch.publish(post, account)
    found = ch.reconcile(post, account)
    assert found is not None and found.remote_id == receipt.remote_id and found.url == receipt.url
    ch.retract(receipt, account)
    assert fake.articles[receipt.remote_id].deleted
    assert ch.reconcile(post, account) is None
    with pytest.raises(PermanentChannelError) as raised:
        ch.retract(receipt, account)  # already gone
    assert raised.value.code == "40007"
    with pytest.raises(PermanentChannelError):
        ch.retract(Receipt(remote_id=""), account)


def test_reconcile_after_a_timeout_finds_the_post_and_never_reposts(ch, lib, fake):
    post = rendered(ch, lib)
    fake.misbehave("hang_after", path="/cgi-bin/freepublish/submit", seconds=1.5)
    with pytest.raises(OutcomeUnknownError):
        ch.publish(post, account_for(fake, read_timeout=0.5))
    found = ch.reconcile(post, account_for(fake))
    assert found is not None and found.remote_id in fake.articles
    assert fake.posts[post.fields["title"]] == 1


def test_reconcile_while_still_publishing(ch, lib, fake):
    post = rendered(ch, lib)
    fake.status_sequence = [1]
    account = account_for(fake, poll_timeout=0.1)
    with pytest.raises(PublishPending) as raised:
        ch.publish(post, account)
    publish_id = raised.value.publish_id
    with pytest.raises(OutcomeUnknownError, match=publish_id):  # never "not posted" while it runs
        ch.reconcile(post, account)
    fake.complete_all()
    found = ch.reconcile(post, account)
    assert found is not None and found.remote_id == fake.jobs[publish_id].article_id
    # the publish job failing instead means certainly not posted
    other = rendered(ch, lib, 9)
    with pytest.raises(PublishPending) as raised:
        ch.publish(other, account)
    job = fake.jobs[raised.value.publish_id]
    job.sequence, job.gets = [4], 0  # then the review rejects it
    assert ch.reconcile(other, account) is None
    assert fake.posts[other.fields["title"]] == 1


def test_reconcile_matches_title_and_link_across_pages(ch, lib, fake):
    post = rendered(ch, lib)
    account = account_for(fake)
    ch.publish(post, account)
    target = next(iter(fake.articles))
    for i in range(30):  # newer articles push ours to the second page
        fake.articles[f"ARTICLE_other{i}"] = wechat_mp_article(fake, f"其他稿件{i}", LINK)
    fake.articles["ARTICLE_same_title_other_link"] = wechat_mp_article(fake, post.fields["title"],
                                                                      "https://elsewhere.example/")
    found = ch.reconcile(post, account)
    assert found is not None and found.remote_id == target
    pages = [r.json["offset"] for r in fake.requests if r.path == "/cgi-bin/freepublish/batchget"]
    assert pages[-2:] == [0, 20]


def wechat_mp_article(fake: FakeWechatMp, title: str, link: str):
    from tests.fakes.wechat_mp import Article

    return Article(article_id=f"ARTICLE_{hashlib.md5(title.encode() + link.encode()).hexdigest()[:8]}",
                   url="http://mp.weixin.qq.com/s?other", update_time=0,
                   draft={"title": title, "content_source_url": link, "digest": ""})


# ----------------------------------------------------------------------------- maintain / outbox


def test_maintain(ch, fake):
    saved = Saved()
    now = datetime.now(UTC)
    assert ch.maintain(account_for(fake, saved), now) == []
    assert saved[-1]["access_token"] in fake.tokens
    assert ch.maintain(account_for(fake, creds=saved[-1]), now) == []
    assert fake.count.token_issues == 1  # still fresh: no new token
    fake.ip_whitelisted = False
    wechat_mp.reset_caches()
    warnings = ch.maintain(account_for(fake), now)
    assert len(warnings) == 1 and "40164" in warnings[0] and fake.secret not in warnings[0]
    bare = AccountData(id=4, channel="wechat_mp", name="无凭据")
    assert "appid/secret" in ch.maintain(bare, now)[0]
    assert ch.maintain(replace(bare, mode="outbox"), now) == []


def test_outbox_package(ch, lib):
    story, renditions = wechat_story(lib)
    post = ch.render(story, renditions)
    texts = ch.outbox_texts(post)
    assert texts["title.txt"] == story.title and texts["digest.txt"].startswith(f"【{LABEL}】")
    assert wechat_mp.PLACEHOLDER not in texts["content.html"]
    for key in post.fields["body_images"]:
        name = next(f.name for f in post.files if f.key == key)
        assert f'src="files/{name}"' in texts["content.html"]
    assert texts["source_url.txt"] == LINK and texts["tags.txt"] == "#教育 #民生实事"
    steps = ch.outbox_checklist(post)
    assert steps[0].startswith("登录微信公众平台") and "登记已发布" in steps[-1]
    assert any(post.files[0].name in s and "2.35:1" in s for s in steps)


def test_publish_refuses_a_tampered_file(ch, lib, fake):
    post = rendered(ch, lib)
    Path(post.files[-1].path).write_bytes(b"\xff\xd8\xff changed")
    with pytest.raises(PermanentChannelError, match="sha256"):
        ch.publish(post, account_for(fake))
    assert not fake.posts


def test_errors_are_channel_errors_without_credentials(ch, lib, fake):
    post = rendered(ch, lib)
    for setup in (lambda: setattr(fake, "ip_whitelisted", False), lambda: setattr(fake, "force_token_error", 40001)):
        fake.ip_whitelisted, fake.force_token_error = True, None
        setup()
        wechat_mp.reset_caches()
        with pytest.raises(ChannelError) as raised:
            ch.publish(post, account_for(fake))
        assert_no_credentials(raised.value, fake)
        assert "still refused" in str(raised.value) or "40164" in str(raised.value)
