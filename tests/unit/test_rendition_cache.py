"""The rendition cache makes what is missing in as few passes as it can: every image rendition of
an asset from one decode, every video of one clip from one ffmpeg run, and a profile whose output
is another's byte for byte (Douyin's and 视频号's clip) from that one's file, without encoding."""

from __future__ import annotations

from sqlalchemy import select

import media.images
import media.video
from services.db import session_scope
from services.models import RenditionRecord
from services.renditions import RenditionParams, ensure_renditions
from services.stories import MediaInput, StoryInput, create_story
from tests.helpers import desk, jpeg, video


def _asset(storage, tmp_path, path, role):  # noqa: ANN001, ANN202
    with session_scope() as session:
        story = create_story(session, storage, StoryInput(title="缓存", media=[MediaInput(path=path, role=role)]),
                             actor=desk(session)["editor"])
        return story.current.media[0].asset_sha256


def _counting(monkeypatch, module, name):  # noqa: ANN001, ANN202
    calls = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(args[1] if len(args) > 1 else kwargs.get("jobs"))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_all_image_renditions_of_an_asset_come_from_one_decode(home, settings, storage, tmp_path, monkeypatch):
    sha = _asset(storage, tmp_path, jpeg(tmp_path / "p.jpg", size=(1600, 1200)), "cover")
    calls = _counting(monkeypatch, media.images, "render_images")
    names = ["web_480", "web_960", "web_1440", "web_thumb", "wechat_cover", "wechat_cover_square"]
    made = ensure_renditions(settings, storage, sha, names)
    assert len(calls) == 1 and [p.name for p, _ in calls[0]] == names
    assert [cached for _r, cached in made.values()] == [False] * 6
    assert (made["wechat_cover"][0].width, made["wechat_cover"][0].height) == (900, 383)
    again = ensure_renditions(settings, storage, sha, names)
    assert len(calls) == 1 and all(cached for _r, cached in again.values())


def test_a_profile_identical_to_another_reuses_its_file(home, settings, storage, tmp_path, monkeypatch):
    sha = _asset(storage, tmp_path, video(tmp_path / "v.mp4", seconds=2), "video")
    calls = _counting(monkeypatch, media.video, "render_videos")
    cut = RenditionParams(start=0.0, end=1.5, label="群众满意度提升行动之文体生活篇")
    douyin = ensure_renditions(settings, storage, sha, ["douyin_video"], params=cut)["douyin_video"]
    channels = ensure_renditions(settings, storage, sha, ["channels_video"], params=cut)["channels_video"]
    assert len(calls) == 1 and (douyin[1], channels[1]) == (False, True)
    assert channels[0].key == douyin[0].key and (channels[0].width, channels[0].height) == (1080, 1920)
    other_cut = ensure_renditions(settings, storage, sha, ["channels_video"],
                                  params=RenditionParams(start=0.5, end=1.5))["channels_video"]
    assert len(calls) == 2 and other_cut[0].key != douyin[0].key  # another cut is another rendition
    with session_scope() as session:
        rows = session.execute(select(RenditionRecord.profile, RenditionRecord.params)
                               .order_by(RenditionRecord.id)).all()
    assert [r.profile for r in rows] == ["douyin_video", "channels_video", "channels_video"]


def test_videos_and_posters_of_one_clip_in_one_call(home, settings, storage, tmp_path, monkeypatch):
    sha = _asset(storage, tmp_path, video(tmp_path / "v.mp4", seconds=2), "video")
    calls = _counting(monkeypatch, media.video, "render_videos")
    made = ensure_renditions(settings, storage, sha, ["web_video", "weibo_video", "web_poster",
                                                      "channels_cover_3x4"])
    assert len(calls) == 1 and [p.name for p, _ in calls[0]] == ["web_video", "weibo_video"]
    cover = made["channels_cover_3x4"][0]
    assert cover.mime == "image/jpeg" and abs(cover.width / cover.height - 3 / 4) < 0.01
