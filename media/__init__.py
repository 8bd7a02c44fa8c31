"""Fanout's media package: probe uploads, make renditions (images, video, posters), make demo media.

Public API (services/dispatch and the web layer call only these):
`probe`, `MediaInfo`, `sha256_file` — what a file is, refused with `MediaError` if bad;
`make_rendition(src, profile_or_name, out)` — one rendition per profile in `media.profiles`;
`get_profile`, `PROFILES`, `RenditionInfo`, `MediaError`. Submodules: images, video,
generate (demo media), profiles. `media` never imports `services` or `channels`: it takes
paths and plain dataclasses. Importing it does no work (ffmpeg is located on first use).
"""

from __future__ import annotations

from pathlib import Path

from media.errors import MediaError
from media.probe import MediaInfo, probe, sha256_file
from media.profiles import PROFILES, ImageProfile, PosterProfile, Profile, VideoProfile, all_profiles, get_profile
from media.rendition import RenditionInfo

__all__ = [
    "MediaError",
    "MediaInfo",
    "RenditionInfo",
    "PROFILES",
    "ImageProfile",
    "VideoProfile",
    "PosterProfile",
    "Profile",
    "all_profiles",
    "get_profile",
    "make_rendition",
    "probe",
    "sha256_file",
]


def make_rendition(src: str | Path, profile: str | Profile, out: str | Path) -> RenditionInfo:
    """Render `src` into `out` for `profile` (a profile or its registered name).

    One rendition, whole source. In/out points, a label, or several renditions at once go
    through `media.video.render_videos` / `media.images.render_images` (the rendition cache does).
    """
    if isinstance(profile, str):
        profile = get_profile(profile)
    if profile.kind == "image":
        from media.images import render_image

        return render_image(src, profile, out)
    if profile.kind == "video":
        from media.video import render_video

        return render_video(src, profile, out)
    if profile.kind == "poster":
        from media.video import render_poster

        return render_poster(src, profile, out)
    raise ValueError(f"profile {profile.name!r} has unknown kind {profile.kind!r}")
