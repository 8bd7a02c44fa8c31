"""Still-image renditions with Pillow: `render_images(src, jobs)` and `render_image(src, profile, out)`.

`render_images(src, [(profile, out), ...])` makes every rendition of one source from a single
decode; `render_image` is the same pipeline for one output (its bytes are what they were
before `render_images` existed). The pipeline, in the order that keeps it fast (see
../shared/DESIGN.md "Known pitfalls"):

1. `probe.open_image` — real type, byte cap, pixel cap from the header, before decoding.
2. JPEG only: read the EXIF orientation, work out every output's geometry, and call
   `draft()` *before* `load()` so libjpeg decodes at 1/2, 1/4 or 1/8 scale (DCT scaling) —
   never below `DRAFT_GAP`× the pixels the *largest* output needs.
3. load once (GIF / animated WebP: the first frame).
4. one `resize(size, box=..., reducing_gap=3)` to the *working image*: the union of all the
   outputs' source regions at the largest output's scale (for a single output: the output
   itself), done on the image as stored and only then transposed for the EXIF orientation —
   a transpose of the small working image instead of the full decode (a single output keeps
   the historical transpose-then-resize order, so `render_image` bytes do not change).
   Colour is converted to sRGB once, on the working image: CMYK (with its ICC profile when
   present) and any embedded non-sRGB ICC profile (Adobe RGB, Display P3, ...) through
   LittleCMS (ImageCms).
5. every output, biggest first, is cut and scaled (`reducing_gap`) from the smallest image
   made so far that covers its region at a high enough scale — the working image or a bigger
   output — never from the full decode again. Outputs whose effective parameters are the same
   (size, region, fill, format, quality, byte cap) are made and encoded once.
6. fit: "width" / "crop" / "pad" (fit inside, padded to the box with `pad_color`) / "blur"
   (fit inside, over a blurred, darkened cover-crop of itself). The blurred fill is made at
   most `BLUR_LONG_SIDE` px on its long side and upscaled: a Gaussian blur at full size costs
   as much as the rest of the rendition.
7. alpha flattened on white for JPEG; every bit of metadata dropped (EXIF with GPS, XMP, ICC,
   comments); encoded in memory (progressive JPEG / WebP method 2 / PNG), quality stepped down
   by `QUALITY_STEP` until `max_bytes` is met, refusing below `MIN_QUALITY` (40: below that
   JPEG blocking is visible on faces and text). All outputs are encoded before the first is
   written; each is written atomically.

Output format rules: the output is `profile.format` (JPEG/WebP/PNG) — with one exception:
a profile with `animation="keep"` given an animated GIF writes an animated GIF (every frame
resized, per-frame durations and the loop count kept; `RenditionInfo.mime` is "image/gif",
whatever the profile's format or the `out` name says). With `animation="first_frame"` (the
default), and for animated WebP, the first frame is used. Pillow's GIF writer merges
consecutive identical frames (adding their durations). `pad` and `blur` outputs are opaque.

Numbers: DRAFT_GAP = 2.0 is what Pillow's own `thumbnail()` uses before draft; RESIZE_GAP = 3
is the reducing_gap measured in DESIGN.md; WebP method 2 — method 4 costs 10× JPEG encode
time here for a few % of size. Progressive JPEG always gets optimised Huffman tables in
libjpeg, so `optimize=True` costs nothing extra (measured: same bytes, same time).
MAX_ANIMATION_PIXELS = 64 MP of decoded frames (e.g. 100 frames of 800×800) — a few seconds
of work; the resized frames are kept (8-bit palette) until the GIF is written.

Threads: Pillow releases the GIL while it resamples and encodes, so one call uses every core
(up to ENCODE_THREADS_MAX): each output's resize is a task that waits only for its source
image, a resize with over STRIP_MIN_PIXELS of output is cut into horizontal strips (same
pixels, ±1 from float rounding), and each output is composed and encoded the moment it is
made. Nothing is written until every encode has succeeded.

Measured (bench/bench_images.py, the 10 image profiles of one story from a 24 MP JPEG with
EXIF orientation 6, 2-core VM shared with other jobs): render_images ≈ 0.9–1.0 s wall
(≈ 1.3 s CPU), peak RSS ≈ 270 MB; naive Pillow (open, exif_transpose, ImageOps.fit /
thumbnail, LANCZOS, per output, one thread) ≈ 4.4 s — ratio 0.21–0.23 wall, ≈ 0.30 CPU.
Single-threaded the ratio was 0.28–0.31: the floor is weibo_image — 2048 px of a 4000 px
wide photo allows no draft, so a full decode (≈ 0.15 s) and one full-size LANCZOS pass
(≈ 0.4 s CPU, now in strips) remain. Every derived output is within 47 dB PSNR of a direct
LANCZOS resize of the full decode.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from media.errors import BOMB, CORRUPT, ENCODE_FAILED, TOO_BIG_OUTPUT, MediaError
from media.fsutil import write_bytes_atomic
from media.probe import DEFAULT_MAX_PIXELS, EXIF_ROTATION, open_image
from media.profiles import ImageProfile
from media.rendition import RenditionInfo

log = logging.getLogger(__name__)

DRAFT_GAP = 2.0
RESIZE_GAP = 3.0
MIN_QUALITY = 40
QUALITY_STEP = 5
WEBP_METHOD = 2
FLATTEN_BACKGROUND = (255, 255, 255)
BLUR_LONG_SIDE = 96  # the blurred fill is computed this small (long side), then upscaled
BLUR_RADIUS = 4.0  # Gaussian radius at that size: ~1/24 of the long side (≈ 80 px on 1920)
BLUR_BRIGHTNESS = 0.6  # darkened so the picture on top stands out
MAX_ANIMATION_PIXELS = 64_000_000  # frames × width × height of an animated GIF kept animated
MAX_ANIMATION_FRAMES = 1000
ENCODE_THREADS_MAX = 4  # compose + encode threads per render_images call (one per core up to this)
STRIP_MIN_PIXELS = 1_000_000  # a resize with a smaller output is not worth cutting into strips

# EXIF orientation -> Image.Transpose member name (same table as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Geometry:
    """Where an output comes from and how big it is, for an (oriented) source.

    `box`: the source region used, in source pixels; `inner`: the size that region is scaled
    to; `canvas`: the output size (== inner for "width" and "crop"; for "pad" and "blur" the
    inner picture is centred on it).
    """

    canvas: tuple[int, int]
    inner: tuple[int, int]
    box: Box


def render_image(
    src: str | Path, profile: ImageProfile, out: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> RenditionInfo:
    """Render `src` per `profile` into `out` (atomically); return what was written."""
    if not isinstance(profile, ImageProfile):
        raise TypeError(f"render_image needs an ImageProfile, got {type(profile).__name__}")
    return render_images(src, [(profile, out)], max_pixels=max_pixels)[0]


def render_images(
    src: str | Path,
    jobs: Iterable[tuple[ImageProfile, str | Path]],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[RenditionInfo]:
    """Render `src` once into every `(profile, out)` of `jobs`; RenditionInfos in job order.

    The source is opened and decoded once. Either every output is written or, when one
    fails (MediaError: corrupt source, byte cap not met, ...), none is.
    """
    jobs = [(profile, Path(out)) for profile, out in jobs]
    for profile, _ in jobs:
        if not isinstance(profile, ImageProfile):
            raise TypeError(f"render_images needs ImageProfiles, got {type(profile).__name__}")
    if not jobs:
        return []
    profiles = [profile for profile, _ in jobs]
    im, sniffed, _ = open_image(src, max_pixels=max_pixels)
    keys: list[tuple | None] = [None] * len(jobs)
    # one encode per distinct output, started as soon as its picture is made: Pillow releases
    # the GIL while it resizes and encodes, so encoding overlaps with deriving the next output
    pending: dict[tuple, Future[_Encoded]] = {}
    threads = encode_threads()
    with (im, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fanout-encode") as pool,
          ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fanout-derive") as derive,
          ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fanout-strip") as strips):
        submit = pool.submit
        pools = _Pools(derive, strips, threads) if threads > 1 else None
        keep = [p.animation == "keep" for p in profiles]
        animated = any(keep) and sniffed.fmt == "GIF" and _is_animated(im)
        still = [i for i in range(len(jobs)) if not (animated and keep[i])]
        moving = [i for i in range(len(jobs)) if animated and keep[i]]
        if still:
            these, todo = _render_still(im, sniffed.fmt, [profiles[i] for i in still], submit, pools)
            pending.update(todo)
            for i, key in zip(still, these):
                keys[i] = key
        if moving:
            these, todo = _render_animation(im, [profiles[i] for i in moving])
            pending.update({key: submit(encode) for key, encode in todo.items()})
            for i, key in zip(moving, these):
                keys[i] = key
        # every distinct output encoded (the first error wins) before any file is written
        encoded = {key: future.result() for key, future in pending.items()}
    del im  # frees the decoded source (unless an output is the source itself, unscaled)
    infos = []
    for (_, out), key in zip(jobs, keys):
        result = encoded[key]
        write_bytes_atomic(out, result.data)
        infos.append(RenditionInfo(path=os.path.abspath(out), mime=result.mime, width=result.width,
                                   height=result.height, bytes=len(result.data)))
    return infos


@dataclass(frozen=True)
class _Pools:
    """Thread pools of one render_images call: `derive` runs resize tasks (each may wait for
    its source's task), `strips` the strips of one big resize; separate pools, so a task
    waiting on strips never holds the thread a strip needs."""

    derive: Executor
    strips: Executor
    parts: int


@dataclass(frozen=True)
class _Encoded:
    data: bytes
    mime: str
    width: int
    height: int


def _corrupt(exc: BaseException) -> MediaError:
    return MediaError(
        f"corrupt or truncated image: {exc.__class__.__name__}: {exc}",
        "图片文件已损坏或不完整，无法读取，请重新上传",
        code=CORRUPT,
    )


# --------------------------------------------------------------------------- geometry


def plan_geometry(width: int, height: int, profile: ImageProfile) -> Geometry:
    """Output geometry for an (oriented) source of width×height. Never upscales.

    "width" keeps the source size when it is already narrow enough; "crop" on a source
    smaller than the box gives the largest centred crop of the box's aspect; "pad"/"blur" on
    a source that fits inside the box keep it 1:1 on the smallest canvas of the box's aspect
    that holds it.
    """
    full = (0.0, 0.0, float(width), float(height))
    if profile.fit == "width":
        scale = min(1.0, profile.width / width)
        if profile.height is not None:
            scale = min(scale, profile.height / height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return Geometry(size, size, full)
    assert profile.height is not None
    bw, bh = profile.width, profile.height
    if profile.fit in ("pad", "blur"):
        scale = min(bw / width, bh / height)
        if scale <= 1.0:
            inner = (min(bw, max(1, round(width * scale))), min(bh, max(1, round(height * scale))))
            return Geometry((bw, bh), inner, full)
        k = max(width / bw, height / bh)
        canvas = (max(width, round(bw * k)), max(height, round(bh * k)))
        return Geometry(canvas, (width, height), full)
    # cover-crop, centred
    scale = max(bw / width, bh / height)
    if scale <= 1.0:
        tw, th = bw, bh
        cw, ch = bw / scale, bh / scale
    else:  # source smaller than the box on some side: crop to the aspect, keep 1:1 pixels
        aspect = bw / bh
        cw, ch = (float(width), width / aspect) if width / height <= aspect else (height * aspect, float(height))
        tw, th = max(1, math.floor(cw)), max(1, math.floor(ch))
        cw, ch = float(tw), float(th)
    x0 = (width - cw) / 2
    y0 = (height - ch) / 2
    return Geometry((tw, th), (tw, th), (x0, y0, x0 + cw, y0 + ch))


def target_geometry(width: int, height: int, profile: ImageProfile) -> tuple[tuple[int, int], Box]:
    """(scaled size, source box) of `plan_geometry` — for pad/blur the size of the picture
    placed on the canvas."""
    g = plan_geometry(width, height, profile)
    return g.inner, g.box


def _scale(g: Geometry) -> tuple[float, float]:
    return g.inner[0] / (g.box[2] - g.box[0]), g.inner[1] / (g.box[3] - g.box[1])


def _read_orientation(im) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not kill the rendition
        return 1
    return value if isinstance(value, int) and value in EXIF_ROTATION else 1


def _oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if EXIF_ROTATION[orientation] in (90, 270) else size


# --------------------------------------------------------------------------- still images


def _effective_key(g: Geometry, p: ImageProfile, fmt: str) -> tuple:
    """Everything that decides an output's bytes: outputs with equal keys are made once."""
    if g.canvas == g.inner:
        fill: tuple = ("none",)
    elif p.fit == "pad":
        fill = ("pad", tuple(p.pad_color))
    else:
        fill = (p.fit,)
    return g.canvas, g.inner, g.box, fill, fmt, p.quality, p.max_bytes


def _decode(im, fmt: str, profiles: list[ImageProfile]):
    """Draft (JPEG) and load the source once; return (stored image, orientation, oriented
    size, geometries). The image is as stored (not yet oriented), at the drafted scale, in a
    mode `resize` handles, not yet colour-converted."""
    stored = im.size
    orientation = 1
    if fmt == "JPEG":
        orientation = _read_orientation(im)
        ow, oh = _oriented(stored, orientation)
        plans = [plan_geometry(ow, oh, p) for p in profiles]
        need = max(g.inner[0] / (g.box[2] - g.box[0]) for g in plans)  # output px per source px
        req_w = math.ceil(ow * need * DRAFT_GAP)
        req_h = math.ceil(oh * need * DRAFT_GAP)
        if (ow, oh) != stored:
            req_w, req_h = req_h, req_w
        if req_w < stored[0] and req_h < stored[1]:
            im.draft(im.mode, (req_w, req_h))
    im.load()  # GIF / animated WebP: the first frame
    if fmt != "JPEG":
        orientation = _read_orientation(im)
        ow, oh = _oriented(stored, orientation)
        plans = [plan_geometry(ow, oh, p) for p in profiles]
    return _resizable_mode(im), orientation, (ow, oh), plans


def _stored_box(box: Box, orientation: int, size: tuple[int, int]) -> Box:
    """A box in the oriented (display) image → the same region of the stored image of `size`."""
    x0, y0, x1, y1 = box
    w, h = size  # stored size
    return {
        1: (x0, y0, x1, y1),
        2: (w - x1, y0, w - x0, y1),  # mirrored left-right
        3: (w - x1, h - y1, w - x0, h - y0),  # 180°
        4: (x0, h - y1, x1, h - y0),  # mirrored top-bottom
        5: (y0, x0, y1, x1),  # transposed
        6: (y0, h - x1, y1, h - x0),  # shown 90° clockwise
        7: (w - y1, h - x1, w - y0, h - x0),  # transverse
        8: (w - y1, x0, w - y0, x1),  # shown 90° counter-clockwise
    }[orientation]


def _render_still(im, fmt: str, profiles: list[ImageProfile], submit: Callable[..., Future],
                  pools: _Pools | None = None):
    """Decode once and make every distinct output image; returns (key per profile,
    {key: future of its encoded bytes}). Each output's compose + encode is handed to
    `submit` (a thread pool) the moment its picture is derived; with `pools`, resizes run
    as tasks and big ones are cut into horizontal strips."""
    icc = im.info.get("icc_profile")
    try:
        img, orientation, oriented, plans = _decode(im, fmt, profiles)
        keys = [("still", *_effective_key(g, p, p.format)) for g, p in zip(plans, profiles)]
        firsts: dict[tuple, int] = {}  # key -> index of the first profile with it
        for i, key in enumerate(keys):
            firsts.setdefault(key, i)
        unique = list(firsts.values())
        pending: dict[tuple, Future[_Encoded]] = {}

        def started(j: int, inner) -> None:
            i = unique[j]
            pending[keys[i]] = submit(_finish_still, inner, plans[i], profiles[i])

        _derive(img, orientation, oriented, [plans[i] for i in unique], icc, on_inner=started, pools=pools)
        del img
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow decode errors come in many types
        raise _corrupt(exc) from None
    return keys, pending


def _finish_still(inner, plan: Geometry, profile: ImageProfile) -> _Encoded:
    """Fit the derived picture onto its canvas, drop all metadata, encode (a pool thread)."""
    try:
        out = _compose(inner, plan, profile)
        out = _output_mode(out, profile.format)
        out.info = {}  # drop EXIF, GPS, XMP, ICC, comments, transparency, ...
    except Exception as exc:  # noqa: BLE001 - Pillow errors come in many types
        raise _corrupt(exc) from None
    return _Encoded(_encode(out, profile), profile.mime, out.width, out.height)


def encode_threads() -> int:
    """Threads that compose and encode outputs: one per core, at most ENCODE_THREADS_MAX."""
    return max(1, min(ENCODE_THREADS_MAX, os.cpu_count() or 1))


def _derive(img, orientation: int, oriented: tuple[int, int], plans: list[Geometry], icc: bytes | None,
            on_inner: Callable[[int, object], None] | None = None, pools: _Pools | None = None) -> list:
    """The inner (scaled, oriented, sRGB) image of every plan, from one decoded stored image.

    First the working image: the union of the plans' boxes at the largest plan's scale,
    oriented and converted to sRGB. Then each plan, biggest scale first, from the smallest
    image made so far (working image or a bigger plan's) that covers its box at a scale at
    least its own. With several plans the stored image is resized first and only the (smaller)
    working image is transposed; a single plan keeps the historical order — transpose, then
    resize — so `render_image` output bytes (and so profile versions) are unchanged.
    """
    from PIL import Image

    if orientation != 1 and len(plans) == 1:
        img = img.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation]))
        orientation = 1
    ow, oh = oriented
    shown_w, shown_h = _oriented(img.size, orientation)
    sx, sy = shown_w / ow, shown_h / oh  # drafted size vs original oriented size
    union = (
        min(g.box[0] for g in plans), min(g.box[1] for g in plans),
        max(g.box[2] for g in plans), max(g.box[3] for g in plans),
    )
    scales = [_scale(g) for g in plans]
    kx, ky = max(s[0] for s in scales), max(s[1] for s in scales)
    size = next((g.inner for g, s in zip(plans, scales) if g.box == union and s == (kx, ky)), None)
    if size is None:
        size = (max(1, round((union[2] - union[0]) * kx)), max(1, round((union[3] - union[1]) * ky)))
    box = _stored_box((union[0] * sx, union[1] * sy, union[2] * sx, union[3] * sy), orientation, img.size)
    size = _oriented(size, orientation)  # in stored orientation
    if size != img.size or box != (0.0, 0.0, float(img.width), float(img.height)):
        img = _resize(img, size, box, pools)
    if orientation != 1:
        img = img.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation]))
    work = _to_srgb(img, icc)
    del img
    # Each output comes from the smallest image planned so far that covers it; with a pool the
    # resizes run as tasks (a task waits for its source), so independent outputs run at once.
    made: list[tuple[tuple[int, int], Box, Future]] = [(work.size, union, _completed(work))]
    del work
    futures: list[Future | None] = [None] * len(plans)
    order = sorted(range(len(plans)), key=lambda i: scales[i], reverse=True)
    for i in order:
        g = plans[i]
        ssize, sbox, source = min((c for c in made if _covers(c[0], c[1], g)), key=lambda c: c[0][0] * c[0][1])
        fx = ssize[0] / (sbox[2] - sbox[0])
        fy = ssize[1] / (sbox[3] - sbox[1])
        box = (
            max(0.0, (g.box[0] - sbox[0]) * fx), max(0.0, (g.box[1] - sbox[1]) * fy),
            min(float(ssize[0]), (g.box[2] - sbox[0]) * fx), min(float(ssize[1]), (g.box[3] - sbox[1]) * fy),
        )
        if g.inner == ssize and box == (0.0, 0.0, float(ssize[0]), float(ssize[1])):
            future = source
        elif pools is None:
            future = _completed(_resize(source.result(), g.inner, box, None))
        else:
            future = pools.derive.submit(_resize_from, source, g.inner, box, pools)
        futures[i] = future
        made.append((g.inner, g.box, future))
    inners: list = [None] * len(plans)
    for i in order:
        inners[i] = futures[i].result()
        if on_inner is not None:
            on_inner(i, inners[i])
    return inners


