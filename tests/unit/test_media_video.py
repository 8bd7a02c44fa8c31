"""render_video / render_poster / faststart_ok on real encodes, checked by probing the output."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from media import MediaError, errors, get_profile, make_rendition, probe
from media.ffmpeg import run_ffmpeg
from media.generate import make_demo_video
from media.probe import describe_streams
from media.profiles import VideoProfile
from media.video import (
    POSTER_MIN_LUMA,
    faststart_ok,
    fit_box,
    render_poster,
    render_video,
    render_videos,
)


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


# --------------------------------------------------------------------------- clipping, reframing, labels
# Small sources (320×180, a few seconds) and test-only profiles (max 3 s, 1 s cut window,
# veryfast like the real ones: ultrafast streams would not be High profile) keep these fast.

VERTICAL = VideoProfile("t_vertical", max_width=180, max_height=320, fit="blur_fill")
VERTICAL_TWIN = VideoProfile("t_vertical_twin", max_width=180, max_height=320, fit="blur_fill")
CLIP = VideoProfile("t_clip", max_width=320, max_height=180, max_duration=3.0, cut_window=1.0)
SMALL = VideoProfile("t_small", max_width=320, max_height=180, label_seconds=1.0)


def gray(img: Image.Image) -> ImageStat.Stat:
    return ImageStat.Stat(img.convert("L"))


def diff(a: Image.Image, b: Image.Image) -> float:
    from PIL import ImageChops

    return ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    c = {name: d / f"{name}.mp4" for name in ("landscape", "quiet", "scene", "steady", "portrait916",
                                               "portrait34", "rotated", "tenbit")}
    # 320×180 with tone, 3 s
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=3", "-f", "lavfi", "-i", "sine=f=440:d=3",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(c["landscape"]))
    # 6 s, smooth motion (no scene change), tone silent 2.3–2.8 s
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=6",
           "-f", "lavfi", "-i", "sine=f=440:d=6,volume=enable='between(t,2.3,2.8)':volume=0",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(c["quiet"]))
    # 6 s, navy until 2.5 s then yellow, tone throughout
    ffmpeg("-f", "lavfi", "-i", "color=c=0x000080:s=320x180:r=25:d=2.5", "-f", "lavfi",
           "-i", "color=c=0xffff00:s=320x180:r=25:d=3.5", "-f", "lavfi", "-i", "sine=f=440:d=6",
           "-filter_complex", "[0][1]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(c["scene"]))
    # 6 s, smooth motion, tone throughout: neither a pause nor a scene change
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=6", "-f", "lavfi", "-i", "sine=f=440:d=6",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(c["steady"]))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=180x320:r=25:d=1.2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(c["portrait916"]))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=240x320:r=25:d=1.2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(c["portrait34"]))
    plain = d / "plain.mp4"  # stored 320×180: left half red, right half blue
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=160x180:r=25:d=1", "-f", "lavfi", "-i", "color=c=blue:s=160x180:r=25:d=1",
           "-filter_complex", "[0][1]hstack", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(plain))
    ffmpeg("-display_rotation", "-90", "-i", str(plain), "-c", "copy", str(c["rotated"]))  # displayed 180×320
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p10le", str(c["tenbit"]))
    return c


def test_blur_fill_landscape_becomes_exact_vertical_with_blurred_bands(clips, tmp_path):
    info = render_video(clips["landscape"], VERTICAL, tmp_path / "v.mp4")
    assert (info.width, info.height) == (180, 320)
    assert info.cut_at is None and info.cut_reason is None
    assert_web_mp4(tmp_path / "v.mp4", (180, 320))
    frame = frame_at(tmp_path / "v.mp4", 1.0)
    assert frame.size == (180, 320)
    # picture 180×100 centred at y=110; the bands above/below are a blurred, darkened copy
    top = gray(frame.crop((0, 0, 180, 100)))
    picture = gray(frame.crop((0, 115, 180, 205)))
    assert top.mean[0] > 15, "top band must not be black"
    assert top.stddev[0] > 8, "top band must not be uniform"
    assert top.mean[0] < picture.mean[0], "the fill is darkened"
    # blurred: neighbouring pixels differ far less in the band than in the sharp picture
    from PIL import ImageFilter

    edges = frame.convert("L").filter(ImageFilter.FIND_EDGES)
    assert ImageStat.Stat(edges.crop((2, 2, 178, 98))).mean[0] < ImageStat.Stat(edges.crop((2, 115, 178, 205))).mean[0] / 3


def test_blur_fill_portrait_916_passes_through(clips, tmp_path):
    out = tmp_path / "p.mp4"
    info = render_video(clips["portrait916"], VERTICAL, out)
    assert (info.width, info.height) == (180, 320)
    assert probe(out).has_audio, "a silent AAC track is added"
    assert diff(frame_at(out, 0.5), frame_at(clips["portrait916"], 0.5)) < 6, "same picture, no fill, no darkening"


def test_blur_fill_portrait_other_aspect_is_padded_with_the_fill(clips, tmp_path):
    out = tmp_path / "p34.mp4"
    info = render_video(clips["portrait34"], VERTICAL, out)
    assert (info.width, info.height) == (180, 320)
    frame = frame_at(out, 0.5)  # picture 180×240 at y=40
    band = gray(frame.crop((0, 0, 180, 36)))
    assert band.mean[0] > 15 and band.stddev[0] > 3


def test_blur_fill_honours_rotation(clips, tmp_path):
    assert probe(clips["rotated"]).rotation == 90
    out = tmp_path / "r.mp4"
    info = render_video(clips["rotated"], VERTICAL, out)
    assert (info.width, info.height) == (180, 320)
    assert describe_streams(out).rotation == 0
    frame = frame_at(out, 0.5)
    top = ImageStat.Stat(frame.crop((0, 0, 180, 150))).mean
    bottom = ImageStat.Stat(frame.crop((0, 170, 180, 320))).mean
    assert top[0] > 150 and top[2] < 80, top  # stored left (red) → displayed top
    assert bottom[2] > 150 and bottom[0] < 80, bottom


def test_cut_at_a_quiet_point(clips, tmp_path):
    out = tmp_path / "q.mp4"
    info = render_video(clips["quiet"], CLIP, out)
    assert info.cut_reason == "quiet"
    assert info.cut_at == pytest.approx(2.55, abs=0.3)  # inside the 2.3–2.8 s pause
    assert info.duration == pytest.approx(info.cut_at, abs=0.1)
    assert_web_mp4(out, (320, 180))


def test_cut_at_a_scene_change(clips, tmp_path):
    out = tmp_path / "s.mp4"
    info = render_video(clips["scene"], CLIP, out)
    assert info.cut_reason == "scene"
    assert info.cut_at == pytest.approx(2.5, abs=0.05)
    assert info.duration == pytest.approx(2.5, abs=0.1)
    late = ImageStat.Stat(frame_at(out, info.duration - 0.3)).mean  # fading, still the navy shot
    assert late[2] > late[0] and late[2] > late[1], late


def test_hard_limit_with_fades(clips, tmp_path):
    out = tmp_path / "h.mp4"
    info = render_video(clips["steady"], CLIP, out)
    assert (info.cut_reason, info.cut_at) == ("hard limit", 3.0)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    middle = gray(frame_at(out, 1.5)).mean[0]
    last = gray(frame_at(out, info.duration - 0.06)).mean[0]
    assert last < middle * 0.4, (last, middle)
    from media.cutpoint import analyse_window

    levels, _ = analyse_window(out, 0.0, info.duration, has_audio=True)

    def level_at(t: float) -> float:
        return min(levels, key=lambda item: abs(item[0] - t))[1]

    assert level_at(2.85) < level_at(1.5) - 10, "the audio fades out too"


def test_in_and_out_points_are_exact_and_not_searched(clips, tmp_path, monkeypatch):
    import media.cutpoint

    def no_search(*a, **k):
        raise AssertionError("in/out points must not trigger a cut search")

    monkeypatch.setattr(media.cutpoint, "find_cut", no_search)
    out = tmp_path / "io.mp4"
    info = render_video(clips["scene"], CLIP, out, start=2.0, end=3.2)
    assert info.duration == pytest.approx(1.2, abs=0.05)
    assert (info.cut_at, info.cut_reason) == (3.2, "editor")
    first = ImageStat.Stat(frame_at(out, 0.0)).mean
    later = ImageStat.Stat(frame_at(out, 0.7)).mean  # source 2.7 s: yellow
    assert first[2] > 100 and first[0] < 60, first
    assert later[0] > 150 and later[1] > 150 and later[2] < 90, later
    # an out point beyond the maximum is capped at the hard limit
    capped = render_video(clips["steady"], CLIP, tmp_path / "cap.mp4", start=0.5, end=5.5)
    assert (capped.cut_at, capped.cut_reason) == (3.5, "hard limit")
    assert capped.duration == pytest.approx(3.0, abs=0.1)


def test_bad_clip_range_is_refused(clips, tmp_path):
    for start, end in ((3.5, None), (2.0, 1.0), (-1.0, None)):
        with pytest.raises(MediaError) as info:
            render_video(clips["landscape"], CLIP, tmp_path / "x.mp4", start=start, end=end)
        assert info.value.code == errors.INVALID and info.value.message_zh
    assert os.listdir(tmp_path) == []


def test_label_layer_draws_chinese_not_tofu():
    from media.generate import find_cjk_font, load_font
    from media.video import label_layer

    layer = label_layer((400, 100), "群众满意度")
    bbox = layer.getbbox()
    assert bbox is not None and bbox[2] - bbox[0] > 100
    assert Image.new("RGBA", (400, 100)).getbbox() is None
    # distinct glyphs, not the same missing-glyph box for every character
    font = load_font(find_cjk_font(), 48)
    masks = [bytes(font.getmask(ch)) for ch in ("群", "众", "满", "\ue000")]
    assert len(set(masks[:3])) == 3
    assert masks[3] not in masks[:3]


def test_label_is_shown_at_the_start_then_gone(clips, tmp_path):
    plain = render_video(clips["landscape"], SMALL, tmp_path / "plain.mp4")
    labelled = render_video(clips["landscape"], SMALL, tmp_path / "label.mp4", label="群众满意度测评")
    assert (labelled.width, labelled.height) == (plain.width, plain.height)
    band = (0, 7, 320, 52)  # 25 % of the height, 4 % from the top
    early = diff(frame_at(tmp_path / "plain.mp4", 0.4).crop(band), frame_at(tmp_path / "label.mp4", 0.4).crop(band))
    late = diff(frame_at(tmp_path / "plain.mp4", 2.0).crop(band), frame_at(tmp_path / "label.mp4", 2.0).crop(band))
    assert early > 10 and late < 4 and late < early / 5, (early, late)


def test_ten_bit_source_comes_out_8bit_high(clips, tmp_path):
    assert describe_streams(clips["tenbit"]).pix_fmt == "yuv420p10le"
    out = tmp_path / "t.mp4"
    render_video(clips["tenbit"], VERTICAL, out)
    assert_web_mp4(out, (180, 320))  # h264 High, yuv420p, AAC (silent track added), faststart
    assert probe(out).has_audio


def test_render_videos_one_process_same_results(clips, tmp_path, monkeypatch):
    import media.video

    separate = [render_video(clips["landscape"], p, tmp_path / f"sep-{p.name}.mp4") for p in (VERTICAL, SMALL)]
    calls = []
    real = media.video.run_ffmpeg

    def counting(args, **kw):
        calls.append(args)
        return real(args, **kw)

    monkeypatch.setattr(media.video, "run_ffmpeg", counting)
    together = render_videos(clips["landscape"], [(VERTICAL, tmp_path / "a.mp4"), (SMALL, tmp_path / "b.mp4")])
    assert len(calls) == 1
    for one, many in zip(separate, together):
        assert (one.width, one.height) == (many.width, many.height)
        assert many.duration == pytest.approx(one.duration, abs=0.05)
        assert_web_mp4(Path(many.path), (max(one.width, 320), max(one.height, 320)))
    assert [Path(r.path).name for r in together] == ["a.mp4", "b.mp4"]


def test_render_videos_encodes_identical_profiles_once(clips, tmp_path, monkeypatch):
    import media.video

    calls = []
    real = media.video.run_ffmpeg
    monkeypatch.setattr(media.video, "run_ffmpeg", lambda args, **kw: calls.append(args) or real(args, **kw))
    a, b = render_videos(clips["landscape"], [(VERTICAL, tmp_path / "a.mp4"), (VERTICAL_TWIN, tmp_path / "b.mp4")])
    assert len(calls) == 1
    assert sum(Path(arg).name.startswith(".") for arg in calls[0]) == 1, "one output file written by ffmpeg"
    assert Path(a.path).read_bytes() == Path(b.path).read_bytes()
    assert (a.width, a.height, a.bytes) == (b.width, b.height, b.bytes)
    assert sorted(os.listdir(tmp_path)) == ["a.mp4", "b.mp4"]


def test_render_videos_different_ranges_run_separately(clips, tmp_path, monkeypatch):
    import media.video

    calls = []
    real = media.video.run_ffmpeg
    monkeypatch.setattr(media.video, "run_ffmpeg", lambda args, **kw: calls.append(args) or real(args, **kw))
    full, cut = render_videos(clips["steady"], [(SMALL, tmp_path / "full.mp4"), (CLIP, tmp_path / "cut.mp4")])
    assert len(calls) == 2
    assert full.duration == pytest.approx(6.0, abs=0.1) and full.cut_reason is None
    assert cut.duration == pytest.approx(3.0, abs=0.1) and cut.cut_reason == "hard limit"


def test_cover_crops_for_channels(clips, tmp_path):
    for name, size in (("channels_cover_3x4", (135, 180)), ("channels_cover_4x3", (240, 180))):
        info = render_poster(clips["landscape"], get_profile(name), tmp_path / f"{name}.jpg")
        assert (info.width, info.height) == size
        with Image.open(info.path) as im:
            assert im.size == size and gray(im).mean[0] >= POSTER_MIN_LUMA


def test_registered_platform_profiles():
    douyin, channels = get_profile("douyin_video"), get_profile("channels_video")
    assert (douyin.max_width, douyin.max_height, douyin.fit, douyin.max_duration) == (1080, 1920, "blur_fill", 60.0)
    assert douyin.max_duration - douyin.cut_window == 52.0
    assert (channels.max_width, channels.max_height, channels.fit, channels.max_duration) == (1080, 1920, "blur_fill", 60)
    assert get_profile("weibo_video").max_duration == 60.0
    web = get_profile("web_video")
    assert (web.fit, web.max_duration, web.version) == ("inside", None, 1)
    assert get_profile("channels_cover_3x4").aspect == (3, 4) and get_profile("channels_cover_4x3").aspect == (4, 3)
    with pytest.raises(ValueError):
        VideoProfile("bad_fit", max_width=10, max_height=10, fit="stretch")


@pytest.fixture(scope="module")
def bad_inputs(sources, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    audio = d / "audio.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=1", "-c:a", "aac", "-f", "mp4", str(audio))
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    no_frames = d / "no_frames.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1", "-frames:v", "0", "-c:v", "libx264", str(no_frames))
    cut = d / "truncated.mp4"
    data = sources["landscape"].read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    return {"audio": audio, "empty": empty, "no_frames": no_frames, "truncated": cut}


@pytest.mark.parametrize("kind, code", [("audio", errors.AUDIO_ONLY), ("empty", errors.EMPTY),
                                        ("no_frames", errors.CORRUPT), ("truncated", errors.CORRUPT)])
def test_bad_inputs_raise_media_error_with_chinese_message(bad_inputs, tmp_path, kind, code):
    for call in (lambda: render_video(bad_inputs[kind], VERTICAL, tmp_path / "o.mp4"),
                 lambda: render_videos(bad_inputs[kind], [(VERTICAL, tmp_path / "a.mp4"), (CLIP, tmp_path / "b.mp4")])):
        with pytest.raises(MediaError) as info:
            call()
        assert info.value.code == code, info.value
        assert info.value.reason.isascii() and info.value.message_zh
        assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.message_zh)
    assert os.listdir(tmp_path) == []


def test_progress_reports_climb_and_the_deadline_still_kills(tmp_path):
    seen: list[float] = []
    args = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3", "-c:v", "libx264", "-preset",
            "ultrafast", "-y", str(tmp_path / "p.mp4")]
    run_ffmpeg(args, timeout=120, progress=seen.append)
    assert seen and seen == sorted(seen) and 2.5 <= seen[-1] <= 3.2
    slow = ["-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=30", "-f", "null", "-"]
    started = time.monotonic()
    with pytest.raises(MediaError) as refused:
        run_ffmpeg(slow, timeout=1.0, progress=seen.append)
    assert refused.value.code == errors.TIMEOUT and time.monotonic() - started < 10


def test_hdr_pq_source_is_tone_mapped_to_bt709(tmp_path):
    """A 10-bit BT.2020 PQ (HDR10) phone clip: detected, tone-mapped, tagged BT.709 SDR.
    Without tone mapping the PQ code values would be shown as SDR: a flat, grey picture."""
    hdr = tmp_path / "hdr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p10le", "-x264-params", "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc",
           str(hdr))
    info = probe(hdr)
    assert info.hdr and info.color_transfer == "smpte2084"
    mapped, naive = tmp_path / "mapped.mp4", tmp_path / "naive.mp4"
    render_video(hdr, SMALL, mapped)
    assert_web_mp4(mapped, (320, 180))
    assert describe_streams(mapped).color_transfer == "bt709"
    ffmpeg("-i", str(hdr), "-vf", "format=yuv420p", "-c:v", "libx264", "-preset", "ultrafast", str(naive))
    tone_mapped, untouched = frame_at(mapped, 0.5), frame_at(naive, 0.5)
    assert gray(tone_mapped).mean[0] > 20  # not black
    assert diff(tone_mapped, untouched) > 8  # the curve really changed the picture


def test_8k_source_renders_vertical_within_the_memory_budget(tmp_path):
    """A 7680×4320 source (a new phone's 8K mode): rendered to 1080×1920 with the decoder's
    frames in flight capped, the ffmpeg child stays under the issue's 600 MB per rendition."""
    import subprocess
    import sys

    from media.video import decode_threads

    src = tmp_path / "8k.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=7680x4320:r=5:d=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", str(src))
    info = probe(src)
    assert (info.width, info.height) == (7680, 4320)
    assert decode_threads(info) == 2 or (os.cpu_count() or 1) == 1
    script = ("import json, resource, sys\n"
              "from media import get_profile\nfrom media.video import render_video\n"
              "r = render_video(sys.argv[1], get_profile('douyin_video'), sys.argv[2])\n"
              "print(json.dumps([r.width, r.height, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    done = subprocess.run([sys.executable, "-c", script, str(src), str(tmp_path / "v.mp4")], capture_output=True,
                          text=True, timeout=300, check=True)
    width, height, child_kb = __import__("json").loads(done.stdout)
    assert (width, height) == (1080, 1920)
    assert child_kb / 1024 < 600, f"ffmpeg peaked at {child_kb / 1024:.0f} MB"
    assert_web_mp4(tmp_path / "v.mp4", (1080, 1920))
