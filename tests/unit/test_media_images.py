"""render_image() / render_images(): every image profile on real encoded sources, outputs re-opened.

Fit modes (width, crop, pad, blur), animated GIFs, many renditions from one decode, metadata
stripping (EXIF/GPS/XMP/ICC), colour conversion to sRGB (wide-gamut ICC, CMYK), alpha
flattening, byte caps, and bad input (bomb, truncated, lying extension, empty).
"""

from __future__ import annotations

import io
import os
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw

from media import MediaError, errors, get_profile, images, make_rendition, probe
from media.images import (
    MIN_QUALITY,
    plan_geometry,
    render_image,
    render_images,
    target_geometry,
)
from media.profiles import PROFILES, ImageProfile

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


# =========================================================================== fits, animation,
# many renditions from one decode, metadata, colour, bad input

GREEN = (20, 200, 20)


def image_profiles() -> list[ImageProfile]:
    return [p for p in PROFILES.values() if isinstance(p, ImageProfile)]


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def test_new_profiles_and_their_documented_numbers():
    body, cover = get_profile("wechat_body"), get_profile("douyin_cover")
    assert (body.width, body.height, body.fit, body.format, body.max_bytes) == (1080, None, "width", "jpeg", 1_000_000)
    assert (cover.width, cover.height, cover.fit, cover.format) == (1080, 1920, "blur", "jpeg")
    import media.profiles

    doc = media.profiles.__doc__
    assert "wechat_body" in doc and "douyin_cover" in doc and doc.count("channels.md") >= 4
    # the older image profiles are untouched (their cache keys and outputs stay valid)
    assert [(p.name, p.width, p.height, p.fit, p.quality, p.max_bytes, p.version, p.animation) for p in image_profiles()][:8] == [
        ("web_480", 480, None, "width", 82, None, 1, "first_frame"),
        ("web_960", 960, None, "width", 82, None, 1, "first_frame"),
        ("web_1440", 1440, None, "width", 82, None, 1, "first_frame"),
        ("web_thumb", 640, 360, "crop", 82, None, 1, "first_frame"),
        ("feed_image", 1200, None, "width", 85, 1_000_000, 1, "first_frame"),
        ("weibo_image", 2048, None, "width", 85, 4_500_000, 1, "first_frame"),
        ("wechat_cover", 900, 383, "crop", 85, None, 1, "first_frame"),
        ("wechat_cover_square", 500, 500, "crop", 85, None, 1, "first_frame"),
    ]


@pytest.mark.parametrize("kwargs, message", [
    ({"fit": "pad"}, "needs a height"),
    ({"fit": "blur"}, "needs a height"),
    ({"fit": "stretch", "height": 10}, "fit must be one of"),
    ({"fit": "pad", "height": 10, "pad_color": (0, 0, 256)}, "pad_color"),
    ({"fit": "pad", "height": 10, "pad_color": (0, 0)}, "pad_color"),
    ({"animation": "loop"}, "animation must be one of"),
])
def test_image_profile_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageProfile("bad", width=10, **kwargs)


@pytest.mark.parametrize("src_size, box, canvas, inner", [
    ((1600, 900), (1080, 1920), (1080, 1920), (1080, 608)),  # landscape into a 9:16 box: bands above/below
    ((900, 1600), (1000, 1000), (1000, 1000), (562, 1000)),  # portrait into a square: bands left/right
    ((2000, 1000), (800, 400), (800, 400), (800, 400)),  # same aspect: nothing to fill
    ((300, 200), (1080, 1920), (300, 533), (300, 200)),  # fits inside already: not upscaled
])
@pytest.mark.parametrize("fit", ["pad", "blur"])
def test_pad_and_blur_geometry(src_size, box, canvas, inner, fit):
    g = plan_geometry(*src_size, ImageProfile("g", width=box[0], height=box[1], fit=fit))
    assert (g.canvas, g.inner) == (canvas, inner)
    assert g.box == (0.0, 0.0, float(src_size[0]), float(src_size[1]))