def _completed(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def _resize_from(source: Future, size: tuple[int, int], box: Box, pools: _Pools):
    return _resize(source.result(), size, box, pools)


def _resize(img, size: tuple[int, int], box: Box, pools: _Pools | None):
    """LANCZOS resize of `box` of `img` to `size` (reducing_gap), in horizontal strips on
    `pools.strips` when the output is big enough to be worth it.

    Pillow releases the GIL while it resamples and takes pixels outside the box as filter
    support, so a strip — output rows r0..r1 from source rows box_y0 + r·scale — comes out
    as those rows of the whole resize would (to float rounding), and the strips run on
    several cores at once.
    """
    from PIL import Image

    width, height = size
    parts = pools.parts if pools is not None else 1
    if parts < 2 or width * height < STRIP_MIN_PIXELS or height < 2 * parts:
        return img.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=RESIZE_GAP)
    scale = (box[3] - box[1]) / height
    bounds = [round(height * k / parts) for k in range(parts + 1)]

    def strip(r0: int, r1: int):
        part_box = (box[0], box[1] + r0 * scale, box[2], box[1] + r1 * scale)
        return img.resize((width, r1 - r0), Image.Resampling.LANCZOS, box=part_box, reducing_gap=RESIZE_GAP)

    futures = [pools.strips.submit(strip, r0, r1) for r0, r1 in itertools.pairwise(bounds)]
    parts_done = [f.result() for f in futures]
    out = Image.new(parts_done[0].mode, size)
    for r0, part in zip(bounds, parts_done):
        out.paste(part, (0, r0))
    return out


