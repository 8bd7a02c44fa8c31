"""Benchmark: six web renditions of a 24 MP JPEG — naive Pillow vs media.images.render_image.

Not a test. Both sides are measured in the same run on the same generated source (6000×4000,
photo-like: gradient + sensor-like noise, quality 92, like a camera JPEG) and write real
files. Naive = what one writes first: open, `ImageOps.exif_transpose`, full-size
`resize(LANCZOS)` or `ImageOps.fit` per rendition, save. Ours = `render_image` (header
checks, `draft()` before load, one `resize(box=..., reducing_gap=3)`, sRGB, stripped
metadata, atomic write). Best of `ROUNDS` runs each, to damp noise from other processes.

    .venv/bin/python bench/bench_images.py          # prints per-profile times and "ratio: X.XXx"
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from media.images import render_image  # noqa: E402
from media.profiles import get_profile  # noqa: E402

PROFILES = ("web_480", "web_960", "web_1440", "web_thumb", "feed_image", "wechat_cover")
SOURCE_SIZE = (6000, 4000)  # 24 MP
ROUNDS = 3


def make_source(path: Path) -> None:
    w, h = SOURCE_SIZE
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xs * (255 / w), ys * (255 / h), 128 + 60 * np.sin(xs / 150) * np.cos(ys / 170)], axis=-1)
    noisy = base + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=92)


def naive(src: Path, out_dir: Path) -> None:
    for name in PROFILES:
        p = get_profile(name)
        with Image.open(src) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            if p.fit == "crop":
                im = ImageOps.fit(im, (p.width, p.height), Image.Resampling.LANCZOS)
            else:
                w = min(p.width, im.width)
                im = im.resize((w, round(im.height * w / im.width)), Image.Resampling.LANCZOS)
            im.save(out_dir / f"naive_{name}.jpg", "JPEG", quality=p.quality, progressive=True, optimize=True)


def ours(src: Path, out_dir: Path) -> None:
    for name in PROFILES:
        render_image(src, get_profile(name), out_dir / f"ours_{name}.jpg")


def best_of(fn, *args) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        tmp_dir = Path(tmp)
        src = tmp_dir / "source_24mp.jpg"
        make_source(src)
        print(f"source: {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} JPEG, {src.stat().st_size / 1e6:.1f} MB; "
              f"renditions: {', '.join(PROFILES)}; best of {ROUNDS}")
        baseline = best_of(naive, src, tmp_dir)
        ours_time = best_of(ours, src, tmp_dir)
        print(f"naive (exif_transpose + full-size resize / ImageOps.fit): {baseline:.3f}s")
        print(f"ours  (render_image: draft + resize(box, reducing_gap=3)): {ours_time:.3f}s")
        print(f"ratio: {baseline / ours_time:.2f}x")


if __name__ == "__main__":
    main()
