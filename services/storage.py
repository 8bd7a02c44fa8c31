"""The media store: a local folder by default, S3-compatible (MinIO) when configured.

Keys are content addressed (`assets/ab/<sha256>.jpg`, `renditions/ab/<sha256>/<profile>-v1.jpg`)
so writing the same bytes twice is harmless and two workers never fight over a name.
`local_path(key)` gives a file on this machine: the file itself for the local store, a cached
download for S3 (workers on several machines share the bucket, each keeps its own cache).
FANOUT_STORAGE_URL: `s3://BUCKET?endpoint=http://127.0.0.1:9000&region=us-east-1`; the keys
come from the usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlparse

from media.fsutil import atomic_path
from services.config import Settings


class Storage(Protocol):
    def put_file(self, key: str, src: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def local_path(self, key: str) -> Path: ...
    def delete(self, key: str) -> None: ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\x00" in key:
        raise ValueError(f"unsafe storage key: {key!r}")
    return key


def _atomic_copy(src: Path, dest: Path) -> None:
    """Copy `src` onto `dest` so that no reader ever sees half a file (media.fsutil)."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put_file(self, key: str, src: Path) -> None:
        dest = self._path(key)
        if dest.exists() and dest.stat().st_size == src.stat().st_size:
            return  # content addressed: same key, same bytes
        _atomic_copy(src, dest)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"not in the media store: {key}")
        return path

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Storage:
    def __init__(self, url: str, cache_dir: Path) -> None:
        import boto3
        from botocore.config import Config

        parsed = urlparse(url)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.cache_dir = cache_dir
        self._bucket_ready = False
        self.client = boto3.client(
            "s3", endpoint_url=query.get("endpoint"), region_name=query.get("region", "us-east-1"),
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}),
        )

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def ensure_bucket(self) -> None:
        """Create the bucket on first use (a fresh MinIO has none)."""
        from botocore.exceptions import ClientError

        if self._bucket_ready:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)
        self._bucket_ready = True

    def put_file(self, key: str, src: Path) -> None:
        self.ensure_bucket()
        if self.exists(key):
            return
        self.client.upload_file(str(src), self.bucket, self._key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def local_path(self, key: str) -> Path:
        cached = self.cache_dir / "s3" / _check_key(key)
        if cached.is_file():
            return cached
        with atomic_path(cached) as tmp:
            self.client.download_file(self.bucket, self._key(key), str(tmp))
        return cached

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def open_storage(settings: Settings) -> Storage:
    if settings.storage_url:
        if not settings.storage_url.startswith("s3://"):
            raise ValueError("FANOUT_STORAGE_URL must look like s3://bucket?endpoint=http://host:9000")
        return S3Storage(settings.storage_url, settings.cache_dir)
    return LocalStorage(settings.media_dir)
