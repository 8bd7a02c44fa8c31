"""The rendition cache: derived media keyed by source sha256 + profile + profile version + params.

`params` are what else changes the output: a video's in/out points (the editor's, from the
story) and the label drawn over it, as a canonical string ("" when none), so the same clip cut
two ways is two renditions and the same cut asked twice is one.

A rendition is made once and reused by every channel and every delivery that names the same
profile; the `renditions` table is the index and the media store holds the bytes. Two workers
racing on the same rendition both encode and one row wins (the unique key decides); the
stored bytes are written atomically, so nobody reads half a file.

Each row also counts how it was asked for, in the database every process shares (ops read it:
services/rendition_stats.py): `cache_hits` when `ensure_renditions` served it without encoding
(found, or linked to an identical twin's file), `cache_misses` when it had to be encoded (the
loser of a race counts its encode on the winner's row), and `encode_seconds` / `encoded_at`
for the last encode. Encodes are batched (one decode for all of an image's renditions, one
ffmpeg run for a clip's videos), so a batch is timed once and each rendition it made gets an
equal share of its wall time. `all_cached` only looks and counts nothing. Counting is best
effort: a failed counter update is logged and never fails the rendition.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from channels.base import Rendition
from media.probe import sha256_file
from services.config import Settings
from services.db import session_scope
from services.models import Asset, RenditionRecord, utcnow
from services.storage import Storage

log = logging.getLogger("fanout.renditions")


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


def _effective(profile, params: RenditionParams) -> RenditionParams:  # noqa: ANN001 - any media profile
    if profile.kind == "poster":  # a poster comes from inside the clip; it carries no label
        return RenditionParams(start=params.start, end=params.end)
    if profile.kind != "video":
        return RenditionParams()  # images take no per-use options
    return params


def all_cached(session: Session, asset_sha256: str, profile_names: list[str], *,
               params: RenditionParams | None = None) -> bool:
    """Whether every named rendition of the asset is in the cache (no encode needed). A file
    gone from the store, or a twin not yet linked, counts as missing: the media queue decides."""
    from media import get_profile

    params = params or RenditionParams()
    for name in dict.fromkeys(profile_names):
        profile = get_profile(name)
        if _lookup(session, asset_sha256, profile, _effective(profile, params).key()) is None:
            return False
    return True


def ensure_rendition(settings: Settings, storage: Storage, asset_sha256: str, profile_name: str,
                     session: Session | None = None, *, params: RenditionParams | None = None) -> tuple[Rendition, bool]:
    """The rendition of `asset_sha256` for `profile_name` (and `params`), and whether it came from the cache."""
    return ensure_renditions(settings, storage, asset_sha256, [profile_name], session, params=params)[profile_name]


def ensure_renditions(settings: Settings, storage: Storage, asset_sha256: str, profile_names: list[str],
                      session: Session | None = None, *,
                      params: RenditionParams | None = None) -> dict[str, tuple[Rendition, bool]]:
    """Every named rendition of one asset, each with whether it came from the cache.

    What is missing is made in as few passes as the media package allows: all images from one
    decode (`render_images`), all videos of one clip from one ffmpeg process (`render_videos`).
    A profile whose output would be byte-for-byte another's (same settings under another name,
    e.g. Douyin's and 视频号's clip) reuses that rendition's file instead of encoding again.
    """
    from media import get_profile
    from media.profiles import output_signature

    params = params or RenditionParams()
    profiles = [get_profile(name) for name in dict.fromkeys(profile_names)]
    results: dict[str, tuple[Rendition, bool]] = {}
    missing = []
    hits: list[int] = []
    with _unit_of_work(session) as work:
        asset = work.get(Asset, asset_sha256)
        if asset is None:
            raise LookupError(f"asset {asset_sha256} is not in the database")
        source_key = asset.storage_key
        for profile in profiles:
            key = _effective(profile, params).key()
            record = _lookup(work, asset_sha256, profile, key)
            if record is not None and storage.exists(record.storage_key):
                results[profile.name] = (_to_rendition(record), True)
                hits.append(record.id)
                continue
            twin = _twin(work, storage, asset_sha256, profile, key, output_signature)
            if twin is not None:  # counted as a hit on the row that now points at the twin's file
                results[profile.name] = (_to_rendition(_record(work, asset_sha256, profile, key, twin)), True)
                continue
            missing.append(profile)
        _count_hits(work, hits)
    if missing:
        for profile, (rendition, made) in _make(settings, storage, asset_sha256, source_key, missing,
                                                params, session).items():
            results[profile] = (rendition, made)
    return {name: results[name] for name in dict.fromkeys(profile_names)}


def _twin(session: Session, storage: Storage, asset_sha256: str, profile, key: str,  # noqa: ANN001
          signature) -> RenditionRecord | None:  # noqa: ANN001
    """A stored rendition of the same asset and params by a profile with identical settings."""
    from media import all_profiles

    twins = [p for p in all_profiles() if p.name != profile.name and signature(p) == signature(profile)]
    for other in twins:
        record = _lookup(session, asset_sha256, other, key)
        if record is not None and storage.exists(record.storage_key):
            return record
    return None


def _count_hits(session: Session, ids: list[int]) -> None:
    """One more cache hit on each of these rows (best effort: never fails the caller's work)."""
    if not ids:
        return
    try:
        with session.begin_nested():
            session.execute(update(RenditionRecord).where(RenditionRecord.id.in_(sorted(set(ids))))
                            .values(cache_hits=RenditionRecord.cache_hits + 1))
    except SQLAlchemyError:
        log.warning("could not count %d rendition cache hits", len(ids), exc_info=True)


def _record(session: Session, asset_sha256: str, profile, key: str, like: RenditionRecord,  # noqa: ANN001
            *, encode_seconds: float | None = None) -> RenditionRecord:
    """Index `like`'s file under `profile` too (a stale row is repointed), counting how it came:
    encoded (`encode_seconds` given: a miss, and its time) or linked to a twin's file (a hit)."""
    encoded = encode_seconds is not None
    record = _lookup(session, asset_sha256, profile, key)
    if record is None:
        record = RenditionRecord(asset_sha256=asset_sha256, profile=profile.name, profile_version=profile.version,
                                 params=key, cache_hits=0 if encoded else 1, cache_misses=1 if encoded else 0)
        session.add(record)
    elif encoded:  # counted in SQL: another process may be counting on the same row
        record.cache_misses = RenditionRecord.cache_misses + 1
    else:
        record.cache_hits = RenditionRecord.cache_hits + 1
    for field in ("storage_key", "mime", "bytes", "sha256", "width", "height", "duration"):
        setattr(record, field, getattr(like, field))
    if encoded:
        record.encode_seconds, record.encoded_at = encode_seconds, utcnow()
    session.flush()
    return record


def _make(settings: Settings, storage: Storage, asset_sha256: str, source_key: str, profiles: list,
          params: RenditionParams, session: Session | None) -> dict[str, tuple[Rendition, bool]]:
    """Encode `profiles` from the source (batched by kind), store the files, index them."""
    from media.images import render_images
    from media.video import render_poster, render_videos

    source = storage.local_path(source_key)
    work_dir = settings.cache_dir / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, tuple[Rendition, bool]] = {}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        jobs = [(profile, Path(tmp) / f"{profile.name}.{profile_ext(profile)}") for profile in profiles]
        infos = {}
        seconds: dict[str, float] = {}  # each rendition's share of its batch's wall time

        def timed(batch: list, encode) -> None:  # noqa: ANN001 - (profile, path) pairs; the encode call
            started = time.monotonic()
            infos.update(zip((p.name for p, _ in batch), encode()))
            share = (time.monotonic() - started) / len(batch)
            seconds.update({p.name: share for p, _ in batch})

        images = [(p, out) for p, out in jobs if p.kind == "image"]
        videos = [(p, out) for p, out in jobs if p.kind == "video"]
        if images:
            timed(images, lambda: render_images(source, images))
        if videos:
            timed(videos, lambda: render_videos(source, videos, **params.options()))
        for profile, out in jobs:
            if profile.kind == "poster":
                timed([(profile, out)], lambda p=profile, o=out: [render_poster(source, p, o, start=params.start,
                                                                               end=params.end)])
        for profile, out in jobs:
            info = infos[profile.name]
            key = _effective(profile, params).key()
            ext = "gif" if info.mime == "image/gif" else profile_ext(profile)
            suffix = "-" + hashlib.sha256(key.encode()).hexdigest()[:12] if key else ""
            storage_key = f"renditions/{asset_sha256[:2]}/{asset_sha256}/{profile.name}-v{profile.version}{suffix}.{ext}"
            storage.put_file(storage_key, Path(info.path))
            like = RenditionRecord(storage_key=storage_key, mime=info.mime, bytes=info.bytes,
                                   sha256=sha256_file(info.path), width=info.width, height=info.height,
                                   duration=info.duration)
            try:
                with _unit_of_work(session) as work:
                    record = _record(work, asset_sha256, profile, key, like, encode_seconds=seconds[profile.name])
                    made[profile.name] = (_to_rendition(record), False)
            except IntegrityError:  # another worker indexed the same rendition first; ours was encoded too
                with _unit_of_work(session) as work:
                    winner = _lookup(work, asset_sha256, profile, key)
                    work.execute(update(RenditionRecord).where(RenditionRecord.id == winner.id)
                                 .values(cache_misses=RenditionRecord.cache_misses + 1))
                    made[profile.name] = (_to_rendition(winner), False)
    return made


def profile_ext(profile) -> str:  # noqa: ANN001 - any media profile
    return profile.ext
