"""WeChat Official Account (微信公众号): an article saved as a draft, then published (channels.md).

Where the numbers come from (../shared/channels.md, "WeChat Official Account"; base
https://api.weixin.qq.com/cgi-bin — an account's api_base replaces only scheme and host):

* Article limits: title ≤32 characters, author ≤16, digest ≤128, content under 20,000
  characters and under 1 MB with no JavaScript. The content is the article's HTML, so the
  HTML is what is counted (code points), tags included.
* Body images may only be URLs returned by `media/uploadimg` (jpg/png under 1 MB; external
  images are stripped by the platform), so `render` writes a placeholder `fanout-file:<key>`
  as each image's src and `publish` uploads the `wechat_body` rendition and swaps the URL in.
  1 MB is read as 10^6 bytes (the safe side, like media/profiles.py `wechat_body`).
* Cover: `material/add_material?type=image` (≤10 MB) of the cover's `wechat_cover`
  rendition (2.35:1, 900×383); `pic_crop_235_1` / `pic_crop_1_1` are "X1_Y1_X2_Y2" boxes on
  that image, normalised to 0..1 with at most 6 decimals (the 1:1 box is the centred square,
  as `wechat_cover_square` is cut). The square rendition travels in the Post for reviewers
  and the outbox package; the API takes only the one cover image and the crop boxes.
* access_token lives 7200 s and a new `/token` call invalidates the previous token after
  5 minutes, so a token is cached per process (by appid) and in the account credentials
  ("access_token", "access_token_expires_at" ISO UTC) and refreshed 5 minutes before it
  expires; errcode 40001/40014/42001 refreshes once and retries the call.
* Publishing is asynchronous: `freepublish/submit` returns a publish_id (the post is then
  on its way: a timeout here is OutcomeUnknownError), `freepublish/get` is polled every
  `poll_interval` seconds for at most `poll_timeout` seconds (publish_status 0 published,
  1 publishing, 2 originality check failed, 3 failed, 4 rejected by review, 5/6 deleted or
  banned). Still publishing at the end → `PublishPending` (an OutcomeUnknownError carrying
  the publish_id); `reconcile` finds the article in the `freepublish/batchget` listing by
  title + content_source_url, or asks `freepublish/get` about a publish_id this process
  submitted, and raises OutcomeUnknownError again while it is still publishing.
* A submit refused with a transient error (45009 daily quota, busy, HTTP 5xx) deletes its
  draft (`draft/delete`, best effort), so the retry does not leave a second draft behind.
* Quota (for account health, through `AccountData.note_quota`): 45009 means none left today;
  when someone records quotas, `maintain` asks `POST /cgi-bin/openapi/quota/get` {cgi_path:
  "/cgi-bin/freepublish/submit"} → quota {daily_limit, used, remain} (WeChat's API, not in
  channels.md). Daily quotas reset at midnight, Asia/Shanghai.
* Errors arrive as HTTP 200 + {"errcode", "errmsg"}; only errcode is matched. -1 (busy) and
  45011 (minute quota) are transient; 45009 (daily quota) is transient until the next
  midnight in Asia/Shanghai; 40164 (caller IP not whitelisted) is permanent with a message
  for ops; the rest are permanent with the code and its meaning.

Label and texts: the campaign label is the first paragraph of the content and starts the
digest (【label】summary, cut at a sentence end to 128). A title over 32 characters is never
cut: the story's short title is used when it fits, else RenderError. An author over 16
characters keeps the whole names that fit and adds 等 (no name fits: no byline). Tags are kept in the Post for the outbox
package (公众号 articles have no hashtags through this API). Videos are not embedded (the
draft API cannot carry them); when the story has a video and a page link, a line points
readers to 阅读原文.

Settings: open_comment (0/1, default 0), only_fans_can_comment (0/1, default 0),
poll_interval (seconds, default 3), poll_timeout (seconds, default 60),
connect_timeout / read_timeout (channels/base.py).
Credentials: {"appid", "secret"} (+ the cached "access_token", "access_token_expires_at").
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from channels import sitefiles
from channels.base import (
    AccountData,
    Channel,
    ChannelError,
    HttpClient,
    MediaItem,
    OutcomeUnknownError,
    PermanentChannelError,
    Post,
    PostFile,
    Receipt,
    RenderError,
    Rendition,
    RenditionSet,
    StoryData,
    TransientChannelError,
)
from channels.text import cut_at_sentence, markdown_to_safe_html, summarize

DEFAULT_BASE = "https://api.weixin.qq.com"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PLACEHOLDER = "fanout-file:"  # src of a body image in rendered content: fanout-file:<PostFile key>
TOKEN_CODES = frozenset({"40001", "40014", "42001"})  # refresh the token once, then retry
JPEG_PNG = ("image/jpeg", "image/png")
COVER_PROFILE = "wechat_cover"
SQUARE_PROFILE = "wechat_cover_square"
BODY_PROFILE = "wechat_body"

# errcode -> what it means, in the words ops need (channels.md; the rest are WeChat's table).
ERRORS: dict[str, str] = {
    "-1": "the platform is busy",
    "40001": "access token invalid or not the latest",
    "40014": "access token invalid",
    "42001": "access token expired",
    "40013": "invalid appid (check the account credentials)",
    "40125": "invalid appsecret (check the account credentials)",
    "40164": ("the calling server's IP address is not on the account's IP whitelist: add this "
              "worker's public IP in the 公众平台 under 设置与开发 → 基本配置 → IP白名单"),
    "40005": "invalid file type",
    "40007": "invalid media_id",
    "40009": "invalid image size",
    "44003": "empty content",
    "45002": "content too long",
    "45003": "title too long",
    "45004": "digest too long",
    "45009": "daily API quota reached",
    "45011": "API minute quota reached",
    "45110": "author too long",
    "53503": "the draft did not pass the publish checks",
    "53504": "the draft must be opened on the 公众平台 website first",
    "53505": "the draft must be saved by hand on the 公众平台 website before it can be published",
}

PUBLISH_FAILURES: dict[int, str] = {
    2: "originality check failed (原创声明失败)",
    3: "publishing failed (常规失败)",
    4: "rejected by the platform's review (平台审核不通过)",
    5: "deleted after publishing (已删除)",
    6: "banned after publishing (已封禁)",
}

_NAME_SEPARATORS = "、，,;；/ "
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)

# Per-process caches (the publish pool runs threads): tokens by appid, uploads by
# (appid, kind, sha256) -> url / media_id, publishes still running by (appid, content hash).
_LOCK = threading.Lock()
_APPID_LOCKS: dict[str, threading.Lock] = {}
_TOKENS: dict[str, tuple[str, datetime]] = {}
_UPLOADS: dict[tuple[str, str, str], str] = {}
_PENDING: dict[tuple[str, str], str] = {}


def reset_caches() -> None:
    """Forget every cached token, upload and pending publish of this process (tests)."""
    with _LOCK:
        _TOKENS.clear()
        _UPLOADS.clear()
        _PENDING.clear()


def _appid_lock(appid: str) -> threading.Lock:
    with _LOCK:
        return _APPID_LOCKS.setdefault(appid, threading.Lock())


class PublishPending(OutcomeUnknownError):
    """Submitted (the platform has a publish_id) but not finished within poll_timeout."""

    def __init__(self, message: str, *, publish_id: str, code: str | None = "publishing") -> None:
        super().__init__(message, code=code, hint={"publish_id": str(publish_id)})
        self.publish_id = publish_id


# ----------------------------------------------------------------------------- pure helpers


def _fmt(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def crop_box(width: int, height: int, aspect: float) -> str:
    """The largest centred box of `aspect` (w/h) in a width×height image, as WeChat's
    "X1_Y1_X2_Y2" (0..1 from the top-left, ≤6 decimals). Within a pixel of the whole image
    it is "0_0_1_1"."""
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    if width / height > aspect:  # too wide: full height, centred columns
        box = height * aspect
        if width - box < 1:
            return "0_0_1_1"
        x1 = (width - box) / 2 / width
        return f"{_fmt(x1)}_0_{_fmt(1 - x1)}_1"
    box = width / aspect
    if height - box < 1:
        return "0_0_1_1"
    y1 = (height - box) / 2 / height
    return f"0_{_fmt(y1)}_1_{_fmt(1 - y1)}"


def cut_text(text: str, limit: int) -> str:
    """Plain text cut to `limit` characters: after a sentence end (。！？；, closing quotes
    kept) in the last two thirds, else at a clause mark + "…", else a hard cut + "…"."""
    text = " ".join((text or "").split())
    if len(text) > limit and limit <= 1:
        return text[:limit]
    return cut_at_sentence(text, limit)


def byline(author: str, limit: int) -> str:
    """The author line within `limit` characters: whole names that fit, then 等
    ("王芳、李明、张华等"). When not even the first name fits the line is left empty: a
    byline is optional on the platform, a truncated name is a wrong name."""
    author = " ".join((author or "").split())
    if len(author) <= limit:
        return author
    parts = re.split(f"([{re.escape(_NAME_SEPARATORS)}])", author)
    kept = ""
    for i in range(0, len(parts), 2):
        candidate = kept + (parts[i - 1] if i else "") + parts[i]
        if len(candidate.rstrip(_NAME_SEPARATORS)) + 1 > limit:
            break
        kept = candidate
    kept = kept.rstrip(_NAME_SEPARATORS)
    return kept + "等" if kept else ""


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------- the channel


class WechatMpChannel(Channel):
    """微信公众号: draft/add, then freepublish/submit and poll freepublish/get."""

    name: ClassVar[str] = "wechat_mp"
    title_zh: ClassVar[str] = "微信公众号"
    short_zh: ClassVar[str] = "公众号"
    title_max: ClassVar[int | None] = 32
    body_max: ClassVar[int | None] = 19_999  # characters of content HTML ("less than 20000")
    body_max_bytes: ClassVar[int] = 1_000_000  # UTF-8 bytes of content HTML ("less than 1 MB")
    author_max: ClassVar[int] = 16
    digest_max: ClassVar[int] = 128
    length_rule: ClassVar[str] = "chars"
    max_images: ClassVar[int | None] = 60  # ours: one upload call each, keeps a publish bounded
    image_profiles: ClassVar[tuple[str, ...]] = (COVER_PROFILE, SQUARE_PROFILE, BODY_PROFILE)
    video_profiles: ClassVar[tuple[str, ...]] = ()
    accepted_types: ClassVar[tuple[str, ...]] = JPEG_PNG
    body_image_max_bytes: ClassVar[int] = 1_000_000  # media/uploadimg: under 1 MB
    cover_max_bytes: ClassVar[int] = 10 * 1024 * 1024  # material/add_material image: 10 MB
    url_allowance: ClassVar[int] = 200  # characters reserved per image for its uploadimg URL
    min_seconds_between_requests: ClassVar[float] = 0.0
    max_parallel_posts: ClassVar[int | None] = 4  # ours: each post uploads images and polls freepublish
    supports_live: ClassVar[bool] = True
    supports_retract: ClassVar[bool] = True
    credential_keys: ClassVar[tuple[str, ...]] = ("appid", "secret")
    token_margin: ClassVar[timedelta] = timedelta(minutes=5)  # refresh this long before expiry
    poll_interval: ClassVar[float] = 3.0  # seconds between freepublish/get calls
    poll_timeout: ClassVar[float] = 60.0  # then PublishPending (publish_time_limit is 120 s)
    busy_retry_after: ClassVar[float] = 30.0  # errcode -1
    minute_quota_retry_after: ClassVar[float] = 60.0  # errcode 45011
    quota_reset_margin: ClassVar[float] = 60.0  # seconds after Shanghai midnight (45009)
    reconcile_scan: ClassVar[int] = 100  # newest published articles searched by reconcile
    batch_size: ClassVar[int] = 20  # freepublish/batchget count: 1..20

    # ------------------------------------------------------------------ clock (tests patch)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    # ------------------------------------------------------------------ render

    def render(self, story: StoryData, renditions: RenditionSet) -> Post:
        sitefiles.check_story(story, title_max=None, body_max=None, where="the 公众号")
        title = self._title(story)
        label = " ".join((story.label or "").split())
        files = sitefiles.PostFiles()

        covers = [m for m in story.media_by_role("cover") if m.kind == "image"]
        if not covers:
            raise RenderError("the 公众号 needs a cover image (thumb_media_id) and the story has none")
        cover = covers[0]
        cover_set = renditions.get(cover.sha256, {})
        thumb = cover_set.get(COVER_PROFILE)
        if thumb is None:
            raise RenderError(f"cover image {cover.sha256[:12]} has no {COVER_PROFILE} rendition")
        self._check_image(thumb, self.cover_max_bytes, "cover")
        files.add("cover", thumb)
        square = cover_set.get(SQUARE_PROFILE)
        if square is not None:
            files.add("cover_square", square)

        images = sitefiles.story_images(story, self.max_images, "the 公众号")
        body_keys: list[str] = []
        lead = ""
        if cover_set.get(BODY_PROFILE) is not None:
            lead = self._figure(cover, cover_set[BODY_PROFILE], files, body_keys)
        gallery = []
        for item in images:
            if item.role == "cover":
                continue
            rendition = renditions.get(item.sha256, {}).get(BODY_PROFILE)
            if rendition is None:
                raise RenderError(f"image {item.sha256[:12]} has no {BODY_PROFILE} rendition")
            gallery.append(self._figure(item, rendition, files, body_keys))

        # External images would be stripped by the platform: only uploaded ones may stay.
        body_html = _IMG_TAG.sub("", markdown_to_safe_html(story.body_markdown or ""))
        parts = [f"<p>{html.escape(label)}</p>" if label else "", lead, body_html, *gallery]
        link = (story.link or "").strip()
        if link and any(m.kind == "video" for m in story.media):
            parts.append("<p>（本文视频请点击文末“阅读原文”观看）</p>")
        content = "\n".join(p for p in parts if p)
        if not re.sub(r"<[^>]*>", "", body_html).strip() and not body_keys:
            raise RenderError("the article has no content (公众号 errcode 44003)")
        self._check_content(content, len(body_keys))

        summary = " ".join((story.summary or "").split())
        prefix = f"【{label}】" if label else ""
        room = self.digest_max - len(prefix)
        if room < 10:  # a label this long leaves no room for a summary: the label alone
            digest = cut_text(label, self.digest_max)
        else:
            digest = prefix + (cut_text(summary, room) if summary else summarize(story.body_markdown or "", room))

        width, height = thumb.width or 900, thumb.height or 383
        fields: dict[str, Any] = {
            "title": title,
            "author": byline(story.author, self.author_max),
            "digest": digest,
            "content": content,
            "content_source_url": link,
            "label": label,
            "tags": [t for t in (" ".join(t.split()) for t in story.tags) if t],
            "thumb": thumb.key,
            "cover_square": square.key if square is not None else "",
            "body_images": body_keys,
            "pic_crop_235_1": crop_box(width, height, 2.35),
            "pic_crop_1_1": crop_box(width, height, 1.0),
        }
        return Post(channel=self.name, story_id=story.story_id, version=story.version,
                    fields=fields, files=files.files())

    def _title(self, story: StoryData) -> str:
        title = " ".join((story.title or "").split())
        if len(title) <= self.title_max:
            return title
        short = " ".join((story.short_title or "").split())
        if short and len(short) <= self.title_max:
            return short
        raise RenderError(
            f"title has {len(title)} characters; the 公众号 allows at most {self.title_max} and a title is "
            f"never cut: give the story a short title of at most {self.title_max} characters"
            + (f" (the short title has {len(short)})" if short else ""))

    def _check_image(self, rendition: Rendition, max_bytes: int, what: str) -> None:
        if rendition.mime not in JPEG_PNG:
            raise RenderError(f"{what} rendition {rendition.profile} is {rendition.mime}; the 公众号 takes jpg/png")
        if rendition.bytes > max_bytes:
            raise RenderError(f"{what} rendition {rendition.profile} has {rendition.bytes} bytes; "
                              f"the 公众号 takes at most {max_bytes}")

    def _figure(self, item: MediaItem, rendition: Rendition, files: sitefiles.PostFiles,
                body_keys: list[str]) -> str:
        self._check_image(rendition, self.body_image_max_bytes, "body image")
        files.add("body", rendition)
        if rendition.key not in body_keys:
            body_keys.append(rendition.key)
        size = ""
        if rendition.width and rendition.height:
            size = f' width="{int(rendition.width)}" height="{int(rendition.height)}"'
        img = (f'<p style="text-align: center;"><img src="{html.escape(PLACEHOLDER + rendition.key, quote=True)}"'
               f' alt="{html.escape((item.alt or "").strip(), quote=True)}"{size}></p>')
        caption = (item.caption or "").strip()
        if caption:
            img += f'\n<p style="text-align: center; font-size: 14px; color: #888888;">{html.escape(caption)}</p>'
        return img

    def _check_content(self, content: str, images: int, *, final: bool = False) -> None:
        """Render reserves `url_allowance` characters per image for its URL; publish checks the real thing."""
        extra = 0 if final else images * self.url_allowance
        chars = len(content) + extra
        size = len(content.encode("utf-8")) + extra
        error = PermanentChannelError if final else RenderError
        if chars > self.body_max:
            raise error(f"article HTML has {chars} characters (image URLs included); the 公众号 takes "
                        f"fewer than {self.body_max + 1}", code="45002")
        if size >= self.body_max_bytes:
            raise error(f"article HTML has {size} bytes; the 公众号 takes less than 1 MB", code="45002")

    # ------------------------------------------------------------------ outbox

    def outbox_texts(self, post: Post) -> dict[str, str]:
        names = {f.key: f.name for f in post.files}
        content = post.fields.get("content", "")
        for key, name in names.items():
            content = content.replace(html.escape(PLACEHOLDER + key, quote=True), f"files/{name}")
        texts = {
            "title.txt": post.fields.get("title", ""),
            "author.txt": post.fields.get("author", ""),
            "digest.txt": post.fields.get("digest", ""),
            "content.html": content,
            "source_url.txt": post.fields.get("content_source_url", ""),
            "tags.txt": " ".join(f"#{t}" for t in post.fields.get("tags", ())),
        }
        return {name: text for name, text in texts.items() if text}

    def outbox_checklist(self, post: Post) -> list[str]:
        names = {f.key: f.name for f in post.files}
        thumb = names.get(post.fields.get("thumb", ""), "")
        square = names.get(post.fields.get("cover_square", ""), "")
        steps = [
            "登录微信公众平台（mp.weixin.qq.com），在“内容与互动 → 草稿箱”新建图文消息",
            "粘贴 title.txt 为标题、author.txt 为作者、digest.txt 为摘要（不要改动活动标签）",
            "在浏览器中打开 content.html，全选复制后粘贴到正文；正文图片按顺序重新上传 files/ 中对应的图片",
            f"封面上传 files/{thumb}（2.35:1）" + (f"，方形封面（1:1）参照 files/{square} 选择裁剪区域" if square else ""),
        ]
        if post.fields.get("content_source_url"):
            steps.append("把 source_url.txt 中的网址填入“原文链接”")
        if post.fields.get("tags"):
            steps.append("按 tags.txt 添加话题标签（可选）")
        steps += ["保存并预览，确认无误后点击“发表”",
                  "发表后复制文章链接，在 Fanout 中“登记已发布”"]
        return steps

    # ------------------------------------------------------------------ publish

    def publish(self, post: Post, account: AccountData) -> Receipt:
        sitefiles.check_post(post, self.name, ("title", "content", "digest", "thumb", "body_images",
                                               "pic_crop_235_1", "pic_crop_1_1"))
        api = _Api(self, account)
        by_key = {f.key: f for f in post.files}
        content = post.fields["content"]
        for key in post.fields["body_images"]:
            url = api.upload_image(_file(by_key, key), self.body_image_max_bytes)
            content = content.replace(html.escape(PLACEHOLDER + key, quote=True), html.escape(url, quote=True))
        if PLACEHOLDER in content:
            raise PermanentChannelError("article HTML still references an image that was not uploaded")
        self._check_content(content, 0, final=True)
        thumb_file = _file(by_key, post.fields["thumb"])

        article = {
            "title": post.fields["title"],
            "author": post.fields.get("author", ""),
            "digest": post.fields["digest"],
            "content": content,
            "content_source_url": post.fields.get("content_source_url", ""),
            "thumb_media_id": "",
            "need_open_comment": 1 if _truthy(account.setting("open_comment", 0)) else 0,
            "only_fans_can_comment": 1 if _truthy(account.setting("only_fans_can_comment", 0)) else 0,
            "pic_crop_235_1": post.fields["pic_crop_235_1"],
            "pic_crop_1_1": post.fields["pic_crop_1_1"],
        }
        for attempt in (0, 1):
            article["thumb_media_id"] = api.upload_cover(thumb_file, self.cover_max_bytes, fresh=attempt > 0)
            try:
                draft = api.call("POST", "/cgi-bin/draft/add", json_body={"articles": [article]})
                break
            except PermanentChannelError as exc:
                if exc.code != "40007" or attempt:  # a cached cover media_id deleted meanwhile: upload again
                    raise
        draft_id = str(draft.get("media_id") or "")
        if not draft_id:
            raise PermanentChannelError("draft/add answered without a media_id")

        try:
            submitted = api.call("POST", "/cgi-bin/freepublish/submit", json_body={"media_id": draft_id},
                                 sends_post=True)
        except TransientChannelError:
            api.discard_draft(draft_id)  # certainly not submitted: a retry makes a new draft
            raise
        publish_id = str(submitted.get("publish_id") or "")
        if not publish_id:
            raise OutcomeUnknownError("freepublish/submit answered without a publish_id")
        pending_key = (api.appid, post.content_hash())
        with _LOCK:
            _PENDING[pending_key] = publish_id
        interval = max(0.0, float(account.setting("poll_interval", self.poll_interval)))
        deadline = time.monotonic() + max(0.0, float(account.setting("poll_timeout", self.poll_timeout)))
        while True:
            status, body = self._status(api, publish_id)
            if status == 0:
                with _LOCK:
                    _PENDING.pop(pending_key, None)
                return self._receipt(body, publish_id, draft_media_id=draft_id,
                                     thumb_media_id=article["thumb_media_id"])
            if status in PUBLISH_FAILURES:
                with _LOCK:
                    _PENDING.pop(pending_key, None)
                raise PermanentChannelError(
                    f"publish {publish_id} {PUBLISH_FAILURES[status]} (draft media_id {draft_id})"
                    + _fail_detail(body), code=f"publish_status_{status}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishPending(f"publish {publish_id} still publishing (status {status}) after "
                                     f"{account.setting('poll_timeout', self.poll_timeout)}s; reconcile will "
                                     f"look for it", publish_id=publish_id)
            self.sleep(min(interval, remaining))

    def _status(self, api: _Api, publish_id: str) -> tuple[int, Mapping[str, Any]]:
        """(publish_status, body); any error here is OutcomeUnknownError: the post was submitted."""
        try:
            body = api.call("POST", "/cgi-bin/freepublish/get", json_body={"publish_id": publish_id})
        except ChannelError as exc:
            raise PublishPending(f"submitted as publish {publish_id}, then asking for its status failed: {exc}",
                                 publish_id=publish_id, code=exc.code or "publishing") from None
        try:
            return int(body.get("publish_status")), body
        except (TypeError, ValueError):
            raise PublishPending(f"publish {publish_id}: no publish_status in the answer",
                                 publish_id=publish_id) from None

    def _receipt(self, body: Mapping[str, Any], publish_id: str, **extra: str) -> Receipt:
        items = ((body.get("article_detail") or {}).get("item")) or []
        urls = [str(i.get("article_url")) for i in items if isinstance(i, Mapping) and i.get("article_url")]
        article_id = str(body.get("article_id") or "")
        if not article_id:
            raise PublishPending(f"publish {publish_id} succeeded without an article_id", publish_id=publish_id)
        return Receipt(remote_id=article_id, url=urls[0] if urls else None,
                       extra={"article_id": article_id, "publish_id": publish_id, "article_urls": urls, **extra})

    # ------------------------------------------------------------------ reconcile / retract

    def reconcile(self, post: Post, account: AccountData, *, hint: Mapping[str, Any] | None = None) -> Receipt | None:
        """Find the article by title + link in freepublish/batchget; else ask freepublish/get
        about the publish_id this post was submitted under (`hint`, stored by the dispatcher,
        or this process's memory). Still publishing: OutcomeUnknownError, never "not posted"."""
        api = _Api(self, account)
        title = post.fields.get("title", "")
        link = post.fields.get("content_source_url", "")
        digest = post.fields.get("digest", "")
        matches: list[tuple[bool, str, str]] = []  # (digest equal, article_id, url)
        offset = 0
        while offset < self.reconcile_scan:
            body = api.call("POST", "/cgi-bin/freepublish/batchget",
                            json_body={"offset": offset, "count": self.batch_size, "no_content": 1})
            rows = body.get("item") or []
            for row in rows:
                for news in ((row.get("content") or {}).get("news_item") or []):
                    if news.get("is_deleted") or news.get("title") != title:
                        continue
                    if link and news.get("content_source_url") != link:
                        continue
                    matches.append((news.get("digest") == digest, str(row.get("article_id")), news.get("url")))
            offset += len(rows)
            if not rows or offset >= int(body.get("total_count") or 0):
                break
        if matches:
            matches.sort(key=lambda m: not m[0])  # stable: newest first among equal digests
            _, article_id, url = matches[0]
            return Receipt(remote_id=article_id, url=url or None,
                           extra={"article_id": article_id, "found_by": "freepublish/batchget"})
        pending_key = (api.appid, post.content_hash())
        with _LOCK:
            publish_id = _PENDING.get(pending_key)
        if publish_id is None and hint and hint.get("publish_id"):
            publish_id = str(hint["publish_id"])
        if publish_id is None:
            return None
        status, body = self._status(api, publish_id)
        if status == 0:
            with _LOCK:
                _PENDING.pop(pending_key, None)
            return self._receipt(body, publish_id)
        if status in PUBLISH_FAILURES:
            with _LOCK:
                _PENDING.pop(pending_key, None)
            return None
        raise PublishPending(f"publish {publish_id} is still publishing (status {status})", publish_id=publish_id)

    def retract(self, receipt: Receipt, account: AccountData) -> None:
        article_id = (receipt.remote_id or "").strip()
        if not article_id:
            raise PermanentChannelError("a 公众号 retraction needs the article_id (Receipt.remote_id)")
        _Api(self, account).call("POST", "/cgi-bin/freepublish/delete", json_body={"article_id": article_id})

    # ------------------------------------------------------------------ upkeep

    def maintain(self, account: AccountData, now: datetime) -> list[str]:
        """Keep a fresh access_token (refreshing it 5 minutes early) and report what stops it."""
        if account.mode != "live":
            return []
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        if not account.credentials.get("appid") or not account.credentials.get("secret"):
            return [f"wechat_mp account {account.name!r} has no appid/secret: it can only work in outbox mode"]
        try:
            api = _Api(self, account)
            api.token(now=now)
        except ChannelError as exc:
            return [f"wechat_mp account {account.name!r}: cannot get an access_token: {exc}"]
        if account.report_quota is not None:
            try:  # for information only: a failure leaves the number missing, not the account broken
                body = api.call("POST", "/cgi-bin/openapi/quota/get",
                                json_body={"cgi_path": "/cgi-bin/freepublish/submit"})
            except ChannelError:
                return []
            quota = body.get("quota") if isinstance(body.get("quota"), Mapping) else {}
            if isinstance(quota.get("remain"), int):
                api.account.note_quota(remaining=quota["remain"], limit=quota.get("daily_limit"), period="day",
                                       resets_at=_next_midnight(now), what="freepublish/submit calls per day",
                                       source="openapi/quota/get")
        return []


# ----------------------------------------------------------------------------- I/O helpers


def _next_midnight(now: datetime) -> datetime:
    """The next midnight in Asia/Shanghai, when the platform's daily quotas reset."""
    local = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(SHANGHAI)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def _file(by_key: Mapping[str, PostFile], key: str) -> PostFile:
    found = by_key.get(key)
    if found is None:
        raise PermanentChannelError(f"post has no file {key!r}")
    return found


def _fail_detail(body: Mapping[str, Any]) -> str:
    fail = body.get("fail_idx")
    return f" (failed article indexes {fail})" if fail else ""


def _read(f: PostFile, max_bytes: int) -> bytes:
    data = Path(f.path or "").read_bytes()
    if hashlib.sha256(data).hexdigest() != f.sha256:
        raise PermanentChannelError(f"file {f.name} does not match its sha256 (changed in the store?)")
    if len(data) > max_bytes or f.mime not in JPEG_PNG:
        raise PermanentChannelError(f"file {f.name} ({f.mime}, {len(data)} bytes) is not a jpg/png of at most "
                                    f"{max_bytes} bytes")
    return data


@dataclass
class _Token:
    value: str
    expires_at: datetime


class _Api:
    """One account's calls: token from the caches or /token, refresh once on 40001/40014/42001,
    errcodes mapped to typed errors without credentials in them."""

    def __init__(self, channel: WechatMpChannel, account: AccountData) -> None:
        self.channel = channel
        self.account = account
        self.appid = str(account.credentials.get("appid") or "")
        self._secret = str(account.credentials.get("secret") or "")
        if not self.appid or not self._secret:
            raise PermanentChannelError("wechat_mp credentials need appid and secret")
        self.client: HttpClient = channel.http(account, DEFAULT_BASE, "wechat")
        self._current: str | None = None

    # -- tokens

    def _candidates(self) -> list[_Token]:
        out = []
        with _LOCK:
            cached = _TOKENS.get(self.appid)
        if cached:
            out.append(_Token(*cached))
        stored = self.account.credentials.get("access_token")
        expires = _parse_time(self.account.credentials.get("access_token_expires_at"))
        if stored and expires:
            out.append(_Token(str(stored), expires))
        return sorted(out, key=lambda t: t.expires_at, reverse=True)

    def token(self, *, stale: str | None = None, now: datetime | None = None) -> str:
        """A token valid for at least `token_margin`, other than `stale` (the one just refused)."""
        with _appid_lock(self.appid):
            moment = now or self.channel.now()
            if stale is not None:
                with _LOCK:
                    if _TOKENS.get(self.appid, ("",))[0] == stale:
                        _TOKENS.pop(self.appid, None)
            for candidate in self._candidates():
                if candidate.value != stale and candidate.expires_at - self.channel.token_margin > moment:
                    self._remember(candidate, moment, save=False)
                    return candidate.value
            body = self._request("GET", "/cgi-bin/token", params={
                "grant_type": "client_credential", "appid": self.appid, "secret": self._secret})
            value = str(body.get("access_token") or "")
            if not value:
                raise PermanentChannelError("/cgi-bin/token answered without an access_token")
            try:
                lifetime = int(body.get("expires_in") or 7200)
            except (TypeError, ValueError):
                lifetime = 7200
            fresh = _Token(value, moment + timedelta(seconds=lifetime))
            self._remember(fresh, moment, save=True)
            return value

    def _remember(self, token: _Token, moment: datetime, *, save: bool) -> None:
        with _LOCK:
            _TOKENS[self.appid] = (token.value, token.expires_at)
        self._current = token.value
        stored = self.account.credentials.get("access_token")
        if save or stored != token.value:
            self.account = self.account.with_credentials({
                "access_token": token.value,
                "access_token_expires_at": token.expires_at.astimezone(UTC).isoformat(timespec="seconds"),
            })

    # -- calls

    def call(self, method: str, path: str, *, json_body: Any = None, files: Mapping[str, Any] | None = None,
             params: Mapping[str, str] | None = None, sends_post: bool = False) -> Mapping[str, Any]:
        token = self._current or self.token()
        for attempt in (0, 1):
            try:
                return self._request(method, path, params={**(params or {}), "access_token": token},
                                     json_body=json_body, files=files, sends_post=sends_post, retrying=True)
            except PermanentChannelError as exc:
                if exc.code not in TOKEN_CODES or attempt:
                    raise self._mapped(exc) from None
                token = self.token(stale=token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, method: str, path: str, *, params: Mapping[str, str], json_body: Any = None,
                 files: Mapping[str, Any] | None = None, sends_post: bool = False,
                 retrying: bool = False) -> Mapping[str, Any]:
        kwargs: dict[str, Any] = {"params": dict(params)}
        if json_body is not None:
            kwargs["data"] = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            kwargs["headers"] = {"Content-Type": "application/json; charset=utf-8"}
        if files is not None:
            kwargs["files"] = files
        try:
            body = self.client.request(method, path, sends_post=sends_post, **kwargs)
        except PermanentChannelError as exc:
            if retrying and exc.code in TOKEN_CODES:
                raise  # call() refreshes the token and tries once more
            raise self._mapped(exc) from None
        except ChannelError as exc:  # transient / unknown: drop the requests error (its URL has the token)
            raise self._mapped(exc) from None
        if not isinstance(body, Mapping):
            raise PermanentChannelError(f"{path} answered with something other than a JSON object")
        return body

    def _mapped(self, exc: ChannelError) -> ChannelError:
        code = exc.code
        text = self._scrub(str(exc))
        meaning = ERRORS.get(code or "", "")
        message = f"WeChat errcode {code} ({meaning}): {text}" if meaning else text
        if isinstance(exc, OutcomeUnknownError):
            return OutcomeUnknownError(text, code=code)
        if isinstance(exc, TransientChannelError):
            return TransientChannelError(text, code=code, retry_after=exc.retry_after)
        if code == "-1":
            return TransientChannelError(message, code=code, retry_after=self.channel.busy_retry_after)
        if code == "45011":
            return TransientChannelError(message, code=code, retry_after=self.channel.minute_quota_retry_after)
        if code == "45009":
            self.account.note_quota(remaining=0, period="day", resets_at=_next_midnight(self.channel.now()),
                                    what="daily API quota", source="errcode 45009")
            return TransientChannelError(message, code=code, retry_after=self._until_quota_reset())
        if code in TOKEN_CODES:
            message += " (still refused after getting a new token)"
        return PermanentChannelError(message, code=code)

    def _until_quota_reset(self) -> float:
        now = self.channel.now()
        return (_next_midnight(now) - now).total_seconds() + self.channel.quota_reset_margin

    def _scrub(self, text: str) -> str:
        secrets = [self._secret, self._current or "",
                   *(str(v) for k, v in self.account.credentials.items() if k != "appid" and isinstance(v, str))]
        for secret in sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def discard_draft(self, media_id: str) -> None:
        """Best effort: delete a draft that will never be published (errors are ignored)."""
        try:
            self.call("POST", "/cgi-bin/draft/delete", json_body={"media_id": media_id})
        except ChannelError:
            pass

    # -- uploads (cached per process: uploadimg URLs and material media_ids are permanent)

    def upload_image(self, f: PostFile, max_bytes: int) -> str:
        """A body image through media/uploadimg → the URL the article HTML may use."""
        return self._upload(f, max_bytes, "/cgi-bin/media/uploadimg", {}, "url", fresh=False)

    def upload_cover(self, f: PostFile, max_bytes: int, *, fresh: bool = False) -> str:
        """The cover through material/add_material (type=image) → its media_id."""
        return self._upload(f, max_bytes, "/cgi-bin/material/add_material", {"type": "image"}, "media_id",
                            fresh=fresh)

    def _upload(self, f: PostFile, max_bytes: int, path: str, params: dict[str, str], answer: str, *,
                fresh: bool) -> str:
        key = (self.appid, path, f.sha256)
        with _LOCK:
            cached = None if fresh else _UPLOADS.get(key)
        if cached:
            return cached
        body = self.call("POST", path, params=params or None, files={"media": (f.name, _read(f, max_bytes), f.mime)})
        value = str(body.get(answer) or "")
        if not value:
            raise PermanentChannelError(f"{path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]} answered without a {answer}")
        with _LOCK:
            _UPLOADS[key] = value
        return value
