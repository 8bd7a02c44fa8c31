"""channels/wordpress.py against tests/fakes/wordpress.py (the WordPress REST API on loopback).

Rows of (what the site is told to do / answers → Receipt, or exception type + code +
retry_after), render checks (label first, web_960 files, placeholders, slug, date_gmt),
the duplicate-slug trap, reconcile, retract, maintain, and that no credential leaks.
"""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from channels.base import (
    AccountData,
    ChannelError,
    OutcomeUnknownError,
    PermanentChannelError,
    Receipt,
    RenderError,
    TransientChannelError,
)
from channels.wordpress import PLACEHOLDER, WordpressChannel, post_slug
from tests.fakes.wordpress import FakeWordpress
from tests.unit.test_channel_website import LABEL, MediaLibrary, make_story

PASSWORD = "abcd efgh ijkl mnop qrst uvwx"
CREDS = {"username": "editor", "app_password": PASSWORD}
POSTS = "/wp-json/wp/v2/posts"
SECRETS = (PASSWORD, PASSWORD.replace(" ", ""), base64.b64encode(f"editor:{PASSWORD}".encode()).decode())


@pytest.fixture()
def fake():
    with FakeWordpress(users={"editor": PASSWORD}, categories=(1, 3, 5), tags=(7,)) as server:
        yield server


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


def account(fake: FakeWordpress | None, credentials: dict | None = None, api_base: str | None = "",
            **settings: object) -> AccountData:
    return AccountData(id=3, channel="wordpress", name="区教体局网站",
                       api_base=(fake.url if fake else None) if api_base == "" else api_base,
                       credentials=CREDS if credentials is None else credentials,
                       settings={"read_timeout": 5, **settings})


def assert_no_secret(*objects: object) -> None:
    for obj in objects:
        for text in (str(obj), repr(obj)):
            for secret in SECRETS:
                assert secret not in text


# ----------------------------------------------------------------------------- render


def test_render_label_first_files_and_placeholders(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 7, images=3, video=True)
    story = replace(story, link="https://www.hsq.example.cn/site/stories/7/")
    post = WordpressChannel().render(story, renditions)
    f = post.fields
    assert f["content"].startswith(f'<p class="fanout-label"><strong>{LABEL}</strong></p>')
    assert f["excerpt"].startswith(LABEL + " 今年以来")
    assert f["slug"] == "fanout-7-v1" == post_slug(7, 1)
    assert f["date_gmt"] == "2026-11-22T00:00:00"  # 08:00 Asia/Shanghai
    assert "<script" not in f["content"] and "<em>新建</em>" in f["content"]
    # files: the web_960 of each image, the web_video and its poster; nothing else
    cover, second, third, video = story.media
    expected = [renditions[cover.sha256]["web_960"], renditions[second.sha256]["web_960"],
                renditions[third.sha256]["web_960"], renditions[video.sha256]["web_video"],
                renditions[video.sha256]["web_poster"]]
    assert [(pf.key, pf.sha256, pf.mime) for pf in post.files] == [(r.key, r.sha256, r.mime) for r in expected]
    assert [pf.role for pf in post.files] == ["cover", "image", "image", "video", "poster"]
    # the cover is the featured image, not repeated in the content; the others are placeholders
    assert f["featured"] == expected[0].sha256
    assert PLACEHOLDER + expected[0].sha256 not in f["content"]
    for r in expected[1:]:
        assert PLACEHOLDER + r.sha256 in f["content"]
    assert f'[video mp4="{PLACEHOLDER}{expected[3].sha256}" poster="{PLACEHOLDER}{expected[4].sha256}"' in f["content"]
    assert 'alt="第2张图片：学生在新教室上课"' in f["content"]
    assert f["attachments"][expected[0].sha256] == {"alt": "第1张图片：学生在新教室上课", "caption": "摄影：李明"}
    assert f["content"].rstrip().endswith('原文链接：<a href="https://www.hsq.example.cn/site/stories/7/">'
                                          'https://www.hsq.example.cn/site/stories/7/</a></p>')


def test_render_is_deterministic(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 8, images=2)
    first = WordpressChannel().render(story, renditions)
    assert first == WordpressChannel().render(replace(story), {k: dict(v) for k, v in renditions.items()})
    assert first.content_hash() == WordpressChannel().render(story, renditions).content_hash()
    assert WordpressChannel().render(replace(story, version=2), renditions).fields["slug"] == "fanout-8-v2"


