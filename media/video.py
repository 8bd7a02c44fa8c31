"""Video renditions with the ffmpeg binary shipped by imageio-ffmpeg, driven directly.

Why not moviepy: every moviepy frame crosses a pipe into one Python thread and back; one
ffmpeg filter graph does the same work 8× faster here (../shared/DESIGN.md pitfalls). This
module builds filter graphs; a later issue (clipping/reframing for vertical channels) adds
more graphs on the same helpers (`fit_box`, `_encode_args`, `run_ffmpeg`, `atomic_path`).

* `render_video` — H.264 High, yuv420p 8-bit, AAC (a silent AAC track via `anullsrc` when
  the source has none: some platforms and players reject video without audio), frame rate
  capped, scaled to fit the profile box keeping aspect with even dimensions (yuv420p needs
  them), rotation honoured (ffmpeg autorotates and drops the display matrix), trimmed with
  `-t` inside the transcode (never `-copyts`), metadata stripped (phone GPS tags), and
  `-movflags +faststart` so the moov atom precedes mdat (browsers play before download ends).
* `render_poster` — a JPEG that is not black: first candidate at max(1 s, 10 %) of the
  duration, then later ones at 25/50/75 %; a frame whose mean luma is below
  `POSTER_MIN_LUMA` (24/255 — video black is 16 in limited range, i.e. ~0 after RGB
  conversion; fades and dark title cards sit below 24) is skipped; the brightest wins if
  every candidate is dark.
* `faststart_ok` — parses the top-level MP4 boxes.

Timeouts: `ENCODE_TIMEOUT_BASE` 60 s + `ENCODE_TIMEOUT_PER_SECOND` 4 s per second of output.
veryfast 720p encodes at 2–4× realtime on 2 cores, so that is ≥ 8× headroom; it fires only
on a wedged ffmpeg, and stays below the Celery hard limit the worker sets for media tasks.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

from media.errors import ENCODE_FAILED, UNSUPPORTED, MediaError
from media.ffmpeg import ffpath, run_ffmpeg
from media.fsutil import atomic_path, write_bytes_atomic
from media.isobmff import moov_before_mdat
from media.probe import MediaInfo, probe
from media.profiles import PosterProfile, VideoProfile
from media.rendition import RenditionInfo

log = logging.getLogger(__name__)

ENCODE_TIMEOUT_BASE = 60.0
ENCODE_TIMEOUT_PER_SECOND = 4.0
UNKNOWN_DURATION_TIMEOUT = 1800.0
POSTER_MIN_LUMA = 24.0
POSTER_TIMEOUT = 30.0
SILENT_AUDIO = "anullsrc=channel_layout=stereo:sample_rate=48000"


def faststart_ok(path: str | Path) -> bool:
    """True when the MP4's moov atom comes before its mdat (web playback can start early)."""
    return moov_before_mdat(path)


