"""Atomic output files: write to a temporary name in the destination directory, then
`os.replace` onto the final name, so a reader never sees a half-written rendition and a
failure (exception, ffmpeg error, timeout, killed worker mid-write) leaves no output file.

The temporary name starts with "." and ends in ".tmp" so a store listing can ignore (and a
janitor can sweep) leftovers of a SIGKILLed worker. No fsync: renditions are derived data,
re-made from the source if a crash ever loses one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(out: str | Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path next to `out`; on clean exit move it onto `out`, else delete it.

    `suffix` lets tools that infer a format from the name (ffmpeg) see the right extension.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp{suffix}"
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(out: str | Path, data: bytes) -> None:
    """Write `data` to `out` atomically."""
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
