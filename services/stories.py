"""Authoring: stories, their immutable versions, and the media assets they use.

Everything an editor hands us is checked before anything is stored, so a bad file or an empty
title leaves no partial state: first every file is probed (media.probe reads the real type
from the bytes, refuses corrupt files and decompression bombs), then the blobs go into the
content-addressed store, then the rows are written in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from media import MediaError, probe
from media.probe import sha256_file
from services import audit
from services.errors import NotFound, ValidationError
from services.labels import render_label
from services.models import Asset, Story, StoryMedia, StoryVersion, User
from services.storage import Storage
from services.users import require_role

TITLE_MAX = 200
SUMMARY_MAX = 500
BODY_MAX = 50_000  # characters; channels cut further to their own limits
# (field, limit, Chinese name): the columns' sizes in models.StoryVersion, checked before the
# database would refuse them (PostgreSQL enforces VARCHAR lengths; SQLite does not)
SHORT_FIELDS = (("short_title", 64, "短标题"), ("theme", 64, "主题"), ("unit", 128, "责任单位"),
                ("label", 200, "活动标签"), ("project", 128, "民生实事项目"))
EXT_BY_MIME = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
               "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm"}


@dataclass
class MediaInput:
    """One file an editor attached: a local path plus the name the editor gave it."""

    path: Path
    role: str  # cover | image | video
    alt: str = ""
    caption: str = ""
    original_name: str | None = None
    in_point: float | None = None  # video only: the editor's cut, seconds from the start
    out_point: float | None = None


@dataclass
class StoryInput:
    title: str
    body_markdown: str = ""
    summary: str = ""
    short_title: str = ""
    tags: list[str] = field(default_factory=list)
    theme: str = ""
    unit: str = ""
    label: str = ""
    project: str = ""  # 民生实事项目: a label variable
    campaign: str | int | None = None  # name or id; its label template then makes the label
    media: list[MediaInput] = field(default_factory=list)


def safe_original_name(name: str) -> str:
    """An uploaded file's name as given; a name that carries a path is refused, not cleaned."""
    if not name or "\x00" in name:
        raise ValidationError("file name is empty or contains NUL", "文件名为空或含有非法字符")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise ValidationError(f"file name must not contain a path: {name!r}", f"文件名不能包含路径：{name}")
    return name[:255]


def validate_story_input(data: StoryInput) -> None:
    title = data.title.strip()
    if not title:
        raise ValidationError("title must not be empty", "标题不能为空")
    if len(title) > TITLE_MAX:
        raise ValidationError(f"title is {len(title)} characters; the limit is {TITLE_MAX}",
                              f"标题共 {len(title)} 字，超过上限 {TITLE_MAX} 字")
    if len(data.summary) > SUMMARY_MAX:
        raise ValidationError(f"summary is {len(data.summary)} characters; the limit is {SUMMARY_MAX}",
                              f"摘要共 {len(data.summary)} 字，超过上限 {SUMMARY_MAX} 字")
    if len(data.body_markdown) > BODY_MAX:
        raise ValidationError(f"body is {len(data.body_markdown)} characters; the limit is {BODY_MAX}",
                              f"正文共 {len(data.body_markdown)} 字，超过上限 {BODY_MAX} 字")
    for field, limit, zh in SHORT_FIELDS:
        value = getattr(data, field).strip()
        if len(value) > limit:
            raise ValidationError(f"{field} is {len(value)} characters; the limit is {limit}",
                                  f"{zh}共 {len(value)} 字，超过上限 {limit} 字")
    videos = [m for m in data.media if m.role == "video"]
    if len(videos) > 1:
        raise ValidationError("a story carries at most one video", "每篇稿件最多一个视频")
    for item in data.media:
        if item.role not in ("cover", "image", "video"):
            raise ValidationError(f"unknown media role {item.role!r}", "未知的媒体用途")


