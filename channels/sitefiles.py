"""Writing a static site safely: the helpers the website and RSS channels share.

A web server may be reading the site while a worker writes it, and several worker processes
(or machines sharing the folder over a file system with working `flock`) may publish at once:

* `atomic_write` writes a temporary file in the same directory, fsyncs it and `os.replace`s
  it over the target, so a reader sees the old file or the new one, never half of one. When
  the target already holds the same bytes nothing is written (incremental builds: an
  unchanged page keeps its mtime, so caches and rsync stay quiet).
* `site_lock` serialises builders with `fcntl.flock` on `<site>/.fanout.lock`; it waits at
  most `LOCK_TIMEOUT` seconds and then raises `TransientChannelError` (try again later).
* `copy_media` stores files content-addressed (`media/<sha[:2]>/<sha>.<ext>`), verifying the
  sha256 while copying; a file already there is never copied again.
* Manifests (`_data/<name>.json`) are the site's own record of what is published.
* `site_settings` reads the account settings both channels share (site_dir, public_url,
  site_title, ...); `template_env` is the Jinja2 environment of channels/templates/
  (autoescape on, undefined names are errors), built on first use; `check_story` and
  `PostFiles` are the render-time checks both channels make.

Every path derived from data goes through `site_path`, which refuses `..`, `.`, absolute
paths, backslashes and NUL bytes, so it stays lexically inside the site folder (symlinks
an administrator puts there on purpose, e.g. `media` on a bigger disk, are honoured).
Files are written 0644 and directories 0755 so the web server (another user) can read them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterator
from urllib.parse import urlsplit

from channels.base import (
    AccountData,
    MediaItem,
    PermanentChannelError,
    Post,
    PostFile,
    RenderError,
    Rendition,
    StoryData,
    TransientChannelError,
)

LOCK_NAME = ".fanout.lock"
LOCK_TIMEOUT = 120.0  # seconds; a full site rebuild of a few thousand pages takes far less
FILE_MODE = 0o644
DIR_MODE = 0o755
COPY_CHUNK = 1 << 20

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EXT = re.compile(r"^[a-z0-9]{1,8}$")
_MANIFEST_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

# MIME type -> file extension for the files a site serves.
MIME_EXTENSIONS: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
}


class UnsafePathError(PermanentChannelError):
    """A path built from data would leave the site folder (or is malformed)."""


# ----------------------------------------------------------------------------- paths


def check_relpath(rel: str) -> str:
    """Validate a site-relative POSIX path and return it normalised; raise UnsafePathError."""
    if not isinstance(rel, str) or not rel:
        raise UnsafePathError(f"empty or non-text path: {rel!r}")
    if "\x00" in rel:
        raise UnsafePathError("path contains a NUL byte")
    if "\\" in rel:
        raise UnsafePathError(f"backslash in path: {rel!r}")
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        raise UnsafePathError(f"absolute path: {rel!r}")
    parts = PurePosixPath(rel).parts
    if any(p in ("..", ".") for p in rel.split("/")) or not parts:
        raise UnsafePathError(f"path escapes or is not normalised: {rel!r}")
    return "/".join(parts)


def site_path(site_dir: str | os.PathLike[str], rel: str) -> Path:
    """The absolute path of `rel` inside `site_dir`; UnsafePathError for anything that would leave it."""
    return Path(site_dir).resolve() / check_relpath(rel)


def check_key(key: str) -> str:
    """Validate a storage key (it names a file; it must not traverse): return it unchanged."""
    if not isinstance(key, str) or not key:
        raise UnsafePathError(f"empty storage key: {key!r}")
    check_relpath(key)
    return key


def ext_for(mime: str, key: str = "") -> str:
    """The file extension for a media MIME type, else the key's suffix if it is a media one.

    Only the media types of MIME_EXTENSIONS are served from the site: a rendition claiming
    to be text/html (or named *.html) is refused, so media can never become a page.
    """
    ext = MIME_EXTENSIONS.get((mime or "").lower())
    if ext:
        return ext
    suffix = PurePosixPath(key or "").suffix.lstrip(".").lower()
    if suffix in set(MIME_EXTENSIONS.values()):
        return suffix
    raise UnsafePathError(f"not a media type the site serves: {mime!r}")


def media_relpath(sha256: str, ext: str) -> str:
    """The content-addressed site path of a file: media/<sha[:2]>/<sha>.<ext>."""
    sha = (sha256 or "").lower()
    if not _SHA256.match(sha):
        raise UnsafePathError(f"not a sha256 hex digest: {sha256!r}")
    if not _EXT.match(ext or ""):
        raise UnsafePathError(f"bad file extension: {ext!r}")
    return f"media/{sha[:2]}/{sha}.{ext}"


# ----------------------------------------------------------------------------- writing


def _mkdirs(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def _replacing(target: Path) -> Iterator[Any]:
    """A file handle whose bytes replace `target` atomically when the block ends cleanly.

    The temporary file lives in the target's directory (same file system, so `os.replace` is
    atomic), is fsynced with its directory, and is removed if anything in the block fails.
    """
    _mkdirs(target.parent)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> bool:
    """Replace `path` with `data` atomically; return False (and write nothing) if unchanged.

    `str` data is written as UTF-8. The temporary file lives in the target's directory (same
    file system, so `os.replace` is atomic) and is removed if anything fails.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if _same_bytes(target, payload):
        return False
    with _replacing(target) as out:
        out.write(payload)
    return True