@pytest.mark.parametrize("src_size, box, bands", [
    ((1600, 900), (540, 960), "top-bottom"),
    ((900, 1600), (600, 600), "left-right"),
])
def test_pad_fills_exactly_with_pad_color(tmp_path, src_size, box, bands):
    src = tmp_path / "src.png"
    with_marker(photo(*src_size)).save(src)
    pad = (10, 200, 30)
    profile = ImageProfile("pad", width=box[0], height=box[1], fit="pad", pad_color=pad, format="png")
    info = render_image(src, profile, tmp_path / "pad.png")
    assert (info.width, info.height) == box
    px = pixels(tmp_path / "pad.png")
    g = plan_geometry(*src_size, profile)
    if bands == "top-bottom":
        edge = (g.canvas[1] - g.inner[1]) // 2
        fill = np.concatenate([px[: edge - 1], px[-(edge - 1):]])
        picture = px[edge + 2 : -edge - 2]
    else:
        edge = (g.canvas[0] - g.inner[0]) // 2
        fill = np.concatenate([px[:, : edge - 1], px[:, -(edge - 1):]], axis=1)
        picture = px[:, edge + 2 : -edge - 2]
    assert edge > 10
    assert (fill == np.array(pad)).all()  # PNG: exactly the pad colour
    assert picture.std() > 20  # the photo, not padding
    # the picture is centred, markers intact (red top-left of the picture, blue bottom-right)
    assert near(picture[3, 3], RED) and near(picture[-3, -3], BLUE)


