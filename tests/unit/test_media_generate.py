"""Demo media: a CJK font must be found; demo image and video must be valid (probed)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from media import probe
from media.ffmpeg import run_ffmpeg
from media.generate import find_cjk_font, load_font, make_demo_image, make_demo_video

TITLE = "黄山区民生实事之基础教育：城乡学校改造"


@pytest.fixture(scope="module")
def cjk_font() -> str:
    font = find_cjk_font()
    if font is None:
        pytest.fail(
            "No CJK font found: install Debian's fonts-noto-cjk "
            "(apt-get install -y fonts-noto-cjk) — demo media would have no Chinese titles"
        )
    return font


def frame(path: Path, at: float) -> Image.Image:
    proc = run_ffmpeg(["-v", "error", "-ss", f"{at}", "-i", str(path), "-frames:v", "1",
                       "-f", "image2pipe", "-c:v", "png", "pipe:1"], timeout=30)
    return Image.open(io.BytesIO(proc.stdout)).convert("RGB")


def test_font_draws_simplified_chinese(cjk_font):
    font = load_font(cjk_font, 48)
    assert font is not None
    family = font.getname()[0]
    if cjk_font.endswith(".ttc") and "Noto" in family:
        assert family.endswith("SC"), f"picked {family}, want the Simplified-Chinese face"
    glyph = font.getmask("民")
    assert glyph.getbbox() is not None
    missing = font.getmask("\U000f0000")  # private use: .notdef box
    assert bytes(glyph) != bytes(missing), "font has no glyph for 民 (draws tofu)"


def test_find_cjk_font_prefers_configured(cjk_font, tmp_path):
    custom = tmp_path / "my.ttf"
    custom.write_bytes(Path(cjk_font).read_bytes()[:16])
    assert find_cjk_font(str(custom)) == str(custom)
    assert find_cjk_font(str(tmp_path / "missing.ttf")) == cjk_font  # falls back to the search


def test_demo_image_is_valid_deterministic_and_has_the_title(cjk_font, tmp_path):
    a = make_demo_image(tmp_path / "a.jpg", TITLE, "每日推出一期 · 第3期", seed=2)
    b = make_demo_image(tmp_path / "b.jpg", TITLE, "每日推出一期 · 第3期", seed=2)
    info = probe(a)
    assert (info.kind, info.mime, info.width, info.height) == ("image", "image/jpeg", 1600, 1000)
    assert a.read_bytes() == b.read_bytes(), "same arguments must give the same bytes"
    other_seed = make_demo_image(tmp_path / "c.jpg", TITLE, seed=3)
    assert other_seed.read_bytes() != a.read_bytes()
    untitled = make_demo_image(tmp_path / "d.jpg", "", seed=2)
    with Image.open(a) as with_text, Image.open(untitled) as without:
        diff = ImageChops.difference(with_text.convert("L"), without.convert("L"))
        centre = diff.crop((200, 300, 1400, 700))
        assert ImageStat.Stat(centre).mean[0] > 8, "the title was not drawn"


def test_demo_image_without_font_is_still_valid(tmp_path, monkeypatch):
    monkeypatch.setattr("media.generate.find_cjk_font", lambda configured=None: None)
    p = make_demo_image(tmp_path / "plain.jpg", TITLE, size=(400, 250))
    assert probe(p).kind == "image"


def test_demo_video_default_is_fast_and_valid(cjk_font, tmp_path):
    started = time.perf_counter()
    p = make_demo_video(tmp_path / "demo.mp4", title=TITLE)
    elapsed = time.perf_counter() - started
    info = probe(p)
    assert (info.kind, info.video_codec, info.width, info.height) == ("video", "h264", 1280, 720)
    assert info.has_audio and info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(6.0, abs=0.1)
    assert elapsed < 10, f"demo video took {elapsed:.1f}s"


def test_demo_video_title_overlay_and_options(cjk_font, tmp_path):
    titled = make_demo_video(tmp_path / "t.mp4", seconds=1, size=(640, 360), title=TITLE, audio=False)
    plain = make_demo_video(tmp_path / "p.mp4", seconds=1, size=(640, 360), audio=False)
    assert probe(titled).has_audio is False
    diff = ImageChops.difference(frame(titled, 0.5).convert("L"), frame(plain, 0.5).convert("L"))
    assert ImageStat.Stat(diff.crop((120, 140, 520, 220))).mean[0] > 15, "title not visible"
