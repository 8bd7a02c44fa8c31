"""The S3-compatible media store against moto's S3 server on loopback.

Covers: S3Storage creates its bucket on the first put; put_file / exists / local_path round-trip
the bytes, and local_path keeps a download cache; a key prefix in the URL is honoured; unsafe
keys (`../x`, `/abs`, `a//b`) raise ValueError before any request; open_storage picks S3 when
FANOUT_STORAGE_URL is set, the local folder otherwise, and refuses a non-s3 URL with a clear
message. End to end with FANOUT_STORAGE_URL set: a story with an image is created, rendered and
published in-process to a website account; the asset and its renditions are in the bucket (not
in the local media folder) and the site page is written.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from services.storage import LocalStorage, S3Storage, open_storage
from tests.helpers import RecordingQueue, approve


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Test credentials only; no profile or config file of the machine leaks in."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fanout-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fanout-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture
def bucket() -> str:
    return f"fanout-test-{uuid.uuid4().hex[:10]}"  # moto's state lives as long as the process


def raw_client(endpoint: str):  # noqa: ANN201
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def bucket_keys(endpoint: str, bucket: str) -> set[str]:
    pages = raw_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def test_bucket_is_created_on_first_put_and_bytes_round_trip(s3_endpoint: str, aws_env: None, bucket: str,
                                                              tmp_path: Path) -> None:
    storage = S3Storage(f"s3://{bucket}?endpoint={s3_endpoint}", tmp_path / "cache")
    client = raw_client(s3_endpoint)
    assert bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}

    payload = bytes(range(256)) * 4096 + "县融媒体中心".encode()
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    assert not storage.exists("assets/ab/abc.bin")
    storage.put_file("assets/ab/abc.bin", src)

    assert bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert storage.exists("assets/ab/abc.bin")
    assert not storage.exists("assets/ab/other.bin")
    assert client.get_object(Bucket=bucket, Key="assets/ab/abc.bin")["Body"].read() == payload

    local = storage.local_path("assets/ab/abc.bin")
    assert local.read_bytes() == payload
    assert local.is_relative_to(tmp_path / "cache")
    # The download is cached: it is served even after the object is gone from the bucket.
    client.delete_object(Bucket=bucket, Key="assets/ab/abc.bin")
    assert not storage.exists("assets/ab/abc.bin")
    assert storage.local_path("assets/ab/abc.bin") == local and local.read_bytes() == payload

    # A second store on the same bucket (another machine) downloads into its own cache.
    storage.put_file("assets/ab/abc.bin", src)
    other = S3Storage(f"s3://{bucket}?endpoint={s3_endpoint}", tmp_path / "cache2")
    assert other.local_path("assets/ab/abc.bin").read_bytes() == payload
    with pytest.raises(ClientError):
        other.local_path("assets/ab/missing.bin")
    assert not list((tmp_path / "cache2").rglob(".tmp-*")), "a failed download leaves no partial file"

    storage.delete("assets/ab/abc.bin")
    assert not storage.exists("assets/ab/abc.bin")


def test_key_prefix_from_the_url(s3_endpoint: str, aws_env: None, bucket: str, tmp_path: Path) -> None:
    storage = S3Storage(f"s3://{bucket}/county/media?endpoint={s3_endpoint}", tmp_path / "cache")
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello")
    storage.put_file("assets/00/a.txt", src)
    assert bucket_keys(s3_endpoint, bucket) == {"county/media/assets/00/a.txt"}
    assert storage.exists("assets/00/a.txt")


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/../b", "", "a/./b"])
def test_unsafe_keys_raise_value_error(s3_endpoint: str, aws_env: None, bucket: str, tmp_path: Path,
                                       key: str) -> None:
    storage = S3Storage(f"s3://{bucket}?endpoint={s3_endpoint}", tmp_path / "cache")
    src = tmp_path / "f"
    src.write_bytes(b"x")
    with pytest.raises(ValueError, match="unsafe storage key"):
        storage.put_file(key, src)
    with pytest.raises(ValueError):
        storage.exists(key)
    with pytest.raises(ValueError):
        storage.local_path(key)
    assert not (tmp_path / "x").exists() and not (tmp_path / "cache").exists()


def test_open_storage_picks_the_backend_from_settings(s3_endpoint: str, aws_env: None, bucket: str,
                                                      tmp_path: Path) -> None:
    from services.config import Settings

    s3 = open_storage(Settings(home=tmp_path, storage_url=f"s3://{bucket}?endpoint={s3_endpoint}"))
    assert isinstance(s3, S3Storage) and s3.bucket == bucket
    assert s3.cache_dir == tmp_path.resolve() / "cache"
    assert s3.client.meta.endpoint_url == s3_endpoint

    local = open_storage(Settings(home=tmp_path))
    assert isinstance(local, LocalStorage) and local.root == tmp_path.resolve() / "media"

    for url in ("file:///srv/media", "http://minio:9000/fanout", "minio:9000/fanout"):
        with pytest.raises(ValueError, match=r"FANOUT_STORAGE_URL must look like s3://bucket\?endpoint="):
            open_storage(Settings(home=tmp_path, storage_url=url))


def test_story_media_and_renditions_live_in_the_bucket(s3_endpoint: str, aws_env: None, bucket: str, home: Path,
                                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from services import dispatch
    from services.accounts import add_account
    from services.config import get_settings, reset_settings
    from services.db import session_scope
    from services.models import Asset, RenditionRecord
    from services.stories import MediaInput, StoryInput, create_story

    monkeypatch.setenv("FANOUT_STORAGE_URL", f"s3://{bucket}?endpoint={s3_endpoint}")
    reset_settings()
    settings = get_settings()
    storage = open_storage(settings)
    assert isinstance(storage, S3Storage)

    image = tmp_path / "现场.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (1600, 1000), (180, 60, 40)).save(buffer, "JPEG", quality=90)
    image.write_bytes(buffer.getvalue())
    with session_scope() as session:
        story = create_story(session, storage, StoryInput(
            title="老旧小区改造开工", body_markdown="改造涉及 12 个小区。",
            media=[MediaInput(path=image, role="cover", alt="施工现场")]))
        story_id = story.id
        account = add_account(session, settings, "website", "官网")
        account_id = account.id
    with session_scope() as session:
        asset = session.get(Asset, story.current.media[0].asset_sha256)
        asset_key = asset.storage_key
    assert asset_key in bucket_keys(s3_endpoint, bucket)

    queue = RecordingQueue()
    approve(settings, storage, story_id)
    with session_scope() as session:
        planned = dispatch.plan_publication(session, queue, story_id, account_ids=[account_id])
    (delivery_id,) = planned.created
    assert dispatch.render_delivery(settings, storage, queue, delivery_id, worker="test") == "ready"
    assert dispatch.publish_delivery(settings, storage, queue, delivery_id, worker="test") == "published"

    with session_scope() as session:
        renditions = list(session.query(RenditionRecord).filter_by(asset_sha256=asset.sha256))
        view = dispatch.delivery_view(dispatch.get_delivery(session, delivery_id))
    keys = bucket_keys(s3_endpoint, bucket)
    assert {r.profile for r in renditions} >= {"web_480", "web_960", "web_1440"}
    for rendition in renditions:
        assert rendition.storage_key in keys, f"rendition {rendition.profile} not in the bucket"
    assert not [p for p in settings.media_dir.rglob("*") if p.is_file()], "S3 mode stores nothing in home/media"

    page = settings.site_dir / "stories" / str(story_id) / "index.html"
    assert page.is_file()
    html = page.read_text(encoding="utf-8")
    assert "老旧小区改造开工" in html and "施工现场" in html
    site_media = [p for p in (settings.site_dir / "media").rglob("*") if p.is_file()]
    rendition_hashes = {r.sha256 for r in renditions}
    assert site_media and {p.stem for p in site_media} <= rendition_hashes
    assert view["state"] == "published" and view["remote_url"] == f"{settings.public_url}stories/{story_id}/"