def test_no_label_no_cover(lib: MediaLibrary) -> None:
    item, rs = lib.image("nocover", role="image", alt="现场")
    story, _ = make_story(lib, 9, images=0, label="")
    post = WordpressChannel().render(replace(story, media=(item,)), {item.sha256: rs})
    assert post.fields["featured"] is None and PLACEHOLDER + rs["web_960"].sha256 in post.fields["content"]
    assert post.fields["content"].startswith("<p>今年以来") and post.fields["excerpt"].startswith("今年以来")


RENDER_ERRORS = [
    ("empty-title", lambda s, r: (replace(s, title=" "), r), "title is empty"),
    ("title-101", lambda s, r: (replace(s, title="题" * 101), r), "at most 100"),
    ("naive-release", lambda s, r: (replace(s, release_at=datetime(2026, 11, 22, 8)), r), "timezone-aware"),
    ("no-web-960", lambda s, r: (s, {k: {p: v for p, v in rs.items() if p != "web_960"} for k, rs in r.items()}),
     "no web_960"),
    ("no-web-video", lambda s, r: (s, {k: {p: v for p, v in rs.items() if p != "web_video"} for k, rs in r.items()}),
     "no web_video"),
]


@pytest.mark.parametrize("change,message", [r[1:] for r in RENDER_ERRORS], ids=[r[0] for r in RENDER_ERRORS])
def test_render_errors(lib: MediaLibrary, change, message: str) -> None:
    story, renditions = make_story(lib, 10, images=1, video=True)
    story, renditions = change(story, renditions)
    with pytest.raises(RenderError, match=message):
        WordpressChannel().render(story, renditions)


# ----------------------------------------------------------------------------- publish


def test_publish_uploads_media_then_creates_the_post(fake: FakeWordpress, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 11, images=2, video=True)
    post = WordpressChannel().render(story, renditions)
    receipt = WordpressChannel().publish(post.with_paths(lib.paths), account(fake, categories="3,5", tags=[7]))

    assert fake.posts == {"fanout-11-v1": 1}
    created = fake.store[int(receipt.remote_id)]
    assert receipt.url == created["link"] and receipt.extra["slug"] == "fanout-11-v1"
    assert receipt.extra["content_hash"] == post.content_hash()
    assert created["status"] == "publish" and created["categories"] == [3, 5] and created["tags"] == [7]
    assert created["date_gmt"] == "2026-11-22T00:00:00" and created["title"]["raw"] == story.title
    # every file went up once, raw, with its type and a filename; alt text came along
    uploads = [r for r in fake.requests if r.path == "/wp-json/wp/v2/media"]
    assert len(uploads) == len(post.files) == 4
    for req, pf in zip(uploads, post.files):
        assert req.header("Content-Type") == pf.mime
        assert req.header("Content-Disposition") == f'attachment; filename="{pf.name}"'
        assert req.body == Path(lib.paths[pf.key]).read_bytes()
    cover_media = fake.media[created["featured_media"]]
    assert cover_media["alt_text"] == "第1张图片：学生在新教室上课"
    assert fake.media_data[created["featured_media"]] == Path(lib.paths[post.files[0].key]).read_bytes()
    # placeholders became the uploads' URLs
    content = created["content"]["raw"]
    assert PLACEHOLDER not in content and content.startswith(f'<p class="fanout-label"><strong>{LABEL}')
    for media_id, item in fake.media.items():
        if media_id != created["featured_media"]:
            assert item["source_url"] in content
    assert sorted(receipt.extra["media_ids"]) == sorted(fake.media)
    # the post was looked for by slug (with auth) before anything was uploaded
    assert fake.requests[0].path == "/wp-json/wp/v2/posts" and fake.requests[0].method == "GET"
    assert fake.requests[0].query["slug"] == "fanout-11-v1" and fake.requests[0].query["status"] == "any"


def _wrong_password(fake: FakeWordpress) -> dict:
    return {"credentials": {"username": "editor", "app_password": "wrong pass word"}}


