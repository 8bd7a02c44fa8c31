"""probe(): real files made in tmp dirs, and every kind of bad upload with the code it gets."""

from __future__ import annotations

import hashlib
import pickle
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import Image

from media import MediaError, MediaInfo, probe, sha256_file
from media import errors
from media.ffmpeg import run_ffmpeg
from media.probe import parse_ffmpeg_info, sniff_bytes


def ffmpeg(*args: str) -> None:
    run_ffmpeg(["-v", "error", "-y", *args], timeout=60)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, width: int = 50_000, height: int = 50_000) -> Path:
    """A tiny PNG whose header declares width×height (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    """Real sources, encoded once for the module."""
    d = tmp_path_factory.mktemp("probe")
    img = Image.radial_gradient("L").resize((320, 200)).convert("RGB")
    img.save(d / "photo.jpg", quality=90)
    img.save(d / "pic.png")
    img.save(d / "pic.webp", quality=80)
    frames = [Image.new("RGB", (64, 48), c) for c in ("red", "green", "blue")]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(d / "rotated.jpg", exif=exif)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-f", "lavfi", "-i", "sine=d=1",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-movflags", "+faststart", str(d / "clip.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(d / "plain.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=1", "-c:v", "libvpx-vp9", "-deadline", "realtime",
           "-cpu-used", "8", str(d / "clip.webm"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-f", "mov", str(d / "clip.mov"))
    ffmpeg("-display_rotation", "-90", "-i", str(d / "clip.mp4"), "-c", "copy", str(d / "rotated.mp4"))
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(d / "voice.m4a"))
    return d


def expect_error(path: Path, code: str, **kwargs) -> MediaError:
    with pytest.raises(MediaError) as info:
        probe(path, **kwargs)
    err = info.value
    assert err.code == code, f"{err.code}: {err.reason}"
    assert str(err) == err.reason
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.message_zh), err.message_zh
    return err


# --------------------------------------------------------------------------- good files


@pytest.mark.parametrize(
    "name, mime, size",
    [
        ("photo.jpg", "image/jpeg", (320, 200)),
        ("pic.png", "image/png", (320, 200)),
        ("pic.webp", "image/webp", (320, 200)),
        ("anim.gif", "image/gif", (64, 48)),
    ],
)
def test_probe_images(media_dir, name, mime, size):
    info = probe(media_dir / name)
    assert isinstance(info, MediaInfo)
    assert (info.kind, info.mime, (info.width, info.height)) == ("image", mime, size)
    assert info.bytes == (media_dir / name).stat().st_size
    assert info.duration is None and info.video_codec is None


def test_probe_jpeg_exif_orientation_gives_display_size(media_dir):
    info = probe(media_dir / "rotated.jpg")
    assert (info.width, info.height, info.rotation) == (200, 320, 90)


def test_probe_mp4(media_dir):
    info = probe(media_dir / "clip.mp4")
    assert (info.kind, info.mime, info.width, info.height) == ("video", "video/mp4", 320, 240)
    assert info.video_codec == "h264"
    assert info.has_audio is True
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(1.0, abs=0.1)
    assert info.rotation == 0


def test_probe_video_without_audio(media_dir):
    info = probe(media_dir / "plain.mp4")
    assert info.kind == "video" and info.has_audio is False


def test_probe_webm_and_mov(media_dir):
    webm = probe(media_dir / "clip.webm")
    assert (webm.kind, webm.mime, webm.video_codec, webm.width) == ("video", "video/webm", "vp9", 160)
    mov = probe(media_dir / "clip.mov")
    assert (mov.kind, mov.mime) == ("video", "video/quicktime")


def test_probe_rotated_video_reports_display_size(media_dir):
    info = probe(media_dir / "rotated.mp4")
    assert info.rotation == 90
    assert (info.width, info.height) == (240, 320)


def test_extension_that_lies_is_probed_as_what_it_is(media_dir, tmp_path):
    fake_video = tmp_path / "movie.mp4"
    fake_video.write_bytes((media_dir / "pic.png").read_bytes())
    info = probe(fake_video)
    assert (info.kind, info.mime) == ("image", "image/png")
    fake_photo = tmp_path / "photo.jpg"
    fake_photo.write_bytes((media_dir / "clip.mp4").read_bytes())
    assert probe(fake_photo).kind == "video"


# --------------------------------------------------------------------------- bad files


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("这不是图片，只是一段文字。\nnot an image\n", encoding="utf-8")
    err = expect_error(p, errors.UNSUPPORTED)
    assert "unsupported type" in err.reason and "text" in err.reason


def test_pdf_named_jpg(tmp_path):
    p = tmp_path / "scan.jpg"
    p.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    err = expect_error(p, errors.UNSUPPORTED)
    assert "PDF" in err.reason and "PDF" in err.message_zh


def test_heic_is_refused_with_advice(tmp_path):
    p = tmp_path / "IMG_0001.jpg"
    p.write_bytes(struct.pack(">I", 24) + b"ftypheic" + b"\x00" * 4 + b"mif1heic" + b"\x00" * 64)
    err = expect_error(p, errors.UNSUPPORTED)
    assert "HEIC" in err.message_zh and "JPEG" in err.message_zh


def test_zero_length_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    err = expect_error(p, errors.EMPTY)
    assert err.reason == "empty file (0 bytes)"


def test_missing_file(tmp_path):
    err = expect_error(tmp_path / "nope.jpg", errors.NOT_FOUND)
    assert "not found" in err.reason


def test_directory_is_not_a_file(tmp_path):
    expect_error(tmp_path, errors.NOT_FOUND)


def test_truncated_jpeg(media_dir, tmp_path):
    data = (media_dir / "photo.jpg").read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    err = expect_error(p, errors.CORRUPT)
    assert err.reason.startswith("corrupt or truncated image")


def test_truncated_png(media_dir, tmp_path):
    data = (media_dir / "pic.png").read_bytes()
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    expect_error(p, errors.CORRUPT)


def test_truncated_mp4_faststart(media_dir, tmp_path):
    """moov first: the first frame still decodes, the box sizes give it away."""
    data = (media_dir / "clip.mp4").read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) * 2 // 3])
    err = expect_error(p, errors.CORRUPT)
    assert err.reason.startswith("corrupt or truncated video")


def test_truncated_mp4_moov_at_end(media_dir, tmp_path):
    data = (media_dir / "plain.mp4").read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 2])
    expect_error(p, errors.CORRUPT)


def test_truncated_webm(media_dir, tmp_path):
    data = (media_dir / "clip.webm").read_bytes()
    p = tmp_path / "cut.webm"
    p.write_bytes(data[: len(data) // 2])
    expect_error(p, errors.CORRUPT)


def test_garbage_after_mp4_signature(tmp_path):
    p = tmp_path / "junk.mp4"
    p.write_bytes(struct.pack(">I", 16) + b"ftypisom" + b"\x00" * 4 + bytes(range(256)) * 8)
    expect_error(p, errors.CORRUPT)


def test_png_decompression_bomb_is_rejected_quickly_without_allocating(tmp_path):
    p = png_bomb(tmp_path / "bomb.png")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        err = expect_error(p, errors.BOMB)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "50000x50000" in err.reason and "decompression bomb" in err.reason
    assert "50000×50000" in err.message_zh and "4000 万像素" in err.message_zh
    assert elapsed < 0.5
    assert peak < 5_000_000


def test_jpeg_bomb_header(media_dir, tmp_path):
    """A JPEG whose SOF declares 60000×60000: caught from the header, before Pillow."""
    data = bytearray((media_dir / "photo.jpg").read_bytes())
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    p = tmp_path / "bomb.jpg"
    p.write_bytes(bytes(data))
    err = expect_error(p, errors.BOMB)
    assert "60000x60000" in err.reason


def test_max_pixels_argument(media_dir):
    expect_error(media_dir / "pic.png", errors.BOMB, max_pixels=320 * 200 - 1)
    assert probe(media_dir / "pic.png", max_pixels=320 * 200).kind == "image"


def test_max_bytes_argument(media_dir):
    size = (media_dir / "clip.mp4").stat().st_size
    err = expect_error(media_dir / "clip.mp4", errors.TOO_LARGE, max_bytes=size - 1)
    assert "too large" in err.reason
    assert probe(media_dir / "clip.mp4", max_bytes=size).kind == "video"


def test_audio_only_m4a(media_dir):
    err = expect_error(media_dir / "voice.m4a", errors.AUDIO_ONLY)
    assert err.reason == "audio-only file, no video stream"


def test_mp3_named_mp4_is_audio_only(tmp_path):
    p = tmp_path / "song.mp4"
    p.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 100)
    err = expect_error(p, errors.AUDIO_ONLY)
    assert err.reason == "audio-only file, no video stream"


# --------------------------------------------------------------------------- helpers


def test_sha256_file_streams(tmp_path):
    p = tmp_path / "blob.bin"
    data = bytes(range(256)) * 10_000  # > 1 chunk
    p.write_bytes(data)
    assert sha256_file(p) == hashlib.sha256(data).hexdigest()
    assert sha256_file(p, chunk_size=1000) == hashlib.sha256(data).hexdigest()


def test_media_error_shape_and_pickling():
    err = MediaError("empty file (0 bytes)", "文件是空的", code=errors.EMPTY)
    assert str(err) == "empty file (0 bytes)" and err.reason == str(err)
    back = pickle.loads(pickle.dumps(err))
    assert (back.reason, back.message_zh, back.code) == (err.reason, err.message_zh, err.code)
    plain = MediaError("x", "错误")
    assert plain.code == errors.INVALID


def test_sniff_never_uses_names_and_knows_signatures():
    assert sniff_bytes(b"\xff\xd8\xff\xe0").mime == "image/jpeg"
    assert sniff_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ").mime == "image/webp"
    assert sniff_bytes(b"RIFF\x00\x00\x00\x00AVI LIST").kind == "refused"
    assert sniff_bytes(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm").mime == "video/webm"
    assert sniff_bytes(b"\x00\x00\x00\x14ftypqt  ").mime == "video/quicktime"
    assert sniff_bytes(b"hello world").fmt == "text"
    assert sniff_bytes(b"BMW county fleet report").fmt == "text"
    assert sniff_bytes(b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00").fmt == "BMP image"
    assert sniff_bytes(b"\xff\xf1\x50\x80").fmt == "audio file"  # ADTS AAC
    assert sniff_bytes(b"\x00\x01\x02\x03\xfe\xff").fmt == "unknown binary"


FFMPEG_LEGACY = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'IMG_1234.MOV':
  Metadata:
    major_brand     : qt
    location        : +30.1234+118.1234/
  Duration: 00:01:02.53, start: 0.000000, bitrate: 17000 kb/s
  Stream #0:0[0x1](und): Video: hevc (Main 10) (hvc1 / 0x31637668), yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67), 1920x1080, 16000 kb/s, 29.97 fps, 29.97 tbr, 600 tbn (default)
    Metadata:
      rotate          : 90
      handler_name    : Core Media Video
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 256 kb/s (default)
  Stream #0:2[0x3](und): Video: mjpeg (Baseline), yuvj420p(pc), 320x240 [SAR 1:1 DAR 4:3], 90k tbr (attached pic)
"""

