"""Benchmark: every image rendition of one story from a 24 MP JPEG — naive Pillow vs render_images.

Not a test. Source: 6000×4000 JPEG, quality 90, EXIF orientation 6 (a phone held upright, so
the display image is 4000×6000), photo-like detail (gradients, soft shapes, fine texture and
sensor-like noise). It is generated once and kept in the temp directory (`--fresh` remakes it).

* ours  = `media.images.render_images(src, [(profile, out) for every ImageProfile in PROFILES])`:
  one decode (drafted for the largest output), one orientation, one sRGB pass, every output
  derived from the working image or a bigger output with reducing_gap, blurred fill computed
  small, identical outputs encoded once.
* naive = what one writes first, per output: `Image.open`, `ImageOps.exif_transpose`, then
  `ImageOps.fit(..., LANCZOS)` (crop), `thumbnail(..., LANCZOS)` (width), `ImageOps.pad`
  (pad) or fit + full-size `GaussianBlur` + `ImageOps.contain` (blur), and save with the same
  JPEG settings as ours (quality, progressive, optimize) so only the pipeline differs.

Times are the best of `--rounds` runs each, wall clock and CPU time of this process. Naive is
single-threaded; ours uses a thread per core (Pillow releases the GIL while it resamples and
encodes), so its wall ratio is the target and its CPU ratio shows the work saved. Peak memory of ours is the `ru_maxrss` of a child
process that imports the media package and runs `render_images` once (VmHWM: the whole
process, interpreter and Pillow included); the child's RSS before rendering is printed too.

    .venv/bin/python bench/bench_images.py            # prints times, "ratio ours/naive: 0.XX", peak RSS
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.profiles import PROFILES, ImageProfile

SOURCE_SIZE = (6000, 4000)  # 24 MP, stored landscape; EXIF orientation 6 makes it portrait
SOURCE_QUALITY = 90
SOURCE_PATH = Path(tempfile.gettempdir()) / "fanout-bench-24mp-o6-v1.jpg"
TARGET_RATIO = 0.25
TARGET_RSS_MB = 400


def image_profiles() -> list[ImageProfile]:
    return [p for p in PROFILES.values() if isinstance(p, ImageProfile)]


def make_source(path: Path) -> None:
    """Photo-like 24 MP JPEG with EXIF orientation 6, generated in horizontal bands."""
    import numpy as np
    from PIL import Image

    w, h = SOURCE_SIZE
    rng = np.random.default_rng(0)
    out = np.empty((h, w, 3), dtype=np.uint8)
    band = 500
    xs = np.arange(w, dtype=np.float32)[None, :]
    blobs = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(150, 900), rng.uniform(-90, 90, 3)) for _ in range(40)]
    for y0 in range(0, h, band):
        ys = np.arange(y0, min(h, y0 + band), dtype=np.float32)[:, None]
        r = 40 + 170 * xs / w + 0 * ys
        g = 60 + 140 * ys / h + 25 * np.sin(xs / 90.0) * np.cos(ys / 110.0)
        b = 128 + 60 * np.sin((xs + ys) / 400.0)
        img = np.stack([r, g, b], axis=-1)
        for cx, cy, rad, colour in blobs:  # soft shapes: the "subjects"
            d2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / (rad * rad)
            img += np.exp(-d2)[..., None] * colour.astype(np.float32)
        img += 18 * np.sin(xs / 3.1 + ys / 5.3)[..., None]  # fine texture (foliage, fabric)
        img += rng.normal(0, 7, img.shape).astype(np.float32)  # sensor noise
        out[y0 : y0 + band] = np.clip(img, 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "BenchCam"
    Image.fromarray(out).save(path, quality=SOURCE_QUALITY, exif=exif)


def naive(src: Path, out_dir: Path) -> None:
    from PIL import Image, ImageFilter, ImageOps

    lanczos = Image.Resampling.LANCZOS
    for p in image_profiles():
        with Image.open(src) as opened:
            im = ImageOps.exif_transpose(opened)  # loads; RGB already (the source is an RGB JPEG)
        if p.fit == "crop":
            im = ImageOps.fit(im, (p.width, p.height), lanczos)
        elif p.fit == "pad":
            im = ImageOps.pad(im, (p.width, p.height), lanczos, color=p.pad_color)
        elif p.fit == "blur":
            fill = ImageOps.fit(im, (p.width, p.height), lanczos).filter(ImageFilter.GaussianBlur(80))
            fill = fill.point(lambda v: round(v * 0.6))
            fg = ImageOps.contain(im, (p.width, p.height), lanczos)
            fill.paste(fg, ((p.width - fg.width) // 2, (p.height - fg.height) // 2))
            im = fill
        else:
            im.thumbnail((p.width, p.height or 10**6), lanczos)
        im.save(out_dir / f"naive_{p.name}.jpg", "JPEG", quality=p.quality, progressive=True, optimize=True)


def ours(src: Path, out_dir: Path) -> list:
    from media.images import render_images

    return render_images(src, [(p, out_dir / f"ours_{p.name}.{p.ext}") for p in image_profiles()])


def per_profile(src: Path, out_dir: Path) -> None:
    """For context: the previous way, one `render_image` (one decode) per profile."""
    from media.images import render_image

    for p in image_profiles():
        render_image(src, p, out_dir / f"single_{p.name}.{p.ext}")


def best_of(rounds: int, fn, *args) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds of this process) over `rounds` runs."""
    wall, cpu = [], []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn(*args)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return min(wall), min(cpu)


