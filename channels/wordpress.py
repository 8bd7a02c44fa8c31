"""A partner's or a department's WordPress site, through the WordPress REST API (channels.md, Website).

There is no default base: the account's `api_base` is the site root (it may carry a path when
WordPress lives in a sub-folder, e.g. `https://www.example.gov.cn/news`); the documented paths
`/wp-json/wp/v2/...` are appended to it. Authentication is an Application Password over Basic
auth (credentials `{"username", "app_password"}`).

`render` builds the post: the campaign label as the first paragraph of `content` and the start
of `excerpt`, the editor's Markdown as sanitized HTML (channels/text.py), the story's other
images as `<figure>`s after the body and its video as WordPress's own `[video]` shortcode. Image
files are the `web_960` renditions, video the `web_video` rendition with its `web_poster`; the
cover becomes the post's featured image (themes show it above the article, so it is not
repeated in the content). Render cannot know the URLs WordPress will give the uploads, so the
content carries `fanout-media://<sha256>` placeholders that `publish` replaces with each
upload's `source_url`.

`publish`: (1) looks the post up by its slug `fanout-<story_id>-v<version>` — WordPress does not
refuse a duplicate slug, it silently makes it unique (`-2`), so the slug is our idempotency
marker and a post already there is returned instead of made twice; (2) uploads each file with
`POST /wp-json/wp/v2/media` (raw body, its Content-Type and `Content-Disposition: attachment;
filename="…"`, alt text and caption as query parameters) → 201 `{id, source_url}`; (3) creates
the post with `POST /wp-json/wp/v2/posts` → 201 `{id, link}` (a timeout there is
OutcomeUnknownError: the dispatcher reconciles). `date_gmt` (UTC, no offset) is sent rather than
`date`, which WordPress reads in the site's own time zone.

Errors are WordPress' real 4xx/5xx with `{"code": "rest_…", "message", "data": {"status"}}`:
401/403 (`incorrect_password`, `invalid_username`, `rest_cannot_create`, `rest_cannot_publish`)
and 400 (`rest_invalid_param`, `rest_invalid_featured_media`, …) are permanent with the `code`;
429 and 5xx are transient (Retry-After honoured) — all through `HttpClient(error_shape="wordpress")`.

`reconcile`: `GET /wp-json/wp/v2/posts?slug=…&status=any` (any status but trash) → Receipt, or
None. `retract`: `DELETE /wp-json/wp/v2/posts/<id>` moves the post to the trash (setting
`retract_force` deletes it for good); a post already trashed (410 `rest_already_trashed`) or gone
(404 `rest_post_invalid_id`) counts as retracted. `maintain` checks the credentials with
`GET /wp-json/wp/v2/users/me` and warns when the site refuses them.

Limits are ours (WordPress has none that matter here): the title cap keeps the site's lists and
browser tabs readable, the body and image caps only stop accidents, the excerpt is a 120
character summary like the website's card.

Settings: `status` (publish | draft | pending | private, default publish), `categories` and
`tags` (WordPress term ids: a list or "3,5"), `retract_force` (default false),
`connect_timeout` / `read_timeout`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from channels import sitefiles
from channels.base import (
    AccountData,
    Channel,
    HttpClient,
    MediaItem,
    PermanentChannelError,
    Post,
    PostFile,
    Receipt,
    RenderError,
    RenditionSet,
    StoryData,
    TransientChannelError,
)
from channels.text import markdown_to_safe_html, summarize

MEDIA_PATH = "/wp-json/wp/v2/media"
POSTS_PATH = "/wp-json/wp/v2/posts"
ME_PATH = "/wp-json/wp/v2/users/me"
PLACEHOLDER = "fanout-media://"
STATUSES = ("publish", "draft", "pending", "private")
_PLACEHOLDER_RE = re.compile(re.escape(PLACEHOLDER) + r"([0-9a-f]{64})")
_REMOTE_ID = re.compile(r"^[1-9][0-9]{0,18}$")


def post_slug(story_id: int, version: int) -> str:
    """The slug that marks a story version's post on the site (our idempotency marker)."""
    return f"fanout-{int(story_id)}-v{int(version)}"