def test_blur_fill_is_blurred_darkened_and_not_uniform(tmp_path):
    src = tmp_path / "landscape.jpg"
    with_marker(photo(1600, 900)).save(src, quality=92)
    info = render_image(src, get_profile("douyin_cover"), tmp_path / "cover.jpg")
    assert (info.width, info.height) == (1080, 1920) and info.mime == "image/jpeg"
    px = pixels(tmp_path / "cover.jpg")
    inner_h = round(900 * 1080 / 1600)
    top = (1920 - inner_h) // 2
    fill = px[: top - 4]
    picture = px[top + 4 : top + inner_h - 4]
    assert fill.std() > 8, "blurred fill must not be a flat colour"
    # the fill is the picture's centre (a 9:16 cover-crop of it) scaled up and darkened to
    # BLUR_BRIGHTNESS: its top band shows the top of that centre crop
    crop_w = round(inner_h * 1080 / 1920)
    shown = px[top : top + inner_h, (1080 - crop_w) // 2 : (1080 + crop_w) // 2]
    centre = shown[: round(len(fill) * inner_h / 1920)]
    assert fill.mean() == pytest.approx(centre.mean() * images.BLUR_BRIGHTNESS, rel=0.08), (fill.mean(), centre.mean())
    assert fill.mean() < 0.8 * centre.mean(), "fill is darkened"
    # blurred: neighbouring pixels of the fill differ far less than the noisy photo's do
    fill_step, picture_step = np.abs(np.diff(fill, axis=1)).mean(), np.abs(np.diff(picture, axis=1)).mean()
    assert fill_step < 1.0 and fill_step < picture_step / 3, (fill_step, picture_step)
    assert near(picture[3, 3], RED) and near(picture[-3, -3], BLUE)


def test_blur_fill_is_made_small(tmp_path, monkeypatch):
    """The Gaussian blur never runs at output size: it is computed ≤ BLUR_LONG_SIDE px."""
    from PIL import ImageFilter

    sizes = []
    original = Image.Image.filter

    def spy(self, f):
        if isinstance(f, ImageFilter.GaussianBlur):
            sizes.append(self.size)
        return original(self, f)

    monkeypatch.setattr(Image.Image, "filter", spy)
    src = tmp_path / "l.jpg"
    photo(1600, 900).save(src)
    render_image(src, get_profile("douyin_cover"), tmp_path / "c.jpg")
    assert sizes and max(max(s) for s in sizes) <= images.BLUR_LONG_SIDE


# --------------------------------------------------------------------------- animated GIF


def animated_gif(path: Path, colours=(RED, GREEN, BLUE, WHITE), durations=(100, 200, 300, 400), size=(120, 80), loop=0):
    frames = []
    for c in colours:
        f = Image.new("RGB", size, c)
        ImageDraw.Draw(f).rectangle((0, 0, size[0] // 4, size[1] // 4), fill=(0, 0, 0))
        frames.append(f)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=list(durations), loop=loop)
    return path


@pytest.mark.parametrize("profile, size", [
    (ImageProfile("gif_w", width=60, animation="keep"), (60, 40)),
    (ImageProfile("gif_crop", width=40, height=40, fit="crop", animation="keep", format="webp"), (40, 40)),
    (ImageProfile("gif_pad", width=60, height=60, fit="pad", animation="keep"), (60, 60)),
])
def test_animated_gif_keep_stays_animated(tmp_path, profile, size):
    src = animated_gif(tmp_path / "anim.gif")
    info = render_image(src, profile, tmp_path / "out.gif")
    assert info.mime == "image/gif" and (info.width, info.height) == size  # GIF whatever `format` says
    with Image.open(tmp_path / "out.gif") as im:
        assert im.format == "GIF" and im.size == size and im.is_animated
        assert im.n_frames == 4 and im.info.get("loop") == 0
        durations, centres = [], []
        for n in range(im.n_frames):
            im.seek(n)
            durations.append(im.info["duration"])
            centres.append(im.convert("RGB").getpixel((size[0] // 2, size[1] // 2)))
        assert durations == [100, 200, 300, 400]
        assert [near(c, e, tol=30) for c, e in zip(centres, (RED, GREEN, BLUE, WHITE))] == [True] * 4
    assert b"NETSCAPE2.0" in (tmp_path / "out.gif").read_bytes()


def test_animated_gif_without_loop_plays_once_and_first_frame_mode(tmp_path):
    src = tmp_path / "once.gif"
    frames = [Image.new("RGB", (50, 50), c) for c in (RED, BLUE)]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=[70, 90])  # no loop extension
    keep, first = render_images(src, [
        (ImageProfile("k", width=50, animation="keep"), tmp_path / "k.gif"),
        (ImageProfile("f", width=50, animation="first_frame"), tmp_path / "f.jpg"),
    ])
    with Image.open(keep.path) as im:
        assert im.n_frames == 2 and "loop" not in im.info
    with Image.open(first.path) as im:
        assert im.format == "JPEG" and getattr(im, "n_frames", 1) == 1 and near(im.getpixel((25, 25)), RED, tol=20)
    assert first.mime == "image/jpeg"


def test_keep_on_a_still_image_uses_the_profile_format(tmp_path):
    src = tmp_path / "still.gif"
    Image.new("RGB", (80, 60), RED).save(src)
    info = render_image(src, ImageProfile("k", width=40, animation="keep"), tmp_path / "k.jpg")
    assert info.mime == "image/jpeg" and (info.width, info.height) == (40, 30)


def test_animated_gif_with_transparency_keeps_it(tmp_path):
    src = tmp_path / "t.gif"
    frames = []
    for c in (RED, BLUE):
        f = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
        ImageDraw.Draw(f).rectangle((0, 0, 19, 39), fill=(*c, 255))
        frames.append(f)
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0, disposal=2)
    render_image(src, ImageProfile("k", width=40, animation="keep"), tmp_path / "o.gif")
    with Image.open(tmp_path / "o.gif") as im:
        assert im.n_frames == 2
        for n, colour in enumerate((RED, BLUE)):
            im.seek(n)
            rgba = im.convert("RGBA")
            assert rgba.getpixel((30, 20))[3] == 0 and near(rgba.getpixel((10, 20)), colour, tol=30)


def test_animated_gif_over_its_byte_cap_is_refused(tmp_path):
    src = animated_gif(tmp_path / "anim.gif")
    with pytest.raises(MediaError) as err:
        render_image(src, ImageProfile("k", width=120, animation="keep", max_bytes=200), tmp_path / "o.gif")
    assert err.value.code == errors.TOO_BIG_OUTPUT and "动图" in err.value.message_zh
    assert not (tmp_path / "o.gif").exists()


def tiny_frames_gif(screen: tuple[int, int], frames: int) -> bytes:
    """A GIF with a screen of `screen` and `frames` 1×1 frames: small file, big decode."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00" + struct.pack("<H", 10) + b"\x00\x00"  # graphic control: 100 ms
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"  # 1×1 frame, LZW
    return bytes(out + b"\x3b")


@pytest.mark.parametrize("screen, frames, why", [
    ((400, 400), 500, "80 MP"),  # 500 × 160,000 px = 80 MP of frames > 64 MP
    ((10, 10), 1500, "1500 frames"),  # over the frame cap
])
def test_huge_animated_gif_is_refused_before_decoding(tmp_path, screen, frames, why):
    src = tmp_path / "huge.gif"
    src.write_bytes(tiny_frames_gif(screen, frames))
    out = tmp_path / "o.gif"
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(MediaError) as err:
            render_image(src, ImageProfile("k", width=200, animation="keep"), out)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    e = err.value
    assert e.code == errors.BOMB and "animated GIF too large" in e.reason and why.split()[1] in e.reason
    assert f"{frames} 帧" in e.message_zh and "动图" in e.message_zh
    assert elapsed < 2.0 and peak < 20_000_000 and not out.exists()
    # the same file is fine when only its first frame is wanted
    assert render_image(src, ImageProfile("f", width=200), tmp_path / "f.jpg").width == min(200, screen[0])


# --------------------------------------------------------------------------- many renditions, one decode


@pytest.fixture(scope="module")
def rotated_jpeg(tmp_path_factory) -> Path:
    """2400×1600 stored, EXIF orientation 6 (shown 1600×2400), with GPS."""
    p = tmp_path_factory.mktemp("multi") / "phone.jpg"
    with_marker(photo(2400, 1600, seed=3)).save(p, quality=90, exif=exif_with_gps(6))
    return p


def test_render_images_matches_render_image_and_decodes_once(rotated_jpeg, tmp_path, monkeypatch):
    import PIL.Image

    profiles = image_profiles()
    twin = ImageProfile("web_960_twin", width=960, quality=82)  # same effective params as web_960
    jobs = [(p, tmp_path / f"multi_{p.name}.{p.ext}") for p in [*profiles, twin]]
    singles = [render_image(rotated_jpeg, p, tmp_path / f"single_{p.name}.{p.ext}") for p, _ in jobs]

    opens, decodes, saves = [], [], []
    real_open, real_decode, real_save = PIL.Image.open, images._decode, images._save
    monkeypatch.setattr(PIL.Image, "open", lambda *a, **k: opens.append(a) or real_open(*a, **k))
    monkeypatch.setattr(images, "_decode", lambda *a, **k: decodes.append(a) or real_decode(*a, **k))
    monkeypatch.setattr(images, "_save", lambda *a, **k: saves.append(a) or real_save(*a, **k))
    multi = render_images(rotated_jpeg, jobs)

    assert len(opens) == 1 and len(decodes) == 1
    assert len(saves) == len(profiles)  # the twin is not encoded again
    assert [m.path for m in multi] == [str(out) for _, out in jobs]
    for m, s, (p, out) in zip(multi, singles, jobs):
        assert (m.width, m.height, m.mime) == (s.width, s.height, s.mime), p.name
        assert m.bytes == out.stat().st_size
        diff = np.abs(pixels(m.path) - pixels(s.path)).mean()
        assert diff < 3, (p.name, diff)  # derived from a bigger output: same picture
        assert_no_metadata(m.path)
    assert Path(multi[-1].path).read_bytes() == (tmp_path / "multi_web_960.jpg").read_bytes()
    # one job through render_images is exactly render_image
    one = render_images(rotated_jpeg, [(get_profile("web_thumb"), tmp_path / "one.jpg")])[0]
    assert Path(one.path).read_bytes() == (tmp_path / "single_web_thumb.jpg").read_bytes()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_stored_box_maps_display_regions_back_to_the_stored_image(orientation):
    stored = noise(7, 5, seed=orientation)
    op = getattr(Image.Transpose, images._TRANSPOSE[orientation]) if orientation != 1 else None
    shown = stored.transpose(op) if op is not None else stored
    box = (0, 0, 2, 3)  # off-centre on both axes, so a mirrored mapping cannot pass
    stored_region = stored.crop(tuple(int(v) for v in images._stored_box(box, orientation, stored.size)))
    expected = shown.crop(box)
    assert (stored_region.transpose(op) if op is not None else stored_region).tobytes() == expected.tobytes()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_render_images_orients_every_output(tmp_path, orientation):
    """The working image is resized as stored and transposed after: check the box mapping."""
    src = tmp_path / "o.jpg"
    with_marker(photo(900, 600, seed=orientation)).save(src, quality=92, exif=exif_with_gps(orientation))
    profiles = [ImageProfile("w", width=300), ImageProfile("c", width=200, height=200, fit="crop"),
                ImageProfile("p", width=250, height=100, fit="pad", format="png")]
    multi = render_images(src, [(p, tmp_path / f"m_{p.name}.{p.ext}") for p in profiles])
    for p, m in zip(profiles, multi):
        s = render_image(src, p, tmp_path / f"s_{p.name}.{p.ext}")
        assert (m.width, m.height) == (s.width, s.height)
        assert np.abs(pixels(m.path) - pixels(s.path)).mean() < 3, (orientation, p.name)


def test_identical_profiles_with_other_names_share_bytes(src_jpeg, tmp_path):
    a = ImageProfile("a", width=700, quality=80)
    b = ImageProfile("b", width=700, quality=80, version=7)
    c = ImageProfile("c", width=700, quality=81)
    ra, rb, rc = render_images(src_jpeg, [(a, tmp_path / "a.jpg"), (b, tmp_path / "b.jpg"), (c, tmp_path / "c.jpg")])
    assert (tmp_path / "a.jpg").read_bytes() == (tmp_path / "b.jpg").read_bytes() != (tmp_path / "c.jpg").read_bytes()
    assert ra.path != rb.path and (ra.width, ra.height) == (rc.width, rc.height) == (700, 467)


def test_render_images_all_or_nothing(tmp_path):
    src = tmp_path / "noisy.png"
    noise(800, 600).save(src)
    jobs = [(get_profile("web_480"), tmp_path / "ok.jpg"), (ImageProfile("tiny", width=800, max_bytes=10_000), tmp_path / "no.jpg")]
    with pytest.raises(MediaError) as err:
        render_images(src, jobs)
    assert err.value.code == errors.TOO_BIG_OUTPUT and "tiny" in err.value.reason
    assert sorted(os.listdir(tmp_path)) == ["noisy.png"]
    assert render_images(src, []) == []
    with pytest.raises(TypeError):
        render_images(src, [(get_profile("web_video"), tmp_path / "v.mp4")])


@pytest.mark.parametrize("name", ["feed_image", "wechat_body"])
def test_byte_caps_are_met_by_stepping_quality(tmp_path, name):
    src = tmp_path / "noisy.png"
    noise(1600, 2400).save(src)
    profile = get_profile(name)
    info = render_images(src, [(profile, tmp_path / "o.jpg")])[0]
    assert info.bytes <= profile.max_bytes < 1_048_576 and info.width == profile.width
    with Image.open(tmp_path / "o.jpg") as im:
        im.load()
        assert im.format == "JPEG"


# --------------------------------------------------------------------------- metadata and colour


@pytest.mark.parametrize("profile", [
    get_profile("web_480"),
    get_profile("douyin_cover"),
    ImageProfile("pad_png", width=300, height=300, fit="pad", format="png"),
    ImageProfile("webp", width=300, format="webp"),
], ids=lambda p: p.name)
def test_gps_exif_xmp_and_icc_are_stripped(tmp_path, profile):
    src = tmp_path / "gps.jpg"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo(800, 600).save(src, quality=90, exif=exif_with_gps(1), xmp=xmp, icc_profile=icc, comment=b"secret place")
    raw = src.read_bytes()
    with Image.open(src) as check:
        assert 0x8825 in check.getexif() and check.getexif().get_ifd(0x8825)  # a GPS IFD is really there
    assert b"PhoneMaker" in raw and b"adobe:ns:meta" in raw and b"secret place" in raw
    out = tmp_path / f"out.{profile.ext}"
    render_images(src, [(profile, out)])
    data = out.read_bytes()
    assert b"secret place" not in data and b"adobe:ns:meta" not in data and b"GPS" not in data
    assert_no_metadata(str(out))
    with Image.open(out) as im:
        assert not im.getexif().get_ifd(0x8825) and "xmp" not in im.info and "comment" not in im.info


D65 = (0.3127, 0.3290)
D50 = np.array([0.9642, 1.0, 0.8249])
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
SRGB_PRIMARIES = [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)]


def _xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _rgb_to_xyz(primaries) -> np.ndarray:
    p = np.stack([_xyz(*xy) for xy in primaries], axis=1)
    return p * np.linalg.solve(p, _xyz(*D65))


def matrix_icc(description: str, primaries, gamma: float) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma curves), like Adobe RGB (1998)."""
    cs, cd = BRADFORD @ _xyz(*D65), D50 @ BRADFORD.T
    m = np.linalg.inv(BRADFORD) @ np.diag(cd / cs) @ BRADFORD @ _rgb_to_xyz(primaries)  # adapted to D50

    def s15(v):
        return struct.pack(">i", round(v * 65536))

    def xyz_tag(v):
        return b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)

    curv = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    text = description.encode("ascii") + b"\0"
    tags = [(b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 78),
            (b"cprt", b"text\0\0\0\0test\0"), (b"wtpt", xyz_tag(D50)),
            (b"rXYZ", xyz_tag(m[:, 0])), (b"gXYZ", xyz_tag(m[:, 1])), (b"bXYZ", xyz_tag(m[:, 2])),
            (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv)]
    offset = 128 + 4 + 12 * len(tags)
    table = data = b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + b"".join(s15(c) for c in D50) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def expected_srgb(rgb, primaries, gamma: float) -> np.ndarray:
    """Reference: source RGB → linear → XYZ (D65) → linear sRGB → sRGB-encoded, 0..255."""
    linear = (np.array(rgb) / 255) ** (round(gamma * 256) / 256)
    s = np.clip(np.linalg.solve(_rgb_to_xyz(SRGB_PRIMARIES), _rgb_to_xyz(primaries) @ linear), 0, 1)
    return np.where(s <= 0.0031308, 12.92 * s, 1.055 * s ** (1 / 2.4) - 0.055) * 255


@pytest.mark.parametrize("description, primaries", [
    ("Adobe RGB (1998)", [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)]),
    ("Display P3 (gamma 2.2)", [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)]),
])
@pytest.mark.parametrize("source_format", ["PNG", "JPEG"])
def test_wide_gamut_icc_source_is_converted_to_srgb(tmp_path, description, primaries, source_format):
    colour = (200, 80, 60)
    want = expected_srgb(colour, primaries, 2.2)
    assert np.abs(want - colour).max() > 12, "the conversion must visibly move this colour"
    src = tmp_path / f"wide.{source_format.lower()}"
    Image.new("RGB", (400, 300), colour).save(src, source_format, icc_profile=matrix_icc(description, primaries, 2.2),
                                              **({"quality": 98, "subsampling": 0} if source_format == "JPEG" else {}))
    jobs = [(ImageProfile("png", width=200, format="png"), tmp_path / "o.png"), (get_profile("web_480"), tmp_path / "o.jpg")]
    render_images(src, jobs)
    for _, out in jobs:
        with Image.open(out) as im:
            assert "icc_profile" not in im.info
            got = np.array(im.convert("RGB").getpixel((100, 75)))
        tol = 2 if source_format == "PNG" and out.suffix == ".png" else 5
        assert np.abs(got - want).max() <= tol, (got, want.round(1))


