"""Synthetic demo media for `fanout demo` and the tests — made at run time, nothing binary
is committed.

* `find_cjk_font` — a font file that can draw Simplified Chinese. The project's setup
  installs Debian's `fonts-noto-cjk`; other common locations (WenQuanYi, Fedora/Arch Noto
  paths, macOS PingFang, Windows YaHei) and `fc-list :lang=zh` are tried next.
* `make_demo_image` — a poster-style JPEG: a diagonal gradient and translucent shapes in a
  palette chosen by `seed`, the title (and subtitle) centred in the CJK font. Deterministic
  for the same arguments (no clock, a seeded RNG, fixed JPEG settings).
* `make_demo_video` — an H.264 + AAC MP4 from ffmpeg lavfi sources (`gradients` + `sine`).
  The title is drawn by Pillow to a transparent PNG and overlaid, not with `drawtext`: the
  shipped ffmpeg has drawtext, but drawtext cannot pick a face inside a .ttc (index 0 of
  NotoSansCJK is the Japanese face; Simplified Chinese is "SC") and its option escaping
  of arbitrary titles (colons, quotes, %) is fragile. 6 s of 1280×720 encodes in ~2 s on
  2 cores (preset veryfast).

Palettes: muted pairs close to what county media centres use for their columns — 党政红,
生态绿, 教育蓝, 民生橙, 文体紫 — so demo pages look like the real thing.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from media.ffmpeg import ffpath, run_ffmpeg
from media.fsutil import atomic_path

log = logging.getLogger(__name__)

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian/Ubuntu fonts-noto-cjk
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",  # Fedora
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",  # macOS
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "C:/Windows/Fonts/msyh.ttc",  # Microsoft YaHei
)

PALETTES = (
    ((150, 20, 30), (214, 69, 46), (246, 178, 107)),   # 党政红
    ((14, 76, 62), (31, 140, 98), (168, 216, 150)),    # 生态绿
    ((20, 40, 100), (42, 82, 152), (110, 181, 220)),   # 教育蓝
    ((160, 70, 10), (230, 126, 34), (250, 215, 120)),  # 民生橙
    ((60, 30, 100), (120, 70, 160), (230, 160, 200)),  # 文体紫
    ((30, 45, 60), (52, 96, 120), (160, 200, 200)),    # 社会治安 slate
)

DEMO_JPEG_QUALITY = 90
FC_LIST_TIMEOUT = 10.0


def find_cjk_font(configured: str | None = None) -> str | None:
    """Path of a font able to draw Chinese, or None (callers then draw no text).

    `configured` (e.g. the FANOUT_CJK_FONT setting) wins when it exists; a configured path
    that does not exist is logged and the usual locations are searched.
    """
    if configured:
        if Path(configured).is_file():
            return str(configured)
        log.warning("configured CJK font %s does not exist; searching the usual places", configured)
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            proc = subprocess.run(
                [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=FC_LIST_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        files = sorted({line.split(":")[0].strip() for line in proc.stdout.splitlines() if line.strip()})
        # prefer sans faces with SC/CN in the name, then anything that exists
        files.sort(key=lambda f: (not any(k in f for k in ("SC", "CN", "Sans", "Hei")), f))
        for f in files:
            if Path(f).is_file():
                return f
    return None


def load_font(path: str | None, size: int):
    """A Pillow font at `size` px; in a .ttc the Simplified-Chinese face (family "... SC")."""
    from PIL import ImageFont

    if path is None:
        return None
    index = 0
    if path.lower().endswith(".ttc"):
        for i in range(16):
            try:
                family = ImageFont.truetype(path, 12, index=i).getname()[0] or ""
            except OSError:
                break
            if family.endswith(" SC") or " SC " in family or "CN" in family:
                index = i
                break
    try:
        return ImageFont.truetype(path, size, index=index)
    except OSError as exc:
        log.warning("cannot load font %s (%s); drawing no text", path, exc)
        return None


def _bold_sibling(path: str | None) -> str | None:
    if path and "Regular" in path:
        bold = path.replace("Regular", "Bold")
        if Path(bold).is_file():
            return bold
    return path


_NO_LINE_START = set("，。、；：？！）》」』】,.;:?!)")  # 避头: punctuation never starts a line


def _wrap(text: str, font, max_width: float) -> list[str]:
    """Greedy line wrap by character (Chinese has no spaces), keeping ASCII words whole."""
    tokens: list[str] = []
    word = ""
    for ch in text:
        if ch.isascii() and not ch.isspace():
            word += ch
            continue
        if word:
            tokens.append(word)
            word = ""
        tokens.append(ch)
    if word:
        tokens.append(word)
    lines, current = [], ""
    for tok in tokens:
        if current and tok not in _NO_LINE_START and font.getlength(current + tok) > max_width:
            lines.append(current.rstrip())
            current = tok.lstrip()
        else:
            current += tok
    if current.strip():
        lines.append(current.rstrip())
    return lines


def _text_layer(size: tuple[int, int], title: str, subtitle: str, font_path: str | None, *, panel: bool,
                title_px: float = 1 / 16):
    """A transparent RGBA layer with the title/subtitle centred (empty when no font).

    `title_px` is the title size as a fraction of the width.
    """
    from PIL import Image, ImageDraw, ImageFilter

    w, h = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    title_font = load_font(_bold_sibling(font_path), max(12, round(w * title_px)))
    sub_font = load_font(font_path, max(10, round(w / 36)))
    if title_font is None or not (title or subtitle):
        return layer
    max_text_w = w * 0.8
    title_lines = _wrap(title, title_font, max_text_w)[:3] if title else []
    sub_lines = _wrap(subtitle, sub_font, max_text_w)[:2] if subtitle and sub_font else []
    t_asc, t_desc = title_font.getmetrics()
    t_line = (t_asc + t_desc) * 1.15
    s_line = sum(sub_font.getmetrics()) * 1.3 if sub_font else 0
    gap = t_line * 0.5 if title_lines and sub_lines else 0
    block_h = len(title_lines) * t_line + gap + len(sub_lines) * s_line
    y = (h - block_h) / 2
    draw = ImageDraw.Draw(layer)
    if panel:
        pad = t_line * 0.45
        widest = max([title_font.getlength(ln) for ln in title_lines]
                     + [sub_font.getlength(ln) for ln in sub_lines])
        draw.rounded_rectangle(
            ((w - widest) / 2 - pad, y - pad, (w + widest) / 2 + pad, y + block_h + pad),
            radius=round(pad), fill=(0, 0, 0, 80),
        )
    shadow = Image.new("RGBA", size, (0, 0, 0, 0))
    sdraw = ImageDraw.Draw(shadow)
    offset = max(2, round(w / 400))
    for lines, font, line_h, fill in (
        (title_lines, title_font, t_line, (255, 255, 255, 255)),
        (sub_lines, sub_font, s_line, (255, 255, 255, 225)),
    ):
        for line in lines:
            x = (w - font.getlength(line)) / 2
            sdraw.text((x + offset, y + offset), line, font=font, fill=(0, 0, 0, 150))
            draw.text((x, y), line, font=font, fill=fill)
            y += line_h
        if lines is title_lines:
            y += gap
    shadow = shadow.filter(ImageFilter.GaussianBlur(offset))
    return Image.alpha_composite(shadow, layer)


def make_demo_image(path: str | Path, title: str, subtitle: str = "", size: tuple[int, int] = (1600, 1000),
                    seed: int = 0, *, font: str | None = None) -> Path:
    """Write a poster-style demo JPEG to `path` (atomically) and return the path."""
    import numpy as np
    from PIL import Image, ImageDraw

    w, h = size
    rng = random.Random(seed)
    c0, c1, c2 = (np.array(c, dtype=np.float32) for c in PALETTES[seed % len(PALETTES)])
    angle = rng.uniform(0.2, 1.2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xs * math.cos(angle) + ys * math.sin(angle)) / (w * math.cos(angle) + h * math.sin(angle))
    t = t[..., None]
    rgb = np.where(t < 0.6, c0 + (c1 - c0) * (t / 0.6), c1 + (c2 - c1) * ((t - 0.6) / 0.4))
    base = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).convert("RGBA")

    shapes = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shapes)
    for _ in range(7):
        r = rng.uniform(0.08, 0.35) * min(w, h)
        cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        tone = (255, 255, 255) if rng.random() < 0.6 else tuple(int(v) for v in c2)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*tone, rng.randint(18, 48)))
    band_y = rng.uniform(0.65, 0.85) * h
    draw.polygon([(0, band_y), (w, band_y - 0.18 * h), (w, h), (0, h)], fill=(255, 255, 255, 26))
    img = Image.alpha_composite(base, shapes)
    img = Image.alpha_composite(img, _text_layer(size, title, subtitle, find_cjk_font(font), panel=False))

    out = Path(path)
    with atomic_path(out) as tmp:
        img.convert("RGB").save(tmp, "JPEG", quality=DEMO_JPEG_QUALITY, optimize=True)
    return out


def make_demo_video(path: str | Path, seconds: float = 6.0, title: str = "", size: tuple[int, int] = (1280, 720),
                    fps: int = 25, *, audio: bool = True, black_lead: float = 0.0, seed: int = 0,
                    font: str | None = None) -> Path:
    """Write an H.264 + AAC MP4 demo clip to `path` (atomically) and return the path.

    Extras for tests and demos: `audio=False` makes a video-only file; `black_lead` seconds
    of black at the start (to exercise poster selection); `seed` picks the palette.
    """
    w, h = size
    palette = PALETTES[seed % len(PALETTES)]
    colours = ":".join(f"c{i}=0x{r:02x}{g:02x}{b:02x}" for i, (r, g, b) in enumerate(palette))
    video_src = f"gradients=s={w}x{h}:r={fps}:d={seconds:.3f}:{colours}:nb_colors=3:speed=0.03:seed={seed}"
    out = Path(path)
    with tempfile.TemporaryDirectory(prefix="fanout-demo-") as tmpdir:
        args = ["-v", "error", "-f", "lavfi", "-i", video_src]
        inputs = 1
        if audio:
            args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds:.3f}"]
            audio_index = inputs
            inputs += 1
        graph = "[0:v]format=yuv420p[bg]"
        last = "bg"
        if title:

            layer = _text_layer(size, title, "", find_cjk_font(font), panel=True, title_px=1 / 22)
            if layer.getbbox() is not None:  # something was drawn (a font was found)
                png = Path(tmpdir) / "title.png"
                layer.save(png)
                args += ["-i", ffpath(png)]
                graph += f";[{last}][{inputs}:v]overlay=0:0:format=auto[titled]"
                last = "titled"
                inputs += 1
        if black_lead > 0:
            graph += f";[{last}]drawbox=c=black:t=fill:enable='lt(t,{black_lead:.3f})'[dark]"
            last = "dark"
        graph += f";[{last}]format=yuv420p[v]"
        args += ["-filter_complex", graph, "-map", "[v]"]
        if audio:
            args += ["-map", f"{audio_index}:a", "-c:a", "aac", "-b:a", "96k"]
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                 "-t", f"{seconds:.3f}", "-movflags", "+faststart"]
        with atomic_path(out, suffix=".mp4") as tmp:
            run_ffmpeg([*args, "-f", "mp4", ffpath(tmp)], timeout=60 + 10 * seconds, what="demo video")
    return out
