"""channels/douyin.py against tests/fakes/douyin.py on loopback (../shared/channels.md, Douyin).

Table-driven: rows of (what the fake is told → what publish returns or raises, with the
platform's code and retry_after), then render (label first, #话题, the 55-character count,
cutting, files chosen), the part upload, token refresh and persistence, reconcile, retract,
maintain (refresh/renew/warnings), and that no credential leaks into an error or a request
where it does not belong.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels.base import (
    AccountData,
    ChannelError,
    MediaItem,
    OutcomeUnknownError,
    PermanentChannelError,
    Post,
    Receipt,
    RenderError,
    StoryData,
    TransientChannelError,
)
from channels.douyin import DouyinChannel, compose_text, cut_text
from tests.fakes.douyin import FakeDouyin
from tests.unit.test_channel_website import BASE_TIME, LABEL, MediaLibrary

KB = 1024
CREATE = "/api/douyin/v1/video/create_video/"
UPLOAD = "/api/douyin/v1/video/upload_video/"
IMAGE = "/api/douyin/v1/video/upload_image/"
DATA = "/api/douyin/v1/video/video_data/"
DELETE = "/api/douyin/v1/video/delete/"
REFRESH = "/oauth/refresh_token/"
RENEW = "/oauth/renew_refresh_token/"
PART = "/api/douyin/v1/video/upload_video_part/"


# ----------------------------------------------------------------------------- helpers


def jpeg(width: int, height: int, seed: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), tuple(hashlib.sha256(seed.encode()).digest()[:3])).save(buf, "JPEG")
    return buf.getvalue()


def mp4_bytes(size: int, seed: str) -> bytes:
    """`size` bytes that start like an MP4 (ftyp box) and differ per seed and position."""
    head = b"\x00\x00\x00\x18ftypmp42"
    block = b"".join(hashlib.sha256(f"{seed}-{i}".encode()).digest() for i in range(64))
    body = (block * (size // len(block) + 1))[: size - len(head)]
    return head + body


def douyin_story(lib: MediaLibrary, story_id: int, *, title: str | None = None, label: str = LABEL,
                 tags: tuple[str, ...] = ("教育", "民生实事"), cover: bool = True, video: bool = True,
                 video_size: int = 48 * KB, video_profiles: tuple[str, ...] = ("douyin_video",),
                 cover_profiles: tuple[str, ...] = ("douyin_cover",)) -> tuple[StoryData, dict]:
    media: list[MediaItem] = []
    renditions: dict[str, dict] = {}
    if cover:
        sha = hashlib.sha256(f"cover-{story_id}".encode()).hexdigest()
        renditions[sha] = {p: lib.rendition(p, jpeg(108, 192, f"{story_id}-{p}"), "image/jpeg", 1080, 1920)
                           for p in cover_profiles}
        media.append(MediaItem(role="cover", sha256=sha, kind="image", mime="image/jpeg", alt="封面"))
    if video:
        sha = hashlib.sha256(f"video-{story_id}".encode()).hexdigest()
        renditions[sha] = {p: lib.rendition(p, mp4_bytes(video_size, f"{story_id}-{p}"), "video/mp4", 1080, 1920, 58.0)
                           for p in video_profiles}
        media.append(MediaItem(role="video", sha256=sha, kind="video", mime="video/mp4", duration=58.0))
    story = StoryData(story_id=story_id, version=1, title=title if title is not None else f"第{story_id}所新建学校投入使用",
                      body_markdown="今年以来，黄山区新建学校3所。", release_at=BASE_TIME, tags=tags, label=label,
                      media=tuple(media), link=f"https://www.example.gov.cn/stories/{story_id}/")
    return story, renditions


class Saved(list):
    """save_credentials that remembers every merged mapping it was given."""

    def __call__(self, merged) -> None:
        self.append(dict(merged))


def account_for(fake: FakeDouyin, saved: Saved | None = None, creds: dict | None = None,
                **settings: Any) -> AccountData:
    return AccountData(id=7, channel="douyin", name="区融媒抖音号", api_base=fake.url,
                       credentials={**fake.issue(), **(creds or {})}, settings=settings, save_credentials=saved)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


@pytest.fixture()
def fake():
    with FakeDouyin(min_part_bytes=64 * KB) as server:
        yield server


def publish(lib: MediaLibrary, account: AccountData, story_id: int = 1, **story_kwargs: Any) -> tuple[Post, Receipt]:
    story, renditions = douyin_story(lib, story_id, **story_kwargs)
    post = DouyinChannel().render(story, renditions)
    return post, DouyinChannel().publish(post.with_paths(lib.paths), account)


# ----------------------------------------------------------------------------- publish: the table

Setup = Callable[[FakeDouyin], None]

ROWS: list[tuple[str, Setup, dict, Any, str | None, float | None]] = [
    # (id, what the fake is told, account settings, expected outcome, code, retry_after)
    ("ok", lambda f: None, {}, Receipt, None, None),
    ("access-token-expired-refresh-and-retry", lambda f: f.expire_access_token(), {}, Receipt, None, None),
    ("expired-28001008-on-create-refresh-and-retry", lambda f: f.fail_next(CREATE, 28001008), {}, Receipt, None, None),
    ("expired-on-video-upload-resends-the-file", lambda f: f.fail_next(UPLOAD, 2190008), {}, Receipt, None, None),
    ("expired-twice-refreshes-once-only", lambda f: f.fail_next(UPLOAD, 2190008, times=2), {},
     PermanentChannelError, "2190008", None),
    ("refresh-token-expired-10010", lambda f: (f.expire_access_token(), f.expire_refresh_token()), {},
     PermanentChannelError, "10010", None),
    ("invalid-token-2190002", lambda f: f.fail_next(CREATE, 2190002), {}, PermanentChannelError, "2190002", None),
    ("busy-2100004", lambda f: f.fail_next(UPLOAD, 2100004), {}, TransientChannelError, "2100004", None),
    ("busy-28001005-with-setting", lambda f: f.fail_next(CREATE, 28001005), {"busy_retry_after": 15},
     TransientChannelError, "28001005", 15.0),
    ("bad-parameter-2100005", lambda f: f.fail_next(CREATE, 2100005), {}, PermanentChannelError, "2100005", None),
    ("bad-parameter-28001007", lambda f: f.fail_next(IMAGE, 28001007), {}, PermanentChannelError, "28001007", None),
    ("quota-2190001", lambda f: f.set_quota(0), {}, TransientChannelError, "2190001", 3600.0),
    ("quota-28003017-with-setting", lambda f: f.fail_next(CREATE, 28003017), {"quota_retry_after": 120},
     TransientChannelError, "28003017", 120.0),
    ("rate-28003018", lambda f: f.set_rate_limit(0, 60), {}, TransientChannelError, "28003018", 60.0),
    ("rate-28003018-with-setting", lambda f: f.set_rate_limit(0, 60), {"rate_retry_after": 30},
     TransientChannelError, "28003018", 30.0),
    ("upload-http-503", lambda f: f.misbehave("status", path=UPLOAD, status=503), {}, TransientChannelError, "503", None),
    ("create-429-retry-after", lambda f: f.misbehave("retry_after", path=CREATE, seconds=7), {},
     TransientChannelError, "429", 7.0),
    ("upload-connection-reset", lambda f: f.misbehave("reset", path=UPLOAD), {}, TransientChannelError, None, None),
    ("create-connection-reset", lambda f: f.misbehave("reset", path=CREATE), {}, OutcomeUnknownError, None, None),
    ("create-hangs-after-posting", lambda f: f.misbehave("hang_after", path=CREATE, seconds=1.5),
     {"read_timeout": 0.5}, OutcomeUnknownError, None, None),
    ("platform-refuses-direct-size", lambda f: setattr(f, "direct_max_bytes", 1000), {}, PermanentChannelError,
     "2100005", None),
]


@pytest.mark.parametrize("case,setup,settings,expected,code,retry_after", ROWS, ids=[r[0] for r in ROWS])
def test_publish_outcomes(case: str, setup: Setup, settings: dict, expected: Any, code: str | None,
                          retry_after: float | None, fake: FakeDouyin, lib: MediaLibrary) -> None:
    saved = Saved()
    account = account_for(fake, saved, **settings)
    setup(fake)
    story, renditions = douyin_story(lib, 3)
    post = DouyinChannel().render(story, renditions)
    text = post.fields["text"]
    if expected is Receipt:
        receipt = DouyinChannel().publish(post.with_paths(lib.paths), account)
        item = fake.items[receipt.remote_id]
        assert item["title"] == text and receipt.url == item["share_url"]
        assert receipt.extra["create_time"] == item["create_time"]
        video = next(f for f in post.files if f.role == "video")
        assert item["video_sha256"] == video.sha256  # the exact rendition bytes arrived
        assert item["custom_cover"] in fake.images
        assert fake.posts[text] == 1
        refreshed = "expired" in case
        assert fake.refreshes == (1 if refreshed else 0)
        if refreshed:  # the new token was persisted and is the one now in use
            assert saved and saved[-1]["access_token"] != account.credentials["access_token"]
            assert fake.requests[-1].header("access-token") == saved[-1]["access_token"]
        return
    with pytest.raises(expected) as raised:
        DouyinChannel().publish(post.with_paths(lib.paths), account)
    assert type(raised.value) is expected
    assert raised.value.code == code
    if expected is TransientChannelError:
        assert raised.value.retry_after == retry_after
    if case == "create-hangs-after-posting":
        assert fake.posts[text] == 1  # the platform did post: only reconcile may tell
    else:
        assert fake.posts[text] == 0
    if code in ("10010", "2190002"):
        assert "authorise the Douyin account again" in str(raised.value)


def test_unknown_outcome_then_reconcile(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake, read_timeout=0.5)
    story, renditions = douyin_story(lib, 4)
    post = DouyinChannel().render(story, renditions)
    fake.misbehave("reset", path=CREATE)  # dropped before the handler: nothing posted
    with pytest.raises(OutcomeUnknownError):
        DouyinChannel().publish(post.with_paths(lib.paths), account)
    assert DouyinChannel().reconcile(post, account) is None
    fake.misbehave("hang_after", path=CREATE, seconds=1.5)  # posted, answer lost
    with pytest.raises(OutcomeUnknownError):
        DouyinChannel().publish(post.with_paths(lib.paths), account)
    found = DouyinChannel().reconcile(post, account)
    assert found is not None and found.remote_id in fake.items
    assert found.url == fake.items[found.remote_id]["share_url"]
    assert max(fake.posts.values()) == 1


@pytest.mark.parametrize("code,setup", [("2190001", lambda f: f.set_quota(0)),
                                        ("28003017", lambda f: f.fail_next(CREATE, 28003017)),
                                        ("2100004", lambda f: f.fail_next(CREATE, 2100004))],
                         ids=["quota-2190001", "quota-28003017", "busy-is-not-quota"])
def test_a_quota_error_reports_none_left(fake: FakeDouyin, lib: MediaLibrary, code: str, setup: Setup) -> None:
    seen: list[dict] = []
    setup(fake)
    with pytest.raises(TransientChannelError):
        publish(lib, replace(account_for(fake), report_quota=seen.append), 6)
    if code == "2100004":
        assert seen == []  # busy says nothing about the quota
    else:
        assert seen == [{"remaining": 0, "limit": None, "period": None, "resets_at": None,
                         "what": "open-platform call quota", "source": f"error {code}"}]


def test_a_failed_status_call_after_posting_still_returns_the_receipt(fake: FakeDouyin, lib: MediaLibrary) -> None:
    fake.fail_next(DATA, 2100004)
    post, receipt = publish(lib, account_for(fake), 5)
    assert receipt.remote_id in fake.items and receipt.url is None
    assert fake.posts[post.fields["text"]] == 1


def test_logid_is_in_the_message_either_spelling(lib: MediaLibrary) -> None:
    for key in ("logid", "log_id"):
        with FakeDouyin(logid_key=key) as fake:
            fake.fail_next(CREATE, 2100005)
            with pytest.raises(PermanentChannelError, match=r"logid 2026\d{12}FAKE"):
                publish(lib, account_for(fake), 6)


def test_every_call_sends_the_token_header_and_open_id(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake)
    creds = account.credentials
    publish(lib, account, 8)
    api_calls = [r for r in fake.requests if r.path.startswith("/api/")]
    assert {r.path for r in api_calls} >= {IMAGE, UPLOAD, CREATE, DATA}
    for r in api_calls:
        assert r.header("access-token") == creds["access_token"]
        assert r.query["open_id"] == creds["open_id"]
        assert "access_token" not in r.query
    create = next(r for r in api_calls if r.path == CREATE)
    assert set(create.json) == {"video_id", "text", "custom_cover_image_url"}
    assert fake.paths().index(IMAGE) < fake.paths().index(UPLOAD)  # small cover first, then the video


def test_a_story_without_cover_sends_no_cover(fake: FakeDouyin, lib: MediaLibrary) -> None:
    _, receipt = publish(lib, account_for(fake), 9, cover=False)
    assert IMAGE not in fake.paths()
    assert fake.items[receipt.remote_id]["custom_cover"] is None


def test_access_token_due_is_refreshed_before_any_call(fake: FakeDouyin, lib: MediaLibrary) -> None:
    saved = Saved()
    past = iso(datetime.now(UTC) - timedelta(minutes=1))
    account = account_for(fake, saved, creds={"access_expires_at": past})
    fake.expire_access_token()
    publish(lib, account, 10)
    assert fake.paths()[0] == REFRESH and fake.refreshes == 1
    new_expiry = datetime.fromisoformat(saved[-1]["access_expires_at"])
    assert timedelta(days=14) < new_expiry - datetime.now(UTC) <= timedelta(days=15)


def test_expires_in_as_string_is_understood(lib: MediaLibrary) -> None:
    with FakeDouyin(string_expiry=True) as fake:
        saved = Saved()
        account = account_for(fake, saved)
        fake.expire_access_token()
        publish(lib, account, 11)
        body = [r for r in fake.requests if r.path == REFRESH]
        assert body and fake.refreshes == 1
        access = datetime.fromisoformat(saved[-1]["access_expires_at"])
        refresh = datetime.fromisoformat(saved[-1]["refresh_expires_at"])
        now = datetime.now(UTC)
        assert timedelta(days=14) < access - now <= timedelta(days=15)
        assert timedelta(days=29) < refresh - now <= timedelta(days=30)


def test_oauth_calls_are_forms_and_never_send_the_client_secret(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake)
    fake.expire_access_token()
    publish(lib, account, 12)
    refresh = next(r for r in fake.requests if r.path == REFRESH)
    assert refresh.json is None and refresh.form == {"client_key": fake.client_key, "grant_type": "refresh_token",
                                                     "refresh_token": account.credentials["refresh_token"]}
    secret = fake.client_secret.encode()
    assert not any(secret in r.body or secret in repr(r.query).encode() for r in fake.requests)


# ----------------------------------------------------------------------------- part upload


def test_large_video_goes_up_in_parts(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake, part_bytes=64 * KB, chunked_above_bytes=100 * KB)
    post, receipt = publish(lib, account, 20, video_size=300 * KB)
    paths = fake.paths()
    assert UPLOAD not in paths
    parts = [r for r in fake.requests if r.path == PART]
    assert [int(r.query["part_number"]) for r in parts] == [1, 2, 3, 4, 5]
    assert [len(r.files["video"].data) for r in parts] == [64 * KB] * 4 + [300 * KB - 4 * 64 * KB]
    assert len({r.query["upload_id"] for r in parts}) == 1 and "+" in parts[0].query["upload_id"]  # decoded intact
    video = next(f for f in post.files if f.role == "video")
    assert fake.items[receipt.remote_id]["video_sha256"] == video.sha256


def test_small_video_goes_up_in_one_request(fake: FakeDouyin, lib: MediaLibrary) -> None:
    publish(lib, account_for(fake, part_bytes=64 * KB), 21, video_size=300 * KB)  # 50 MB threshold by default
    assert fake.paths().count(UPLOAD) == 1 and PART not in fake.paths()


def test_parts_below_the_platform_minimum_are_refused(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake, part_bytes=32 * KB, chunked_above_bytes=100 * KB)
    with pytest.raises(PermanentChannelError) as raised:
        publish(lib, account, 22, video_size=300 * KB)
    assert raised.value.code == "2100005" and not fake.posts


def test_upload_sizes_are_classvars() -> None:
    assert DouyinChannel.chunked_above_bytes == 50 * 1024 * 1024
    assert DouyinChannel.direct_max_bytes == 128 * 1024 * 1024
    assert DouyinChannel.part_bytes == 20 * 1024 * 1024


# ----------------------------------------------------------------------------- render


def test_render_text_label_first_title_hashtags(lib: MediaLibrary) -> None:
    story, renditions = douyin_story(lib, 30, title="新建学校投入使用", tags=("教育", "民 生 实 事", "#教育", ""))
    post = DouyinChannel().render(story, renditions)
    assert post.fields["text"] == f"{LABEL} 新建学校投入使用 #教育 #民生实事"
    assert post.fields["text"].startswith(LABEL)
    assert post.fields["hashtags"] == ["#教育", "#民生实事"]


def test_render_chooses_douyin_renditions(lib: MediaLibrary) -> None:
    story, renditions = douyin_story(lib, 31, video_profiles=("web_video", "douyin_video"),
                                     cover_profiles=("web_960", "douyin_cover"))
    post = DouyinChannel().render(story, renditions)
    by_role = {f.role: f for f in post.files}
    assert set(by_role) == {"video", "cover"}
    video_sha = next(iter(m.sha256 for m in story.media if m.kind == "video"))
    cover_sha = next(iter(m.sha256 for m in story.media if m.role == "cover"))
    assert by_role["video"].key == renditions[video_sha]["douyin_video"].key
    assert by_role["cover"].key == renditions[cover_sha]["douyin_cover"].key
    assert by_role["video"].mime == "video/mp4" and by_role["video"].name.endswith(".mp4")


def test_render_is_pure_and_round_trips(lib: MediaLibrary) -> None:
    story, renditions = douyin_story(lib, 32)
    first, second = DouyinChannel().render(story, renditions), DouyinChannel().render(story, renditions)
    assert first.content_hash() == second.content_hash()
    restored = Post.from_json(json.loads(json.dumps(first.to_json(), ensure_ascii=False)))
    assert restored == first
    assert first.with_paths(lib.paths).content_hash() == first.content_hash()


RENDER_ERRORS = [
    ("no-video", {"video": False}, "no video"),
    ("video-without-douyin-rendition", {"video_profiles": ("web_video",)}, "douyin_video"),
    ("cover-without-douyin-rendition", {"cover_profiles": ("web_960",)}, "douyin_cover"),
    ("empty-title", {"title": "   "}, "no title"),
    ("label-leaves-no-room", {"label": "民生实事" * 12}, "shorten the label"),
]


@pytest.mark.parametrize("case,kwargs,message", RENDER_ERRORS, ids=[r[0] for r in RENDER_ERRORS])
def test_render_errors(case: str, kwargs: dict, message: str, lib: MediaLibrary) -> None:
    story, renditions = douyin_story(lib, 33, **kwargs)
    with pytest.raises(RenderError, match=message):
        DouyinChannel().render(story, renditions)


def test_long_title_is_cut_at_a_clause_and_only_fitting_tags_follow(lib: MediaLibrary) -> None:
    title = "黄山区新建的第三所九年一贯制学校今天正式投入使用，新增学位一千二百个，全区学生就近入学更方便了"
    story, renditions = douyin_story(lib, 34, title=title)
    text = DouyinChannel().render(story, renditions).fields["text"]
    assert len(text) <= 55 and text.startswith(LABEL + " ")
    # cut after the clause (the comma replaced by "…"); then "#教育" fits, "#民生实事" does not
    assert text == f"{LABEL} 黄山区新建的第三所九年一贯制学校今天正式投入使用… #教育"
    assert len(text) + len(" #民生实事") > 55


TEXT_ROWS = [
    # (label, title, tags, limit, expected text)
    ("标签", "A" * 10, (), 13, "标签 " + "A" * 10),  # ASCII counts 1 each: exactly fits
    ("标签", "A" * 11, (), 13, "标签 " + "A" * 9 + "…"),  # one over: hard cut with "…"
    ("标签", "今天开学了，同学们好", ("教育",), 16, "标签 今天开学了，同学们好"),  # the tag does not fit
    ("标签", "今天开学了，同学们好", ("长长长长长长长", "教育"), 17, "标签 今天开学了，同学们好 #教育"),
    ("", "题目", ("话题",), 55, "题目 #话题"),
    ("标签", "one two three four", (), 14, "标签 one two…"),  # word boundary
]


@pytest.mark.parametrize("label,title,tags,limit,expected", TEXT_ROWS)
def test_compose_text_counting_and_cutting(label: str, title: str, tags: tuple, limit: int, expected: str) -> None:
    text, _ = compose_text(label, title, tags, limit, title_min=4)
    assert text == expected and len(text) <= limit


def test_cut_text_prefers_sentence_or_clause_end() -> None:
    assert cut_text("第一句话说完了。第二句话还很长很长很长", 12) == "第一句话说完了…"
    assert cut_text("短", 5) == "短"


def test_declarations() -> None:
    from media.profiles import PROFILES

    cls = DouyinChannel
    assert cls.name == "douyin" and cls.title_zh == "抖音"
    assert cls.video_profiles == ("douyin_video",) and cls.image_profiles == ("douyin_cover",)
    assert set(cls.video_profiles + cls.image_profiles) <= set(PROFILES)
    assert cls.label_on_video is True and cls.text_max == 55 and cls.length_rule == "chars"


def test_outbox_checklist_is_chinese_and_mentions_cover(lib: MediaLibrary) -> None:
    story, renditions = douyin_story(lib, 35)
    post = DouyinChannel().render(story, renditions)
    steps = DouyinChannel().outbox_checklist(post)
    assert any("封面" in s for s in steps) and any("text.txt" in s for s in steps)
    assert DouyinChannel().outbox_texts(post) == {"text.txt": post.fields["text"]}


# ----------------------------------------------------------------------------- reconcile / retract


def test_reconcile_pages_through_the_list_and_matches_exact_text(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake, reconcile_page_size=2)
    target, receipt = publish(lib, account, 40)
    for i in range(41, 46):  # five newer videos push the target to page 3
        publish(lib, account, i)
    found = DouyinChannel().reconcile(target, account)
    assert found is not None and found.remote_id == receipt.remote_id and found.url == receipt.url
    lists = [r for r in fake.requests if r.path.endswith("/video_list/")]
    assert [r.query["cursor"] for r in lists] == ["0", "2", "4"] and all(r.method == "GET" for r in lists)
    near = replace(target, fields={**target.fields, "text": target.fields["text"] + " "})
    assert DouyinChannel().reconcile(near, account) is None  # exact text only
    bounded = account_for(fake, reconcile_page_size=2, reconcile_pages=1)
    assert DouyinChannel().reconcile(target, bounded) is None  # only the newest pages are searched


def test_reconcile_with_expired_token_refreshes(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake)
    post, receipt = publish(lib, account, 47)
    fake.expire_access_token()
    assert DouyinChannel().reconcile(post, account).remote_id == receipt.remote_id
    assert fake.refreshes == 1


def test_retract_deletes_and_is_idempotent(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake)
    post, receipt = publish(lib, account, 50)
    DouyinChannel().retract(receipt, account)
    assert receipt.remote_id not in fake.items and fake.deleted == [receipt.remote_id]
    delete = next(r for r in fake.requests if r.path == DELETE)
    assert delete.json == {"item_id": receipt.remote_id}
    assert DouyinChannel().reconcile(post, account) is None
    DouyinChannel().retract(receipt, account)  # a retried retraction: already gone, no error


def test_retract_refused_while_the_video_still_exists(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake)
    _, receipt = publish(lib, account, 51)
    fake.fail_next(DELETE, 2100005)
    with pytest.raises(PermanentChannelError) as raised:
        DouyinChannel().retract(receipt, account)
    assert raised.value.code == "2100005" and receipt.remote_id in fake.items
    fake.fail_next(DELETE, 2100004)
    with pytest.raises(TransientChannelError):
        DouyinChannel().retract(receipt, account)


# ----------------------------------------------------------------------------- maintain

NOW = datetime.now(UTC)

MAINTAIN_ROWS = [
    # (id, credentials extras, fake setup, refreshes, renewals, new renew_count, warning substrings)
    ("nothing-due", {"access_expires_at": iso(NOW + timedelta(days=10)),
                     "refresh_expires_at": iso(NOW + timedelta(days=20))}, None, 0, 0, None, []),
    ("access-within-a-day", {"access_expires_at": iso(NOW + timedelta(hours=12)),
                             "refresh_expires_at": iso(NOW + timedelta(days=20))}, None, 1, 0, None, []),
    ("access-expiry-unknown", {}, None, 1, 0, None, []),
    ("refresh-within-5-days-renewed", {"access_expires_at": iso(NOW + timedelta(days=10)),
                                       "refresh_expires_at": iso(NOW + timedelta(days=3))}, None, 0, 1, 1, []),
    ("fifth-renewal-warns-exhausted", {"access_expires_at": iso(NOW + timedelta(days=10)),
                                       "refresh_expires_at": iso(NOW + timedelta(days=3)), "renew_count": 4},
     None, 0, 1, 5, ["all 5", "authorise the Douyin account again"]),
    ("renewals-exhausted-cannot-renew", {"access_expires_at": iso(NOW + timedelta(days=10)),
                                         "refresh_expires_at": iso(NOW + timedelta(days=3)), "renew_count": 5},
     None, 0, 0, None, ["cannot be renewed", "5/5", "authorise the Douyin account again"]),
    ("exhausted-but-not-yet-due-still-warns", {"access_expires_at": iso(NOW + timedelta(days=10)),
                                               "refresh_expires_at": iso(NOW + timedelta(days=20)),
                                               "renew_count": "5"},
     None, 0, 0, None, ["all 5"]),
    ("refresh-token-expired-10010", {"access_expires_at": iso(NOW + timedelta(hours=2))},
     lambda f: f.expire_refresh_token(), 0, 0, None, ["10010", "authorise the Douyin account again"]),
    ("platform-refuses-renewal-10020", {"access_expires_at": iso(NOW + timedelta(days=10)),
                                        "refresh_expires_at": iso(NOW + timedelta(days=3)), "renew_count": 1},
     lambda f: setattr(f, "max_renewals", 0), 0, 0, None, ["could not be renewed", "10020"]),
    ("refresh-expiry-unknown", {"access_expires_at": iso(NOW + timedelta(days=10))}, None, 0, 0, None,
     ["expiry is unknown"]),
    ("refresh-already-expired-by-our-books", {"access_expires_at": iso(NOW + timedelta(days=10)),
                                              "refresh_expires_at": iso(NOW - timedelta(hours=1))},
     None, 0, 0, None, ["expired at", "authorise the Douyin account again"]),
]


@pytest.mark.parametrize("case,creds,setup,refreshes,renewals,renew_count,warnings", MAINTAIN_ROWS,
                         ids=[r[0] for r in MAINTAIN_ROWS])
def test_maintain(case: str, creds: dict, setup: Setup | None, refreshes: int, renewals: int,
                  renew_count: int | None, warnings: list[str], fake: FakeDouyin) -> None:
    saved = Saved()
    account = account_for(fake, saved, creds=creds)
    if setup:
        setup(fake)
    out = DouyinChannel().maintain(account, NOW)
    assert fake.refreshes == refreshes and fake.renewals == renewals
    if warnings:
        assert len(out) == 1, out
        for piece in warnings:
            assert piece in out[0]
        assert account.name in out[0]
    else:
        assert out == []
    if refreshes:
        access = datetime.fromisoformat(saved[-1]["access_expires_at"])
        assert timedelta(days=14) < access - NOW <= timedelta(days=15, seconds=5)
        assert saved[-1]["access_token"] != account.credentials["access_token"]
    if renewals:
        assert saved[-1]["renew_count"] == renew_count
        assert saved[-1]["refresh_token"] != account.credentials["refresh_token"]
        refresh = datetime.fromisoformat(saved[-1]["refresh_expires_at"])
        assert timedelta(days=29) < refresh - NOW <= timedelta(days=30, seconds=5)
    if not refreshes and not renewals:
        assert not saved  # nothing new to store
        assert [p for p in fake.paths() if p in (REFRESH, RENEW)] == ([REFRESH] if "10010" in case
                                                                      else [RENEW] if "10020" in case else [])


def test_renewed_refresh_token_is_the_one_used_next(fake: FakeDouyin) -> None:
    saved = Saved()
    account = account_for(fake, saved, creds={"access_expires_at": iso(NOW + timedelta(days=10)),
                                              "refresh_expires_at": iso(NOW + timedelta(days=3))})
    assert DouyinChannel().maintain(account, NOW) == []
    renewed = replace(account, credentials=saved[-1])
    soon = NOW + timedelta(days=10)  # the access token is now due
    assert DouyinChannel().maintain(renewed, soon) == []
    refresh = [r for r in fake.requests if r.path == REFRESH][-1]
    assert refresh.form["refresh_token"] == saved[0]["refresh_token"] != account.credentials["refresh_token"]


def test_maintain_skips_outbox_and_bare_accounts(fake: FakeDouyin) -> None:
    assert DouyinChannel().maintain(AccountData(id=1, channel="douyin", name="outbox", mode="outbox"), NOW) == []
    bare = AccountData(id=2, channel="douyin", name="no-refresh", api_base=fake.url,
                       credentials={"access_token": "act.x", "open_id": "o"})
    out = DouyinChannel().maintain(bare, NOW)
    assert len(out) == 1 and "refresh_token" in out[0] and not fake.requests


# ----------------------------------------------------------------------------- credentials never leak


LEAK_SETUPS: list[tuple[str, Setup]] = [
    ("refresh-expired", lambda f: (f.expire_access_token(), f.expire_refresh_token())),
    ("invalid-token", lambda f: f.fail_next(CREATE, 2190002)),
    ("bad-parameter", lambda f: f.fail_next(UPLOAD, 2100005)),
    ("quota", lambda f: f.set_quota(0)),
    ("http-503", lambda f: f.misbehave("status", path=IMAGE, status=503)),
    ("reset", lambda f: f.misbehave("reset", path=CREATE)),
    ("hang", lambda f: f.misbehave("hang_after", path=CREATE, seconds=1.5)),
]


@pytest.mark.parametrize("case,setup", LEAK_SETUPS, ids=[r[0] for r in LEAK_SETUPS])
def test_no_credential_in_errors_or_reprs(case: str, setup: Setup, fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = account_for(fake, read_timeout=0.5)
    secrets = [account.credentials[k] for k in ("access_token", "refresh_token", "client_secret")]
    setup(fake)
    with pytest.raises(ChannelError) as raised:
        publish(lib, account, 60)
    exc = raised.value
    texts = [str(exc), repr(exc), repr(exc.args), repr(account)]
    if exc.__cause__ is not None:
        texts += [str(exc.__cause__), repr(exc.__cause__)]
    for secret in secrets:
        assert all(secret not in t for t in texts), case
    # and the access token went nowhere but its header
    for r in fake.requests:
        assert secrets[0] not in json.dumps([r.query, r.form, r.json], ensure_ascii=False)
        assert secrets[2] not in json.dumps([r.query, r.form, r.json, r.headers], ensure_ascii=False)


def test_missing_credentials_are_a_clear_permanent_error(fake: FakeDouyin, lib: MediaLibrary) -> None:
    account = AccountData(id=3, channel="douyin", name="unauthorised", api_base=fake.url,
                          credentials={"client_key": "k"})
    with pytest.raises(PermanentChannelError, match="access_token, open_id"):
        publish(lib, account, 61)
    assert not fake.requests