def test_cmyk_jpeg_through_render_images(tmp_path):
    src = tmp_path / "print.jpg"
    cmyk = Image.new("CMYK", (600, 400), (0, 255, 255, 0))
    ImageDraw.Draw(cmyk).rectangle((300, 0, 600, 400), fill=(255, 255, 0, 0))
    cmyk.save(src, quality=95)
    outs = render_images(src, [(get_profile("web_480"), tmp_path / "a.jpg"),
                               (ImageProfile("b", width=200, height=200, fit="blur", format="webp"), tmp_path / "b.webp")])
    for info in outs:
        with Image.open(info.path) as im:
            assert im.mode == "RGB"
    with Image.open(outs[0].path) as im:
        assert near(im.getpixel((60, 160)), (255, 0, 0), tol=50) and near(im.getpixel((420, 160)), (0, 0, 255), tol=50)


@pytest.mark.parametrize("fit", ["width", "pad", "blur"])
def test_png_alpha_to_jpeg_is_flattened_on_white(tmp_path, fit):
    src = tmp_path / "logo.png"
    rgba = Image.new("RGBA", (400, 400), (0, 0, 0, 0))  # transparent black
    ImageDraw.Draw(rgba).rectangle((0, 0, 199, 399), fill=(*RED, 255))
    rgba.save(src)
    out = tmp_path / "logo.jpg"
    render_images(src, [(ImageProfile("j", width=200, height=200 if fit != "width" else None, fit=fit), out)])
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.size == (200, 200)
        assert near(im.getpixel((150, 100)), WHITE, tol=8), im.getpixel((150, 100))
        assert near(im.getpixel((50, 100)), RED, tol=12)