def remove_file(site_dir: str | os.PathLike[str], rel: str, *, prune_dirs: bool = True) -> bool:
    """Delete a file of the site (True if it existed) and its directories left empty."""
    root = Path(site_dir).resolve()
    target = site_path(root, rel)
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    if prune_dirs:
        parent = target.parent
        while parent != root and root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
    _fsync_dir(target.parent if target.parent.exists() else root)
    return True


def copy_media(site_dir: str | os.PathLike[str], src_path: str | os.PathLike[str],
               sha256: str, ext: str) -> str:
    """Copy a file into the site at its content-addressed path; return that relative path.

    Idempotent: a file already at the path (same name = same content) is left alone. The
    copy is hashed on the way and refused (PermanentChannelError) if it is not `sha256`.
    """
    rel = media_relpath(sha256, ext)
    dest = site_path(site_dir, rel)
    if dest.exists():
        return rel
    src = Path(src_path)
    if not src.is_file():
        raise PermanentChannelError(f"media file missing: {src.name or src_path!s}")
    digest = hashlib.sha256()
    with _replacing(dest) as out, open(src, "rb") as inp:
        while chunk := inp.read(COPY_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != sha256.lower():
            raise PermanentChannelError(
                f"media file {src.name} has sha256 {digest.hexdigest()[:12]}…, expected {sha256[:12]}…")
    return rel


# ----------------------------------------------------------------------------- lock


@contextlib.contextmanager
def site_lock(site_dir: str | os.PathLike[str], timeout: float = LOCK_TIMEOUT) -> Iterator[Path]:
    """Hold the site's build lock (exclusive `flock` on <site>/.fanout.lock) for the block.

    Blocks other processes and other threads (each call opens its own file description).
    Not re-entrant: do not nest it for the same site. Yields the resolved site folder.
    """
    root = Path(site_dir)
    _mkdirs(root)
    root = root.resolve()
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    raise TransientChannelError(
                        f"site {root.name!r} is locked by another build for over {timeout:.0f}s",
                        retry_after=30.0) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        try:
            yield root
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- manifests


def manifest_relpath(name: str) -> str:
    if not _MANIFEST_NAME.match(name or ""):
        raise UnsafePathError(f"bad manifest name: {name!r}")
    return f"_data/{name}.json"


def load_manifest(site_dir: str | os.PathLike[str], name: str) -> dict[str, Any]:
    """The manifest `_data/<name>.json` as a dict ({} when it does not exist yet)."""
    path = site_path(site_dir, manifest_relpath(name))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PermanentChannelError(f"manifest {manifest_relpath(name)} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PermanentChannelError(f"manifest {manifest_relpath(name)} is not a JSON object")
    return data


def dump_manifest(data: dict[str, Any]) -> bytes:
    """Canonical manifest bytes (sorted keys, UTF-8): the same data always gives the same bytes."""
    return (json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


def save_manifest(site_dir: str | os.PathLike[str], name: str, data: dict[str, Any]) -> bool:
    """Write the manifest atomically; False when its bytes did not change."""
    return atomic_write(site_path(site_dir, manifest_relpath(name)), dump_manifest(data))


# ----------------------------------------------------------------------------- settings


DEFAULT_SITE_TITLE = "融媒体中心"
DEFAULT_SITE_DESCRIPTION = "融媒体中心最新发布：本地新闻、政务信息与民生服务"


@dataclass(frozen=True)
class SiteSettings:
    """The per-account settings both site channels read (`fanout account add ... --set k=v`).

    site_dir (required): the web root the channel writes into.
    public_url (required): where that web root is served, e.g. http://127.0.0.1:8000/site/.
    site_title, site_description, site_footer, icp_beian: what the pages and feeds show.
    """

    dir: Path
    public_url: str
    title: str = DEFAULT_SITE_TITLE
    description: str = DEFAULT_SITE_DESCRIPTION
    footer: str = ""
    icp_beian: str = ""

    def absolute(self, rel: str) -> str:
        """The public URL of a site-relative path ("" is the site root)."""
        return self.public_url + rel.lstrip("/")


def site_settings(account: AccountData) -> SiteSettings:
    """Read and validate the site settings of an account; PermanentChannelError if unusable."""
    site_dir = account.setting("site_dir")
    if not site_dir:
        raise PermanentChannelError(
            f"{account.channel} account {account.name!r} has no site_dir setting (the web root to write)")
    public_url = str(account.setting("public_url") or "")
    if not public_url:
        raise PermanentChannelError(
            f"{account.channel} account {account.name!r} has no public_url setting (where the site is served)")
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise PermanentChannelError(f"public_url must be an http(s) URL without query: {public_url!r}")
    if not public_url.endswith("/"):
        public_url += "/"
    path = Path(str(site_dir))
    if not path.is_absolute():
        raise PermanentChannelError(f"site_dir must be an absolute path: {site_dir!r}")
    return SiteSettings(
        dir=path,
        public_url=public_url,
        title=str(account.setting("site_title", DEFAULT_SITE_TITLE)),
        description=str(account.setting("site_description", DEFAULT_SITE_DESCRIPTION)),
        footer=str(account.setting("site_footer", "")),
        icp_beian=str(account.setting("icp_beian", "")),
    )


def int_setting(account: AccountData, key: str, default: int, *, low: int = 1, high: int = 10_000) -> int:
    """An integer setting within [low, high]; PermanentChannelError when it is not one."""
    raw = account.setting(key, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise PermanentChannelError(f"setting {key} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise PermanentChannelError(f"setting {key} must be between {low} and {high}, got {value}")
    return value


# ----------------------------------------------------------------------------- templates

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


@functools.lru_cache(maxsize=1)
def template_env():  # -> jinja2.Environment, built on first use
    """The Jinja2 environment of channels/templates: autoescape on, undefined names are errors."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@functools.lru_cache(maxsize=8)
def template_asset(name: str) -> tuple[bytes, str]:
    """A static file of channels/templates (e.g. "website/site.css"): its bytes and a short hash."""
    data = (TEMPLATE_DIR / check_relpath(name)).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:10]


# ----------------------------------------------------------------------------- render helpers


def story_images(story: StoryData, max_images: int | None, where: str) -> list[MediaItem]:
    """The story's cover and body images, cover first; RenderError over the channel's limit."""
    images = [m for m in story.media if m.kind == "image" and m.role in ("cover", "image")]
    images.sort(key=lambda m: 0 if m.role == "cover" else 1)  # stable: cover first
    if max_images is not None and len(images) > max_images:
        raise RenderError(f"story has {len(images)} images; {where} allows at most {max_images}")
    return images


def check_story(story: StoryData, *, title_max: int | None, body_max: int | None, where: str) -> str:
    """The story's title with whitespace collapsed; RenderError for what no site page can carry.

    `where` names the channel in the English message ("the website allows at most 64").
    """
    title = " ".join((story.title or "").split())
    if not title:
        raise RenderError("title is empty")
    if title_max is not None and len(title) > title_max:
        raise RenderError(f"title has {len(title)} characters; {where} allows at most {title_max}")
    body = story.body_markdown or ""
    if body_max is not None and len(body) > body_max:
        raise RenderError(f"body has {len(body)} characters; {where} allows at most {body_max}")
    if not isinstance(story.story_id, int) or isinstance(story.story_id, bool) or story.story_id < 1:
        raise RenderError(f"story_id must be a positive integer, got {story.story_id!r}")
    if story.release_at.tzinfo is None:
        raise RenderError("release_at must be timezone-aware")
    return title


class PostFiles:
    """The PostFiles of a render: one per storage key, in first-use order, paths checked."""

    def __init__(self) -> None:
        self._files: dict[str, PostFile] = {}

    def add(self, role: str, rendition: Rendition) -> str:
        """Register a rendition; return its content-addressed site path (media/<sha[:2]>/<sha>.<ext>).

        The first role a key is added with is kept. RenderError for an unsafe key or digest.
        """
        try:
            check_key(rendition.key)
            rel = media_relpath(rendition.sha256, ext_for(rendition.mime, rendition.key))
        except UnsafePathError as exc:
            raise RenderError(f"refusing rendition {rendition.profile}: {exc}") from exc
        if rendition.key not in self._files:
            self._files[rendition.key] = PostFile(
                role=role, key=rendition.key, name=rel.rsplit("/", 1)[-1], mime=rendition.mime,
                bytes=rendition.bytes, sha256=rendition.sha256.lower(),
                width=rendition.width, height=rendition.height)
        return rel

    def files(self) -> tuple[PostFile, ...]:
        return tuple(self._files.values())


def check_post(post: Post, channel: str, required: tuple[str, ...]) -> None:
    """PermanentChannelError unless `post` is this channel's, has `required` fields and local files."""
    if post.channel != channel:
        raise PermanentChannelError(f"a {post.channel!r} post cannot be published on the {channel} channel")
    missing = [k for k in required if k not in post.fields]
    if missing:
        raise PermanentChannelError(f"post lacks fields: {', '.join(missing)}")
    for f in post.files:
        if not f.path:
            raise PermanentChannelError(f"file {f.name} has no local path (the dispatcher fills PostFile.path)")
