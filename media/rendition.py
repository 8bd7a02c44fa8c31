"""Result type of the media package: `RenditionInfo` (plain data, no behaviour).

It describes one file written by `make_rendition` / `render_image` / `render_video` /
`render_poster`. Its numbers are measured from the written output, not copied from the
profile. (Named `rendition.py`, not `types.py`, so it can never shadow the stdlib module.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenditionInfo:
    """One rendition on disk: path, MIME type, pixel size, byte size, duration (video only).

    Video clips that end before the source does also say where and why they were cut:
    `cut_at` is the out point in source seconds, `cut_reason` one of "quiet" (a pause in
    the audio), "scene" (a change of shot), "hard limit" (the profile's max_duration) or
    "editor" (an out point set by hand). Both are None when the clip runs to the end.
    """

    path: str
    mime: str
    width: int
    height: int
    bytes: int
    duration: float | None = None
    cut_at: float | None = None
    cut_reason: str | None = None