ERROR_ROWS = [
    # (id, fake setup → account overrides, exception, code, retry_after, posts recorded)
    ("wrong-password", _wrong_password, PermanentChannelError, "incorrect_password", None, 0),
    ("unknown-user", lambda f: {"credentials": {"username": "nobody", "app_password": PASSWORD}},
     PermanentChannelError, "invalid_username", None, 0),
    ("cannot-publish", lambda f: setattr(f, "can_publish", False), PermanentChannelError, "rest_cannot_publish",
     None, 0),
    ("unknown-category", lambda f: {"settings": {"categories": "99"}}, PermanentChannelError, "rest_invalid_param",
     None, 0),
    ("bad-category-setting", lambda f: {"settings": {"categories": "教育"}}, PermanentChannelError, "bad_setting",
     None, 0),
    ("bad-status-setting", lambda f: {"settings": {"status": "live"}}, PermanentChannelError, "bad_setting", None, 0),
    ("no-api-base", lambda f: {"api_base": None}, PermanentChannelError, "no_api_base", None, 0),
    ("no-credentials", lambda f: {"credentials": {"username": "editor"}}, PermanentChannelError, "no_credentials",
     None, 0),
    ("rate-limited-post", lambda f: f.misbehave("retry_after", path=POSTS, method="POST", seconds=30),
     TransientChannelError, "429", 30.0, 0),
    ("media-503", lambda f: f.misbehave("status", path="/wp-json/wp/v2/media", status=503), TransientChannelError,
     "503", None, 0),
    ("media-reset", lambda f: f.misbehave("reset", path="/wp-json/wp/v2/media"), TransientChannelError, None, None,
     0),
    ("create-500", lambda f: f.misbehave("status", path=POSTS, method="POST", status=500),
     TransientChannelError, "500", None, 0),
    # reset while creating: the site may or may not have it (here: not) → unknown, reconcile
    ("create-reset", lambda f: f.misbehave("reset", path=POSTS, method="POST"), OutcomeUnknownError, None, None, 0),
    ("create-hangs", lambda f: f.misbehave("hang_after", path=POSTS, method="POST", seconds=1.5),
     OutcomeUnknownError, None, None, 1),
]


@pytest.mark.parametrize("name,setup,error,code,retry_after,recorded", ERROR_ROWS, ids=[r[0] for r in ERROR_ROWS])
def test_publish_outcomes(fake: FakeWordpress, lib: MediaLibrary, name, setup, error, code, retry_after,
                          recorded) -> None:
    overrides = setup(fake) or {}
    settings = {"read_timeout": 0.5, **overrides.get("settings", {})}
    acct = account(fake, overrides.get("credentials"), overrides.get("api_base", ""), **settings)
    story, renditions = make_story(lib, 12, images=1)
    post = WordpressChannel().render(story, renditions).with_paths(lib.paths)
    with pytest.raises(error) as raised:
        WordpressChannel().publish(post, acct)
    if code is not None:
        assert raised.value.code == code
    if retry_after is not None:
        assert raised.value.retry_after == retry_after
    assert sum(fake.posts.values()) == recorded
    assert_no_secret(raised.value, acct)


def test_an_unknown_outcome_is_reconciled_not_reposted(fake: FakeWordpress, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 13, images=1)
    post = WordpressChannel().render(story, renditions).with_paths(lib.paths)
    slow = account(fake, read_timeout=0.5)
    fake.misbehave("hang_after", path=POSTS, method="POST", seconds=1.5)
    with pytest.raises(OutcomeUnknownError):
        WordpressChannel().publish(post, slow)
    found = WordpressChannel().reconcile(post, account(fake))
    assert isinstance(found, Receipt) and fake.store[int(found.remote_id)]["slug"] == "fanout-13-v1"
    # the dispatcher (or a blind retry) publishing again gets the same post back, not a second one
    again = WordpressChannel().publish(post, account(fake))
    assert again.remote_id == found.remote_id and again.extra["already_posted"] is True
    assert fake.posts == {"fanout-13-v1": 1} and len(fake.posts_with_slug("fanout-13-v1")) == 1


def test_the_fake_suffixes_duplicate_slugs_and_reconcile_only_trusts_its_own(fake: FakeWordpress,
                                                                             lib: MediaLibrary) -> None:
    auth = ("editor", PASSWORD)
    for _ in range(2):
        r = requests.post(f"{fake.url}/wp-json/wp/v2/posts", auth=auth, timeout=5,
                          json={"title": "t", "content": "c", "status": "publish", "slug": "fanout-14-v1"})
        assert r.status_code == 201
    assert [p["slug"] for p in fake.posts_with_slug("fanout-14-v1")] == ["fanout-14-v1", "fanout-14-v1-2"]
    assert fake.posts["fanout-14-v1"] == 2  # WordPress did not refuse the duplicate: it counted twice
    story, renditions = make_story(lib, 14, images=1)
    post = WordpressChannel().render(story, renditions)
    found = WordpressChannel().reconcile(post, account(fake))
    assert found is not None and fake.store[int(found.remote_id)]["slug"] == "fanout-14-v1"
    other = WordpressChannel().render(replace(story, story_id=15), renditions)
    fake.store[int(found.remote_id) + 1]["slug"] = "fanout-15-v1-2"  # a suffixed slug is someone else's
    assert WordpressChannel().reconcile(other, account(fake)) is None