class WordpressChannel(Channel):
    """A WordPress site (REST API v2, Application Password)."""

    name: ClassVar[str] = "wordpress"
    title_zh: ClassVar[str] = "WordPress 站点"
    short_zh: ClassVar[str] = "WordPress"
    title_max: ClassVar[int | None] = 100  # ours: lists and tabs stay readable
    body_max: ClassVar[int | None] = 100_000  # characters of Markdown (ours, like the website)
    excerpt_max: ClassVar[int] = 120  # characters of summary after the label
    length_rule: ClassVar[str] = "chars"
    max_images: ClassVar[int | None] = 60
    image_profiles: ClassVar[tuple[str, ...]] = ("web_960",)
    video_profiles: ClassVar[tuple[str, ...]] = ("web_video", "web_poster")
    accepted_types: ClassVar[tuple[str, ...]] = ("image/jpeg", "image/png", "image/webp", "video/mp4")
    min_seconds_between_requests: ClassVar[float] = 0.0
    max_parallel_posts: ClassVar[int | None] = 4  # ours: partner and department sites are often small hosts
    supports_live: ClassVar[bool] = True
    supports_retract: ClassVar[bool] = True
    credential_keys: ClassVar[tuple[str, ...]] = ("username", "app_password")

    # ------------------------------------------------------------------ render

    def render(self, story: StoryData, renditions: RenditionSet) -> Post:
        title = sitefiles.check_story(story, title_max=self.title_max, body_max=self.body_max,
                                      where="the WordPress channel")
        label = " ".join((story.label or "").split())
        files = sitefiles.PostFiles()
        attachments: dict[str, dict[str, str]] = {}

        images = sitefiles.story_images(story, self.max_images, "the WordPress channel")
        featured: str | None = None
        figures: list[str] = []
        for item in images:
            rendition = renditions.get(item.sha256, {}).get("web_960")
            if rendition is None:
                raise RenderError(f"{item.role} image {item.sha256[:12]} has no web_960 rendition")
            files.add(item.role, rendition)
            sha = rendition.sha256.lower()
            attachments.setdefault(sha, {"alt": _clean(item.alt), "caption": _clean(item.caption)})
            if featured is None and item.role == "cover":
                featured = sha
            else:
                figures.append(_figure(item, sha, rendition.width, rendition.height))

        videos: list[str] = []
        for item in (m for m in story.media if m.kind == "video"):
            available = renditions.get(item.sha256, {})
            video = available.get("web_video")
            if video is None:
                raise RenderError(f"video {item.sha256[:12]} has no web_video rendition")
            files.add("video", video)
            attachments.setdefault(video.sha256.lower(), {"alt": "", "caption": _clean(item.caption)})
            poster = available.get("web_poster")
            if poster is not None:
                files.add("poster", poster)
                attachments.setdefault(poster.sha256.lower(), {"alt": _clean(item.alt), "caption": ""})
            videos.append(_video(item, video.sha256.lower(), poster.sha256.lower() if poster else None,
                                 video.width, video.height))

        body_html = markdown_to_safe_html(story.body_markdown or "")
        parts = []
        if label:
            parts.append(f'<p class="fanout-label"><strong>{html.escape(label)}</strong></p>')
        parts += [body_html, *figures, *videos]
        if story.link:
            link = html.escape(story.link, quote=True)
            parts.append(f'<p class="fanout-source">原文链接：<a href="{link}">{link}</a></p>')
        content = "\n".join(p for p in parts if p)

        summary = " ".join((story.summary or "").split()) or summarize(story.body_markdown or "", self.excerpt_max)
        if len(summary) > self.excerpt_max:
            summary = summarize(summary, self.excerpt_max)
        excerpt = f"{label} {summary}".strip() if label else summary
        release_gmt = story.release_at.astimezone(UTC).replace(tzinfo=None)
        fields: dict[str, Any] = {
            "title": title,
            "label": label,
            "content": content,
            "excerpt": excerpt,
            "slug": post_slug(story.story_id, story.version),
            "date_gmt": release_gmt.isoformat(timespec="seconds"),
            "featured": featured,
            "attachments": attachments,
            "link": story.link or "",
        }
        return Post(channel=self.name, story_id=story.story_id, version=story.version,
                    fields=fields, files=files.files())

    # ------------------------------------------------------------------ I/O

    def _client(self, account: AccountData) -> tuple[HttpClient, tuple[str, str]]:
        base = account.api_base or account.setting("api_base")
        if not base:
            raise PermanentChannelError("WordPress account has no api_base (the site root, e.g. "
                                        "https://www.example.gov.cn)", code="no_api_base")
        username = account.credentials.get("username")
        password = account.credentials.get("app_password")
        if not username or not password:
            raise PermanentChannelError("WordPress credentials need username and app_password",
                                        code="no_credentials")
        client = HttpClient(str(base), error_shape="wordpress", min_interval=self.min_seconds_between_requests,
                            timeout=account.timeout())
        return client, (str(username), str(password))

    def publish(self, post: Post, account: AccountData) -> Receipt:
        sitefiles.check_post(post, self.name, ("title", "content", "excerpt", "slug", "date_gmt", "attachments"))
        status = str(account.setting("status", "publish"))
        if status not in STATUSES:
            raise PermanentChannelError(f"setting status={status!r}: must be one of {', '.join(STATUSES)}",
                                        code="bad_setting")
        categories = _id_list(account.setting("categories"), "categories")
        tags = _id_list(account.setting("tags"), "tags")
        client, auth = self._client(account)
        content_hash = post.content_hash()

        existing = self._find(client, auth, post.fields["slug"])
        if existing is not None:  # made by an earlier attempt: never post twice
            return self._receipt(existing, content_hash, already=True)

        source_urls: dict[str, str] = {}
        media_ids: dict[str, int] = {}
        for f in post.files:
            uploaded = self._upload(client, auth, f, post.fields["attachments"].get(f.sha256, {}))
            media_ids[f.sha256] = uploaded[0]
            source_urls[f.sha256] = uploaded[1]

        def swap(match: re.Match[str]) -> str:
            url = source_urls.get(match.group(1))
            if url is None:
                raise PermanentChannelError(f"content refers to media {match.group(1)[:12]} that the post lacks")
            return html.escape(url, quote=True)

        payload: dict[str, Any] = {
            "title": post.fields["title"],
            "content": _PLACEHOLDER_RE.sub(swap, post.fields["content"]),
            "excerpt": post.fields["excerpt"],
            "status": status,
            "slug": post.fields["slug"],
            "date_gmt": post.fields["date_gmt"],
        }
        featured = post.fields.get("featured")
        if featured:
            if featured not in media_ids:
                raise PermanentChannelError(f"featured image {featured[:12]} is not among the post's files")
            payload["featured_media"] = media_ids[featured]
        if categories:
            payload["categories"] = categories
        if tags:
            payload["tags"] = tags
        answer = client.request("POST", POSTS_PATH, sends_post=True, auth=auth, json=payload)
        if not isinstance(answer, dict) or "id" not in answer:
            raise PermanentChannelError("WordPress answered the new post without an id", code="bad_answer")
        receipt = self._receipt(answer, content_hash)
        return Receipt(receipt.remote_id, receipt.url, {**receipt.extra, "media_ids": sorted(media_ids.values())})

    def _upload(self, client: HttpClient, auth: tuple[str, str], f: PostFile,
                meta: Mapping[str, str]) -> tuple[int, str]:
        if not f.path:
            raise PermanentChannelError(f"file {f.name} has no local path")
        params = {k: v for k, v in (("alt_text", meta.get("alt", "")), ("caption", meta.get("caption", ""))) if v}
        headers = {"Content-Type": f.mime, "Content-Disposition": f'attachment; filename="{f.name}"'}
        try:
            with open(f.path, "rb") as stream:
                answer = client.request("POST", MEDIA_PATH, auth=auth, headers=headers, params=params, data=stream)
        except OSError as exc:
            raise TransientChannelError(f"cannot read {f.name}: {exc.strerror}") from exc
        if not isinstance(answer, dict) or "id" not in answer or not answer.get("source_url"):
            raise PermanentChannelError(f"WordPress answered the upload of {f.name} without id/source_url",
                                        code="bad_answer")
        return int(answer["id"]), str(answer["source_url"])

    def _find(self, client: HttpClient, auth: tuple[str, str], slug: str) -> dict[str, Any] | None:
        answer = client.request("GET", POSTS_PATH, auth=auth,
                                params={"slug": slug, "status": "any", "context": "edit", "per_page": 10})
        if not isinstance(answer, list):
            raise TransientChannelError("WordPress post listing is not a list", code="bad_answer")
        # WordPress suffixes a duplicate slug (-2, -3 …): only the exact slug is ours
        matches = [p for p in answer if isinstance(p, dict) and p.get("slug") == slug and p.get("status") != "trash"]
        return min(matches, key=lambda p: int(p["id"])) if matches else None

    @staticmethod
    def _receipt(answer: Mapping[str, Any], content_hash: str, already: bool = False) -> Receipt:
        extra: dict[str, Any] = {"slug": answer.get("slug"), "status": answer.get("status"),
                                 "content_hash": content_hash}
        if already:
            extra["already_posted"] = True
        return Receipt(remote_id=str(answer["id"]), url=answer.get("link") or None, extra=extra)

    def reconcile(self, post: Post, account: AccountData) -> Receipt | None:
        client, auth = self._client(account)
        found = self._find(client, auth, post.fields["slug"])
        return self._receipt(found, post.content_hash()) if found is not None else None

    def retract(self, receipt: Receipt, account: AccountData) -> None:
        remote_id = str(receipt.remote_id or "")
        if not _REMOTE_ID.match(remote_id):
            raise PermanentChannelError(f"not a WordPress post id: {remote_id!r}")
        client, auth = self._client(account)
        force = str(account.setting("retract_force", "false")).lower() in ("1", "true", "yes")
        try:
            client.request("DELETE", f"{POSTS_PATH}/{remote_id}", auth=auth,
                           params={"force": "true" if force else "false"})
        except PermanentChannelError as exc:
            if exc.code in ("rest_already_trashed", "rest_post_invalid_id"):
                return  # already in the trash, or gone: retracted either way
            raise

    def maintain(self, account: AccountData, now: datetime) -> list[str]:
        try:
            client, auth = self._client(account)
            client.request("GET", ME_PATH, auth=auth, params={"context": "edit"})
        except PermanentChannelError as exc:
            return [f"WordPress account {account.name}: {exc} (code {exc.code})"]
        except TransientChannelError as exc:
            return [f"WordPress account {account.name}: site unreachable now ({exc})"]
        return []


