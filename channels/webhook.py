"""Partner platforms (news aggregators, the city's convergence platform) fed by a signed webhook.

There is no third-party API to copy here: this module *defines* the contract, and partners
implement the receiving end. One JSON `POST` per event to the account's URL (`api_base` is the
full webhook URL; the setting `url` is accepted too), raw UTF-8 JSON, with these headers:

* `X-Fanout-Event`: `story.published` or `story.retracted`
* `X-Fanout-Timestamp`: Unix seconds at sending time
* `X-Fanout-Signature`: `sha256=` + hex HMAC-SHA256(secret, f"{timestamp}.{raw_body}")
  (receivers should refuse timestamps more than `signature_tolerance` = 300 s away)
* `X-Fanout-Idempotency-Key`: the body's `idempotency_key`

Body of `story.published`:
`{"event", "idempotency_key", "story": {id, version, title, label, summary, body_html, link,
tags, theme, unit, release_at}, "media": [{role, url, mime, bytes, sha256, width, height, alt,
caption}]}`. `body_html` is sanitized HTML that starts with the campaign label paragraph;
`label` is also its own field. The idempotency key is `fanout-<story_id>-v<version>-<16 hex>`,
the hex being the sha256 of the rendered story and media: the same story version always
carries the same key. **Receivers must deduplicate on it**: a repeat answers 2xx with the same
`id` or 409; both mean "delivered". That is what makes reconciling safe.

Answers: 2xx → Receipt (`remote_id` = the JSON answer's `id`, else the idempotency key; `url`
= its `url`, if any); 409 → already delivered (Receipt); 429 and 5xx → transient (Retry-After
honoured); other 4xx (401 bad signature, 400/422 refused content) → permanent with the HTTP
status as code; a timeout after sending → OutcomeUnknownError.

Media are sent as URLs, not files: the `web_960` images and the `web_video` (+ `web_poster`)
the website channel publishes at its content-addressed paths `media/<sha[:2]>/<sha>.<ext>`.
Their base is the setting `media_base_url`, by default the site root taken from `story.link`
(`https://site/x/stories/7/` → `https://site/x/`) + `media/`. So the webhook account should be
released after the website, which puts the files there.

`reconcile`: with the setting `status_url`, a signed `GET status_url?idempotency_key=…`
(signature over f"{timestamp}.{idempotency_key}") → 200 `{id, url}` = delivered, 404 = not.
Without it, reconcile re-sends the very same event and key (the receiver dedupes), so an
unknown outcome always ends delivered exactly once. `retract`: a signed `story.retracted` event
(key `<original key>-retracted`) to the same URL; 2xx, 404, 409 and 410 all mean done.
`maintain` only checks that the URL and the secret are there.

Limits are ours (partners impose none we know of): the title cap keeps lists readable, the
body and image caps stop accidents, the summary is 120 characters like the website's card.
Credentials: `{"secret"}`. Settings: `url`, `media_base_url`, `status_url`,
`connect_timeout` / `read_timeout`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from html import escape
from typing import Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from channels import sitefiles
from channels.base import (
    AccountData,
    Channel,
    HttpClient,
    MediaItem,
    OutcomeUnknownError,
    PermanentChannelError,
    Post,
    Receipt,
    RenderError,
    Rendition,
    RenditionSet,
    StoryData,
    TransientChannelError,
)
from channels.text import markdown_to_safe_html, summarize

SHANGHAI = ZoneInfo("Asia/Shanghai")
EVENT_PUBLISHED = "story.published"
EVENT_RETRACTED = "story.retracted"
_KEY = re.compile(r"^fanout-([1-9][0-9]{0,17})-v([1-9][0-9]{0,8})-[0-9a-f]{16}(?:-a[0-9]{1,18})?$")


def account_key(post: Post, account: AccountData) -> str:
    """The idempotency key one account sends: the post's key plus the account, so two accounts
    that point at the same receiver (a partner platform's county and city desks) are two posts."""
    return f"{post.fields['idempotency_key']}-a{int(account.id)}"
_STORY_PAGE = re.compile(r"^(https?://.+/)stories/[0-9]+/?(?:index\.html)?$")


def sign(secret: str, timestamp: str, message: bytes) -> str:
    """The X-Fanout-Signature value: "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + message)."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + message, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def site_root(link: str) -> str:
    """The site root of a story page URL ("" when unknown): …/stories/<id>/ cut off, else scheme://host/."""
    if not link:
        return ""
    match = _STORY_PAGE.match(link)
    if match:
        return match.group(1)
    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}/" if parts.scheme in ("http", "https") and parts.netloc else ""


