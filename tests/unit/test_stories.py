"""Authoring and bad input: each bad input gets a clear English and Chinese message and leaves
no partial state — no story row, no asset row, no file in the media store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.db import session_scope
from services.errors import ValidationError
from services.models import Asset, AuditEvent, Story, StoryVersion
from services.stories import MediaInput, StoryInput, create_story, edit_story
from tests.helpers import jpeg


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_story_is_created_with_content_addressed_assets(home, settings, storage, tmp_path):
    cover = jpeg(tmp_path / "封面.jpg")
    with session_scope() as session:
        story = create_story(session, storage, StoryInput(title="标题", body_markdown="正文", media=[
            MediaInput(path=cover, role="cover", alt="替代文字"),
            MediaInput(path=cover, role="image", alt="同一张图再用一次")]))
        story_id = story.id
    with session_scope() as session:
        version = session.scalar(select(StoryVersion).where(StoryVersion.story_id == story_id))
        assert [m.role for m in version.media] == ["cover", "image"]
        assert session.scalar(select(func.count()).select_from(Asset)) == 1  # same bytes, one asset
        asset = session.scalar(select(Asset))
        assert asset.original_name == "封面.jpg" and asset.mime == "image/jpeg" and asset.width == 1200
        assert storage.local_path(asset.storage_key).read_bytes() == cover.read_bytes()
        assert asset.sha256 in asset.storage_key
        actions = session.scalars(select(AuditEvent.action)).all()
        assert "create" in actions


def _text_file(tmp: Path) -> Path:
    path = tmp / "notes.jpg"
    path.write_text("this is not a picture", encoding="utf-8")
    return path


def _truncated_jpeg(tmp: Path) -> Path:
    good = jpeg(tmp / "good.jpg").read_bytes()
    path = tmp / "truncated.jpg"
    path.write_bytes(good[: len(good) // 3])
    return path


BAD_INPUTS = [
    # (case, story input builder, expected English fragment, expected Chinese fragment)
    ("empty title", lambda t: StoryInput(title="   "), "title must not be empty", "标题不能为空"),
    ("title too long", lambda t: StoryInput(title="长" * 201), "title is 201 characters", "超过上限"),
    ("body too long", lambda t: StoryInput(title="t", body_markdown="字" * 50_001), "body is 50001 characters", "正文"),
    ("short title too long", lambda t: StoryInput(title="t", short_title="短" * 65), "short_title is 65 characters",
     "短标题共 65 字"),
    ("unit too long", lambda t: StoryInput(title="t", unit="单" * 129), "unit is 129 characters", "责任单位"),
    ("label too long", lambda t: StoryInput(title="t", label="标" * 201), "label is 201 characters", "活动标签"),
    ("missing file", lambda t: StoryInput(title="t", media=[MediaInput(path=t / "nope.jpg", role="cover")]),
     "file not found", "文件不存在"),
    ("text file as image", lambda t: StoryInput(title="t", media=[MediaInput(path=_text_file(t), role="image")]),
     "notes.jpg", "notes.jpg"),
    ("truncated jpeg", lambda t: StoryInput(title="t", media=[MediaInput(path=_truncated_jpeg(t), role="cover")]),
     "truncated.jpg", "truncated.jpg"),
    ("image given as video", lambda t: StoryInput(title="t", media=[MediaInput(path=jpeg(t / "a.jpg"), role="video")]),
     "expected a video", "应为视频"),
    ("path in file name", lambda t: StoryInput(title="t", media=[
        MediaInput(path=jpeg(t / "b.jpg"), role="cover", original_name="../../etc/passwd.jpg")]),
     "must not contain a path", "文件名不能包含路径"),
    ("two videos", lambda t: StoryInput(title="t", media=[MediaInput(path=t / "1.mp4", role="video"),
                                                           MediaInput(path=t / "2.mp4", role="video")]),
     "at most one video", "最多一个视频"),
]


@pytest.mark.parametrize("case,build,english,chinese", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_refused_clearly_and_leaves_nothing(home, settings, storage, tmp_path, case, build,
                                                          english, chinese):
    # A good file listed before the bad one must not be stored either.
    good = jpeg(tmp_path / "good-first.jpg", color=(10, 120, 200))
    data = build(tmp_path)
    data.media.insert(0, MediaInput(path=good, role="image", alt="x"))
    with pytest.raises(ValidationError) as caught:
        with session_scope() as session:
            create_story(session, storage, data)
    assert english in caught.value.message
    assert chinese in caught.value.message_zh
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Story)) == 0
        assert session.scalar(select(func.count()).select_from(Asset)) == 0
    assert _files(settings.media_dir) == []


def test_edit_makes_a_new_version_and_keeps_the_old_one(home, settings, storage, tmp_path):
    with session_scope() as session:
        story_id = create_story(session, storage, StoryInput(title="第一版", body_markdown="旧正文", media=[
            MediaInput(path=jpeg(tmp_path / "c.jpg"), role="cover", alt="图")])).id
    with session_scope() as session:
        version = edit_story(session, storage, story_id, StoryInput(title="第二版", body_markdown="新正文"))
        assert version.number == 2
    with session_scope() as session:
        versions = session.scalars(select(StoryVersion).where(StoryVersion.story_id == story_id)
                                   .order_by(StoryVersion.number)).all()
        assert [v.title for v in versions] == ["第一版", "第二版"]
        assert versions[0].body_markdown == "旧正文"
        assert [m.role for m in versions[1].media] == ["cover"]  # media carried over
        summaries = session.scalars(select(AuditEvent.summary).where(AuditEvent.action == "edit")).all()
        assert summaries and "title" in summaries[0]
