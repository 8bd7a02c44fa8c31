"""What is this file, really? Content sniffing, limits and validation for uploaded media.

`probe(path)` decides the type from magic bytes (never from the extension), enforces the
size limits, and proves the file decodes: images through Pillow (`verify()`, then a real
`load()` — drafted to 1/8 scale for JPEG so it stays cheap), videos by parsing the stderr of
`ffmpeg -hide_banner -i path` (imageio-ffmpeg ships no ffprobe) and decoding one frame.

Limits and where they come from:
* `DEFAULT_MAX_PIXELS` = 40 MP: above any phone or prosumer camera (a 24 MP DSLR frame is
  6000×4000; 40 MP leaves room for panoramas) and well under Pillow's own bomb threshold
  (`Image.MAX_IMAGE_PIXELS` ≈ 89.5 MP warns, twice that raises). Decoded RGBA at 40 MP is
  160 MB — the most one media worker should hold. Checked from the file header *before*
  Pillow allocates anything; Pillow's warning is turned into an error as a backstop.
* `MAX_IMAGE_BYTES` = 200 MiB, `MAX_VIDEO_BYTES` = 2 GiB: a 40 MP PNG is < 200 MB; 2 GiB
  is about 20 minutes of 1080p phone video at 12 Mb/s, longer than any piece a county
  media center distributes (Douyin's direct upload limit is 15 minutes, channels.md).
* `PROBE_TIMEOUT` = 30 s for `ffmpeg -i` and the one-frame decode: both read only headers
  and the first GOP; taking longer means the file or the disk is broken.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

from media import isobmff
from media.errors import (
    AUDIO_ONLY,
    BOMB,
    CORRUPT,
    EMPTY,
    NOT_FOUND,
    TOO_LARGE,
    UNSUPPORTED,
    MediaError,
)

DEFAULT_MAX_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 200 * 1024 * 1024
MAX_VIDEO_BYTES = 2 * 1024 * 1024 * 1024
PROBE_TIMEOUT = 30.0
SNIFF_BYTES = 64

# Pillow format name -> MIME, for the accepted image types.
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}

# EXIF orientation -> (clockwise degrees applied for display, swaps width/height).
EXIF_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}


@dataclass(frozen=True)
class MediaInfo:
    """What a file is. width/height are *display* dimensions (after EXIF orientation or the
    video display matrix, and non-square pixels); `rotation` is the clockwise rotation in
    degrees a player applies to the stored pixels (0/90/180/270)."""

    kind: str  # "image" | "video"
    mime: str
    width: int
    height: int
    duration: float | None = None
    has_audio: bool = False
    video_codec: str | None = None
    fps: float | None = None
    rotation: int = 0
    bytes: int = 0
    color_transfer: str | None = None  # video: e.g. "bt709", "smpte2084" (HDR10 PQ), "arib-std-b67" (HLG)

    @property
    def hdr(self) -> bool:
        """An HDR video (PQ or HLG transfer): it needs tone mapping to look right in SDR."""
        return self.color_transfer in HDR_TRANSFERS


HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})


# --------------------------------------------------------------------------- sniffing

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image" | "video" | "refused"
    fmt: str  # Pillow format (images), container name (video) or a label (refused)
    mime: str


def sniff_bytes(head: bytes) -> Sniffed:
    """Classify a file from its first bytes. Never looks at a file name."""
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "JPEG", "image/jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "PNG", "image/png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "GIF", "image/gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "WEBP", "image/webp")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return Sniffed("refused", "HEIF/AVIF image", "image/heif")
        if brand == b"qt  ":
            return Sniffed("video", "mov", "video/quicktime")
        return Sniffed("video", "mp4", "video/mp4")
    if head[4:8] in _QT_ATOMS:
        return Sniffed("video", "mov", "video/quicktime")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head:
            return Sniffed("video", "webm", "video/webm")
        return Sniffed("video", "matroska", "video/x-matroska")
    if head.startswith(b"%PDF"):
        return Sniffed("refused", "PDF document", "application/pdf")
    if head.startswith(b"PK\x03\x04"):
        return Sniffed("refused", "ZIP/Office document", "application/zip")
    if head.startswith(b"BM") and head[6:10] == b"\x00\x00\x00\x00":
        return Sniffed("refused", "BMP image", "image/bmp")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("refused", "TIFF image", "image/tiff")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed("refused", "AVI video", "video/x-msvideo")
    if head[:4] == b"OggS":
        return Sniffed("refused", "Ogg media", "application/ogg")
    if (head[:4] == b"RIFF" and head[8:12] == b"WAVE") or head[:4] == b"fLaC" or head[:3] == b"ID3" \
            or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):  # MPEG audio / ADTS sync
        return Sniffed("refused", "audio file", "audio/*")
    if _looks_like_text(head):
        return Sniffed("refused", "text", "text/plain")
    return Sniffed("refused", "unknown binary", "application/octet-stream")


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # the sniff window may cut a multi-byte character: retry without the last 3 bytes
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return b"\x00" not in head


_REFUSED_ZH = {
    "HEIF/AVIF image": "HEIC/AVIF 格式图片暂不支持，请在手机或电脑上导出为 JPEG 后再上传",
    "PDF document": "这是 PDF 文档，不是图片或视频，请上传 JPEG/PNG/WebP/GIF 图片或 MP4/MOV/WebM 视频",
    "ZIP/Office document": "这是压缩包或 Office 文档，不是图片或视频",
    "BMP image": "BMP 格式图片不支持，请转换为 JPEG 或 PNG 后再上传",
    "TIFF image": "TIFF 格式图片不支持，请转换为 JPEG 或 PNG 后再上传",
    "AVI video": "AVI 格式视频不支持，请转换为 MP4 后再上传",
    "Ogg media": "Ogg 格式不支持，请转换为 MP4 后再上传",
    "audio file": "这是音频文件，没有画面，请上传视频或图片",
    "text": "这是文本文件，不是图片或视频（文件扩展名与内容不符）",
}


def _audio_only() -> MediaError:
    return MediaError(
        "audio-only file, no video stream",
        "这是纯音频文件，没有视频画面，请上传视频文件",
        code=AUDIO_ONLY,
    )


def _refuse(sniffed: Sniffed) -> MediaError:
    if sniffed.fmt == "audio file":
        return _audio_only()
    return MediaError(
        f"unsupported type: content is {sniffed.fmt}, not an accepted image (JPEG/PNG/WebP/GIF) "
        "or video (MP4/MOV/WebM)",
        _REFUSED_ZH.get(sniffed.fmt, "无法识别的文件类型，请上传 JPEG/PNG/WebP/GIF 图片或 MP4/MOV/WebM 视频"),
        code=UNSUPPORTED,
    )


def _stat_and_sniff(path: Path) -> tuple[int, Sniffed]:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise IsADirectoryError(str(path))
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise MediaError(
            f"file not found or unreadable: {path.name} ({exc.__class__.__name__})",
            "文件不存在或无法读取，请重新上传",
            code=NOT_FOUND,
        ) from exc
    if size == 0:
        raise MediaError("empty file (0 bytes)", "文件是空的（0 字节），请重新上传", code=EMPTY)
    return size, sniff_bytes(head)


def _check_bytes(size: int, kind: str, max_bytes: int | None) -> None:
    limit = max_bytes if max_bytes is not None else (MAX_IMAGE_BYTES if kind == "image" else MAX_VIDEO_BYTES)
    if size > limit:
        label = "图片" if kind == "image" else "视频"
        raise MediaError(
            f"file too large: {size} bytes exceeds the {kind} limit of {limit} bytes",
            f"{label}文件过大（{_mb(size)}），超过 {_mb(limit)} 上限",
            code=TOO_LARGE,
        )


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


# --------------------------------------------------------------------------- image header sizes


def header_size(path: str | Path, fmt: str) -> tuple[int, int] | None:
    """Pixel size declared in an image header, read without decoding (None if unparsable).

    Lets the pixel cap fire before Pillow allocates or even warns. Formats: PNG IHDR, GIF
    logical screen, WebP VP8/VP8L/VP8X, JPEG SOFn (walking the marker segments).
    """
    try:
        with open(path, "rb") as fh:
            if fmt == "PNG":
                data = fh.read(24)
                if data[12:16] == b"IHDR":
                    return struct.unpack(">II", data[16:24])
            elif fmt == "GIF":
                return struct.unpack("<HH", fh.read(10)[6:10])
            elif fmt == "WEBP":
                data = fh.read(30)
                chunk = data[12:16]
                if chunk == b"VP8X":
                    w = int.from_bytes(data[24:27], "little") + 1
                    h = int.from_bytes(data[27:30], "little") + 1
                    return w, h
                if chunk == b"VP8L":
                    bits = int.from_bytes(data[21:25], "little")
                    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
                if chunk == b"VP8 ":
                    w, h = struct.unpack("<HH", data[26:30])
                    return w & 0x3FFF, h & 0x3FFF
            elif fmt == "JPEG":
                return _jpeg_sof_size(fh)
    except (OSError, struct.error, IndexError):
        return None
    return None


def _jpeg_sof_size(fh) -> tuple[int, int] | None:
    fh.seek(2)
    for _ in range(1000):
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        while code == 0xFF:  # fill bytes
            code = fh.read(1)[0]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue
        length = struct.unpack(">H", fh.read(2))[0]
        if code in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">xHH", fh.read(5))
            return w, h
        if code == 0xDA:  # start of scan before any SOF: malformed
            return None
        fh.seek(length - 2, os.SEEK_CUR)
    return None


def _bomb(w: int, h: int, max_pixels: int) -> MediaError:
    return MediaError(
        f"decompression bomb: {w}x{h} = {w * h / 1e6:.1f} MP exceeds the {max_pixels / 1e6:.0f} MP limit",
        f"图片尺寸过大（{w}×{h} 像素），超过 {max_pixels / 1e4:.0f} 万像素上限",
        code=BOMB,
    )


def open_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int | None = None):
    """Open an accepted image safely; returns (PIL.Image.Image, Sniffed, file size).

    Checks existence, emptiness, byte cap, real type and declared pixel count before
    Pillow decodes anything; the caller must close the image (use it as a context manager).
    """
    from PIL import Image

    path = Path(path)
    size, sniffed = _stat_and_sniff(path)
    if sniffed.kind != "image":
        raise _refuse(sniffed) if sniffed.kind == "refused" else MediaError(
            f"unsupported type: expected an image, content is {sniffed.fmt} video",
            "需要图片，但上传的是视频文件",
            code=UNSUPPORTED,
        )
    _check_bytes(size, "image", max_bytes)
    dims = header_size(path, sniffed.fmt)
    if dims and dims[0] * dims[1] > max_pixels:
        raise _bomb(dims[0], dims[1], max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path, formats=[sniffed.fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(
            f"decompression bomb: {exc}", "图片尺寸过大，疑似恶意构造的图片，已拒绝", code=BOMB
        ) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on bad headers
        raise _corrupt_image(exc) from None
    if im.width * im.height > max_pixels:
        w, h = im.size
        im.close()
        raise _bomb(w, h, max_pixels)
    if im.width <= 0 or im.height <= 0:
        im.close()
        raise _corrupt_image(ValueError("zero image size"))
    return im, sniffed, size


def _corrupt_image(exc: BaseException) -> MediaError:
    return MediaError(
        f"corrupt or truncated image: {exc.__class__.__name__}: {exc}",
        "图片文件已损坏或不完整，无法读取，请重新上传",
        code=CORRUPT,
    )


def _probe_image(path: Path, max_pixels: int, max_bytes: int | None) -> MediaInfo:
    im, sniffed, size = open_image(path, max_pixels=max_pixels, max_bytes=max_bytes)
    with im:
        try:
            im.verify()  # PNG: chunk CRCs through IEND; others: structure
        except Exception as exc:  # noqa: BLE001
            raise _corrupt_image(exc) from None
    im, sniffed, size = open_image(path, max_pixels=max_pixels, max_bytes=max_bytes)
    with im:
        width, height = im.size
        try:
            if sniffed.fmt == "JPEG":
                im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))  # entropy data still read in full
            im.load()  # GIF/WebP: first frame only
            orientation = im.getexif().get(0x0112, 1)
        except Exception as exc:  # noqa: BLE001
            raise _corrupt_image(exc) from None
    rotation = EXIF_ROTATION.get(orientation if isinstance(orientation, int) else 1, 0)
    if rotation in (90, 270):
        width, height = height, width
    return MediaInfo(kind="image", mime=sniffed.mime, width=width, height=height, rotation=rotation, bytes=size)


# --------------------------------------------------------------------------- video


@dataclass(frozen=True)
class FfmpegStreams:
    """What `ffmpeg -i` printed, parsed (first video stream only)."""

    duration: float | None
    video_codec: str | None
    video_profile: str | None  # e.g. "High", "Main", "Constrained Baseline"
    pix_fmt: str | None
    color_transfer: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    sar: tuple[int, int] | None
    fps: float | None
    rotation: int
    has_audio: bool
    has_video: bool


_STREAM_RE = re.compile(r"^\s*Stream #\d+:\d+\S*: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_DIMS_RE = re.compile(r"(?<![0-9A-Za-z])([1-9]\d{0,4})x([1-9]\d{0,4})(?![0-9A-Za-z])")
_SAR_RE = re.compile(r"\[?SAR (\d+):(\d+) DAR")
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) fps")
_TBR_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) tbr")
_PROFILE_RE = re.compile(r"^\w+ \(([^)/]+)\)")
_PIX_FMT_RE = re.compile(r"^[^,]*, (\w+)")
_COLOR_RE = re.compile(r"^[^,]*, \w+\(([^)]*)\)")  # yuv420p10le(tv, bt2020nc/bt2020/smpte2084, progressive)
_ROT_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_ROTATE_TAG_RE = re.compile(r"^\s*rotate\s*:\s*(-?\d+)", re.IGNORECASE)


def parse_ffmpeg_info(text: str) -> FfmpegStreams:
    """Parse the stream summary `ffmpeg -hide_banner -i FILE` writes to stderr.

    Display-matrix rotation ("rotation of -90.00 degrees", counter-clockwise) is converted
    to the clockwise convention of the legacy `rotate` tag: -90 → 90.
    """
    m = _DURATION_RE.search(text)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None
    video: dict | None = None
    has_audio = False
    audio_codec = None
    in_video_block = False
    for line in text.splitlines():
        sm = _STREAM_RE.match(line)
        if sm:
            in_video_block = False
            kind, rest = sm.groups()
            if kind == "Audio":
                if not has_audio:
                    audio_codec = rest.split()[0].rstrip(",")
                has_audio = True
            elif kind == "Video" and video is None and "(attached pic)" not in rest:
                in_video_block = True
                video = {"codec": rest.split()[0].rstrip(","), "rotation": 0}
                pm = _PROFILE_RE.match(rest)
                if pm:
                    video["profile"] = pm.group(1)
                xm = _PIX_FMT_RE.match(rest)
                if xm:
                    video["pix_fmt"] = xm.group(1)
                cm = _COLOR_RE.match(rest)
                if cm:
                    video["color_transfer"] = _transfer(cm.group(1))
                dm = _DIMS_RE.search(rest)
                if dm:
                    video["width"], video["height"] = int(dm.group(1)), int(dm.group(2))
                sar = _SAR_RE.search(rest)
                if sar and int(sar.group(1)) > 0 and int(sar.group(2)) > 0:
                    video["sar"] = (int(sar.group(1)), int(sar.group(2)))
                fm = _FPS_RE.search(rest) or _TBR_RE.search(rest)
                if fm:
                    video["fps"] = float(fm.group(1)) * (1000 if fm.group(2) else 1)
            continue
        if line.lstrip().startswith(("Input #", "Output #", "Stream mapping")):
            in_video_block = False
        if in_video_block and video is not None:
            rm = _ROT_RE.search(line)
            if rm:
                video["rotation"] = round(-float(rm.group(1))) % 360
            else:
                tm = _ROTATE_TAG_RE.match(line)
                if tm:
                    video["rotation"] = int(tm.group(1)) % 360
    video = video or {}
    return FfmpegStreams(
        duration=duration,
        video_codec=video.get("codec"),
        video_profile=video.get("profile"),
        pix_fmt=video.get("pix_fmt"),
        color_transfer=video.get("color_transfer"),
        audio_codec=audio_codec,
        width=video.get("width"),
        height=video.get("height"),
        sar=video.get("sar"),
        fps=video.get("fps"),
        rotation=video.get("rotation", 0),
        has_audio=has_audio,
        has_video=bool(video),
    )


def _transfer(props: str) -> str | None:
    """The transfer characteristic in ffmpeg's "(range, matrix/primaries/transfer, ...)" note;
    one name alone ("bt709") stands for all three; "unknown" is None."""
    for item in (part.strip() for part in props.split(",")):
        names = item.split("/")
        if len(names) == 3:
            return None if names[2] == "unknown" else names[2]
        if item in ("bt709", "bt2020nc", "smpte170m", "bt470bg", "smpte240m"):
            return item
    return None


def describe_streams(path: str | Path) -> FfmpegStreams:
    """`ffmpeg -i` of a file, parsed — no validation (use `probe` for uploads)."""
    from media.ffmpeg import ffpath, run_ffmpeg

    proc = run_ffmpeg(["-i", ffpath(path)], timeout=PROBE_TIMEOUT, what="probe", check=False)
    return parse_ffmpeg_info(proc.stderr.decode("utf-8", "replace"))


def _corrupt_video(detail: str) -> MediaError:
    return MediaError(
        f"corrupt or truncated video: {detail}",
        "视频文件已损坏或不完整（可能上传中断），无法解码，请重新上传",
        code=CORRUPT,
    )


def decode_first_frame_gray(path: str | Path, *, side: int = 16, seek: float | None = None) -> bytes:
    """Decode one video frame scaled to side×side 8-bit gray; b"" when nothing decoded."""
    from media.ffmpeg import ffpath, run_ffmpeg

    args = ["-v", "error"]
    if seek is not None:
        args += ["-ss", f"{seek:.3f}"]
    args += ["-i", ffpath(path), "-map", "0:v:0", "-frames:v", "1", "-vf", f"scale={side}:{side}",
             "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"]
    proc = run_ffmpeg(args, timeout=PROBE_TIMEOUT, what="decode check", check=False)
    return proc.stdout if proc.returncode == 0 else b""


def _probe_video(path: Path, sniffed: Sniffed, size: int, max_bytes: int | None) -> MediaInfo:
    from media.ffmpeg import ffpath, run_ffmpeg, stderr_tail

    _check_bytes(size, "video", max_bytes)
    if sniffed.fmt in ("mp4", "mov") and isobmff.isobmff_truncated(path):
        raise _corrupt_video("a top-level MP4 box extends past the end of the file")
    if sniffed.fmt in ("webm", "matroska") and isobmff.ebml_truncated(path):
        raise _corrupt_video("the WebM/Matroska segment extends past the end of the file")
    proc = run_ffmpeg(["-i", ffpath(path)], timeout=PROBE_TIMEOUT, what="probe", check=False)
    text = proc.stderr.decode("utf-8", "replace")
    if "Input #0" not in text:
        raise _corrupt_video(stderr_tail(text, 3) or "ffmpeg cannot open it")
    info = parse_ffmpeg_info(text)
    if not info.has_video:
        if info.has_audio:
            raise _audio_only()
        raise _corrupt_video("no video stream found")
    if not info.width or not info.height:
        raise _corrupt_video("video stream has no frame size")
    side = 16
    if len(decode_first_frame_gray(path, side=side)) != side * side:
        raise _corrupt_video("the first video frame does not decode")
    width, height = info.width, info.height
    if info.sar and info.sar[0] != info.sar[1]:
        width = round(width * info.sar[0] / info.sar[1])
    if info.rotation in (90, 270):
        width, height = height, width
    return MediaInfo(
        kind="video",
        mime=sniffed.mime,
        width=width,
        height=height,
        duration=info.duration,
        has_audio=info.has_audio,
        video_codec=info.video_codec,
        fps=info.fps,
        rotation=info.rotation,
        bytes=size,
        color_transfer=info.color_transfer,
    )


# --------------------------------------------------------------------------- public


def probe(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int | None = None) -> MediaInfo:
    """Identify and validate an image or video by its content; raise MediaError if refused.

    `max_bytes` defaults per kind (MAX_IMAGE_BYTES / MAX_VIDEO_BYTES). A file whose
    extension lies is probed as what it really is (PNG bytes named .mp4 → kind "image");
    the caller decides whether that kind is acceptable where it was uploaded.
    """
    path = Path(path)
    size, sniffed = _stat_and_sniff(path)
    if sniffed.kind == "image":
        return _probe_image(path, max_pixels, max_bytes)
    if sniffed.kind == "video":
        return _probe_video(path, sniffed, size, max_bytes)
    raise _refuse(sniffed)


def sha256_file(path: str | Path, *, chunk_size: int = 1024 * 1024) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (constant memory for 2 GB videos)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
