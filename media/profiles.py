"""Rendition specs as data: what each derived image/video/poster file must look like.

A profile is immutable data; `version` is part of the rendition cache key (source sha256 +
profile name + version, see ../shared/DESIGN.md "Render"), so bump it whenever a change to a
profile or to the code that applies it changes the output bytes.

Where the numbers come from:
* web_480 / web_960 / web_1440 — website `srcset` widths: 480 (phone, 1x), 960 (phone 2x,
  tablet), 1440 (desktop / retina article column). JPEG quality 82: at these sizes
  visually indistinguishable from 90 on photos and about a third smaller.
* web_thumb — 640×360 (16:9) cover crop for index/column cards.
* feed_image — RSS/Atom enclosure: 1200 px wide, under 1 MB (feed readers and WeChat's
  body-image upload, `media/uploadimg`, both refuse larger; ../shared/channels.md).
* weibo_image — Weibo `pic` must be JPEG/GIF/PNG under 5 MB (channels.md); 2048 px wide
  is what Weibo's large view shows; capped at 4.5 MB to leave margin for multipart.
* wechat_cover / wechat_cover_square — WeChat article cover crops 2.35:1 (900×383) and 1:1
  (500×500), the usual pixel sizes (channels.md).
* wechat_body — 公众号 body image for `media/uploadimg`: jpg/png under 1 MB (channels.md), so
  max_bytes 1,000,000 (1 MB read as 10^6: the safe side); 1080 px wide is the phone
  full-screen width the article view shows (same width as the Douyin frame).
* douyin_cover — Douyin cover (`upload_image`): 1080×1920, channels.md "vertical 9:16 is what
  viewers see full-screen"; fit "blur" so a landscape news photo keeps all of its content
  over a blurred fill instead of losing two thirds of it to a 9:16 crop.
* web_video — H.264 High / yuv420p / AAC, inside 1280×720 (720p; a portrait source gets the
  transposed 720×1280 box), ≤30 fps, CRF 23 with preset veryfast: the x264 defaults for
  web delivery; veryfast keeps a 1 minute clip well under realtime on 2 cores.
* web_poster — the `<video poster>` JPEG, as wide as the 720p rendition.
* douyin_video — 1080×1920 blur_fill, ≤60 s cut at a natural pause in 52–60 s: channels.md
  "vertical 9:16 is what viewers see full-screen" (Douyin allows 15 min; the daily series is
  ~1 minute, ../shared/DESIGN.md), 1080 px wide is the platform's full-screen width.
* channels_video — 视频号: 1080×1920 blur_fill, ≤60 s: channels.md "the ≤60 s vertical clip".
  Same numbers as douyin_video, so one encode serves both (render_videos dedupes it).
* weibo_video — inside 1280×720 (portrait box transposed), ≤60 s cut like the others:
  channels.md has no Weibo video limits (share.json only takes a `pic`), so the clip is the
  web 720p rendition trimmed to the one-minute series length for manual/outbox posting.
* channels_cover_3x4 / channels_cover_4x3 — 视频号 covers, channels.md "3:4 portrait and
  4:3 landscape covers": centre crops of the poster frame, at most 1080×1440 / 1440×1080
  (never upscaled: a 1080p landscape source gives 810×1080 and 1440×1080).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

_IMAGE_FORMATS = {"jpeg": ("image/jpeg", "jpg"), "webp": ("image/webp", "webp"), "png": ("image/png", "png")}
_IMAGE_FITS = ("width", "crop", "pad", "blur")
_IMAGE_ANIMATIONS = ("first_frame", "keep")


@dataclass(frozen=True)
class ImageProfile:
    """A still-image rendition.

    fit="width": scale to `width` keeping aspect, never upscale (if `height` is also set it
    is an extra cap: the result fits inside width×height). fit="crop": cover-crop to exactly
    width×height, centred (a source smaller than the box gives the largest centred crop of
    that aspect ratio instead — never upscaled). fit="pad": fit inside width×height, centred
    on exactly width×height of `pad_color` (RGB). fit="blur": fit inside, centred over a
    blurred, darkened cover-crop of itself. pad/blur never upscale either: a source that
    already fits inside the box is kept 1:1 on the smallest canvas of the box's aspect.

    animation="first_frame" renders the first frame of an animated GIF/WebP in `format`;
    animation="keep" keeps an animated GIF animated — the output is then a GIF whatever
    `format` says (see media/images.py "Output format rules").
    """

    name: str
    width: int
    height: int | None = None
    fit: str = "width"
    format: str = "jpeg"
    quality: int = 85
    max_bytes: int | None = None
    version: int = 1
    kind: str = "image"
    pad_color: tuple[int, int, int] = (0, 0, 0)
    animation: str = "first_frame"

    def __post_init__(self) -> None:
        if self.fit not in _IMAGE_FITS:
            raise ValueError(f"profile {self.name}: fit must be one of {_IMAGE_FITS}, not {self.fit!r}")
        if self.format not in _IMAGE_FORMATS:
            raise ValueError(f"profile {self.name}: format must be one of {sorted(_IMAGE_FORMATS)}")
        if self.width <= 0 or (self.height is not None and self.height <= 0):
            raise ValueError(f"profile {self.name}: width/height must be positive")
        if self.fit != "width" and self.height is None:
            raise ValueError(f"profile {self.name}: fit={self.fit!r} needs a height")
        if len(self.pad_color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in self.pad_color):
            raise ValueError(f"profile {self.name}: pad_color must be an (r, g, b) tuple of 0..255")
        if self.animation not in _IMAGE_ANIMATIONS:
            raise ValueError(f"profile {self.name}: animation must be one of {_IMAGE_ANIMATIONS}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"profile {self.name}: quality must be 1..100")
        if self.kind != "image":
            raise ValueError(f"profile {self.name}: ImageProfile.kind must be 'image'")

    @property
    def mime(self) -> str:
        return _IMAGE_FORMATS[self.format][0]

    @property
    def ext(self) -> str:
        return _IMAGE_FORMATS[self.format][1]


@dataclass(frozen=True)
class VideoProfile:
    """An H.264/AAC MP4 rendition that fits inside max_width×max_height.

    `portrait_box`: when the source is portrait, the box is transposed (a 1280×720 box
    becomes 720×1280), so vertical phone video keeps a usable resolution.

    `fit`: "inside" (scale to fit the box, never upscale) or "blur_fill" (exactly
    max_width×max_height: the picture scaled to fit — a landscape source to the full width —
    centred over a blurred, darkened, cover-cropped copy of itself; `portrait_box` is not
    used). `max_duration`: a longer source is cut at a natural pause searched in the last
    `cut_window` seconds before it (at most half of max_duration; 0 disables the search).
    `label_seconds`: how long a campaign label drawn over the start stays on screen.
    """

    name: str
    max_width: int
    max_height: int
    max_duration: float | None = None
    fps_cap: int = 30
    crf: int = 23
    preset: str = "veryfast"
    audio_bitrate: str = "128k"
    version: int = 1
    kind: str = "video"
    portrait_box: bool = True
    fit: str = "inside"
    cut_window: float = 8.0
    label_seconds: float = 4.0

    def __post_init__(self) -> None:
        if self.max_width < 2 or self.max_height < 2:
            raise ValueError(f"profile {self.name}: max box must be at least 2×2")
        if self.max_duration is not None and self.max_duration <= 0:
            raise ValueError(f"profile {self.name}: max_duration must be positive")
        if self.fps_cap <= 0:
            raise ValueError(f"profile {self.name}: fps_cap must be positive")
        if self.fit not in ("inside", "blur_fill"):
            raise ValueError(f"profile {self.name}: fit must be 'inside' or 'blur_fill', not {self.fit!r}")
        if self.cut_window < 0 or self.label_seconds < 0:
            raise ValueError(f"profile {self.name}: cut_window and label_seconds must not be negative")
        if self.kind != "video":
            raise ValueError(f"profile {self.name}: VideoProfile.kind must be 'video'")

    @property
    def mime(self) -> str:
        return "video/mp4"

    @property
    def ext(self) -> str:
        return "mp4"


@dataclass(frozen=True)
class PosterProfile:
    """A JPEG still taken from a video (not black), at most `max_width` wide.

    `aspect` (w, h), e.g. (3, 4): the frame is centre-cropped to that aspect ratio first
    (the largest such crop, never upscaled), then scaled down to `max_width` if wider.
    """

    name: str
    max_width: int
    quality: int = 85
    version: int = 1
    kind: str = "poster"
    aspect: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.max_width <= 0:
            raise ValueError(f"profile {self.name}: max_width must be positive")
        if self.aspect is not None and (len(self.aspect) != 2 or min(self.aspect) <= 0):
            raise ValueError(f"profile {self.name}: aspect must be two positive numbers (w, h)")
        if self.kind != "poster":
            raise ValueError(f"profile {self.name}: PosterProfile.kind must be 'poster'")

    @property
    def mime(self) -> str:
        return "image/jpeg"

    @property
    def ext(self) -> str:
        return "jpg"


Profile = Union[ImageProfile, VideoProfile, PosterProfile]

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        ImageProfile("web_480", width=480, quality=82),
        ImageProfile("web_960", width=960, quality=82),
        ImageProfile("web_1440", width=1440, quality=82),
        ImageProfile("web_thumb", width=640, height=360, fit="crop", quality=82),
        ImageProfile("feed_image", width=1200, max_bytes=1_000_000),
        ImageProfile("weibo_image", width=2048, max_bytes=4_500_000),
        ImageProfile("wechat_cover", width=900, height=383, fit="crop"),
        ImageProfile("wechat_cover_square", width=500, height=500, fit="crop"),
        ImageProfile("wechat_body", width=1080, max_bytes=1_000_000),
        ImageProfile("douyin_cover", width=1080, height=1920, fit="blur"),
        VideoProfile("web_video", max_width=1280, max_height=720),
        PosterProfile("web_poster", max_width=1280),
        VideoProfile("douyin_video", max_width=1080, max_height=1920, fit="blur_fill", max_duration=60.0,
                     cut_window=8.0),
        VideoProfile("channels_video", max_width=1080, max_height=1920, fit="blur_fill", max_duration=60.0,
                     cut_window=8.0),
        VideoProfile("weibo_video", max_width=1280, max_height=720, max_duration=60.0, cut_window=8.0),
        PosterProfile("channels_cover_3x4", max_width=1080, aspect=(3, 4)),
        PosterProfile("channels_cover_4x3", max_width=1440, aspect=(4, 3)),
    )
}


def get_profile(name: str) -> Profile:
    """The profile registered as `name`; KeyError lists the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown media profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None


def all_profiles() -> list[Profile]:
    """Every registered profile, in registration order."""
    return list(PROFILES.values())


def output_signature(profile: Profile) -> tuple:
    """What decides a profile's output bytes: every setting but its name. Two profiles with the
    same signature (Douyin's and 视频号's clip) give identical files, so one encode serves both."""
    from dataclasses import astuple, fields

    return (type(profile).__name__,
            *(value for f, value in zip(fields(profile), astuple(profile)) if f.name != "name"))
