"""Benchmark: vertical (blur_fill) and multi-rendition video — plain ffmpeg CLI vs media.video.

Not a test. Everything runs the same ffmpeg binary (imageio-ffmpeg's) on the same cached
source, in the same run:

* source — 3 minutes of 1920×1080 30 fps H.264 High + AAC from lavfi `testsrc2` + `sine`
  (made once, cached under /tmp/fanout-bench/);
* B — the baseline: one ffmpeg CLI pass over 60 s (`-ss 30 -t 60`) with the obvious
  blurred-fill graph (scale to cover at full size, crop, `boxblur=20:5`, overlay), libx264
  veryfast CRF 23, AAC 128k, +faststart;
* ours — `render_video(src, douyin_video, start=30, end=90)` (same preset and CRF): the
  background is blurred at 1/4 size and scaled back up; probing and checking the output
  are included in its time;
* all — `render_videos` for douyin, channels (视频号), weibo and web video of one story
  (same in/out points) in one call, vs the sum of separate baseline-style CLI runs (B for
  douyin and for channels, a plain 720p scale for weibo and for web). Identical commands
  are timed once and counted twice (their times are the same work);
* peak RSS — `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` in a fresh Python process that
  runs one rendition, i.e. the largest ffmpeg child it started.

    .venv/bin/python bench/bench_media.py                       # the issue's sizes (~7 min on 2 cores, the baseline alone ~3.5)
    FANOUT_BENCH_CLIP_SECONDS=10 .venv/bin/python bench/bench_media.py   # quick run

Targets (the issue): ours/B ≤ 0.85; all/separate ≤ 0.7; peak RSS ≤ 600 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from media.ffmpeg import ffmpeg_exe, run_ffmpeg
from media.fsutil import atomic_path

CACHE = Path(os.environ.get("FANOUT_BENCH_DIR", "/tmp/fanout-bench"))
SOURCE_SECONDS = 180
SOURCE = CACHE / f"source-1920x1080-30fps-{SOURCE_SECONDS}s.mp4"
START = 30.0
CLIP = float(os.environ.get("FANOUT_BENCH_CLIP_SECONDS", "60"))
BASELINE_GRAPH = ("[0:v]split=2[a][b];[a]scale=1080:1920:force_original_aspect_ratio=increase,crop=1080:1920,"
                  "boxblur=20:5[bg];[b]scale=1080:-2[fg];[bg][fg]overlay=(W-w)/2:(H-h)/2,format=yuv420p")
STORY_PROFILES = ("douyin_video", "channels_video", "weibo_video", "web_video")


def make_source() -> Path:
    if SOURCE.exists():
        return SOURCE
    print(f"generating {SOURCE} (once) ...", flush=True)
    started = time.perf_counter()
    with atomic_path(SOURCE, suffix=".mp4") as tmp:
        run_ffmpeg(["-v", "error", "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=30:d={SOURCE_SECONDS}",
                    "-f", "lavfi", "-i", f"sine=f=440:sample_rate=48000:d={SOURCE_SECONDS}",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4", str(tmp)],
                   timeout=3600, what="bench source")
    print(f"  {time.perf_counter() - started:.1f}s, {SOURCE.stat().st_size / 1e6:.0f} MB", flush=True)
    return SOURCE


def cli(args: list[str]) -> tuple[float, float]:
    """Run ffmpeg with `args`; (wall seconds, peak RSS MB of that process)."""
    started = time.perf_counter()
    proc = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", *args])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"ffmpeg failed: {args}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def baseline_vertical(src: Path, out: Path) -> tuple[float, float]:
    return cli(["-ss", f"{START:g}", "-t", f"{CLIP:g}", "-i", str(src), "-filter_complex", BASELINE_GRAPH,
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac", "-b:a", "128k",
                "-movflags", "+faststart", str(out)])


def baseline_720p(src: Path, out: Path) -> tuple[float, float]:
    return cli(["-ss", f"{START:g}", "-t", f"{CLIP:g}", "-i", str(src), "-vf", "scale=1280:720,format=yuv420p",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac", "-b:a", "128k",
                "-movflags", "+faststart", str(out)])


_CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
from media.profiles import get_profile
from media.video import render_videos
jobs = [(get_profile(name), {out!r} + "/ours-" + name + ".mp4") for name in {names!r}]
started = time.perf_counter()
infos = render_videos({src!r}, jobs, start={start!r}, end={end!r})
seconds = time.perf_counter() - started
files = {{(os.stat(i.path).st_dev, os.stat(i.path).st_ino) for i in infos}}
print(json.dumps({{"seconds": seconds, "unique_files": len(files),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "outputs": [[i.path, i.width, i.height, i.duration, i.bytes] for i in infos]}}))
"""


def ours(src: Path, out_dir: Path, names: tuple[str, ...]) -> dict:
    """render_videos in a fresh Python process (so RUSAGE_CHILDREN sees only its ffmpeg children)."""
    code = _CHILD.format(root=str(ROOT), out=str(out_dir), names=list(names), src=str(src), start=START,
                         end=START + CLIP)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    src = make_source()
    out_dir = CACHE / "out"
    out_dir.mkdir(exist_ok=True)
    print(f"source: 1920x1080 30 fps, {SOURCE_SECONDS}s, {src.stat().st_size / 1e6:.0f} MB; clip {START:g}s +{CLIP:g}s; "
          f"ffmpeg {ffmpeg_exe()}; {os.cpu_count()} CPUs", flush=True)

    b_time, b_rss = baseline_vertical(src, out_dir / "baseline-vertical.mp4")
    print(f"B    baseline CLI vertical (full-size cover + boxblur=20:5): {b_time:7.1f}s  peak RSS {b_rss:5.0f} MB",
          flush=True)
    douyin = ours(src, out_dir, ("douyin_video",))
    print(f"ours render_video douyin_video:                           {douyin['seconds']:7.1f}s  "
          f"peak RSS {douyin['maxrss_mb']:5.0f} MB", flush=True)
    print(f"     ratio ours/B = {douyin['seconds'] / b_time:.2f}   (target ≤ 0.85)", flush=True)

    w_time, w_rss = baseline_720p(src, out_dir / "baseline-720p.mp4")
    separate = 2 * b_time + 2 * w_time
    print(f"W    baseline CLI 720p (weibo, web):                        {w_time:7.1f}s  peak RSS {w_rss:5.0f} MB",
          flush=True)
    story = ours(src, out_dir, STORY_PROFILES)
    print(f"all  render_videos {', '.join(STORY_PROFILES)}: {story['seconds']:.1f}s  "
          f"peak RSS {story['maxrss_mb']:.0f} MB")
    for path, width, height, duration, size in story["outputs"]:
        print(f"       {Path(path).name:28s} {width}x{height} {duration:.2f}s {size / 1e6:.1f} MB")
    print(f"     {story['unique_files']} encodes for {len(STORY_PROFILES)} renditions (identical profiles are "
          "encoded once and hard-linked), one decode")
    print(f"     separate runs 2×B + 2×W = {separate:.1f}s; ratio all/separate = {story['seconds'] / separate:.2f}   "
          "(target ≤ 0.7)")
    print(f"peak RSS of the ffmpeg child for one rendition (douyin_video): {douyin['maxrss_mb']:.0f} MB   "
          "(target ≤ 600 MB)")


if __name__ == "__main__":
    main()
