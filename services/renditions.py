"""The rendition cache: derived media keyed by source sha256 + profile + profile version + params.

`params` are what else changes the output: a video's in/out points (the editor's, from the
story) and the label drawn over it, as a canonical string ("" when none), so the same clip cut
two ways is two renditions and the same cut asked twice is one.

A rendition is made once and reused by every channel and every delivery that names the same
profile; the `renditions` table is the index and the media store holds the bytes. Two workers
racing on the same rendition both encode and one row wins (the unique key decides); the
stored bytes are written atomically, so nobody reads half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from channels.base import Rendition
from media import get_profile, make_rendition
from media.probe import sha256_file
from services.config import Settings
from services.db import session_scope
from services.models import Asset, RenditionRecord
from services.storage import Storage


def _to_rendition(record: RenditionRecord) -> Rendition:
    return Rendition(profile=record.profile, key=record.storage_key, mime=record.mime, bytes=record.bytes,
                     sha256=record.sha256, width=record.width, height=record.height, duration=record.duration)


@dataclass(frozen=True)
class RenditionParams:
    """Per-use options of a rendition beyond its profile (video only for now)."""

    start: float | None = None
    end: float | None = None
    label: str | None = None

    def key(self) -> str:
        """Canonical, at most 128 characters: in/out to the millisecond, the label by its hash."""
        parts = []
        if self.start is not None:
            parts.append(f"in={self.start:.3f}")
        if self.end is not None:
            parts.append(f"out={self.end:.3f}")
        if self.label:
            parts.append("label=" + hashlib.sha256(self.label.encode("utf-8")).hexdigest()[:16])
        return ";".join(parts)

    def options(self) -> dict[str, object]:
        return {k: v for k, v in (("start", self.start), ("end", self.end), ("label", self.label)) if v is not None}


def _lookup(session: Session, asset_sha256: str, profile, params: str = "") -> RenditionRecord | None:  # noqa: ANN001
    return session.scalar(select(RenditionRecord).where(
        RenditionRecord.asset_sha256 == asset_sha256, RenditionRecord.profile == profile.name,
        RenditionRecord.profile_version == profile.version, RenditionRecord.params == params))


@contextlib.contextmanager
def _unit_of_work(session: Session | None) -> Iterator[Session]:
    """The caller's session (inside a savepoint) if it has one, else a short one of our own.

    Review signs inside the caller's transaction; opening a second one there would wait on the
    first (SQLite's write lock) — so the caller's is reused.
    """
    if session is None:
        with session_scope() as own:
            yield own
    else:
        with session.begin_nested():
            yield session


def ensure_rendition(settings: Settings, storage: Storage, asset_sha256: str, profile_name: str,
                     session: Session | None = None, *, params: RenditionParams | None = None) -> tuple[Rendition, bool]:
    """The rendition of `asset_sha256` for `profile_name` (and `params`), and whether it came from the cache."""
    profile = get_profile(profile_name)
    params = params or RenditionParams()
    if profile.kind == "poster":  # a poster comes from inside the clip; it carries no label
        params = RenditionParams(start=params.start, end=params.end)
    elif profile.kind != "video":
        params = RenditionParams()  # images take no per-use options
    param_key = params.key()
    with _unit_of_work(session) as work:
        record = _lookup(work, asset_sha256, profile, param_key)
        if record is not None and storage.exists(record.storage_key):
            return _to_rendition(record), True
        asset = work.get(Asset, asset_sha256)
        if asset is None:
            raise LookupError(f"asset {asset_sha256} is not in the database")
        source_key = asset.storage_key
    source = storage.local_path(source_key)
    work_dir = settings.cache_dir / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        out = Path(tmp) / f"out.{profile_ext(profile)}"
        info = make_rendition(source, profile, out, **params.options())
        digest = sha256_file(out)
        suffix = "-" + hashlib.sha256(param_key.encode()).hexdigest()[:12] if param_key else ""
        key = (f"renditions/{asset_sha256[:2]}/{asset_sha256}/"
               f"{profile.name}-v{profile.version}{suffix}.{profile_ext(profile)}")
        storage.put_file(key, out)
    try:
        with _unit_of_work(session) as work:
            record = _lookup(work, asset_sha256, profile, param_key)
            if record is not None:  # a stale row whose file was gone: point it at the new file
                record.storage_key, record.bytes, record.sha256 = key, info.bytes, digest
            else:
                record = RenditionRecord(
                    asset_sha256=asset_sha256, profile=profile.name, profile_version=profile.version, params=param_key,
                    storage_key=key, mime=info.mime, bytes=info.bytes, sha256=digest, width=info.width,
                    height=info.height, duration=info.duration)
                work.add(record)
                work.flush()
    except IntegrityError:  # another worker inserted the same rendition first
        with _unit_of_work(session) as work:
            record = _lookup(work, asset_sha256, profile, param_key)
    return _to_rendition(record), False


def profile_ext(profile) -> str:  # noqa: ANN001 - any media profile
    return profile.ext