class WebhookChannel(Channel):
    """A signed JSON webhook to a partner platform."""

    name: ClassVar[str] = "webhook"
    title_zh: ClassVar[str] = "合作平台推送"
    short_zh: ClassVar[str] = "合作平台"
    title_max: ClassVar[int | None] = 100  # ours
    body_max: ClassVar[int | None] = 100_000  # characters of Markdown (ours, like the website)
    summary_max: ClassVar[int] = 120
    length_rule: ClassVar[str] = "chars"
    max_images: ClassVar[int | None] = 60
    image_profiles: ClassVar[tuple[str, ...]] = ("web_960",)
    video_profiles: ClassVar[tuple[str, ...]] = ("web_video", "web_poster")
    accepted_types: ClassVar[tuple[str, ...]] = ("image/jpeg", "image/png", "image/webp", "video/mp4")
    min_seconds_between_requests: ClassVar[float] = 0.0
    supports_live: ClassVar[bool] = True
    supports_retract: ClassVar[bool] = True
    credential_keys: ClassVar[tuple[str, ...]] = ("secret",)
    signature_tolerance: ClassVar[int] = 300  # seconds receivers should accept (our contract)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # the signing time is taken at publish (I/O), never at render

    # ------------------------------------------------------------------ render

    def render(self, story: StoryData, renditions: RenditionSet) -> Post:
        title = sitefiles.check_story(story, title_max=self.title_max, body_max=self.body_max,
                                      where="the webhook channel")
        label = " ".join((story.label or "").split())
        files = sitefiles.PostFiles()
        media: list[dict[str, Any]] = []

        def add(role: str, item: MediaItem, rendition: Rendition, alt: str, caption: str) -> None:
            path = files.add(role, rendition)
            media.append({"role": role, "path": path, "mime": rendition.mime, "bytes": rendition.bytes,
                          "sha256": rendition.sha256.lower(), "width": rendition.width,
                          "height": rendition.height, "alt": alt, "caption": caption})

        for item in sitefiles.story_images(story, self.max_images, "the webhook channel"):
            rendition = renditions.get(item.sha256, {}).get("web_960")
            if rendition is None:
                raise RenderError(f"{item.role} image {item.sha256[:12]} has no web_960 rendition")
            add(item.role, item, rendition, _clean(item.alt), _clean(item.caption))
        for item in (m for m in story.media if m.kind == "video"):
            available = renditions.get(item.sha256, {})
            if "web_video" not in available:
                raise RenderError(f"video {item.sha256[:12]} has no web_video rendition")
            add("video", item, available["web_video"], _clean(item.alt), _clean(item.caption))
            if "web_poster" in available:
                add("poster", item, available["web_poster"], _clean(item.alt), "")

        body_html = markdown_to_safe_html(story.body_markdown or "")
        if label:
            body_html = f'<p class="fanout-label">{escape(label)}</p>\n{body_html}'
        summary = " ".join((story.summary or "").split()) or summarize(story.body_markdown or "", self.summary_max)
        if len(summary) > self.summary_max:
            summary = summarize(summary, self.summary_max)
        story_json = {
            "id": story.story_id,
            "version": story.version,
            "title": title,
            "label": label,
            "summary": summary,
            "body_html": body_html,
            "link": story.link or "",
            "tags": [t for t in (" ".join(t.split()) for t in story.tags) if t],
            "theme": _clean(story.theme),
            "unit": _clean(story.unit),
            "release_at": story.release_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
        }
        digest = hashlib.sha256(canonical_json({"story": story_json, "media": media})).hexdigest()
        fields = {
            "event": EVENT_PUBLISHED,
            "idempotency_key": f"fanout-{story.story_id}-v{story.version}-{digest[:16]}",
            "story": story_json,
            "media": media,
            "site_root": site_root(story.link or ""),
        }
        return Post(channel=self.name, story_id=story.story_id, version=story.version,
                    fields=fields, files=files.files())

    # ------------------------------------------------------------------ I/O

    def _target(self, account: AccountData) -> tuple[HttpClient, str, str]:
        url = str(account.api_base or account.setting("url") or "")
        if not url:
            raise PermanentChannelError("webhook account has no URL (api_base or setting url)", code="no_url")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise PermanentChannelError(f"webhook URL is not http(s): {_redact(url)}", code="bad_url")
        secret = account.credentials.get("secret")
        if not secret or not isinstance(secret, str):
            raise PermanentChannelError("webhook credentials need a secret", code="no_credentials")
        client = HttpClient(url, error_shape="plain", min_interval=self.min_seconds_between_requests,
                            timeout=account.timeout())
        return client, url, secret

    def body(self, post: Post, account: AccountData) -> dict[str, Any]:
        """The `story.published` body for `account` (media URLs resolved against its media base)."""
        if post.channel != self.name:
            raise PermanentChannelError(f"a {post.channel!r} post cannot be published on the webhook channel")
        missing = [k for k in ("event", "idempotency_key", "story", "media") if k not in post.fields]
        if missing:
            raise PermanentChannelError(f"post lacks fields: {', '.join(missing)}")
        base = account.setting("media_base_url")
        if not base and post.fields.get("site_root"):
            base = post.fields["site_root"] + "media/"
        media = []
        for entry in post.fields["media"]:
            if not base:
                raise PermanentChannelError("no base URL for the media: set media_base_url or give the story "
                                            "a link on the site", code="no_media_base")
            rel = str(entry["path"])
            rel = rel.removeprefix("media/")
            media.append({"role": entry["role"], "url": str(base).rstrip("/") + "/" + rel,
                          **{k: entry[k] for k in ("mime", "bytes", "sha256", "width", "height", "alt", "caption")}})
        return {"event": post.fields["event"], "idempotency_key": account_key(post, account),
                "story": post.fields["story"], "media": media}

    def _send(self, client: HttpClient, url: str, secret: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST one signed event; {} or the receiver's JSON object; {"duplicate": True} for a 409."""
        raw = canonical_json(payload)
        timestamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-Fanout-Event": str(payload["event"]),
                   "X-Fanout-Timestamp": timestamp,
                   "X-Fanout-Signature": sign(secret, timestamp, raw),
                   "X-Fanout-Idempotency-Key": str(payload["idempotency_key"])}
        try:
            answer = client.request("POST", url, sends_post=True, data=raw, headers=headers)
        except PermanentChannelError as exc:
            if exc.code == "409":  # the receiver has this key already: delivered
                return {"duplicate": True}
            raise
        return answer if isinstance(answer, dict) else {}

    def _receipt(self, post: Post, account: AccountData, answer: Mapping[str, Any]) -> Receipt:
        key = account_key(post, account)
        remote = answer.get("id")
        url = answer.get("url")
        return Receipt(remote_id=str(remote) if remote not in (None, "") else key,
                       url=str(url) if url else None,
                       extra={"idempotency_key": key, "story_id": post.story_id, "version": post.version,
                              "content_hash": post.content_hash(), "duplicate": bool(answer.get("duplicate"))})

    def publish(self, post: Post, account: AccountData) -> Receipt:
        client, url, secret = self._target(account)
        payload = self.body(post, account)
        return self._receipt(post, account, self._send(client, url, secret, payload))

    def reconcile(self, post: Post, account: AccountData) -> Receipt | None:
        client, url, secret = self._target(account)
        key = account_key(post, account)
        status_url = account.setting("status_url")
        if status_url:
            timestamp = str(int(self.clock()))
            headers = {"X-Fanout-Timestamp": timestamp, "X-Fanout-Idempotency-Key": key,
                       "X-Fanout-Signature": sign(secret, timestamp, key.encode("utf-8"))}
            try:
                answer = client.request("GET", str(status_url), params={"idempotency_key": key}, headers=headers)
            except PermanentChannelError as exc:
                if exc.code in ("404", "410"):
                    return None
                raise
            answer = answer if isinstance(answer, dict) else {}
            if answer.get("state") == "retracted":
                return None  # the receiver had it and took it down: not on the platform
            return self._receipt(post, account, answer)
        # No status endpoint: deliver again under the same key; the receiver dedupes (our contract).
        payload = self.body(post, account)
        try:
            return self._receipt(post, account, self._send(client, url, secret, payload))
        except OutcomeUnknownError as exc:
            raise TransientChannelError(f"webhook still unconfirmed: {exc}") from exc

    def retract(self, receipt: Receipt, account: AccountData) -> None:
        extra = receipt.extra or {}
        key = str(extra.get("idempotency_key") or receipt.remote_id or "")
        match = _KEY.match(key)
        if not match:
            raise PermanentChannelError(f"not a webhook receipt: {receipt.remote_id!r}")
        client, url, secret = self._target(account)
        payload = {"event": EVENT_RETRACTED, "idempotency_key": f"{key}-retracted", "retracts": key,
                   "remote_id": receipt.remote_id,
                   "story": {"id": int(match.group(1)), "version": int(match.group(2))}}
        try:
            self._send(client, url, secret, payload)
        except PermanentChannelError as exc:
            if exc.code in ("404", "410"):
                return  # the receiver does not have it (any more): nothing to remove
            raise

    def maintain(self, account: AccountData, now: datetime) -> list[str]:
        try:
            self._target(account)
        except PermanentChannelError as exc:
            return [f"webhook account {account.name}: {exc}"]
        return []


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _redact(url: str) -> str:
    """A URL without its query (webhook URLs sometimes carry a token there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else "(not a URL)"