def resolve_campaign_label(session: Session, data: StoryInput) -> tuple[int | None, str]:
    """The campaign id and the label the story carries: rendered from the campaign's template when
    there is one (a typed label must then agree with it), else the label as typed."""
    from services.models import Campaign

    if data.campaign in (None, ""):
        return None, data.label.strip()
    ref = data.campaign
    campaign = session.get(Campaign, int(ref)) if str(ref).isdigit() else \
        session.scalar(select(Campaign).where(Campaign.name == str(ref).strip()))
    if campaign is None:
        raise NotFound(f"no campaign {ref!r}", f"活动“{ref}”不存在")
    if not campaign.label_template:
        return campaign.id, data.label.strip()
    label = render_label(campaign.label_template, theme=data.theme, project=data.project, unit=data.unit)
    if data.label.strip() and data.label.strip() != label:
        raise ValidationError(f"label {data.label.strip()!r} differs from the campaign's {label!r}",
                              f"标签“{data.label.strip()}”与活动标签“{label}”不一致，请留空由系统生成")
    return campaign.id, label


def _probe_input(item: MediaInput):
    path = Path(item.path)
    name = safe_original_name(item.original_name if item.original_name is not None else path.name)
    if not path.is_file():
        raise ValidationError(f"file not found or not a regular file: {name}", f"文件不存在或不可读：{name}")
    try:
        info = probe(path)
    except MediaError as exc:
        raise ValidationError(f"{name}: {exc.reason}", f"{name}：{exc.message_zh}") from None
    except PermissionError:
        raise ValidationError(f"file is not readable: {name}", f"文件不可读：{name}") from None
    expected = "video" if item.role == "video" else "image"
    if info.kind != expected:
        raise ValidationError(
            f"{name}: expected {'a video' if expected == 'video' else 'an image'}, got {info.kind} ({info.mime})",
            f"{name}：应为{'视频' if expected == 'video' else '图片'}，实际是 {info.mime}")
    if info.mime not in EXT_BY_MIME:
        raise ValidationError(f"{name}: type {info.mime} is not accepted", f"{name}：不支持的文件类型 {info.mime}")
    _check_points(item, name, info.duration)
    return name, info


def check_media(item: MediaInput):  # noqa: ANN201 - (file name, media.probe.MediaInfo)
    """Probe one file exactly as create_story will (type from its bytes, its role, in/out points),
    storing nothing: for callers that check a whole batch before writing any of it (services/bulk.py)."""
    return _probe_input(item)


MIN_CLIP_SECONDS = 1.0


def _check_points(item: MediaInput, name: str, duration: float | None) -> None:
    """In/out points belong to a video, lie inside it, and leave at least a second between them."""
    if item.in_point is None and item.out_point is None:
        return
    if item.role != "video":
        raise ValidationError(f"{name}: in/out points are for a video", f"{name}：只有视频可以设置入点和出点")
    start = item.in_point or 0.0
    end = item.out_point if item.out_point is not None else duration
    if start < 0:
        raise ValidationError(f"{name}: the in point is negative", f"{name}：入点不能为负数")
    if end is not None and end - start < MIN_CLIP_SECONDS:
        raise ValidationError(f"{name}: in {start:g} s / out {end:g} s leave less than {MIN_CLIP_SECONDS:g} s",
                              f"{name}：入点和出点之间至少要有 {MIN_CLIP_SECONDS:g} 秒")
    if duration is not None and (start >= duration or (item.out_point or 0) > duration + 0.05):
        raise ValidationError(f"{name}: in/out points lie outside the {duration:.1f} s video",
                              f"{name}：入点或出点超出视频长度（{duration:.1f} 秒）")


def _store_asset(session: Session, storage: Storage, path: Path, name: str, info) -> Asset:  # noqa: ANN001
    sha = sha256_file(path)
    asset = session.get(Asset, sha)
    if asset is not None:
        return asset
    key = f"assets/{sha[:2]}/{sha}.{EXT_BY_MIME[info.mime]}"
    storage.put_file(key, path)
    asset = Asset(sha256=sha, kind=info.kind, mime=info.mime, bytes=path.stat().st_size, width=info.width,
                  height=info.height, duration=info.duration, storage_key=key, original_name=name)
    session.add(asset)
    return asset