def _covers(size: tuple[int, int], box: Box, g: Geometry) -> bool:
    """Whether an image of `size` showing source region `box` holds g's box with at least g's
    pixels (±1 px rounding)."""
    eps = 1e-6
    if g.box[0] < box[0] - eps or g.box[1] < box[1] - eps or g.box[2] > box[2] + eps or g.box[3] > box[3] + eps:
        return False
    kx, ky = _scale(g)
    return size[0] >= kx * (box[2] - box[0]) - 1 and size[1] >= ky * (box[3] - box[1]) - 1


def _compose(inner, g: Geometry, profile: ImageProfile):
    """Place the inner picture on the canvas: pad colour or blurred fill (pad/blur fits)."""
    from PIL import Image

    if g.canvas == inner.size:
        return inner
    if profile.fit == "pad":
        canvas = Image.new("RGB", g.canvas, tuple(profile.pad_color))
    else:
        canvas = _blur_fill(inner, g.canvas)
    offset = ((g.canvas[0] - inner.width) // 2, (g.canvas[1] - inner.height) // 2)
    if inner.mode in ("RGBA", "LA"):
        canvas.paste(inner.convert("RGB"), offset, inner.getchannel("A"))
    else:
        canvas.paste(inner if inner.mode == "RGB" else inner.convert("RGB"), offset)
    return canvas


def _blur_fill(inner, canvas: tuple[int, int]):
    """A blurred, darkened cover-crop of `inner` at canvas size — computed small, upscaled."""
    from PIL import Image, ImageFilter

    cw, ch = canvas
    k = min(1.0, BLUR_LONG_SIDE / max(cw, ch))
    small = (max(1, round(cw * k)), max(1, round(ch * k)))
    scale = max(cw / inner.width, ch / inner.height)
    bw, bh = cw / scale, ch / scale
    x0, y0 = (inner.width - bw) / 2, (inner.height - bh) / 2
    fill = inner.resize(small, Image.Resampling.BOX, box=(x0, y0, x0 + bw, y0 + bh), reducing_gap=2.0)
    fill = _output_mode(fill, "jpeg")  # opaque RGB, alpha flattened on white
    fill = fill.filter(ImageFilter.GaussianBlur(BLUR_RADIUS * max(small) / BLUR_LONG_SIDE))
    fill = fill.point(lambda v: round(v * BLUR_BRIGHTNESS))
    return fill.resize(canvas, Image.Resampling.BICUBIC)


def _resizable_mode(img):
    """A mode `resize` handles with a real filter (P and 1 only get NEAREST; 16-bit clips)."""
    mode = img.mode
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode == "PA":
        return img.convert("RGBA")
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I;16") or mode == "I":
        return img.convert("I").point(lambda v: v * (1 / 257)).convert("L")  # 16-bit → 8-bit, not clipped
    if mode == "F":
        return img.convert("L")
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return img
    return img.convert("RGBA" if "A" in mode else "RGB")


def _to_srgb(img, icc: bytes | None):
    """Convert to sRGB: CMYK → RGB, embedded non-sRGB ICC profiles through LittleCMS."""
    if icc:
        try:
            from PIL import ImageCms

            src_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            description = ImageCms.getProfileDescription(src_profile) or ""
            if img.mode == "CMYK" or "srgb" not in description.lower().replace(" ", ""):
                out_mode = {"CMYK": "RGB", "L": "RGB", "LA": "RGBA"}.get(img.mode, img.mode)
                srgb = ImageCms.createProfile("sRGB")
                converted = ImageCms.profileToProfile(
                    img, src_profile, srgb, outputMode=out_mode, renderingIntent=ImageCms.Intent.PERCEPTUAL
                )
                if converted is not None:
                    return converted
        except Exception as exc:  # noqa: BLE001 - a broken profile: fall back to a plain convert
            log.warning("ignoring unusable ICC profile (%s: %s)", exc.__class__.__name__, exc)
    if img.mode == "CMYK":
        return img.convert("RGB")
    return img


def _output_mode(img, fmt: str):
    """RGB for JPEG (alpha flattened on white); RGB or RGBA for WebP/PNG."""
    from PIL import Image

    has_alpha = img.mode in ("RGBA", "LA", "RGBa", "La")
    if fmt == "jpeg":
        if has_alpha:
            rgba = img.convert("RGBA")
            flat = Image.new("RGB", rgba.size, FLATTEN_BACKGROUND)
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return img if img.mode == "RGB" else img.convert("RGB")
    if has_alpha:
        return img if img.mode == "RGBA" else img.convert("RGBA")
    return img if img.mode == "RGB" else img.convert("RGB")


# --------------------------------------------------------------------------- animated GIF


def _is_animated(im) -> bool:
    try:
        return bool(getattr(im, "is_animated", False))
    except Exception as exc:  # noqa: BLE001 - a broken block after the first frame
        raise _corrupt(exc) from None


def _render_animation(im, profiles: list[ImageProfile]):
    """Animated GIF in, animated GIF out: every frame resized per profile, timing kept.

    Refused (MediaError, code BOMB) before any frame after the first is decoded when
    frames × width × height exceeds MAX_ANIMATION_PIXELS or there are more than
    MAX_ANIMATION_FRAMES frames.
    """
    width, height = im.size
    try:
        frames = im.n_frames  # walks the blocks, decodes nothing
    except Exception as exc:  # noqa: BLE001
        raise _corrupt(exc) from None
    if frames > MAX_ANIMATION_FRAMES or frames * width * height > MAX_ANIMATION_PIXELS:
        raise MediaError(
            f"animated GIF too large to keep animated: {frames} frames of {width}x{height} = "
            f"{frames * width * height / 1e6:.0f} MP decoded, over the {MAX_ANIMATION_PIXELS / 1e6:.0f} MP "
            f"/ {MAX_ANIMATION_FRAMES} frame budget",
            f"动图过大（{frames} 帧，{width}×{height} 像素），超过处理上限，请减少帧数或缩小尺寸后再上传",
            code=BOMB,
        )
    plans = [plan_geometry(width, height, p) for p in profiles]
    keys = [("gif", *_effective_key(g, p, "gif")) for g, p in zip(plans, profiles)]
    firsts: dict[tuple, int] = {}
    for i, key in enumerate(keys):
        firsts.setdefault(key, i)
    unique = list(firsts.values())
    out_frames: dict[tuple, list] = {keys[i]: [] for i in unique}
    durations: list[int] = []
    loop = im.info.get("loop")
    try:
        for n in range(frames):
            im.seek(n)
            im.load()
            frame = _resizable_mode(im)
            if frame is im:
                frame = im.copy()  # `im` changes on the next seek
            inners = _derive(frame, 1, (width, height), [plans[i] for i in unique], None)
            for i, inner in zip(unique, inners):
                out_frames[keys[i]].append(_gif_frame(_compose(inner, plans[i], profiles[i])))
            durations.append(int(im.info.get("duration", 0)))
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _corrupt(exc) from None
    pending = {keys[i]: _gif_encoder(out_frames[keys[i]], durations, loop, profiles[i]) for i in unique}
    return keys, pending


def _gif_encoder(frames: list, durations: list[int], loop, profile: ImageProfile) -> Callable[[], _Encoded]:
    return lambda: _Encoded(_save_gif(frames, durations, loop, profile), "image/gif", frames[0].width, frames[0].height)


def _gif_frame(img):
    """8-bit palette frame (what the GIF writer would make), transparency kept."""
    from PIL import Image

    if img.mode in ("L", "LA"):
        img = img.convert("RGBA" if img.mode == "LA" else "RGB")
    frame = img.convert("P", palette=Image.Palette.ADAPTIVE)
    frame.info = {}
    if frame.palette is not None and frame.palette.mode == "RGBA":
        for rgba, index in frame.palette.colors.items():
            if rgba[3] == 0:
                frame.info["transparency"] = index
                break
    return frame


def _save_gif(frames: list, durations: list[int], loop, profile: ImageProfile) -> bytes:
    buf = io.BytesIO()
    options = {"save_all": True, "append_images": frames[1:], "duration": durations}
    if loop is not None:
        options["loop"] = loop
    if any("transparency" in f.info for f in frames):
        options["disposal"] = 2  # whole frames: clear before drawing, or old pixels show through
    try:
        frames[0].save(buf, "GIF", **options)
    except Exception as exc:
        raise _encode_failed(profile, exc) from exc
    data = buf.getvalue()
    if profile.max_bytes is not None and len(data) > profile.max_bytes:
        raise MediaError(
            f"cannot meet max_bytes for {profile.name}: animated GIF is {len(data)} bytes > {profile.max_bytes}",
            f"动图转换后仍超过 {profile.max_bytes // 1024} KB 上限，请缩短动图或缩小尺寸",
            code=TOO_BIG_OUTPUT,
        )
    return data


# --------------------------------------------------------------------------- encoding


def _encode_failed(profile: ImageProfile, exc: Exception) -> MediaError:
    return MediaError(f"image encode failed ({profile.name}): {exc.__class__.__name__}: {exc}",
                      "图片转换失败，请换一张图片重试", code=ENCODE_FAILED)


def _save(img, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality, progressive=True, optimize=True)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality, method=WEBP_METHOD)
    else:
        img.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def _encode(img, profile: ImageProfile) -> bytes:
    """Encode, stepping quality down until `max_bytes` is met (error below MIN_QUALITY)."""
    quality = profile.quality
    while True:
        try:
            data = _save(img, profile.format, quality)
        except Exception as exc:
            raise _encode_failed(profile, exc) from exc
        if profile.max_bytes is None or len(data) <= profile.max_bytes:
            return data
        if profile.format == "png" or quality <= MIN_QUALITY:
            raise MediaError(
                f"cannot meet max_bytes for {profile.name}: {len(data)} bytes at quality {quality} "
                f"> {profile.max_bytes}",
                f"图片压缩后仍超过 {profile.max_bytes // 1024} KB 上限，请换一张细节较少或尺寸较小的图片",
                code=TOO_BIG_OUTPUT,
            )
        quality = max(MIN_QUALITY, quality - QUALITY_STEP)
