"""`fanout media …`: probe a file and make one rendition by hand, printing JSON.

For editors' and ops' questions ("why was this upload refused?", "what will Douyin get?") and
for trying a profile on a real file. Thin: each command calls one function of the `media`
package and prints its result; a `MediaError` becomes one line `error: …` and exit 1, like every
other fanout command. Needs no database.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _print(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _profile(name: str, kind: str):  # noqa: ANN202 - a media.profiles profile
    from media import get_profile

    try:
        profile = get_profile(name)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    kinds = ("video",) if kind == "video" else ("image", "poster")
    if profile.kind not in kinds:
        _fail(f"profile {name!r} makes {profile.kind} renditions; use `fanout media "
              f"{'video' if profile.kind == 'video' else 'image'}`")
    return profile


class _Progress:
    """Elapsed time on stderr while a long render runs, only when stderr is a terminal."""

    def __init__(self, label: str, expected: float | None) -> None:
        self.label, self.expected = label, expected
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Progress:
        if sys.stderr.isatty():
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            click.echo("", err=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(0.5):
            elapsed = time.monotonic() - started
            hint = f" (source {self.expected:.0f} s)" if self.expected else ""
            click.echo(f"\r{self.label}: {elapsed:5.1f} s{hint}", err=True, nl=False)


@click.group("media")
def media() -> None:
    """Probe media and make renditions by hand (JSON output)."""


@media.command("profiles")
@click.option("--json", "as_json", is_flag=True)
def media_profiles(as_json: bool) -> None:
    """List the rendition profiles (size, fit, format, caps, codecs, version)."""
    from media import all_profiles

    rows = [{"name": p.name, **dataclasses.asdict(p)} for p in all_profiles()]
    if as_json:
        _print({"profiles": rows})
        return
    for profile in all_profiles():
        fields = {k: v for k, v in dataclasses.asdict(profile).items() if k not in ("name", "kind") and v is not None}
        click.echo(f"{profile.name:<22} {profile.kind:<6} " + " ".join(f"{k}={v}" for k, v in fields.items()))


@media.command("probe")
@click.argument("src", type=click.Path(path_type=Path))
def media_probe(src: Path) -> None:
    """What a file really is (type from its bytes), or why it is refused."""
    from media import MediaError, probe, sha256_file

    if not src.is_file():
        _fail(f"not a file: {src}")
    try:
        info = probe(src)
    except MediaError as exc:
        _fail(f"{src.name}: {exc.reason}")
    _print({"file": str(src), "sha256": sha256_file(src), **dataclasses.asdict(info)})


@media.command("video")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-p", "--profile", "profile_name", required=True)
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path))
@click.option("--in", "start", type=float, default=None, help="in point, seconds")
@click.option("--out", "end", type=float, default=None, help="out point, seconds")
@click.option("--label", default=None, help="text shown over the first seconds (campaign label)")
def media_video(src: Path, profile_name: str, out: Path, start: float | None, end: float | None,
                label: str | None) -> None:
    """Render one video rendition; prints dimensions, duration, bytes, codecs and the cut point."""
    from media import MediaError, probe
    from media.video import render_video

    profile = _profile(profile_name, "video")
    if not src.is_file():
        _fail(f"not a file: {src}")
    try:
        source = probe(src)
        with _Progress(f"rendering {profile.name}", source.duration):
            result = render_video(src, profile, out, start=start, end=end, label=label)
        written = probe(out)
    except MediaError as exc:
        _fail(f"{src.name}: {exc.reason}")
    _print({"profile": profile.name, "profile_version": profile.version, **dataclasses.asdict(result),
            "video_codec": written.video_codec, "fps": written.fps, "has_audio": written.has_audio})


@media.command("image")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-p", "--profile", "profile_name", required=True)
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path))
def media_image(src: Path, profile_name: str, out: Path) -> None:
    """Render one image (or poster) rendition; prints dimensions and bytes."""
    from media import MediaError, make_rendition

    profile = _profile(profile_name, "image")
    if not src.is_file():
        _fail(f"not a file: {src}")
    try:
        result = make_rendition(src, profile, out)
    except MediaError as exc:
        _fail(f"{src.name}: {exc.reason}")
    _print({"profile": profile.name, "profile_version": profile.version, **dataclasses.asdict(result)})