def fit_box(width: int, height: int, max_width: int, max_height: int, *, portrait_box: bool = True) -> tuple[int, int]:
    """Largest even-sized width×height inside the box keeping aspect; never upscales.

    With `portrait_box`, a portrait source fits the transposed box (1280×720 → 720×1280).
    """
    if portrait_box and height > width and max_width > max_height:
        max_width, max_height = max_height, max_width
    scale = min(1.0, max_width / width, max_height / height)
    w = max(2, int(round(width * scale)) // 2 * 2)
    h = max(2, int(round(height * scale)) // 2 * 2)
    return min(w, max_width // 2 * 2), min(h, max_height // 2 * 2)


def _require_video(info: MediaInfo, what: str) -> None:
    if info.kind != "video":
        raise MediaError(
            f"unsupported type: {what} needs a video, the source is an {info.kind} ({info.mime})",
            "需要视频文件，但上传的是图片",
            code=UNSUPPORTED,
        )


def _encode_timeout(seconds: float | None) -> float:
    if seconds is None:
        return UNKNOWN_DURATION_TIMEOUT
    return ENCODE_TIMEOUT_BASE + ENCODE_TIMEOUT_PER_SECOND * seconds


def render_video(src: str | Path, profile: VideoProfile, out: str | Path, *, timeout: float | None = None) -> RenditionInfo:
    """Transcode `src` per `profile` into an MP4 at `out` (atomically); return what was written."""
    if not isinstance(profile, VideoProfile):
        raise TypeError(f"render_video needs a VideoProfile, got {type(profile).__name__}")
    src, out = Path(src), Path(out)
    info = probe(src)
    _require_video(info, "render_video")
    width, height = fit_box(info.width, info.height, profile.max_width, profile.max_height,
                            portrait_box=profile.portrait_box)
    duration = info.duration
    if profile.max_duration is not None:
        duration = profile.max_duration if duration is None else min(duration, profile.max_duration)

    args = ["-v", "error", "-i", ffpath(src)]
    if not info.has_audio:
        if duration is not None:
            args += ["-f", "lavfi", "-t", f"{duration:.3f}", "-i", SILENT_AUDIO]
        else:
            args += ["-f", "lavfi", "-i", SILENT_AUDIO]
    filters = []
    if info.fps is None or info.fps > profile.fps_cap + 0.01:
        filters.append(f"fps={profile.fps_cap}")
    filters += [f"scale={width}:{height}:flags=bicubic", "setsar=1", "format=yuv420p"]
    args += ["-map", "0:v:0", "-map", "0:a:0" if info.has_audio else "1:a:0"]
    args += ["-vf", ",".join(filters)]
    args += _encode_args(profile)
    if profile.max_duration is not None:
        args += ["-t", f"{profile.max_duration:.3f}"]
    if not info.has_audio:
        args += ["-shortest"]
    with atomic_path(out, suffix=".mp4") as tmp:
        run_ffmpeg([*args, "-f", "mp4", ffpath(tmp)], timeout=timeout or _encode_timeout(duration),
                   what=f"encode {profile.name}")
        result = probe(tmp)
        if not (result.kind == "video" and faststart_ok(tmp)):
            raise MediaError(f"encode {profile.name}: output failed its own checks", "视频转换失败", code=ENCODE_FAILED)
    return RenditionInfo(
        path=os.path.abspath(out), mime=profile.mime, width=result.width, height=result.height,
        bytes=result.bytes, duration=result.duration,
    )


def _encode_args(profile: VideoProfile) -> list[str]:
    """Codec/container options for one MP4 output (repeat per output when a graph splits)."""
    return [
        "-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p",
        "-preset", profile.preset, "-crf", str(profile.crf),
        "-c:a", "aac", "-b:a", profile.audio_bitrate, "-ac", "2",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-movflags", "+faststart",
    ]


# --------------------------------------------------------------------------- posters


def poster_timestamps(duration: float | None) -> list[float]:
    """Candidate seconds for a poster frame: max(1 s, 10 %), then 25/50/75 % of the duration."""
    if not duration or duration <= 0:
        return [0.0]
    first = min(max(1.0, 0.10 * duration), duration * 0.9)
    later = [duration * f for f in (0.25, 0.50, 0.75)]
    return [first] + sorted(t for t in later if t > first + 0.05)


def _grab_frame(src: Path, at: float, max_width: int):
    """One RGB frame at `at` seconds, scaled to at most max_width wide (None if none decoded)."""
    from PIL import Image

    proc = run_ffmpeg(
        ["-v", "error", "-ss", f"{at:.3f}", "-i", ffpath(src), "-map", "0:v:0", "-frames:v", "1",
         "-vf", f"scale='min(iw,{max_width})':-2:flags=bicubic,setsar=1,format=rgb24",
         "-f", "image2pipe", "-c:v", "ppm", "pipe:1"],
        timeout=POSTER_TIMEOUT, what="poster frame", check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        return None
    img = Image.open(io.BytesIO(proc.stdout))
    img.load()
    return img


def render_poster(src: str | Path, profile: PosterProfile, out: str | Path) -> RenditionInfo:
    """Write a non-black JPEG still of `src` to `out` (atomically); return what was written."""
    from PIL import ImageStat

    if not isinstance(profile, PosterProfile):
        raise TypeError(f"render_poster needs a PosterProfile, got {type(profile).__name__}")
    src, out = Path(src), Path(out)
    info = probe(src)
    _require_video(info, "render_poster")
    best, best_luma = None, -1.0
    for at in poster_timestamps(info.duration):
        frame = _grab_frame(src, at, profile.max_width)
        if frame is None:
            continue
        luma = ImageStat.Stat(frame.convert("L")).mean[0]
        log.debug("poster candidate %.2fs luma %.1f", at, luma)
        if luma > best_luma:
            best, best_luma = frame, luma
        if luma >= POSTER_MIN_LUMA:
            break
    if best is None:
        raise MediaError("poster: no frame could be decoded", "无法从视频中截取封面画面，视频可能已损坏", code=ENCODE_FAILED)
    buf = io.BytesIO()
    best.info = {}
    best.save(buf, "JPEG", quality=profile.quality, progressive=True, optimize=True)
    data = buf.getvalue()
    write_bytes_atomic(out, data)
    return RenditionInfo(path=os.path.abspath(out), mime=profile.mime, width=best.width, height=best.height, bytes=len(data))
