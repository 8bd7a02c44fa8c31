"""Video renditions with the ffmpeg binary shipped by imageio-ffmpeg, driven directly.

Why not moviepy: every moviepy frame crosses a pipe into one Python thread and back; one
ffmpeg filter graph does the same work 8× faster here (../shared/DESIGN.md pitfalls). So
clipping, vertical reframing, the label overlay and fades are all one `-filter_complex`
graph run by the ffmpeg binary (`run_ffmpeg`), and several renditions of one source share
one decode.

* `render_video` / `render_videos` — H.264 High, yuv420p 8-bit (10-bit sources are
  converted; HDR — PQ or HLG — is tone-mapped to BT.709 first: `tone_map_filter`), AAC (a silent AAC track via
  `anullsrc` when the source has none: some platforms and players reject video without
  audio), frame rate capped, rotation honoured (ffmpeg autorotates and drops the display
  matrix), metadata stripped (phone GPS tags), and `-movflags +faststart` so the moov atom
  precedes mdat (browsers play before download ends).
  - fit "inside": scaled to fit the profile box keeping aspect, even dimensions (yuv420p
    needs them), never upscaled. fit "blur_fill": exactly the box (1080×1920), the picture
    fitted and centred over a blurred, darkened, cover-cropped copy of itself. The blurred
    copy is made small — cover-crop, scale to 1/4 of the box, `boxblur`, darken with
    `lutyuv`, scale back up bilinearly — which costs a fraction of blurring at full size
    (the obvious graph, scale-to-cover at full size + `boxblur=20:5`, spends most of its
    time there; bench/bench_media.py).
  - clipping: `start`/`end` (an editor's in/out points) are honoured exactly; otherwise a
    source longer than `max_duration` is cut at a natural pause found by
    `media.cutpoint` (quiet audio, else a scene change, else the hard limit) in the last
    `cut_window` seconds. Trimming is `-ss`/`-t` before `-i` (accurate seek inside the
    transcode, never `-copyts`), and a clip that ends before the source does fades out
    (video and audio, `FADE_SECONDS`). `RenditionInfo.cut_at` / `cut_reason` say where and why.
  - `label`: Chinese text (a campaign label / title) drawn by Pillow with a CJK font into a
    transparent PNG (ffmpeg's drawtext cannot pick the SC face of a .ttc, see
    media/generate.py) and overlaid with `enable='between(t,0,label_seconds)'`.
  - `render_videos` makes several MP4s from one ffmpeg process (one decode, `split`, one
    `-map` set and encoder options per output) for the profiles whose time ranges agree,
    and encodes profiles with identical effective parameters once (the other outputs are
    hard links, or copies across filesystems).
* `render_poster` — a JPEG that is not black: first candidate at max(1 s, 10 %) of the
  duration, then later ones at 25/50/75 %; a frame whose mean luma is below
  `POSTER_MIN_LUMA` (24/255 — video black is 16 in limited range, i.e. ~0 after RGB
  conversion; fades and dark title cards sit below 24) is skipped; the brightest wins if
  every candidate is dark. A profile `aspect` centre-crops the frame (视频号 3:4 / 4:3 covers).
* `faststart_ok` — parses the top-level MP4 boxes.

Timeouts: `ENCODE_TIMEOUT_BASE` 60 s + `ENCODE_TIMEOUT_PER_SECOND` 4 s per second of output
(per output when one process writes several). veryfast 720p encodes at 2–4× realtime on 2
cores, so that is ≥ 8× headroom; it fires only on a wedged ffmpeg, and stays below the Celery
hard limit the worker sets for media tasks.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from media import cutpoint
from media.errors import ENCODE_FAILED, INVALID, UNSUPPORTED, MediaError
from media.ffmpeg import ffpath, run_ffmpeg
from media.fsutil import atomic_path, write_bytes_atomic
from media.isobmff import moov_before_mdat
from media.probe import MediaInfo, probe
from media.profiles import PosterProfile, VideoProfile
from media.rendition import RenditionInfo

log = logging.getLogger(__name__)

DECODE_BUFFER_BYTES = 120 * 1024 * 1024  # decoded source frames in flight (see decode_threads)
HDR_REFERENCE_NITS = 100  # SDR reference white for zscale's linearisation (BT.2408 uses 203 for HLG/PQ mixes)

ENCODE_TIMEOUT_BASE = 60.0
ENCODE_TIMEOUT_PER_SECOND = 4.0
UNKNOWN_DURATION_TIMEOUT = 1800.0
POSTER_MIN_LUMA = 24.0
POSTER_TIMEOUT = 30.0
SILENT_AUDIO = "anullsrc=channel_layout=stereo:sample_rate=48000"
FADE_SECONDS = cutpoint.FADE_SECONDS  # fade-out before a cut, video and audio
END_TOLERANCE = 0.05  # an out point this close to the source's end is "the end" (no cut, no fade)

# blur_fill background: made at 1/BLUR_SCALE of the box, blurred, darkened, scaled back up.
BLUR_SCALE = 4
BLUR_POWER = 3
BLUR_LUMA = 0.55  # background luma gain (darkened so the picture stands out)
BLUR_CHROMA = 0.8  # background chroma gain (slightly desaturated)
FILL_TOLERANCE = 0.01  # aspect within 1 % of the box: scale to the box, no fill
LABEL_BAND_MIN = 0.12  # blur_fill: the label sits in the band above the picture if ≥ 12 % of H


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
    w = max(2, round(width * scale) // 2 * 2)
    h = max(2, round(height * scale) // 2 * 2)
    return min(w, max_width // 2 * 2), min(h, max_height // 2 * 2)


def fill_geometry(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int, int, int]:
    """blur_fill layout: the picture's (w, h, x, y) inside an exact box_w×box_h canvas.

    The picture is scaled to fit (up or down — the canvas size is what the platform wants),
    even-sized, centred; an aspect within `FILL_TOLERANCE` of the box fills it exactly.
    """
    box_w, box_h = box_w // 2 * 2, box_h // 2 * 2
    scale = min(box_w / width, box_h / height)
    w = min(box_w, max(2, round(width * scale / 2) * 2))
    h = min(box_h, max(2, round(height * scale / 2) * 2))
    if abs(w - box_w) <= box_w * FILL_TOLERANCE and abs(h - box_h) <= box_h * FILL_TOLERANCE:
        return box_w, box_h, 0, 0
    return w, h, (box_w - w) // 2 // 2 * 2, (box_h - h) // 2 // 2 * 2


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


def _encode_args(profile: VideoProfile) -> list[str]:
    """Codec/container options for one MP4 output (repeat per output when a graph splits)."""
    return [
        "-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p",
        "-preset", profile.preset, "-crf", str(profile.crf),
        "-c:a", "aac", "-b:a", profile.audio_bitrate, "-ac", "2",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-movflags", "+faststart",
    ]


# --------------------------------------------------------------------------- labels


def label_layer(size: tuple[int, int], text: str, font: str | None = None, *, title_px: float | None = None):
    """A transparent RGBA layer of `size` with `text` centred on a translucent panel.

    Drawn with the Simplified-Chinese face of a CJK font (`media.generate.find_cjk_font`,
    `font` overrides the path). Raises MediaError when no such font exists: a campaign
    label silently missing from a published clip is worse than a failed render.
    """
    from media.generate import _text_layer, find_cjk_font

    path = find_cjk_font(font)
    if path is None:
        raise MediaError(
            "label: no font that can draw Chinese was found (install fonts-noto-cjk or set the font path)",
            "服务器缺少中文字体，无法在视频上添加标题文字，请联系运维人员",
            code=ENCODE_FAILED,
        )
    w, h = size
    if title_px is None:
        title_px = 1 / 14 if h >= w else 1 / 22
    layer = _text_layer(size, text, "", path, panel=True, title_px=title_px)
    if layer.getbbox() is None:
        raise MediaError(f"label: font {path} drew nothing for the label text",
                         "标题文字无法绘制，请检查字体设置", code=ENCODE_FAILED)
    return layer


@dataclass(frozen=True)
class _LabelSpec:
    text: str
    font: str | None
    width: int
    height: int
    x: int
    y: int
    seconds: float


def _label_spec(label: str, font: str | None, profile: VideoProfile, canvas: tuple[int, int],
                picture_y: int) -> _LabelSpec:
    w, h = canvas
    if profile.fit == "blur_fill" and picture_y >= h * LABEL_BAND_MIN:
        return _LabelSpec(label, font, w, picture_y, 0, 0, profile.label_seconds)  # the band above the picture
    band = max(2, round(h * 0.25))
    return _LabelSpec(label, font, w, band, 0, round(h * 0.04), profile.label_seconds)


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Range:
    """Which part of the source an output covers (source seconds) and why it ends there."""

    start: float
    end: float | None  # None: to the end of the source
    cut_at: float | None
    cut_reason: str | None
    fade: bool


@dataclass(frozen=True)
class _Plan:
    profile: VideoProfile
    out: Path
    range: _Range
    video_chain: str  # filters from "{src}" to "{out}", "{label}" for the label input
    label: _LabelSpec | None
    width: int
    height: int

    @property
    def key(self) -> tuple:
        """Everything that decides the output bytes: equal keys → identical files."""
        return (self.range, self.video_chain, self.label, tuple(_encode_args(self.profile)))


def decode_threads(info: MediaInfo) -> int | None:
    """Decoder threads for a big source, so its frames in flight fit DECODE_BUFFER_BYTES.

    Frame threading keeps one decoded frame per thread (cores + 1 by default): an 8K frame
    is 50 MB in yuv420p, so an 8K phone clip on a 16-core worker would hold ~850 MB before
    the filter graph even starts. Measured on 8K H.264 here: default (3 threads) 564 MB
    peak RSS, 2 threads 422 MB, 1 thread 357 MB, at the same speed (the encode of the
    1080×1920 output is the bottleneck). None: ffmpeg's default, for sources whose default
    already fits.
    """
    frame_bytes = info.width * info.height * 3 // 2
    cores = os.cpu_count() or 1
    if frame_bytes * (cores + 1) <= DECODE_BUFFER_BYTES:
        return None
    return max(1, DECODE_BUFFER_BYTES // frame_bytes)


def tone_map_filter(transfer: str | None) -> str:
    """HDR (PQ / HLG, BT.2020) to SDR BT.709 before any scaling, so nothing looks grey and flat.

    zscale linearises with a 100-nit reference white, the primaries go to BT.709 in float,
    `tonemap=hable` (desat 0: keep the colour of highlights) compresses the range, then back
    to a BT.709 transfer and limited range. Costs about as much as the encode at 1080p: HDR
    uploads are rare (phones shoot SDR unless told otherwise).
    """
    return (f"zscale=tin={transfer}:min=bt2020nc:pin=bt2020:rin=tv:t=linear:npl={HDR_REFERENCE_NITS},"
            f"format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
            f"zscale=t=bt709:m=bt709:r=tv,format=yuv420p,")


def _effective_window(profile: VideoProfile) -> float:
    assert profile.max_duration is not None
    return min(profile.cut_window, profile.max_duration / 2)


def _plan_range(src: Path, info: MediaInfo, profile: VideoProfile, start: float | None, end: float | None,
                cache: dict) -> _Range:
    duration = info.duration
    s = float(start or 0.0)
    limit = profile.max_duration
    if end is not None:
        e = min(float(end), duration) if duration is not None else float(end)
        reason = cutpoint.EDITOR
        if limit is not None and e - s > limit + 1e-6:
            e, reason = s + limit, cutpoint.HARD_LIMIT
        if duration is not None and e >= duration - END_TOLERANCE:
            return _Range(s, None, None, None, False)
        return _Range(s, e, round(e, 3), reason, True)
    if limit is None:
        return _Range(s, None, None, None, False)
    if duration is None:  # length unknown: no analysis possible, -t is the limit
        return _Range(s, s + limit, None, None, False)
    if duration - s <= limit + END_TOLERANCE:
        return _Range(s, None, None, None, False)
    window_end = s + limit
    window = _effective_window(profile)
    key = (round(window_end - window, 3), round(window_end, 3))
    if key not in cache:
        if window <= 0:
            cache[key] = cutpoint.CutDecision(round(window_end, 3), cutpoint.HARD_LIMIT)
        else:
            cache[key] = cutpoint.find_cut(src, window_end - window, window_end, has_audio=info.has_audio)
    decision = cache[key]
    return _Range(s, decision.at, decision.at, decision.reason, True)


def _video_chain(info: MediaInfo, profile: VideoProfile, rng: _Range, label: str | None,
                 font: str | None) -> tuple[str, _LabelSpec | None, int, int]:
    """Filter chain template from "[{src}]" to "[{out}]" and the output size."""
    pre = f"fps={profile.fps_cap}," if info.fps is None or info.fps > profile.fps_cap + 0.01 else ""
    if info.hdr:
        pre += tone_map_filter(info.color_transfer)
    if profile.fit == "blur_fill":
        cw, ch = profile.max_width // 2 * 2, profile.max_height // 2 * 2
        pw, ph, px, py = fill_geometry(info.width, info.height, cw, ch)
        if (pw, ph) == (cw, ch):
            chain = f"[{{src}}]{pre}scale={cw}:{ch}:flags=bicubic,setsar=1"
        else:
            bw, bh = max(2, cw // BLUR_SCALE // 2 * 2), max(2, ch // BLUR_SCALE // 2 * 2)
            radius = max(1, min(bw, bh) // 40)
            aspect = f"{cw / ch:.6f}"
            chain = (
                f"[{{src}}]{pre}split=2[{{out}}bgsrc][{{out}}fgsrc];"
                f"[{{out}}bgsrc]crop=w='min(iw,ih*{aspect}/sar)':h='min(ih,iw*sar/{aspect})',"
                f"scale={bw}:{bh}:flags=bilinear,boxblur={radius}:{BLUR_POWER},"
                f"lutyuv=y=16+(val-16)*{BLUR_LUMA}:u=128+(val-128)*{BLUR_CHROMA}:v=128+(val-128)*{BLUR_CHROMA},"
                f"scale={cw}:{ch}:flags=bilinear,setsar=1[{{out}}bg];"
                f"[{{out}}fgsrc]scale={pw}:{ph}:flags=bicubic,setsar=1[{{out}}fg];"
                f"[{{out}}bg][{{out}}fg]overlay={px}:{py}"
            )
        width, height, picture_y = cw, ch, py
    else:
        width, height = fit_box(info.width, info.height, profile.max_width, profile.max_height,
                                portrait_box=profile.portrait_box)
        chain = f"[{{src}}]{pre}scale={width}:{height}:flags=bicubic,setsar=1"
        picture_y = 0
    spec = None
    if label:
        spec = _label_spec(label, font, profile, (width, height), picture_y)
        chain += (f"[{{out}}base];[{{out}}base][{{label}}]overlay={spec.x}:{spec.y}"
                  f":enable='between(t,0,{spec.seconds:g})'")
    if rng.fade and rng.end is not None:
        length = rng.end - rng.start
        fade = min(FADE_SECONDS, length / 2)
        chain += f",fade=t=out:st={length - fade:.3f}:d={fade:.3f}"
    chain += ",format=yuv420p[{out}]"
    return chain, spec, width, height


def _plan(src: Path, info: MediaInfo, profile: VideoProfile, out: Path, start: float | None, end: float | None,
          label: str | None, font: str | None, cache: dict) -> _Plan:
    rng = _plan_range(src, info, profile, start, end, cache)
    chain, spec, width, height = _video_chain(info, profile, rng, label, font)
    return _Plan(profile, out, rng, chain, spec, width, height)


def _check_range(info: MediaInfo, start: float | None, end: float | None) -> None:
    bad = None
    if start is not None and (not math.isfinite(start) or start < 0):
        bad = f"in point {start} is negative"
    elif end is not None and (not math.isfinite(end) or end <= (start or 0.0)):
        bad = f"out point {end} is not after the in point {start or 0.0}"
    elif start is not None and info.duration is not None and start >= info.duration - END_TOLERANCE:
        bad = f"in point {start} is at or after the end of the video ({info.duration:.2f} s)"
    if bad:
        raise MediaError(f"invalid clip range: {bad}", "剪辑的入点/出点不正确：出点必须晚于入点，且入点须在视频时长之内",
                         code=INVALID)


# --------------------------------------------------------------------------- running


def _group_args(src: Path, info: MediaInfo, rng: _Range, plans: list[_Plan], tmps: list[Path],
                label_pngs: list[Path | None]) -> list[str]:
    """One ffmpeg invocation writing every plan of one time range (one decode, `split`)."""
    args = ["-v", "error"]
    if rng.start > 0:
        args += ["-ss", f"{rng.start:.3f}"]
    if rng.end is not None:
        args += ["-t", f"{rng.end - rng.start:.3f}"]
    threads = decode_threads(info)
    if threads is not None:
        args += ["-threads", str(threads)]
    args += ["-i", ffpath(src)]
    inputs = 1
    length = (rng.end - rng.start) if rng.end is not None else (
        info.duration - rng.start if info.duration is not None else None)
    if not info.has_audio:
        args += ["-f", "lavfi"] + (["-t", f"{length:.3f}"] if length is not None else []) + ["-i", SILENT_AUDIO]
        audio = f"{inputs}:a:0"
        inputs += 1
    label_inputs: list[int | None] = []
    for png in label_pngs:
        if png is None:
            label_inputs.append(None)
            continue
        args += ["-i", ffpath(png)]
        label_inputs.append(inputs)
        inputs += 1

    n = len(plans)
    graph: list[str] = []
    sources = ["0:v:0"] if n == 1 else [f"s{i}" for i in range(n)]
    if n > 1:
        graph.append("[0:v:0]split=" + str(n) + "".join(f"[s{i}]" for i in range(n)))
    for i, plan in enumerate(plans):
        graph.append(plan.video_chain.format(src=sources[i], out=f"v{i}",
                                             label=f"{label_inputs[i]}:v" if label_inputs[i] is not None else ""))
    audio_maps: list[str]
    if info.has_audio and rng.fade and rng.end is not None:
        length_a = rng.end - rng.start
        fade = min(FADE_SECONDS, length_a / 2)
        chain = f"[0:a:0]afade=t=out:st={length_a - fade:.3f}:d={fade:.3f}"
        if n > 1:
            chain += ",asplit=" + str(n) + "".join(f"[a{i}]" for i in range(n))
            audio_maps = [f"[a{i}]" for i in range(n)]
        else:
            chain += "[a0]"
            audio_maps = ["[a0]"]
        graph.append(chain)
    elif info.has_audio:
        audio_maps = ["0:a:0"] * n
    else:
        audio_maps = [audio] * n
    args += ["-filter_complex", ";".join(graph)]
    for i, (plan, tmp) in enumerate(zip(plans, tmps)):
        args += ["-map", f"[v{i}]", "-map", audio_maps[i], *_encode_args(plan.profile)]
        if not info.has_audio:
            args += ["-shortest"]
        args += ["-f", "mp4", ffpath(tmp)]
    return args


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def render_videos(src: str | Path, jobs: Sequence[tuple[VideoProfile, str | Path]], *, start: float | None = None,
                  end: float | None = None, label: str | None = None, font: str | None = None,
                  timeout: float | None = None,
                  progress: Callable[[float, float], None] | None = None) -> list[RenditionInfo]:
    """Render `src` once for several (profile, out) pairs; RenditionInfo per pair, in order.

    One ffmpeg process decodes the source once and encodes every output whose time range
    agrees (a `split` in the graph, one set of `-map` and encoder options per output); a
    profile with its own range (another max_duration, a different natural cut) gets its own
    process. Outputs with identical effective parameters are encoded once and hard-linked
    (or copied). `start`/`end` are in/out points in source seconds, honoured exactly (a
    profile's max_duration still caps the length: reason "hard limit"); without `end` a
    source longer than max_duration is cut at a natural pause (`media.cutpoint`). `label`
    is drawn over the first `label_seconds` of each output (`font`: a CJK font path).
    Every output is written atomically; on any failure none is left behind.
    `progress(done, total)` is called as the encodes advance, in output seconds over all the
    ffmpeg runs this call makes (for a progress bar; `total` may be 0 when unknown).
    """
    src = Path(src)
    jobs = [(profile, Path(out)) for profile, out in jobs]
    for profile, _ in jobs:
        if not isinstance(profile, VideoProfile):
            raise TypeError(f"render_videos needs VideoProfiles, got {type(profile).__name__}")
    outs = [os.path.abspath(out) for _, out in jobs]
    if len(set(outs)) != len(outs):
        raise ValueError("render_videos: two outputs share one path")
    if not jobs:
        return []
    info = probe(src)
    _require_video(info, "render_videos")
    _check_range(info, start, end)
    if label is not None and not label.strip():
        label = None

    cache: dict = {}
    plans = [_plan(src, info, profile, out, start, end, label, font, cache) for profile, out in jobs]
    primary: dict[tuple, int] = {}
    duplicate_of: dict[int, int] = {}
    for i, plan in enumerate(plans):
        if plan.key in primary:
            duplicate_of[i] = primary[plan.key]
        else:
            primary[plan.key] = i
    groups: dict[_Range, list[int]] = {}
    for i in primary.values():
        groups.setdefault(plans[i].range, []).append(i)

    def length_of(rng: _Range) -> float | None:
        if rng.end is not None:
            return rng.end - rng.start
        return info.duration - rng.start if info.duration is not None else None

    total = sum(length_of(rng) or 0.0 for rng in groups)
    done_before = 0.0
    results: dict[int, RenditionInfo] = {}
    with tempfile.TemporaryDirectory(prefix="fanout-video-") as workdir, contextlib.ExitStack() as stack:
        tmps = {i: stack.enter_context(atomic_path(plans[i].out, suffix=".mp4")) for i in primary.values()}
        for rng, members in groups.items():
            pngs: list[Path | None] = []
            for i in members:
                spec = plans[i].label
                if spec is None:
                    pngs.append(None)
                    continue
                png = Path(workdir) / f"label-{i}.png"
                label_layer((spec.width, spec.height), spec.text, spec.font).save(png)
                pngs.append(png)
            args = _group_args(src, info, rng, [plans[i] for i in members], [tmps[i] for i in members], pngs)
            length = length_of(rng)
            budget = timeout or _encode_timeout(None if length is None else length * len(members))
            names = ", ".join(plans[i].profile.name for i in members)
            log.info("encode %s from %s (%s)", names, src.name, rng)
            report = None
            if progress is not None:
                offset = done_before

                def report(seconds: float, offset: float = offset) -> None:
                    progress(min(total, offset + seconds) if total else offset + seconds, total)

            run_ffmpeg(args, timeout=budget, what=f"encode {names}", progress=report)
            done_before += length or 0.0
            if progress is not None:
                progress(min(done_before, total), total)
            for i in members:
                plan, tmp = plans[i], tmps[i]
                result = probe(tmp)
                if not (result.kind == "video" and faststart_ok(tmp)):
                    raise MediaError(f"encode {plan.profile.name}: output failed its own checks", "视频转换失败",
                                     code=ENCODE_FAILED)
                results[i] = RenditionInfo(
                    path=os.path.abspath(plan.out), mime=plan.profile.mime, width=result.width,
                    height=result.height, bytes=result.bytes, duration=result.duration,
                    cut_at=rng.cut_at, cut_reason=rng.cut_reason,
                )
    for i, j in duplicate_of.items():
        with atomic_path(plans[i].out, suffix=".mp4") as tmp:
            _link_or_copy(plans[j].out, tmp)
        first = results[j]
        results[i] = RenditionInfo(
            path=os.path.abspath(plans[i].out), mime=first.mime, width=first.width, height=first.height,
            bytes=first.bytes, duration=first.duration, cut_at=first.cut_at, cut_reason=first.cut_reason,
        )
    return [results[i] for i in range(len(plans))]


def render_video(src: str | Path, profile: VideoProfile, out: str | Path, *, start: float | None = None,
                 end: float | None = None, label: str | None = None, font: str | None = None,
                 timeout: float | None = None,
                 progress: Callable[[float, float], None] | None = None) -> RenditionInfo:
    """Transcode `src` per `profile` into an MP4 at `out` (atomically); return what was written.

    `start`/`end`: in/out points (source seconds) honoured exactly; without `end` a source
    longer than `profile.max_duration` is cut at a natural pause. `label`: Chinese text shown
    for the first `profile.label_seconds`; `font`: a CJK font path. See `render_videos`.
    """
    if not isinstance(profile, VideoProfile):
        raise TypeError(f"render_video needs a VideoProfile, got {type(profile).__name__}")
    return render_videos(src, [(profile, out)], start=start, end=end, label=label, font=font, timeout=timeout,
                         progress=progress)[0]


# --------------------------------------------------------------------------- posters


def poster_timestamps(duration: float | None) -> list[float]:
    """Candidate seconds for a poster frame: max(1 s, 10 %), then 25/50/75 % of the duration."""
    if not duration or duration <= 0:
        return [0.0]
    first = min(max(1.0, 0.10 * duration), duration * 0.9)
    later = [duration * f for f in (0.25, 0.50, 0.75)]
    return [first] + sorted(t for t in later if t > first + 0.05)


def _grab_frame(src: Path, at: float, max_width: int, aspect: tuple[int, int] | None = None):
    """One RGB frame at `at` seconds — centre-cropped to `aspect` if given — scaled to at most
    max_width wide (None if none decoded)."""
    from PIL import Image

    vf = f"scale='min(iw,{max_width})':-2:flags=bicubic,setsar=1,format=rgb24"
    if aspect is not None:
        a, b = aspect
        vf = f"format=rgb24,crop=w='min(iw,ih*{a}/{b})':h='min(ih,iw*{b}/{a})'," + vf  # RGB: odd widths allowed
    proc = run_ffmpeg(
        ["-v", "error", "-ss", f"{at:.3f}", "-i", ffpath(src), "-map", "0:v:0", "-frames:v", "1",
         "-vf", vf, "-f", "image2pipe", "-c:v", "ppm", "pipe:1"],
        timeout=POSTER_TIMEOUT, what="poster frame", check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        return None
    img = Image.open(io.BytesIO(proc.stdout))
    img.load()
    return img


def render_poster(src: str | Path, profile: PosterProfile, out: str | Path, *, start: float | None = None,
                  end: float | None = None) -> RenditionInfo:
    """Write a non-black JPEG still of `src` to `out` (atomically); return what was written.

    `start`/`end` restrict the candidate frames to a clip's range (so a cover shows
    something that is in the clip); `profile.aspect` centre-crops the frame.
    """
    from PIL import ImageStat

    if not isinstance(profile, PosterProfile):
        raise TypeError(f"render_poster needs a PosterProfile, got {type(profile).__name__}")
    src, out = Path(src), Path(out)
    info = probe(src)
    _require_video(info, "render_poster")
    offset = max(0.0, start or 0.0)
    stop = info.duration if end is None else (end if info.duration is None else min(end, info.duration))
    span = None if stop is None else max(0.0, stop - offset)
    best, best_luma = None, -1.0
    for at in poster_timestamps(span):
        frame = _grab_frame(src, offset + at, profile.max_width, profile.aspect)
        if frame is None:
            continue
        luma = ImageStat.Stat(frame.convert("L")).mean[0]
        log.debug("poster candidate %.2fs luma %.1f", offset + at, luma)
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