def test_reconcile_none_then_retract_trash_and_force(fake: FakeWordpress, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 16, images=1)
    post = WordpressChannel().render(story, renditions)
    channel = WordpressChannel()
    assert channel.reconcile(post, account(fake)) is None
    receipt = channel.publish(post.with_paths(lib.paths), account(fake))
    assert channel.reconcile(post, account(fake)).remote_id == receipt.remote_id
    channel.retract(receipt, account(fake))
    delete = fake.requests[-1]
    assert delete.method == "DELETE" and delete.path == f"/wp-json/wp/v2/posts/{receipt.remote_id}"
    assert delete.query["force"] == "false" and fake.store[int(receipt.remote_id)]["status"] == "trash"
    assert channel.reconcile(post, account(fake)) is None  # trash is not "posted"
    channel.retract(receipt, account(fake))  # 410 rest_already_trashed: still retracted
    # a new publish after the retraction may reuse the slug (the trashed one got __trashed)
    again = channel.publish(post.with_paths(lib.paths), account(fake))
    assert fake.store[int(again.remote_id)]["slug"] == "fanout-16-v1"
    channel.retract(again, account(fake, retract_force="true"))
    assert int(again.remote_id) not in fake.store
    channel.retract(again, account(fake))  # 404 rest_post_invalid_id: gone already


def test_retract_errors(fake: FakeWordpress) -> None:
    with pytest.raises(PermanentChannelError, match="not a WordPress post id"):
        WordpressChannel().retract(Receipt(remote_id="story-3"), account(fake))
    bad = account(fake, {"username": "editor", "app_password": "nope"})
    with pytest.raises(PermanentChannelError) as raised:
        WordpressChannel().retract(Receipt(remote_id="101"), bad)
    assert raised.value.code == "incorrect_password"
    fake.misbehave("status", status=503)
    with pytest.raises(TransientChannelError):
        WordpressChannel().retract(Receipt(remote_id="101"), account(fake))


def test_reconcile_errors_are_not_none(fake: FakeWordpress, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 17, images=1)
    post = WordpressChannel().render(story, renditions)
    fake.misbehave("status", status=502)
    with pytest.raises(TransientChannelError):  # "I could not ask" is not "not posted"
        WordpressChannel().reconcile(post, account(fake))
    with pytest.raises(PermanentChannelError):
        WordpressChannel().reconcile(post, account(fake, {"username": "editor", "app_password": "x"}))


def test_maintain_checks_the_credentials(fake: FakeWordpress) -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    assert WordpressChannel().maintain(account(fake), now) == []
    assert fake.requests[-1].path == "/wp-json/wp/v2/users/me"
    warnings = WordpressChannel().maintain(account(fake, {"username": "editor", "app_password": "old"}), now)
    assert len(warnings) == 1 and "incorrect_password" in warnings[0]
    assert_no_secret(warnings, "old pass")
    assert "no_api_base" in WordpressChannel().maintain(account(None, api_base=None), now)[0]


def test_credentials_travel_only_in_the_authorization_header(fake: FakeWordpress, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 18, images=1)
    post = WordpressChannel().render(story, renditions).with_paths(lib.paths)
    receipt = WordpressChannel().publish(post, account(fake))
    assert_no_secret(receipt, post, account(fake))
    for req in fake.requests:
        assert req.header("Authorization", "").startswith("Basic ")
        assert not any(s in req.path or s in str(req.query) for s in SECRETS)
        assert not any(s.encode() in req.body for s in SECRETS[:2])


def test_publish_refuses_a_post_of_another_channel(fake: FakeWordpress, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 19, images=1)
    post = WordpressChannel().render(story, renditions)
    with pytest.raises(ChannelError, match="no local path"):
        WordpressChannel().publish(post, account(fake))  # paths not filled in
    with pytest.raises(PermanentChannelError, match="cannot be published"):
        WordpressChannel().publish(replace(post, channel="weibo").with_paths(lib.paths), account(fake))
    assert not fake.requests


def test_a_tampered_content_placeholder_is_refused(fake: FakeWordpress, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 20, images=1)
    post = WordpressChannel().render(story, renditions)
    evil = replace(post, fields={**post.fields, "content": post.fields["content"] + f'<img src="{PLACEHOLDER}{"0" * 64}">'})
    with pytest.raises(PermanentChannelError, match="lacks"):
        WordpressChannel().publish(evil.with_paths(lib.paths), account(fake))
    assert not fake.posts
    assert re.fullmatch(r"[0-9a-f]{64}", post.files[0].sha256)
