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
    """A progress bar on stderr while a render runs, only when stderr is a terminal.

    `update(done, total)` is fed by ffmpeg's own progress reports (output seconds); the bar
    shows the share done, elapsed time and an estimate of the time left. Without a terminal
    (a pipe, a log file, the tests) nothing is drawn and stdout keeps only the JSON summary.
    """

    WIDTH = 30

    def __init__(self, label: str, *, enabled: bool | None = None) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._started = time.monotonic()
        self._drawn = False

    def __enter__(self) -> _Progress:
        self._started = time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._drawn:
            click.echo("", err=True)

    def line(self, done: float, total: float) -> str:
        elapsed = time.monotonic() - self._started
        if total <= 0:
            return f"{self.label}: {done:6.1f} s encoded, {elapsed:5.1f} s elapsed"
        share = max(0.0, min(1.0, done / total))
        filled = round(self.WIDTH * share)
        left = f", {elapsed * (1 - share) / share:4.0f} s left" if share > 0.02 else ""
        return (f"{self.label}: [{'#' * filled}{'.' * (self.WIDTH - filled)}] {share * 100:3.0f}%"
                f" {elapsed:5.1f} s{left}")

    def update(self, done: float, total: float) -> None:
        if self.enabled:
            click.echo("\r" + self.line(done, total), err=True, nl=False)
            self._drawn = True


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

        with _Progress(f"rendering {profile.name}") as bar:
            result = render_video(src, profile, out, start=start, end=end, label=label,
                                  progress=bar.update if bar.enabled else None)
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
