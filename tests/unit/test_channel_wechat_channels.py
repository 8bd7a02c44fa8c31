"""channels/wechat_channels.py: 视频号 is an outbox channel — render rows (files, description,
short title), the outbox texts and checklist, and the refusal to publish, reconcile or retract."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from channels.base import (
    AccountData,
    MediaItem,
    PermanentChannelError,
    Post,
    Receipt,
    RenderError,
)
from channels.wechat_channels import WechatChannelsChannel
from media.profiles import PROFILES, PosterProfile, VideoProfile
from tests.unit.test_channel_website import LABEL, MediaLibrary, _jpeg, make_story

TITLE = "黄山区第7所新建学校投入使用"


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


def channels_video(lib: MediaLibrary, seed: str, *, duration: float = 58.0,
                   profiles: tuple[str, ...] = ("channels_video", "channels_cover_3x4", "channels_cover_4x3")):
    source = hashlib.sha256(f"video-{seed}".encode()).hexdigest()
    sizes = {"channels_cover_3x4": (810, 1080), "channels_cover_4x3": (1440, 1080)}
    renditions = {}
    for profile in profiles:
        if profile == "channels_video":
            renditions[profile] = lib.rendition(profile, b"\x00\x00\x00\x18ftypmp42" + seed.encode() * 32,
                                                "video/mp4", 1080, 1920, duration)
        else:
            w, h = sizes[profile]
            renditions[profile] = lib.rendition(profile, _jpeg(w, h, f"{seed}-{profile}"), "image/jpeg", w, h)
    item = MediaItem(role="video", sha256=source, kind="video", mime="video/mp4", alt="学校宣传片", duration=75.0)
    return item, renditions


def story_with_video(lib: MediaLibrary, story_id: int = 7, **changes):
    story, renditions = make_story(lib, story_id, images=1)
    item, rs = channels_video(lib, f"s{story_id}", **changes.pop("video", {}))
    renditions = {**renditions, item.sha256: rs}
    return replace(story, media=(*story.media, item), **changes), renditions


# ----------------------------------------------------------------------------- declarations


def test_declarations() -> None:
    cls = WechatChannelsChannel
    assert (cls.name, cls.title_zh) == ("wechat_channels", "微信视频号")
    assert cls.supports_live is False and cls.supports_retract is False and cls.label_on_video is True
    assert cls.video_profiles == ("channels_video", "channels_cover_3x4", "channels_cover_4x3")
    assert isinstance(PROFILES["channels_video"], VideoProfile) and PROFILES["channels_video"].max_duration == 60.0
    assert all(isinstance(PROFILES[p], PosterProfile) for p in cls.video_profiles[1:])
    assert (cls.short_title_min, cls.title_max, cls.description_max) == (6, 16, 1000)


# ----------------------------------------------------------------------------- render


def test_render_package(lib: MediaLibrary) -> None:
    story, renditions = story_with_video(lib)
    post = WechatChannelsChannel().render(story, renditions)
    video_rs = renditions[story.media[-1].sha256]
    assert [(pf.role, pf.name, pf.key, pf.mime) for pf in post.files] == [
        ("video", "video.mp4", video_rs["channels_video"].key, "video/mp4"),
        ("cover_3x4", "cover_3x4.jpg", video_rs["channels_cover_3x4"].key, "image/jpeg"),
        ("cover_4x3", "cover_4x3.jpg", video_rs["channels_cover_4x3"].key, "image/jpeg"),
    ]
    assert post.files[1].width * 4 == post.files[1].height * 3 and post.files[0].height == 1920
    f = post.fields
    assert f["short_title"] == TITLE and f["video_seconds"] == 58.0 and f["topics"] == ["教育", "民生实事"]
    lines = f["description"].split("\n")
    assert lines[0] == LABEL and lines[1] == TITLE
    assert lines[2].startswith("今年以来，黄山区新建学校3所") and lines[-1] == "#教育 #民生实事"
    assert "<script" not in f["description"] and "alert" not in f["description"]
    # pure: same inputs, same hash; the story's photo is not part of the package
    again = WechatChannelsChannel().render(replace(story), {k: dict(v) for k, v in renditions.items()})
    assert again == post and again.content_hash() == post.content_hash()
    assert Post.from_json(post.to_json()) == post


SHORT_TITLE_ROWS = [
    # (id, editor's short title, title, expected short title or RenderError match)
    ("title-fits", "", TITLE, TITLE),
    ("editors-wins", "新学校开学了", TITLE, "新学校开学了"),
    ("comma-becomes-space", "新学校，开学了", TITLE, "新学校 开学了"),
    ("editors-too-short", "开学了", TITLE, "write a longer one"),
    ("editors-too-long", "一二三四五六七八九十一二三四五六七", TITLE, "shorten it"),
    ("editors-exactly-16", "一二三四五六七八九十一二三四五六", TITLE, "一二三四五六七八九十一二三四五六"),
    ("editors-emoji", "新学校😀开学了", TITLE, "does not take: 😀"),
    ("cut-at-separator", "", "黄山区新建学校3所，新增学位1200个", "黄山区新建学校3所"),
    ("cut-keeps-quotes", "", "“双减”下的课后服务：学生乐，家长安心", "“双减”下的课后服务：学生乐"),
    ("hard-cut-16", "", "黄山区新建学校投入使用新增学位一千二百个", "黄山区新建学校投入使用新增学位一"),
    ("title-too-short", "", "新校启用", "ask the editor for a short title of 6–16"),
    ("title-bad-char", "", "新学校开学了 @教体局", "does not take: @"),
]


@pytest.mark.parametrize("short,title,expected", [r[1:] for r in SHORT_TITLE_ROWS], ids=[r[0] for r in SHORT_TITLE_ROWS])
def test_short_title(lib: MediaLibrary, short: str, title: str, expected: str) -> None:
    story, renditions = story_with_video(lib, short_title=short, title=title)
    channel = WechatChannelsChannel()
    if any(word in expected for word in ("longer", "shorten", "does not take", "ask the editor")):
        with pytest.raises(RenderError, match=expected):
            channel.render(story, renditions)
        return
    result = channel.render(story, renditions).fields["short_title"]
    assert result == expected and 6 <= len(result) <= 16


def test_description_is_cut_to_the_limit_with_label_and_topics_kept(lib: MediaLibrary) -> None:
    body = "".join(f"第{i}句，学校建设稳步推进。" for i in range(300))
    story, renditions = story_with_video(lib, body_markdown=body, tags=("#教育 ", "民生 实事", "教育", ""))
    d = WechatChannelsChannel().render(story, renditions).fields["description"]
    assert len(d) <= 1000 and len(d) > 900
    assert d.startswith(LABEL + "\n" + TITLE + "\n第0句") and d.endswith("\n\n#教育 #民生实事")
    summary = d.split("\n")[2]
    assert summary.endswith("。")  # cut at a sentence end
    # an editor's summary that fits is used as it is
    story2 = replace(story, summary="编辑写的摘要。")
    assert WechatChannelsChannel().render(story2, renditions).fields["description"].split("\n")[2] == "编辑写的摘要。"


def test_description_without_label_or_tags(lib: MediaLibrary) -> None:
    story, renditions = story_with_video(lib, label="", tags=())
    d = WechatChannelsChannel().render(story, renditions).fields["description"]
    assert d.startswith(TITLE + "\n") and "#" not in d


RENDER_ERRORS = [
    ("no-video", lambda s, r: (replace(s, media=s.media[:1]), r), "has none"),
    ("no-3x4-cover", lambda s, r: (s, {k: {p: v for p, v in rs.items() if p != "channels_cover_3x4"}
                                        for k, rs in r.items()}), "no channels_cover_3x4"),
    ("no-clip", lambda s, r: (s, {k: {p: v for p, v in rs.items() if p != "channels_video"} for k, rs in r.items()}),
     "no channels_video"),
    ("web-video-only", lambda s, r: (s, {k: {"web_video": rs["channels_video"]} if "channels_video" in rs else rs
                                         for k, rs in r.items()}), "no channels_video"),
    ("empty-title", lambda s, r: (replace(s, title=" "), r), "title is empty"),
    ("naive-release", lambda s, r: (replace(s, release_at=datetime(2026, 11, 22, 8)), r), "timezone-aware"),
    ("label-too-long", lambda s, r: (replace(s, label="标" * 1000), r), "at most 1000"),
    ("unsafe-key", lambda s, r: (s, {k: {p: replace(v, key="../../etc/passwd") for p, v in rs.items()}
                                     for k, rs in r.items()}), "refusing rendition"),
]


@pytest.mark.parametrize("change,message", [r[1:] for r in RENDER_ERRORS], ids=[r[0] for r in RENDER_ERRORS])
def test_render_errors(lib: MediaLibrary, change, message: str) -> None:
    story, renditions = story_with_video(lib)
    story, renditions = change(story, renditions)
    with pytest.raises(RenderError, match=message):
        WechatChannelsChannel().render(story, renditions)


def test_a_clip_over_60_seconds_is_refused(lib: MediaLibrary) -> None:
    story, renditions = story_with_video(lib, video={"duration": 75.0})
    with pytest.raises(RenderError, match="75.0 s.*at most 60 s"):
        WechatChannelsChannel().render(story, renditions)
    story, renditions = story_with_video(lib, 8, video={"duration": 60.2})  # encoder rounding is fine
    assert WechatChannelsChannel().render(story, renditions).fields["video_seconds"] == 60.2


# ----------------------------------------------------------------------------- outbox


def test_outbox_texts(lib: MediaLibrary) -> None:
    story, renditions = story_with_video(lib, short_title="新学校开学了")
    post = WechatChannelsChannel().render(story, renditions)
    texts = WechatChannelsChannel().outbox_texts(post)
    assert texts == {"description.txt": post.fields["description"], "short_title.txt": "新学校开学了"}
    assert texts["description.txt"].startswith(LABEL)


def test_outbox_checklist_is_chinese_and_in_order(lib: MediaLibrary) -> None:
    story, renditions = story_with_video(lib)
    post = WechatChannelsChannel().render(story, renditions)
    steps = WechatChannelsChannel().outbox_checklist(post)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in step) for step in steps)
    text = "\n".join(steps)
    order = ["channels.weixin.qq.com", "扫码", "files/video.mp4", "files/cover_3x4.jpg", "description.txt",
             "short_title.txt", "「活动」", "点击「发表」", "复制视频链接", "登记已发布"]
    positions = [text.index(word) for word in order]
    assert positions == sorted(positions)
    assert "58 秒" in text and "6–16 个字" in text and f"活动标签：{LABEL}" in text
    for pf in post.files:  # every file of the package is named in the checklist
        assert f"files/{pf.name}" in text


# ----------------------------------------------------------------------------- no API


def test_publish_reconcile_retract_refuse(lib: MediaLibrary) -> None:
    story, renditions = story_with_video(lib)
    post = WechatChannelsChannel().render(story, renditions).with_paths(lib.paths)
    account = AccountData(id=4, channel="wechat_channels", name="黄山区发布", mode="outbox",
                          credentials={"cookie": "secret-session"})
    for call in (lambda c: c.publish(post, account), lambda c: c.reconcile(post, account),
                 lambda c: c.retract(Receipt(remote_id="x"), account)):
        with pytest.raises(PermanentChannelError, match="no publishing API: outbox only") as raised:
            call(WechatChannelsChannel())
        assert raised.value.code == "outbox_only" and "secret-session" not in str(raised.value)
    assert WechatChannelsChannel().maintain(account, datetime.now().astimezone()) == []