# ----------------------------------------------------------------------------- helpers


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _figure(item: MediaItem, sha: str, width: int | None, height: int | None) -> str:
    size = f' width="{int(width)}" height="{int(height)}"' if width and height else ""
    caption = _clean(item.caption)
    return ('<figure class="wp-block-image">'
            f'<img src="{PLACEHOLDER}{sha}" alt="{html.escape(_clean(item.alt), quote=True)}"{size}>'
            + (f"<figcaption>{html.escape(caption)}</figcaption>" if caption else "")
            + "</figure>")


def _video(item: MediaItem, sha: str, poster: str | None, width: int | None, height: int | None) -> str:
    attrs = [f'mp4="{PLACEHOLDER}{sha}"']
    if poster:
        attrs.append(f'poster="{PLACEHOLDER}{poster}"')
    if width and height:
        attrs += [f'width="{int(width)}"', f'height="{int(height)}"']
    shortcode = f'[video {" ".join(attrs)}][/video]'
    caption = _clean(item.caption)
    return ('<figure class="wp-block-video">' + shortcode
            + (f"<figcaption>{html.escape(caption)}</figcaption>" if caption else "") + "</figure>")


def _id_list(value: Any, key: str) -> list[int]:
    """A setting holding WordPress term ids: a list of ints or a "3,5" string."""
    if value in (None, "", [], ()):
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).replace("，", ",").split(",")
    out: list[int] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not text.isdigit() or int(text) < 1:
            raise PermanentChannelError(f"setting {key}: {text!r} is not a WordPress term id", code="bad_setting")
        out.append(int(text))
    return out
