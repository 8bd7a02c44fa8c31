"""Running the ffmpeg binary shipped by imageio-ffmpeg (no system ffmpeg, no ffprobe).

One place for: finding the executable (`imageio_ffmpeg.get_ffmpeg_exe()`, looked up lazily
on first use, never at import), running it with a timeout, killing it on timeout, and
turning a failure into a `MediaError` whose `.reason` carries ffmpeg's stderr (what an ops
person needs to see in a failed delivery).

Numbers: `STDERR_TAIL_LINES` = 6. ffmpeg 9 prints the root cause *first* ("x264 [error]:
invalid preset") and then a cascade of "Task finished with error code" lines, so a reason
keeps the first 3 and the last 3 lines (with the "@ 0x55..." pointers removed): short
enough for a log line / DB column, and it never loses the actual complaint.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import threading
from collections.abc import Callable, Sequence

from media.errors import ENCODE_FAILED, TIMEOUT, MediaError

STDERR_TAIL_LINES = 6


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary; FANOUT_FFMPEG overrides imageio-ffmpeg's bundled one."""
    override = os.environ.get("FANOUT_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg  # imported here: finding the binary may touch the filesystem

    return imageio_ffmpeg.get_ffmpeg_exe()


_POINTER_RE = re.compile(r" @ 0x[0-9a-fA-F]+")


def ffpath(path: str | os.PathLike[str]) -> str:
    """A path as an ffmpeg argument: absolute, so it can never be read as an option ("-x")
    or a protocol ("concat:...", "http:..." — ffmpeg only looks for "proto:" before a "/")."""
    return os.path.abspath(os.fspath(path))


def stderr_tail(stderr: bytes | str, lines: int = STDERR_TAIL_LINES) -> str:
    """ffmpeg's stderr as one line: first and last `lines`/2 non-empty lines, ' | '-joined."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    kept: list[str] = []
    for raw in text.splitlines():
        line = _POINTER_RE.sub("", raw).strip()
        if line and (not kept or kept[-1] != line):
            kept.append(line)
    if len(kept) > lines:
        head = max(1, lines // 2)
        kept = kept[:head] + ["..."] + kept[-(lines - head):]
    return " | ".join(kept)


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout: float,
    what: str = "ffmpeg",
    check: bool = True,
    progress: Callable[[float], None] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `ffmpeg -hide_banner -nostdin <args>`; stdout/stderr captured as bytes.

    On timeout the process is killed and `MediaError(code=timeout)` raised. With `check`,
    a non-zero exit raises `MediaError(code=encode_failed)` carrying the stderr tail.
    `what` names the operation in the reason ("encode web_video", "probe", ...).
    `progress`, when given, is called with the output time reached (seconds) as ffmpeg
    reports it (`-progress pipe:1`, about twice a second); the args must not write to stdout.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    if progress is not None:
        cmd[3:3] = ["-progress", "pipe:1", "-nostats"]
    try:
        if progress is None:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        else:
            proc = _run_with_progress(cmd, timeout, progress)
    except subprocess.TimeoutExpired as exc:  # the child is killed before this is raised
        raise MediaError(
            f"{what}: ffmpeg timed out after {timeout:.0f}s: {stderr_tail(exc.stderr or b'')}".rstrip(": "),
            f"视频处理超时（超过 {timeout:.0f} 秒），请稍后重试或换用更短的视频",
            code=TIMEOUT,
        ) from None
    except OSError as exc:
        raise MediaError(
            f"{what}: cannot run ffmpeg ({exc})",
            "服务器视频处理组件不可用，请联系运维人员",
            code=ENCODE_FAILED,
        ) from exc
    if check and proc.returncode != 0:
        raise MediaError(
            f"{what}: ffmpeg exited with {proc.returncode}: {stderr_tail(proc.stderr)}",
            "视频处理失败，文件可能已损坏或格式不受支持",
            code=ENCODE_FAILED,
        )
    return proc


_OUT_TIME_RE = re.compile(rb"^out_time_(?:us|ms)=(\d+)$")


def _run_with_progress(cmd: list[str], timeout: float,
                       progress: Callable[[float], None]) -> subprocess.CompletedProcess[bytes]:
    """subprocess.run with stdout read line by line for ffmpeg's `key=value` progress blocks.

    stderr is drained by a thread (a full pipe would stall ffmpeg); the deadline is enforced
    by a timer that kills the child, then TimeoutExpired is raised as subprocess.run would.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr_chunks: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)
    drain.start()
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        for line in proc.stdout:
            match = _OUT_TIME_RE.match(line.strip())
            if match:  # out_time_ms is in microseconds too (an old ffmpeg naming slip)
                progress(int(match.group(1)) / 1_000_000)
        proc.wait()
    finally:
        timer.cancel()
        drain.join()
    stderr = b"".join(stderr_chunks)
    if expired.is_set():
        raise subprocess.TimeoutExpired(cmd, timeout, stderr=stderr)
    return subprocess.CompletedProcess(cmd, proc.returncode, b"", stderr)