# --------------------------------------------------------------------------- bad input


def png_bomb(path: Path, width: int = 50_000, height: int = 50_000) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))
    return path


def _bomb(tmp_path, src_jpeg):
    return png_bomb(tmp_path / "bomb.png")


def _truncated_jpeg(tmp_path, src_jpeg):
    p = tmp_path / "cut.jpg"
    p.write_bytes(src_jpeg.read_bytes()[:30_000])
    return p


def _text_named_jpg(tmp_path, src_jpeg):
    p = tmp_path / "notes.jpg"
    p.write_text("这不是图片 — just some notes\n" * 20, encoding="utf-8")
    return p


def _zero_bytes(tmp_path, src_jpeg):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    return p


def _missing(tmp_path, src_jpeg):
    return tmp_path / "missing.jpg"


@pytest.mark.parametrize("make, code, reason_has, zh_has", [
    (_bomb, errors.BOMB, "50000x50000", "50000×50000"),
    (_truncated_jpeg, errors.CORRUPT, "corrupt or truncated", "损坏"),
    (_text_named_jpg, errors.UNSUPPORTED, "content is text", "文本文件"),
    (_zero_bytes, errors.EMPTY, "empty file", "空的"),
    (_missing, errors.NOT_FOUND, "not found", "不存在"),
], ids=["bomb-png", "truncated-jpeg", "text-named-jpg", "zero-bytes", "missing"])
@pytest.mark.parametrize("api", ["render_image", "render_images"])
def test_bad_input_is_a_media_error_in_english_and_chinese(tmp_path, src_jpeg, make, code, reason_has, zh_has, api):
    src = make(tmp_path, src_jpeg)
    before = sorted(os.listdir(tmp_path))
    out = tmp_path / "out.jpg"
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(MediaError) as err:
            if api == "render_image":
                render_image(src, get_profile("web_480"), out)
            else:
                render_images(src, [(get_profile("web_480"), out), (get_profile("douyin_cover"), tmp_path / "c.jpg")])
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    e = err.value
    assert e.code == code and reason_has in e.reason and zh_has in e.message_zh
    assert e.reason.isascii() and any("\u4e00" <= ch <= "\u9fff" for ch in e.message_zh)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, no temp files
    if code == errors.BOMB:  # refused from the header: fast, and 50,000² pixels never allocated
        assert elapsed < 0.5 and peak < 5_000_000


def test_png_named_jpg_is_sniffed_and_rendered(tmp_path):
    src = tmp_path / "actually_png.jpg"
    with_marker(photo(600, 400)).save(src, "PNG")
    info = render_images(src, [(get_profile("web_480"), tmp_path / "o.jpg")])[0]
    assert (info.width, info.height) == (480, 320) and info.mime == "image/jpeg"
    with Image.open(tmp_path / "o.jpg") as im:
        assert im.format == "JPEG" and near(im.getpixel((5, 5)), RED)


def test_striped_resize_matches_one_resize():
    """A big resize cut into strips on two threads gives the pixels of one whole resize."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from PIL import Image

    from media.images import _Pools, _resize

    rng = np.random.default_rng(1)
    src = Image.fromarray(rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8))
    box = (10.5, 20.25, 1990.0, 1480.0)
    whole = np.asarray(_resize(src, (1300, 960), box, None), dtype=np.int16)
    with ThreadPoolExecutor(2) as derive, ThreadPoolExecutor(2) as strips:
        striped = np.asarray(_resize(src, (1300, 960), box, _Pools(derive, strips, 2)), dtype=np.int16)
    assert striped.shape == whole.shape
    assert np.abs(striped - whole).max() <= 1  # float rounding at most, no seam
