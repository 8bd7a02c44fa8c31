"""An editor's in/out points on a story's video: checked when the story is saved, kept across
edits, and part of the rendition cache key (the same clip cut two ways is two renditions; the
same cut asked twice is one encode)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from media import probe
from services.db import session_scope
from services.errors import ValidationError
from services.models import RenditionRecord, Story
from services.renditions import RenditionParams, ensure_rendition
from services.stories import MediaInput, StoryInput, create_story, edit_story
from tests.helpers import desk, jpeg, video


@pytest.mark.parametrize(("role", "in_point", "out_point", "message"), [
    ("cover", 1.0, 2.0, "in/out points are for a video"),
    ("video", -1.0, 2.0, "in point is negative"),
    ("video", 1.0, 1.5, "leave less than 1 s"),
    ("video", 2.5, None, "leave less than 1 s"),  # out defaults to the 3 s end
    ("video", 0.0, 9.0, "outside the 3.0 s video"),
])
def test_bad_points_are_refused_and_nothing_is_stored(home, storage, tmp_path, role, in_point, out_point, message):
    path = jpeg(tmp_path / "c.jpg") if role == "cover" else video(tmp_path / "v.mp4", seconds=3)
    with pytest.raises(ValidationError, match=message) as refused:
        with session_scope() as session:
            create_story(session, storage, StoryInput(title="入出点", media=[
                MediaInput(path=path, role=role, in_point=in_point, out_point=out_point)]),
                actor=desk(session)["editor"])
    assert refused.value.message_zh
    with session_scope() as session:
        assert session.scalar(select(Story.id)) is None


def test_points_are_kept_across_edits_and_key_the_rendition_cache(home, settings, storage, tmp_path):
    clip = video(tmp_path / "v.mp4", seconds=4)
    with session_scope() as session:
        editor = desk(session)["editor"]
        story = create_story(session, storage, StoryInput(title="剪辑", media=[
            MediaInput(path=clip, role="video", in_point=1.0, out_point=3.0)]), actor=editor)
        edit_story(session, storage, story.id, StoryInput(title="剪辑（改标题）"), actor=editor)
        media = story.current.media[0]
        assert (media.in_point, media.out_point) == (1.0, 3.0)
        sha = media.asset_sha256
    cut = RenditionParams(start=1.0, end=3.0)
    first, cached = ensure_rendition(settings, storage, sha, "web_video", params=cut)
    again, cached_again = ensure_rendition(settings, storage, sha, "web_video", params=RenditionParams(1.0, 3.0))
    whole, _ = ensure_rendition(settings, storage, sha, "web_video")
    assert (cached, cached_again) == (False, True) and again.key == first.key and whole.key != first.key
    assert abs(probe(storage.local_path(first.key)).duration - 2.0) < 0.15
    assert abs(probe(storage.local_path(whole.key)).duration - 4.0) < 0.15
    with session_scope() as session:
        params = sorted(session.scalars(select(RenditionRecord.params).where(RenditionRecord.profile == "web_video")))
    assert params == ["", "in=1.000;out=3.000"]


def test_rendition_params_key_is_canonical_and_short():
    assert RenditionParams().key() == ""
    assert RenditionParams(start=0.5).key() == "in=0.500"
    labelled = RenditionParams(start=1, end=61, label="群众满意度提升行动之" * 20).key()
    assert labelled.startswith("in=1.000;out=61.000;label=") and len(labelled) <= 128
    assert RenditionParams(label="甲").key() != RenditionParams(label="乙").key()


def test_a_channel_that_wants_the_label_on_video_gets_a_labelled_rendition(home, settings, storage, tmp_path,
                                                                          monkeypatch):
    from datetime import datetime, timezone

    from channels.website import WebsiteChannel
    from services import rendering

    clip = video(tmp_path / "v.mp4", seconds=3)
    with session_scope() as session:
        story = create_story(session, storage, StoryInput(title="带标签的视频", label="群众满意度提升行动之文体生活篇",
                                                          media=[MediaInput(path=clip, role="video", out_point=2.0)]),
                             actor=desk(session)["editor"])
        data = rendering.story_data(session, story.current, datetime.now(timezone.utc))
    plain = rendering.renditions_for(settings, storage, "website", data)
    monkeypatch.setattr(WebsiteChannel, "label_on_video", True)
    labelled = rendering.renditions_for(settings, storage, "website", data)
    sha = data.media[0].sha256
    assert plain[sha]["web_video"].key != labelled[sha]["web_video"].key
    assert plain[sha]["web_poster"].key == labelled[sha]["web_poster"].key  # posters carry no label
    with session_scope() as session:
        params = sorted(session.scalars(select(RenditionRecord.params).where(RenditionRecord.profile == "web_video")))
    assert params[0] == "out=2.000" and params[1].startswith("out=2.000;label=")
