"""render_video / render_poster / faststart_ok on real encodes, checked by probing the output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from media import MediaError, errors, get_profile, make_rendition, probe
from media.ffmpeg import run_ffmpeg
from media.generate import make_demo_video
from media.probe import describe_streams
from media.profiles import VideoProfile
from media.video import POSTER_MIN_LUMA, faststart_ok, fit_box, render_poster, render_video


def ffmpeg(*args: str) -> None:
    run_ffmpeg(["-v", "error", "-y", *args], timeout=60)


def frame_at(path: Path, at: float) -> Image.Image:
    proc = run_ffmpeg(["-v", "error", "-ss", f"{at}", "-i", str(path), "-frames:v", "1",
                       "-f", "image2pipe", "-c:v", "png", "pipe:1"], timeout=30)
    import io

    return Image.open(io.BytesIO(proc.stdout)).convert("RGB")


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("video")
    s = {
        "landscape": d / "landscape.mp4",  # 1920×1080, 50 fps, with audio, moov at the end
        "portrait": d / "portrait.mp4",  # 1080×1920, silent
        "rotated": d / "rotated.mp4",  # stored 320×180 red|blue, display matrix: rotate 90° cw
    }
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=50:d=2", "-f", "lavfi", "-i", "sine=f=440:d=2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(s["landscape"]))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1080x1920:r=25:d=1.2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(s["portrait"]))
    plain = d / "plain.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=160x180:r=25:d=1", "-f", "lavfi", "-i", "color=c=blue:s=160x180:r=25:d=1",
           "-filter_complex", "[0][1]hstack", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(plain))
    ffmpeg("-display_rotation", "-90", "-i", str(plain), "-c", "copy", str(s["rotated"]))
    return s


def assert_web_mp4(path: Path, max_box: tuple[int, int]) -> None:
    streams = describe_streams(path)
    assert streams.video_codec == "h264" and streams.video_profile == "High", streams
    assert streams.pix_fmt == "yuv420p"
    assert streams.audio_codec == "aac"
    assert streams.fps is not None and streams.fps <= 30
    assert streams.width % 2 == 0 and streams.height % 2 == 0
    assert streams.width <= max_box[0] and streams.height <= max_box[1]
    assert streams.rotation == 0
    assert faststart_ok(path)


def test_landscape_1080p_to_web_video(sources, tmp_path):
    out = tmp_path / "web.mp4"
    info = render_video(sources["landscape"], get_profile("web_video"), out)
    assert (info.width, info.height) == (1280, 720)
    assert info.mime == "video/mp4" and info.bytes == out.stat().st_size
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert_web_mp4(out, (1280, 720))
    assert describe_streams(out).fps == pytest.approx(30.0)  # 50 fps source capped
    assert not faststart_ok(sources["landscape"]), "the source has moov at the end: the check must see it"


def test_portrait_silent_source_gets_portrait_box_and_aac_track(sources, tmp_path):
    assert probe(sources["portrait"]).has_audio is False
    out = tmp_path / "web.mp4"
    info = render_video(sources["portrait"], get_profile("web_video"), out)
    assert (info.width, info.height) == (720, 1280)
    assert_web_mp4(out, (720, 1280))
    result = probe(out)
    assert result.has_audio is True
    assert result.duration == pytest.approx(1.2, abs=0.1)  # the silent track did not lengthen it


def test_rotation_is_applied_not_passed_on(sources, tmp_path):
    assert probe(sources["rotated"]).rotation == 90
    out = tmp_path / "web.mp4"
    info = render_video(sources["rotated"], get_profile("web_video"), out)
    assert (info.width, info.height) == (180, 320)
    assert_web_mp4(out, (720, 1280))
    frame = frame_at(out, 0.5)
    assert frame.size == (180, 320)
    # stored left half red → displayed top half red (rotated 90° clockwise)
    top = ImageStat.Stat(frame.crop((0, 0, 180, 150))).mean
    bottom = ImageStat.Stat(frame.crop((0, 170, 180, 320))).mean
    assert top[0] > 150 and top[2] < 80, top
    assert bottom[2] > 150 and bottom[0] < 80, bottom


def test_max_duration_trims(sources, tmp_path):
    profile = VideoProfile("short", max_width=640, max_height=360, max_duration=1.0, preset="ultrafast")
    info = render_video(sources["landscape"], profile, tmp_path / "short.mp4")
    assert info.duration == pytest.approx(1.0, abs=0.1)
    assert (info.width, info.height) == (640, 360)


def test_poster_skips_black_opening(tmp_path):
    src = make_demo_video(tmp_path / "dark_start.mp4", seconds=3, size=(640, 360), black_lead=1.5, title="")
    assert ImageStat.Stat(frame_at(src, 1.0).convert("L")).mean[0] < 10, "1 s in must be black for this test"
    out = tmp_path / "poster.jpg"
    info = render_poster(src, get_profile("web_poster"), out)
    assert info.mime == "image/jpeg" and (info.width, info.height) == (640, 360)
    with Image.open(out) as im:
        assert im.format == "JPEG"
        assert ImageStat.Stat(im.convert("L")).mean[0] >= POSTER_MIN_LUMA


def test_poster_is_scaled_to_max_width(sources, tmp_path):
    info = make_rendition(sources["landscape"], "web_poster", tmp_path / "p.jpg")
    assert (info.width, info.height) == (1280, 720)
    assert probe(info.path).kind == "image"


def test_corrupt_video_raises_and_leaves_no_file(sources, tmp_path):
    src = tmp_path / "cut.mp4"
    data = sources["landscape"].read_bytes()
    src.write_bytes(data[: len(data) // 2])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for fn, profile in ((render_video, get_profile("web_video")), (render_poster, get_profile("web_poster"))):
        with pytest.raises(MediaError) as info:
            fn(src, profile, out_dir / "x")
        assert info.value.code == errors.CORRUPT
    assert os.listdir(out_dir) == []


def test_ffmpeg_failure_reason_has_stderr_tail_and_no_file(sources, tmp_path):
    profile = VideoProfile("bad", max_width=640, max_height=360, preset="no-such-preset")
    out = tmp_path / "bad.mp4"
    with pytest.raises(MediaError) as info:
        render_video(sources["portrait"], profile, out)
    assert info.value.code == errors.ENCODE_FAILED
    assert "encode bad: ffmpeg exited" in info.value.reason and "preset" in info.value.reason.lower()
    assert os.listdir(tmp_path) == []


def test_timeout_kills_ffmpeg_and_leaves_no_file(sources, tmp_path):
    out = tmp_path / "slow.mp4"
    with pytest.raises(MediaError) as info:
        render_video(sources["landscape"], get_profile("web_video"), out, timeout=0.05)
    assert info.value.code == errors.TIMEOUT
    assert os.listdir(tmp_path) == []


def test_image_is_not_a_video(tmp_path):
    src = tmp_path / "still.png"
    Image.new("RGB", (64, 64), "white").save(src)
    with pytest.raises(MediaError) as info:
        render_video(src, get_profile("web_video"), tmp_path / "o.mp4")
    assert info.value.code == errors.UNSUPPORTED


@pytest.mark.parametrize(
    "src, box, expected",
    [
        ((1920, 1080), (1280, 720), (1280, 720)),
        ((1080, 1920), (1280, 720), (720, 1280)),
        ((640, 480), (1280, 720), (640, 480)),  # never upscaled
        ((1921, 1081), (1280, 720), (1278, 720)),  # even, inside the box
        ((4000, 1000), (1280, 720), (1280, 320)),
        ((1001, 999), (1280, 720), (720, 720)),
        ((721, 1281), (1280, 720), (720, 1278)),  # portrait: transposed box, odd → even
    ],
)
def test_fit_box(src, box, expected):
    w, h = fit_box(*src, *box)
    assert (w, h) == expected
    assert w % 2 == 0 and h % 2 == 0


def test_faststart_ok_reads_boxes(tmp_path):
    p = tmp_path / "boxes.mp4"
    p.write_bytes(b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00" + b"\x00\x00\x00\x08mdat" + b"\x00\x00\x00\x08moov")
    assert faststart_ok(p) is False
    p.write_bytes(b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00" + b"\x00\x00\x00\x08moov" + b"\x00\x00\x00\x08mdat")
    assert faststart_ok(p) is True
