"""Outbox mode: the exact package a person posts by hand, and recording that they did.

A delivery goes to the outbox instead of a platform API when its account is in outbox mode,
when the channel has no publishing API (视频号), or when a live account has none of the
credentials its channel needs. The package is what the API call would have sent, nothing
less: the text fields as .txt files, the rendition files under readable names, a
manifest.json (ids, sha256 of every file, the post's content hash) and a README in Chinese
with the channel's checklist. It is written under FANOUT_HOME/outbox/<delivery id>/ —
atomically (a temp directory renamed into place), so a person never downloads half a package —
and offered as a zip in the web app. The delivery then waits in state `outbox`, visibly,
until someone records the post's URL (`record_posted`: outbox → published, audited) or
gives up on it.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.base import AccountData, Channel, Post
from services import audit
from services.config import Settings
from services.errors import NotFound, ValidationError
from services.models import Delivery, DeliveryState as S, User, utcnow
from services.storage import Storage
from services.users import require_role

MANIFEST_FORMAT = 1
_UNSAFE_NAME = re.compile(r"[^0-9A-Za-z._\-\u4e00-\u9fff]+")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def goes_to_outbox(channel: Channel, account: AccountData) -> bool:
    """Whether this account's deliveries are packaged for a person instead of sent."""
    if account.mode == "outbox" or not channel.supports_live:
        return True
    needed = getattr(channel, "credential_keys", ())
    return bool(needed) and not all(account.credentials.get(key) for key in needed)


def package_dir(settings: Settings, delivery_id: int) -> Path:
    return settings.outbox_dir / str(int(delivery_id))


def _file_name(index: int, role: str, name: str) -> str:
    base = _UNSAFE_NAME.sub("_", Path(name).name).strip("._") or "file"
    return f"{index:02d}-{_UNSAFE_NAME.sub('_', role)}-{base}"


def write_package(settings: Settings, channel: Channel, post: Post, account: AccountData, *,
                  delivery_id: int) -> Path:
    """Write the outbox package for a delivery (files must carry local paths); returns its dir.

    Idempotent: a package already in place for this delivery is kept as it is.
    """
    final = package_dir(settings, delivery_id)
    if (final / "manifest.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{delivery_id}-", dir=final.parent))
    try:
        files = []
        if post.files:
            (work / "files").mkdir()
        for index, item in enumerate(post.files, start=1):
            if not item.path:
                raise ValueError(f"post file {item.key} has no local path")
            name = _file_name(index, item.role, item.name)
            shutil.copyfile(item.path, work / "files" / name)
            files.append({"file": f"files/{name}", "role": item.role, "mime": item.mime, "bytes": item.bytes,
                          "sha256": item.sha256, "width": item.width, "height": item.height})
        texts = channel.outbox_texts(post)
        for name, text in texts.items():
            safe = _UNSAFE_NAME.sub("_", Path(name).name) or "text.txt"
            (work / safe).write_text(text, encoding="utf-8")
        checklist = channel.outbox_checklist(post)
        manifest = {
            "format": MANIFEST_FORMAT, "delivery_id": delivery_id, "story_id": post.story_id,
            "version": post.version, "channel": channel.name, "account": account.name,
            "content_hash": post.content_hash(), "fields": dict(post.fields), "texts": sorted(texts),
            "files": files, "checklist": checklist,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        title = channel.title_zh or channel.name
        readme = [f"Fanout 人工发布包 · {title} ·「{account.name}」", f"稿件 {post.story_id} 第 {post.version} 版，发布任务 {delivery_id}",
                  "", "步骤："] + [f"{n}. {step}" for n, step in enumerate(checklist, start=1)] + [
                  "", "文件：" if files else "（本条内容没有附件）"] + [f"- {f['file']}（{f['role']}）" for f in files]
        (work / "README.txt").write_text("\n".join(readme) + "\n", encoding="utf-8")
        os.rename(work, final)
    except FileExistsError:  # another worker finished the same package first
        shutil.rmtree(work, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        if (final / "manifest.json").is_file():
            return final
        raise exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final


def manifest(settings: Settings, delivery_id: int) -> dict[str, Any]:
    path = package_dir(settings, delivery_id) / "manifest.json"
    if not path.is_file():
        raise NotFound(f"no outbox package for delivery {delivery_id}", "该发布任务没有人工发布包")
    return json.loads(path.read_text(encoding="utf-8"))


def zip_bytes(settings: Settings, delivery_id: int) -> bytes:
    """The package as a zip (names kept, deflated text, stored media)."""
    root = package_dir(settings, delivery_id)
    manifest(settings, delivery_id)  # NotFound when there is none
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            compress = zipfile.ZIP_DEFLATED if path.suffix in (".txt", ".json") else zipfile.ZIP_STORED
            archive.write(path, f"fanout-{delivery_id}/{rel}", compress_type=compress)
    return buffer.getvalue()


def waiting(session: Session) -> list[Delivery]:
    """Deliveries waiting for a person, oldest first."""
    return list(session.scalars(select(Delivery).where(Delivery.state == S.OUTBOX.value)
                                .order_by(Delivery.updated_at, Delivery.id)))


def record_posted(session: Session, delivery_id: int, url: str, actor: User) -> Delivery:
    """A person posted the package and gives its URL: outbox → published (audited)."""
    from services.dispatch import transition

    require_role(actor, "editor", "ops", "admin")
    url = (url or "").strip()
    if not _URL.match(url) or len(url) > 1000:
        raise ValidationError(f"not a post URL: {url[:80]!r}", "请填写帖子的完整链接（以 http:// 或 https:// 开头）")
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", "发布任务不存在")
    if not transition(session, delivery_id, [S.OUTBOX], S.PUBLISHED, worker=f"user:{actor.username}",
                      message=f"posted by hand: {url}", remote_id=url[:255], remote_url=url, published_at=utcnow(),
                      last_error=None, last_error_code=None):
        raise ValidationError(f"delivery {delivery_id} is {delivery.state}, not waiting in the outbox",
                              "该发布任务不在待人工发布状态")
    audit.record(session, actor=actor, action="outbox.posted", object_type="story", object_id=delivery.story_id,
                 summary=f"delivery {delivery_id} ({delivery.account.channel}/{delivery.account.name}) "
                         f"posted by hand: {url}", data={"delivery_id": delivery_id, "url": url})
    session.refresh(delivery)
    return delivery