def peak_rss_mb() -> float:
    """Peak resident set of this process so far: VmHWM (Linux), else ru_maxrss.

    VmHWM belongs to the process's own address space; ru_maxrss of a child can start at the
    parent's size (Linux carries the pre-exec high-water mark over), which would count the
    parent's generated source image against us.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def child(src: str, out_dir: str) -> None:
    """Run ours once in this fresh process; print RSS before and the peak, in MB, as JSON."""
    from PIL import Image  # noqa: F401 - imports count as "before"

    import media.images  # noqa: F401

    before = peak_rss_mb()
    started = time.perf_counter()
    ours(Path(src), Path(out_dir))
    elapsed = time.perf_counter() - started
    peak = peak_rss_mb()
    print(json.dumps({"before_mb": before, "peak_mb": peak, "seconds": elapsed}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="regenerate the source JPEG")
    parser.add_argument("--child", nargs=2, metavar=("SRC", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.fresh or not SOURCE_PATH.exists():
        started = time.perf_counter()
        make_source(SOURCE_PATH)
        print(f"generated {SOURCE_PATH} in {time.perf_counter() - started:.1f}s")
    src = SOURCE_PATH
    profiles = image_profiles()
    print(f"source: {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} JPEG q{SOURCE_QUALITY}, EXIF orientation 6, "
          f"{src.stat().st_size / 1e6:.1f} MB; {len(profiles)} renditions: {', '.join(p.name for p in profiles)}; "
          f"best of {args.rounds}")
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        tmp_dir = Path(tmp)
        proc = subprocess.run([sys.executable, __file__, "--child", str(src), str(tmp_dir)],
                              check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        mem = json.loads(proc.stdout.strip().splitlines()[-1])
        ours_time, ours_cpu = best_of(args.rounds, ours, src, tmp_dir)
        naive_time, naive_cpu = best_of(args.rounds, naive, src, tmp_dir)
        single_time, single_cpu = best_of(args.rounds, per_profile, src, tmp_dir)
        infos = ours(src, tmp_dir)
        for info in infos:
            print(f"  {Path(info.path).name:32s} {info.width:5d}x{info.height:<5d} {info.bytes / 1e3:8.0f} kB")
    ratio = ours_time / naive_time
    print(f"naive (open + exif_transpose + ImageOps.fit/thumbnail/pad/blur, LANCZOS, per output): "
          f"{naive_time:.3f}s wall, {naive_cpu:.3f}s CPU")
    print(f"ours  (render_images: one drafted decode, derived outputs, reducing_gap):      "
          f"{ours_time:.3f}s wall, {ours_cpu:.3f}s CPU")
    print(f"render_image once per profile (context: one decode each):                  "
          f"{single_time:.3f}s wall, {single_cpu:.3f}s CPU")
    print(f"ratio ours/naive: {ratio:.3f} wall, {ours_cpu / naive_cpu:.3f} CPU "
          f"(target <= {TARGET_RATIO}) {'OK' if ratio <= TARGET_RATIO else 'MISSED'}; load average {os.getloadavg()[0]:.1f}")
    print(f"ours peak RSS (child process, whole interpreter): {mem['peak_mb']:.0f} MB "
          f"(before rendering {mem['before_mb']:.0f} MB; target <= {TARGET_RSS_MB} MB) "
          f"{'OK' if mem['peak_mb'] <= TARGET_RSS_MB else 'MISSED'}; child run {mem['seconds']:.3f}s")


if __name__ == "__main__":
    main()
