"""Still-image renditions with Pillow: `render_image(src, profile, out)`.

The pipeline, in the order that keeps it fast (see ../shared/DESIGN.md "Known pitfalls"):
1. `probe.open_image` — real type, byte cap, pixel cap from the header, before decoding.
2. JPEG only: read the EXIF orientation, work out the final geometry, and call `draft()`
   *before* `load()` so libjpeg decodes at 1/2, 1/4 or 1/8 scale (DCT scaling) — never below
   `DRAFT_GAP`× the pixels the output needs, so quality is not visibly affected.
3. load, transpose for the EXIF orientation (at the drafted size: cheap).
4. one `resize(size, box=crop_box, reducing_gap=3)` — crop and scale in a single pass.
   Measured here: draft + reducing_gap was 2.6× faster than `ImageOps.fit` for six
   renditions of a 24 MP JPEG (bench/bench_images.py prints the current ratio).
5. colour to sRGB on the *small* image: CMYK (with its ICC profile when present) and any
   embedded non-sRGB ICC profile through LittleCMS (ImageCms); alpha flattened on white for
   JPEG; then every bit of metadata dropped (EXIF, GPS, XMP, ICC, comments).
6. encode in memory (progressive JPEG / WebP method 2 / PNG); step quality down by
   `QUALITY_STEP` until `max_bytes` is met, refusing below `MIN_QUALITY` (40: below that
   JPEG blocking is visible on faces and text); write atomically.

Numbers: DRAFT_GAP = 2.0 is what Pillow's own `thumbnail()` uses before draft; RESIZE_GAP = 3
is the reducing_gap measured in DESIGN.md; WebP method 2 — method 4 costs 10× JPEG encode
time here for a few % of size.
"""

from __future__ import annotations

import io
import logging
import math
import os
from pathlib import Path

from media.errors import CORRUPT, ENCODE_FAILED, TOO_BIG_OUTPUT, MediaError
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


def render_image(
    src: str | Path, profile: ImageProfile, out: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> RenditionInfo:
    """Render `src` per `profile` into `out` (atomically); return what was written."""
    if not isinstance(profile, ImageProfile):
        raise TypeError(f"render_image needs an ImageProfile, got {type(profile).__name__}")
    out = Path(out)
    im, sniffed, _ = open_image(src, max_pixels=max_pixels)
    with im:
        try:
            img = _prepare(im, sniffed.fmt, profile)
        except MediaError:
            raise
        except Exception as exc:  # noqa: BLE001 - Pillow decode errors come in many types
            raise MediaError(
                f"corrupt or truncated image: {exc.__class__.__name__}: {exc}",
                "图片文件已损坏或不完整，无法读取，请重新上传",
                code=CORRUPT,
            ) from None
    data = _encode(img, profile)
    write_bytes_atomic(out, data)
    return RenditionInfo(
        path=os.path.abspath(out), mime=profile.mime, width=img.width, height=img.height, bytes=len(data)
    )


# --------------------------------------------------------------------------- geometry


def target_geometry(width: int, height: int, profile: ImageProfile) -> tuple[tuple[int, int], tuple[float, float, float, float]]:
    """Output size and source crop box for an (oriented) source of width×height.

    Never upscales: "width" keeps the source size when it is already narrow enough; "crop"
    on a source smaller than the box returns the largest centred crop of the box's aspect.
    """
    if profile.fit == "width":
        scale = min(1.0, profile.width / width)
        if profile.height is not None:
            scale = min(scale, profile.height / height)
        tw = max(1, round(width * scale))
        th = max(1, round(height * scale))
        return (tw, th), (0.0, 0.0, float(width), float(height))
    # cover-crop, centred
    assert profile.height is not None
    bw, bh = profile.width, profile.height
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
    return (tw, th), (x0, y0, x0 + cw, y0 + ch)


def _read_orientation(im) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not kill the rendition
        return 1
    return value if isinstance(value, int) and value in EXIF_ROTATION else 1


def _prepare(im, fmt: str, profile: ImageProfile):
    """Decode (drafted), orient, crop+resize, convert to sRGB, strip metadata."""
    from PIL import Image

    stored_w, stored_h = im.size
    icc = im.info.get("icc_profile")
    if fmt == "JPEG":
        orientation = _read_orientation(im)
        swap = EXIF_ROTATION[orientation] in (90, 270)
        ow, oh = (stored_h, stored_w) if swap else (stored_w, stored_h)
        (tw, th), box = target_geometry(ow, oh, profile)
        need = tw / (box[2] - box[0])  # output px per source px (≤ 1)
        req_w = math.ceil(ow * need * DRAFT_GAP)
        req_h = math.ceil(oh * need * DRAFT_GAP)
        if swap:
            req_w, req_h = req_h, req_w
        if req_w < stored_w and req_h < stored_h:
            im.draft(im.mode, (req_w, req_h))
    im.load()  # GIF / animated WebP: the first frame
    if fmt != "JPEG":
        orientation = _read_orientation(im)
        swap = EXIF_ROTATION[orientation] in (90, 270)
        ow, oh = (stored_h, stored_w) if swap else (stored_w, stored_h)
        (tw, th), box = target_geometry(ow, oh, profile)
    img = im
    if orientation != 1:
        img = img.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation]))
    img = _resizable_mode(img)
    sx, sy = img.width / ow, img.height / oh  # drafted size vs original oriented size
    box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    if (tw, th) != img.size or box != (0.0, 0.0, float(img.width), float(img.height)):
        img = img.resize((tw, th), Image.Resampling.LANCZOS, box=box, reducing_gap=RESIZE_GAP)
    img = _to_srgb(img, icc)
    img = _output_mode(img, profile.format)
    img.info = {}  # drop EXIF, GPS, XMP, ICC, comments, transparency, ...
    return img


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


# --------------------------------------------------------------------------- encoding


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
        except Exception as exc:  # noqa: BLE001
            raise MediaError(
                f"image encode failed ({profile.name}): {exc.__class__.__name__}: {exc}",
                "图片转换失败，请换一张图片重试",
                code=ENCODE_FAILED,
            ) from exc
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
