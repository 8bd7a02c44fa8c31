"""render_image(): every web profile on real encoded sources, then the output re-opened."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw

from media import MediaError, errors, get_profile, make_rendition, probe
from media.images import MIN_QUALITY, render_image, target_geometry
from media.profiles import ImageProfile

RED, BLUE, WHITE = (220, 20, 20), (20, 20, 220), (255, 255, 255)


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Photo-like content: smooth gradient plus mild noise (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 / width, ys * 255 / height, np.full_like(xs, 128)], axis=-1)
    noise = rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def noise(width: int, height: int, seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def with_marker(img: Image.Image) -> Image.Image:
    """Red block in the top-left quarter, blue block in the bottom-right quarter."""
    img = img.copy()
    w, h = img.size
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, w // 4, h // 4), fill=RED)
    d.rectangle((w * 3 // 4, h * 3 // 4, w, h), fill=BLUE)
    return img


def near(px, colour, tol=40) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(px[:3], colour))


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (30.0, 7.0, 12.0)
    gps[3] = "E"
    gps[4] = (118.0, 10.0, 5.0)
    return exif


def assert_no_metadata(path: str) -> None:
    raw = Path(path).read_bytes()
    assert b"Exif\x00\x00" not in raw and b"PhoneMaker" not in raw
    assert b"ICC_PROFILE" not in raw and b"http://ns.adobe.com/xap" not in raw
    with Image.open(path) as im:
        assert len(im.getexif()) == 0
        assert "icc_profile" not in im.info and "exif" not in im.info


@pytest.fixture(scope="module")
def src_jpeg(tmp_path_factory) -> Path:
    """3000×2000 camera-like JPEG with EXIF+GPS (orientation 1)."""
    p = tmp_path_factory.mktemp("img") / "camera.jpg"
    with_marker(photo(3000, 2000)).save(p, quality=92, exif=exif_with_gps(1))
    return p


@pytest.mark.parametrize("name, width", [("web_480", 480), ("web_960", 960), ("web_1440", 1440), ("feed_image", 1200)])
def test_width_profiles(src_jpeg, tmp_path, name, width):
    out = tmp_path / f"{name}.jpg"
    info = render_image(src_jpeg, get_profile(name), out)
    assert (info.width, info.height) == (width, round(width * 2000 / 3000))
    assert info.mime == "image/jpeg" and info.path == str(out) and info.bytes == out.stat().st_size
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert im.size == (info.width, info.height)
        assert im.info.get("progressive") or im.info.get("progression"), "JPEG must be progressive"
        assert near(im.getpixel((5, 5)), RED) and near(im.getpixel((im.width - 5, im.height - 5)), BLUE)
    assert_no_metadata(str(out))
    assert probe(out).mime == "image/jpeg"


def test_thumb_is_exact_centre_crop(src_jpeg, tmp_path):
    out = tmp_path / "thumb.jpg"
    info = render_image(src_jpeg, get_profile("web_thumb"), out)
    assert (info.width, info.height) == (640, 360)
    with Image.open(out) as im:
        assert im.size == (640, 360)
        # 3:2 source cropped to 16:9 keeps full width: the red block still touches the left edge
        # but loses its top rows (centre crop removes 1/12 of the height at the top).
        assert near(im.getpixel((5, 5)), RED)


def test_feed_image_meets_max_bytes(tmp_path):
    src = tmp_path / "noisy.png"
    noise(1600, 2400).save(src)
    profile = get_profile("feed_image")
    baseline = io.BytesIO()
    noise(1600, 2400).resize((1200, 1800)).save(baseline, "JPEG", quality=profile.quality)
    assert baseline.tell() > profile.max_bytes, "the test source must need a quality step-down"
    info = render_image(src, profile, tmp_path / "feed.jpg")
    assert info.bytes <= profile.max_bytes and info.width == 1200


def test_max_bytes_impossible_is_an_error_and_leaves_no_file(tmp_path):
    src = tmp_path / "noisy.png"
    noise(800, 600).save(src)
    profile = ImageProfile("tiny", width=800, max_bytes=10_000)
    out = tmp_path / "tiny.jpg"
    with pytest.raises(MediaError) as info:
        render_image(src, profile, out)
    assert info.value.code == errors.TOO_BIG_OUTPUT and f"quality {MIN_QUALITY}" in info.value.reason
    assert not out.exists() and os.listdir(tmp_path) == ["noisy.png"]


@pytest.mark.parametrize("size", [(600, 400), (2400, 1600)])  # small: no draft; large: draft path
def test_exif_orientation_6_is_applied_and_metadata_stripped(tmp_path, size):
    stored = with_marker(photo(*size))
    src = tmp_path / "phone.jpg"
    stored.save(src, quality=92, exif=exif_with_gps(6))
    assert b"PhoneMaker" in src.read_bytes()
    out = tmp_path / "out.jpg"
    info = render_image(src, get_profile("web_480"), out)
    w, h = size
    display_w = min(480, h)  # portrait now (h is the display width), never upscaled
    assert (info.width, info.height) == (display_w, round(display_w * w / h))
    with Image.open(out) as im:
        # orientation 6 = rotate 90° clockwise for display: stored top-left → top-right
        assert near(im.getpixel((im.width - 5, 5)), RED), im.getpixel((im.width - 5, 5))
        assert near(im.getpixel((5, im.height - 5)), BLUE), im.getpixel((5, im.height - 5))
    assert_no_metadata(str(out))


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    src = tmp_path / "print.jpg"
    cmyk = Image.new("CMYK", (400, 300), (0, 255, 255, 0))  # process red
    ImageDraw.Draw(cmyk).rectangle((200, 0, 400, 300), fill=(255, 255, 0, 0))  # process blue
    cmyk.save(src, quality=95)
    with Image.open(src) as check:
        assert check.mode == "CMYK"
    out = tmp_path / "out.jpg"
    render_image(src, get_profile("web_960"), out)
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.size == (400, 300)
        assert near(im.getpixel((50, 150)), (255, 0, 0), tol=50)
        assert near(im.getpixel((350, 150)), (0, 0, 255), tol=50)


def test_srgb_icc_profile_is_handled_and_dropped(tmp_path):
    src = tmp_path / "tagged.jpg"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (300, 200), (10, 120, 200)).save(src, icc_profile=icc, quality=95)
    out = tmp_path / "out.jpg"
    render_image(src, get_profile("web_480"), out)
    with Image.open(out) as im:
        assert "icc_profile" not in im.info
        assert near(im.getpixel((150, 100)), (10, 120, 200), tol=8)


def test_rgba_png_is_flattened_on_white_for_jpeg(tmp_path):
    src = tmp_path / "logo.png"
    rgba = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle((0, 0, 199, 199), fill=(*RED, 255))
    rgba.save(src)
    out = tmp_path / "logo.jpg"
    render_image(src, get_profile("web_960"), out)
    with Image.open(out) as im:
        assert im.mode == "RGB"
        assert near(im.getpixel((300, 100)), WHITE, tol=6)  # was transparent (black RGB underneath)
        assert near(im.getpixel((100, 100)), RED, tol=12)


def test_rgba_png_keeps_alpha_as_webp(tmp_path):
    src = tmp_path / "logo.png"
    rgba = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle((0, 0, 199, 199), fill=(*RED, 255))
    rgba.save(src)
    out = tmp_path / "logo.webp"
    info = render_image(src, ImageProfile("w", width=200, format="webp", quality=80), out)
    assert info.mime == "image/webp" and (info.width, info.height) == (200, 100)
    with Image.open(out) as im:
        assert im.format == "WEBP" and im.mode == "RGBA"
        assert im.getpixel((150, 50))[3] < 10 and im.getpixel((50, 50))[3] > 245


def test_png_profile(tmp_path):
    src = tmp_path / "a.jpg"
    photo(500, 300).save(src)
    out = tmp_path / "a.png"
    info = render_image(src, ImageProfile("p", width=250, format="png"), out)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (250, 150) and info.mime == "image/png"


def test_palette_png_with_transparency(tmp_path):
    src = tmp_path / "pal.png"
    img = Image.new("P", (100, 100), 0)
    img.putpalette([0, 0, 0, *RED] + [0] * 762)
    ImageDraw.Draw(img).rectangle((0, 0, 49, 99), fill=1)
    img.save(src, transparency=0)
    out = tmp_path / "pal.jpg"
    render_image(src, get_profile("web_480"), out)
    with Image.open(out) as im:
        assert near(im.getpixel((25, 50)), RED, tol=12) and near(im.getpixel((75, 50)), WHITE, tol=6)


def test_16_bit_grey_png_is_not_clipped(tmp_path):
    src = tmp_path / "grey16.png"
    Image.fromarray(np.full((100, 100), 32768, dtype=np.uint16)).save(src)
    with Image.open(src) as check:
        assert check.mode.startswith("I")
    out = tmp_path / "grey.jpg"
    render_image(src, get_profile("web_480"), out)
    with Image.open(out) as im:
        assert 120 <= im.getpixel((50, 50))[0] <= 136  # mid grey, not white


def test_animated_gif_gives_first_frame(tmp_path):
    src = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (120, 80), c) for c in (RED, (20, 200, 20), BLUE)]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = tmp_path / "anim.jpg"
    info = render_image(src, get_profile("web_480"), out)
    assert (info.width, info.height) == (120, 80)
    with Image.open(out) as im:
        assert im.format == "JPEG" and near(im.getpixel((60, 40)), RED, tol=20)


def test_never_upscales(tmp_path):
    src = tmp_path / "small.jpg"
    photo(300, 200).save(src)
    info = render_image(src, get_profile("web_1440"), tmp_path / "o.jpg")
    assert (info.width, info.height) == (300, 200)
    crop = render_image(src, get_profile("web_thumb"), tmp_path / "t.jpg")
    assert (crop.width, crop.height) == (300, 168)  # 16:9 of the source width, not 640×360
    with Image.open(tmp_path / "t.jpg") as im:
        assert im.size == (300, 168)


def test_target_geometry_crop_is_centred():
    (tw, th), box = target_geometry(1000, 1000, ImageProfile("c", 640, 360, fit="crop"))
    assert (tw, th) == (640, 360)
    assert box == pytest.approx((0.0, 218.75, 1000.0, 781.25))


def test_failed_write_leaves_no_file_and_keeps_the_old_one(src_jpeg, tmp_path, monkeypatch):
    out = tmp_path / "r.jpg"
    out.write_bytes(b"previous rendition")

    def broken_replace(a, b):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("media.fsutil.os.replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        render_image(src_jpeg, get_profile("web_480"), out)
    assert out.read_bytes() == b"previous rendition"
    assert sorted(os.listdir(tmp_path)) == ["r.jpg"]  # no temp file left behind


def test_corrupt_source_leaves_no_output(tmp_path, src_jpeg):
    src = tmp_path / "cut.jpg"
    src.write_bytes(src_jpeg.read_bytes()[:20_000])
    out = tmp_path / "o.jpg"
    with pytest.raises(MediaError) as info:
        render_image(src, get_profile("web_480"), out)
    assert info.value.code == errors.CORRUPT
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["cut.jpg"]


def test_make_rendition_dispatches_by_name(src_jpeg, tmp_path):
    info = make_rendition(src_jpeg, "web_480", tmp_path / "x.jpg")
    assert info.width == 480
    with pytest.raises(KeyError, match="web_480"):
        make_rendition(src_jpeg, "no_such_profile", tmp_path / "y.jpg")
