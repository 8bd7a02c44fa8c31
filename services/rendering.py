"""One way to turn a story version into a channel's Post, shared by publishing and review.

Reviewers approve the *rendered output per channel* (DESIGN.md, data flow step 2): each
sign-off records the hash of every account's Post, and the dispatcher compares what it is
about to send against that. A Post carries its release time (the site shows the date), which
is not known when a reviewer signs, so the hash that is approved and checked is the one of
the Post rendered at the version's own creation time — the *approval rendering*. Only the
release time differs between it and the Post that is sent, by construction.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels import get_channel
from channels.base import MediaItem, Post, Rendition, RenditionSet, StoryData
from services.config import Settings
from services.models import StoryVersion, User
from services.renditions import RenditionParams, all_cached, ensure_renditions
from services.storage import Storage


def story_data(session: Session, version: StoryVersion, release_at: datetime, *, public_url: str = "") -> StoryData:
    """The channel's view of a story version; `link` is its page on the site under `public_url`."""
    author = session.scalar(select(User.display_name).where(User.id == version.created_by_id)) \
        if version.created_by_id else None
    media = tuple(
        MediaItem(role=m.role, sha256=m.asset_sha256, kind=m.asset.kind, mime=m.asset.mime, alt=m.alt,
                  caption=m.caption, width=m.asset.width, height=m.asset.height, duration=m.asset.duration,
                  in_point=m.in_point, out_point=m.out_point)
        for m in version.media)
    return StoryData(
        story_id=version.story_id, version=version.number, title=version.title, body_markdown=version.body_markdown,
        release_at=release_at, summary=version.summary, short_title=version.short_title,
        tags=tuple(version.tags or ()), theme=version.theme, unit=version.unit, label=version.label,
        author=author or "", media=media,
        link=(public_url.rstrip("/") + f"/stories/{version.story_id}/") if public_url else "",
    )


def _params_for(channel, story: StoryData, item) -> RenditionParams | None:  # noqa: ANN001
    if item.kind != "video":
        return None
    return RenditionParams(start=item.in_point, end=item.out_point,
                           label=story.label or None if channel.label_on_video else None)


def needs_media_work(session: Session, channel_name: str, story: StoryData) -> bool:
    """Whether rendering the story for the channel would encode anything (a rendition missing
    from the cache): such a delivery renders on the media queue, any other one on the publish
    queue, straight into its publish."""
    channel = get_channel(channel_name)
    for item in story.media:
        profiles = channel.video_profiles if item.kind == "video" else channel.image_profiles
        if profiles and not all_cached(session, item.sha256, list(profiles), params=_params_for(channel, story, item)):
            return True
    return False


def renditions_for(settings: Settings, storage: Storage, channel_name: str, story: StoryData,
                   session: Session | None = None) -> RenditionSet:
    """Every rendition the channel names for the story's media (cached; what is missing is made
    in one pass per asset: services.renditions.ensure_renditions).

    Pass `session` when the caller holds a transaction (review), so the cache uses it.
    """
    channel = get_channel(channel_name)
    renditions: dict[str, dict[str, Rendition]] = {}
    for item in story.media:
        profiles = channel.video_profiles if item.kind == "video" else channel.image_profiles
        params = _params_for(channel, story, item)
        made = ensure_renditions(settings, storage, item.sha256, list(profiles), session, params=params)
        renditions[item.sha256] = {name: rendition for name, (rendition, _cached) in made.items()}
    return renditions


def approval_post(channel_name: str, story: StoryData, renditions: RenditionSet, created_at: datetime) -> Post:
    """The Post reviewers approve: the channel's rendering at the version's creation time."""
    return get_channel(channel_name).render(replace(story, release_at=created_at), renditions)


def render(channel_name: str, story: StoryData, renditions: RenditionSet) -> Post:
    return get_channel(channel_name).render(story, renditions)