FFMPEG_COVER_ONLY = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'song.m4a':
  Duration: 00:03:00.00, start: 0.000000, bitrate: 256 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 256 kb/s (default)
  Stream #0:1[0x0]: Video: mjpeg (Baseline) (mp4v / 0x7634706D), yuvj420p(pc), 600x600 [SAR 1:1 DAR 1:1], 90k tbr, 90k tbn (attached pic)
"""

FFMPEG_ANAMORPHIC = """\
Input #0, mpegts, from 'tv.ts':
  Duration: N/A, start: 1.400000, bitrate: N/A
  Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), yuv420p(tv, bt709, top first), 1440x1080 [SAR 4:3 DAR 16:9], 25 fps, 50 tbr, 90k tbn
"""


def test_parse_ffmpeg_info_phone_hevc():
    s = parse_ffmpeg_info(FFMPEG_LEGACY)
    assert (s.video_codec, s.video_profile, s.pix_fmt) == ("hevc", "Main 10", "yuv420p10le")
    assert (s.width, s.height, s.fps, s.rotation) == (1920, 1080, pytest.approx(29.97), 90)
    assert s.duration == pytest.approx(62.53)
    assert s.has_audio and s.audio_codec == "aac"


def test_parse_ffmpeg_info_cover_art_is_not_video():
    s = parse_ffmpeg_info(FFMPEG_COVER_ONLY)
    assert s.has_video is False and s.has_audio is True


def test_parse_ffmpeg_info_anamorphic_no_duration():
    s = parse_ffmpeg_info(FFMPEG_ANAMORPHIC)
    assert s.duration is None
    assert (s.width, s.height, s.sar, s.fps) == (1440, 1080, (4, 3), 25.0)


@pytest.mark.parametrize(("stream", "transfer"), [
    ("hevc (Main 10) (hvc1 / 0x31637668), yuv420p10le(tv, bt2020nc/bt2020/smpte2084), 3840x2160", "smpte2084"),
    ("hevc (Main 10), yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67, progressive), 1920x1080", "arib-std-b67"),
    ("h264 (High), yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9]", "bt709"),
    ("h264 (High 10), yuv420p10le(tv, bt2020nc/unknown/unknown, progressive), 320x180", None),
    ("h264 (High), yuv420p(progressive), 320x180", None),
])
def test_colour_transfer_is_read_from_the_stream_line(stream, transfer):
    from media.probe import parse_ffmpeg_info

    text = f"Input #0, mov\n  Duration: 00:00:01.00, start: 0.0\n  Stream #0:0[0x1](und): Video: {stream}, 25 fps\n"
    assert parse_ffmpeg_info(text).color_transfer == transfer