def _attach_media(session: Session, storage: Storage, version: StoryVersion, items: list[MediaInput]) -> None:
    probed = [(item, *_probe_input(item)) for item in items]  # validate all before storing any
    for position, (item, name, info) in enumerate(probed):
        asset = _store_asset(session, storage, Path(item.path), name, info)
        version.media.append(StoryMedia(asset_sha256=asset.sha256, role=item.role, position=position,
                                        alt=item.alt[:255], caption=item.caption[:255], in_point=item.in_point,
                                        out_point=item.out_point))


def create_story(session: Session, storage: Storage, data: StoryInput, *, actor: User | None = None) -> Story:
    """A new story (version 1). `actor` None is the operator at the CLI; a user must be an editor."""
    if actor is not None:
        require_role(actor, "editor")
    validate_story_input(data)
    campaign_id, label = resolve_campaign_label(session, data)
    story = Story(created_by_id=actor.id if actor else None)
    version = StoryVersion(
        number=1, title=data.title.strip(), short_title=data.short_title.strip(), summary=data.summary.strip(),
        body_markdown=data.body_markdown, tags=list(data.tags), theme=data.theme.strip(), unit=data.unit.strip(),
        label=label, project=data.project.strip(), campaign_id=campaign_id, created_by_id=actor.id if actor else None,
    )
    _attach_media(session, storage, version, data.media)
    story.versions.append(version)
    session.add(story)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="story", object_id=story.id,
                 story_version=1, summary=f"created: {version.title}",
                 data={"media": len(data.media)})
    return story


def edit_story(session: Session, storage: Storage, story_id: int, data: StoryInput, *,
               actor: User | None = None, keep_media: bool = True) -> StoryVersion:
    """Every edit is a new version; the previous one stays as it was (signatures bind to it)."""
    if actor is not None:
        require_role(actor, "editor")
    validate_story_input(data)
    story = get_story(session, story_id)
    previous = story.current
    campaign_id, label = resolve_campaign_label(session, data)
    version = StoryVersion(
        number=previous.number + 1, title=data.title.strip(), short_title=data.short_title.strip(),
        summary=data.summary.strip(), body_markdown=data.body_markdown, tags=list(data.tags), theme=data.theme.strip(),
        unit=data.unit.strip(), label=label, project=data.project.strip(), campaign_id=campaign_id,
        created_by_id=actor.id if actor else None,
    )
    if keep_media and not data.media:
        for m in previous.media:
            version.media.append(StoryMedia(asset_sha256=m.asset_sha256, role=m.role, position=m.position,
                                            alt=m.alt, caption=m.caption, in_point=m.in_point,
                                            out_point=m.out_point))
    else:
        _attach_media(session, storage, version, data.media)
    story.versions.append(version)
    session.flush()
    from services.review import supersede_previous

    supersede_previous(session, story, version)  # review restarts on the new version
    changed = [f for f in ("title", "summary", "body_markdown", "theme", "unit", "project", "campaign_id", "label",
                           "tags")
               if getattr(previous, f) != getattr(version, f)]
    audit.record(session, actor=actor, action="edit", object_type="story", object_id=story.id,
                 story_version=version.number, summary=f"v{version.number}: changed {', '.join(changed) or 'media'}",
                 data={"changed": changed})
    return version


def get_story(session: Session, story_id: int) -> Story:
    story = session.get(Story, story_id)
    if story is None:
        raise NotFound(f"no story {story_id}", f"稿件 {story_id} 不存在")
    return story


def list_stories(session: Session, *, limit: int = 100, offset: int = 0) -> list[Story]:
    return list(session.scalars(select(Story).order_by(Story.id.desc()).limit(limit).offset(offset)))
