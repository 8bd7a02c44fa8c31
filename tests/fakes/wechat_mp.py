"""A fake WeChat Official Account API (微信公众号) on loopback, per ../shared/channels.md.

Every answer is HTTP 200 with `{"errcode": N, "errmsg": "..."}` on error (forced HTTP faults
from the base class answer `{"errcode": -1, "errmsg": "system error"}`). What it checks:

* `/cgi-bin/token` (GET, grant_type=client_credential, appid, secret) issues a 7200 s token;
  issuing one makes every older token invalid 5 minutes later (40001). A missing token is
  41001, an unknown or invalidated one 40001, an expired one 42001. `expire_token()` expires
  every issued token now; `invalidate_tokens()` makes them invalid now; `advance(seconds)`
  moves the fake's clock.
* `ip_whitelisted = False` makes every call answer 40164.
* `media/uploadimg`: multipart `media`, jpg/png (by name and magic bytes, else 40005), at most
  1 MiB (else 40009) → {url}. `material/add_material?type=image`: image ≤10 MiB → {media_id, url}.
* `draft/add`: JSON only as raw UTF-8 (a CJK `\\uXXXX` escape is refused with 47001: the real
  API stores the escape text); title ≤32 (45003), author ≤16 (45110), digest ≤128 (45004),
  content non-empty (44003), <20000 characters and <1 MB (45002), thumb_media_id known
  (40007); `<script>` is stripped and images not from uploadimg removed, as the platform does.
* `draft/delete` {media_id}: removes a draft (40007 when unknown).
* `freepublish/submit` {media_id}: unknown draft 40007, `submit_error` (e.g. 53503) when set,
  `daily_quota` (45009 once exceeded); counts the post with `record_post(title)`.
* `freepublish/get` {publish_id}: answers the next status of `status_sequence` (the last one
  repeats) — e.g. [1, 1, 0] or [1, 4]; 0 comes with article_id and article_detail.
* `freepublish/batchget` {offset, count 1..20, no_content}: published articles, newest first.
* `freepublish/delete` {article_id}: marks the article deleted (status 5, is_deleted).
* `openapi/quota/get` {cgi_path}: {quota: {daily_limit, used, remain}} for
  /cgi-bin/freepublish/submit (daily_limit is `daily_quota`, or `reported_daily_limit` when no
  quota is enforced; used counts the submits), 76021 for a path the fake does not know.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.base import FakePlatform, FakeRequest, FakeResponse, route

TOKEN_LIFETIME = 7200
OLD_TOKEN_GRACE = 300  # a new /token invalidates the previous ones 5 minutes later
BODY_IMAGE_MAX = 1024 * 1024
MATERIAL_MAX = 10 * 1024 * 1024
_ESCAPE = re.compile(rb"(?<!\\)\\u([0-9a-fA-F]{4})")


def _ok(**body: Any) -> FakeResponse:
    return FakeResponse(200, {"errcode": 0, "errmsg": "ok", **body})


def _err(code: int, msg: str) -> FakeResponse:
    return FakeResponse(200, {"errcode": code, "errmsg": f"{msg} rid: fake-{code}"})


@dataclass
class IssuedToken:
    value: str
    expires_at: float
    invalid_after: float | None = None


@dataclass
class PublishJob:
    publish_id: str
    draft_id: str
    title: str
    sequence: list[int]
    gets: int = 0
    article_id: str | None = None
    created: float = 0.0

    def reached(self) -> int:
        """The status the platform is at: the last one `get` returned (the first before any get)."""
        return self.sequence[min(max(self.gets - 1, 0), len(self.sequence) - 1)]


@dataclass
class Article:
    article_id: str
    url: str
    draft: dict[str, Any]
    update_time: int
    deleted: bool = False
    publish_id: str = ""


@dataclass
class Draft:
    media_id: str
    articles: list[dict[str, Any]]
    raw: bytes = b""


@dataclass
class Counters:
    token_issues: int = 0
    uploadimg: int = 0
    add_material: int = 0
    stripped_images: int = 0
    stripped_scripts: int = 0


class FakeWechatMp(FakePlatform):
    """The 公众号 API for one account (appid/secret); see the module docstring for controls."""

    def __init__(self, appid: str = "wx5f1e0c2d3a4b5c6d", secret: str = "9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f") -> None:
        super().__init__()
        self.appid = appid
        self.secret = secret
        self.offset = 0.0
        self.ip_whitelisted = True
        self.daily_quota: int | None = None
        self.reported_daily_limit = 100  # what openapi/quota/get says when daily_quota is None
        self.submit_error: tuple[int, str] | None = None
        self.status_sequence: list[int] = [0]
        self.force_token_error: int | None = None  # every token check answers this errcode
        self._injected: list[list[Any]] = []  # [path, errcode, errmsg, times]
        self.tokens: dict[str, IssuedToken] = {}
        self.images: dict[str, bytes] = {}  # uploadimg url -> bytes
        self.materials: dict[str, bytes] = {}  # media_id -> bytes
        self.drafts: dict[str, Draft] = {}
        self.jobs: dict[str, PublishJob] = {}
        self.articles: dict[str, Article] = {}  # article_id -> article, in publish order
        self.submits = 0
        self.count = Counters()
        self._seq = 0
        self._state = threading.RLock()

    # ------------------------------------------------------------------ controls

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def expire_token(self) -> None:
        """Every issued token expires now (42001)."""
        with self._state:
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, self.now() - 1)

    def invalidate_tokens(self) -> None:
        """Every issued token is invalid now (40001), as after another /token call 5 minutes ago."""
        with self._state:
            for token in self.tokens.values():
                token.invalid_after = self.now() - 1

    def inject(self, path: str, errcode: int, errmsg: str = "injected", times: int = 1) -> None:
        """The next `times` calls of `path` (after the token check) answer this errcode."""
        with self._state:
            self._injected.append([path, errcode, errmsg, times])

    def complete_all(self) -> None:
        """Every publish still running finishes successfully (the platform caught up)."""
        with self._state:
            for job in self.jobs.values():
                if job.reached() == 1:
                    job.sequence, job.gets = [0], 0
                    self._publish(job)

    def published_titles(self) -> list[str]:
        return [a.draft["title"] for a in self.articles.values() if not a.deleted]

    def error_body(self, status: int) -> Any:
        return {"errcode": -1, "errmsg": "system error"}

    def _next(self, prefix: str) -> str:
        with self._state:
            self._seq += 1
            return f"{prefix}{self._seq:06d}"

    # ------------------------------------------------------------------ token

    def _check_token(self, req: FakeRequest) -> FakeResponse | None:
        if not self.ip_whitelisted:
            return _err(40164, "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist")
        value = req.query.get("access_token")
        if not value:
            return _err(41001, "access_token missing")
        token = self.tokens.get(value)
        now = self.now()
        if token is None or (token.invalid_after is not None and now > token.invalid_after):
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        if now > token.expires_at:
            return _err(42001, "access_token expired")
        if self.force_token_error is not None:
            return _err(self.force_token_error, "access_token refused")
        return self._take_injected(req)

    def _take_injected(self, req: FakeRequest) -> FakeResponse | None:
        with self._state:
            for entry in self._injected:
                if entry[0] == req.path:
                    entry[3] -= 1
                    if entry[3] <= 0:
                        self._injected.remove(entry)
                    return _err(entry[1], entry[2])
        return None

    @route("GET", "/cgi-bin/token")
    def token(self, req: FakeRequest) -> FakeResponse:
        if not self.ip_whitelisted:
            return _err(40164, "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist")
        if (injected := self._take_injected(req)) is not None:
            return injected
        if req.query.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        if req.query.get("appid") != self.appid:
            return _err(40013, "invalid appid")
        if req.query.get("secret") != self.secret:
            return _err(40125, "invalid appsecret")
        with self._state:
            now = self.now()
            for old in self.tokens.values():
                if old.invalid_after is None or old.invalid_after > now + OLD_TOKEN_GRACE:
                    old.invalid_after = now + OLD_TOKEN_GRACE
            value = "ACCESS_" + hashlib.sha256(f"{self.appid}-{self._next('t')}".encode()).hexdigest()[:40]
            self.tokens[value] = IssuedToken(value, now + TOKEN_LIFETIME)
            self.count.token_issues += 1
        return _ok(access_token=value, expires_in=TOKEN_LIFETIME)

    # ------------------------------------------------------------------ uploads

    @staticmethod
    def _image_type(name: str, data: bytes) -> str | None:
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if data.startswith(b"\xff\xd8\xff") and ext in ("jpg", "jpeg"):
            return "jpg"
        if data.startswith(b"\x89PNG\r\n\x1a\n") and ext == "png":
            return "png"
        return None

    @route("POST", "/cgi-bin/media/uploadimg")
    def uploadimg(self, req: FakeRequest) -> FakeResponse:
        if (refused := self._check_token(req)) is not None:
            return refused
        media = req.files.get("media")
        if media is None:
            return _err(41005, "media data missing")
        kind = self._image_type(media.filename, media.data)
        if kind is None:
            return _err(40005, "invalid file type")
        if len(media.data) > BODY_IMAGE_MAX:
            return _err(40009, "invalid image size")
        url = f"http://mmbiz.qpic.cn/mmbiz_{kind}/{hashlib.sha256(media.data).hexdigest()[:32]}/0"
        with self._state:
            self.images[url] = media.data
            self.count.uploadimg += 1
        return FakeResponse(200, {"url": url})  # this one answers without errcode, like the platform

    @route("POST", "/cgi-bin/material/add_material")
    def add_material(self, req: FakeRequest) -> FakeResponse:
        if (refused := self._check_token(req)) is not None:
            return refused
        if req.query.get("type") not in ("image", "thumb"):
            return _err(40004, "invalid media type")
        media = req.files.get("media")
        if media is None:
            return _err(41005, "media data missing")
        if self._image_type(media.filename, media.data) is None:
            return _err(40005, "invalid file type")
        if len(media.data) > MATERIAL_MAX:
            return _err(40009, "invalid image size")
        media_id = self._next("MATERIAL_")
        with self._state:
            self.materials[media_id] = media.data
            self.count.add_material += 1
        return FakeResponse(200, {"media_id": media_id, "url": f"http://mmbiz.qpic.cn/material/{media_id}/0"})

    # ------------------------------------------------------------------ JSON bodies

    def _json(self, req: FakeRequest) -> tuple[dict[str, Any] | None, FakeResponse | None]:
        if any(int(code, 16) >= 0x2E80 for code in _ESCAPE.findall(req.body)):
            return None, _err(47001, "data format error: \\u escapes are stored as text")
        if not isinstance(req.json, dict):
            return None, _err(47001, "data format error")
        return req.json, None

    @route("POST", "/cgi-bin/draft/add")
    def draft_add(self, req: FakeRequest) -> FakeResponse:
        if (refused := self._check_token(req)) is not None:
            return refused
        data, refused = self._json(req)
        if refused is not None:
            return refused
        articles = data.get("articles")
        if not isinstance(articles, list) or not articles:
            return _err(44003, "empty news data")
        kept = []
        for article in articles:
            title, content = str(article.get("title") or ""), str(article.get("content") or "")
            if not title:
                return _err(44003, "empty title")
            if len(title) > 32:
                return _err(45003, "title size out of limit")
            if len(str(article.get("author") or "")) > 16:
                return _err(45110, "author size out of limit")
            if len(str(article.get("digest") or "")) > 128:
                return _err(45004, "description size out of limit")
            if not content.strip():
                return _err(44003, "empty content")
            if len(content) >= 20000 or len(content.encode("utf-8")) >= 1024 * 1024:
                return _err(45002, "content size out of limit")
            if article.get("thumb_media_id") not in self.materials:
                return _err(40007, "invalid media_id")
            for key in ("need_open_comment", "only_fans_can_comment"):
                if article.get(key, 0) not in (0, 1):
                    return _err(40003, f"invalid {key}")
            content, scripts = re.subn(r"<script\b.*?</script>", "", content, flags=re.DOTALL | re.IGNORECASE)

            def strip_foreign(match: re.Match[str]) -> str:
                src = re.search(r'src="([^"]*)"', match.group(0))
                if src and src.group(1).replace("&amp;", "&") in self.images:
                    return match.group(0)
                self.count.stripped_images += 1
                return ""

            content = re.sub(r"<img\b[^>]*>", strip_foreign, content)
            self.count.stripped_scripts += scripts
            kept.append({**article, "content": content})
        media_id = self._next("DRAFT_")
        with self._state:
            self.drafts[media_id] = Draft(media_id, kept, req.body)
        return _ok(media_id=media_id)

    @route("POST", "/cgi-bin/draft/delete")
    def draft_delete(self, req: FakeRequest) -> FakeResponse:
        if (refused := self._check_token(req)) is not None:
            return refused
        data, refused = self._json(req)
        if refused is not None:
            return refused
        with self._state:
            if self.drafts.pop(str(data.get("media_id")), None) is None:
                return _err(40007, "invalid media_id")
        return _ok()

    # ------------------------------------------------------------------ freepublish

    @route("POST", "/cgi-bin/freepublish/submit")
    def submit(self, req: FakeRequest) -> FakeResponse:
        if (refused := self._check_token(req)) is not None:
            return refused
        data, refused = self._json(req)
        if refused is not None:
            return refused
        with self._state:
            draft = self.drafts.get(str(data.get("media_id")))
            if draft is None:
                return _err(40007, "invalid media_id")
            if self.submit_error is not None:
                return _err(*self.submit_error)
            if self.daily_quota is not None and self.submits >= self.daily_quota:
                return _err(45009, "reach max api daily quota limit")
            self.submits += 1
            self.record_post(draft.articles[0]["title"])
            publish_id = str(2247483000 + int(self._next("")))
            job = PublishJob(publish_id, draft.media_id, draft.articles[0]["title"], list(self.status_sequence),
                             created=self.now())
            self.jobs[publish_id] = job
            if job.reached() == 0:
                self._publish(job)
        return _ok(publish_id=publish_id, msg_data_id=int(publish_id))

    @route("POST", "/cgi-bin/openapi/quota/get")
    def quota_get(self, req: FakeRequest) -> FakeResponse:
        if (refused := self._check_token(req)) is not None:
            return refused
        data, refused = self._json(req)
        if refused is not None:
            return refused
        if data.get("cgi_path") != "/cgi-bin/freepublish/submit":
            return _err(76021, "cgi_path not found")
        with self._state:
            limit = self.daily_quota if self.daily_quota is not None else self.reported_daily_limit
            return _ok(quota={"daily_limit": limit, "used": self.submits, "remain": max(0, limit - self.submits)})

    def _publish(self, job: PublishJob) -> None:
        if job.article_id is not None:
            return
        draft = self.drafts[job.draft_id]
        job.article_id = f"ARTICLE_{job.publish_id}"
        url = f"http://mp.weixin.qq.com/s?__biz=MzA5&mid={job.publish_id}&idx=1&sn=fake"
        self.articles[job.article_id] = Article(job.article_id, url, draft.articles[0], int(self.now()),
                                                publish_id=job.publish_id)

    @route("POST", "/cgi-bin/freepublish/get")
    def get(self, req: FakeRequest) -> FakeResponse:
        if (refused := self._check_token(req)) is not None:
            return refused
        data, refused = self._json(req)
        if refused is not None:
            return refused
        with self._state:
            job = self.jobs.get(str(data.get("publish_id")))
            if job is None:
                return _err(40007, "invalid publish_id")
            status = job.sequence[min(job.gets, len(job.sequence) - 1)]
            job.gets += 1
            article = self.articles.get(job.article_id or "")
            if article is not None and article.deleted:
                status = 5
            body: dict[str, Any] = {"publish_id": job.publish_id, "publish_status": status}
            if status in (0, 5, 6):
                self._publish(job)
                article = self.articles[job.article_id or ""]
                body["article_id"] = article.article_id
                body["article_detail"] = {"count": 1, "item": [{"idx": 1, "article_url": article.url}]}
            if status in (2, 3, 4):
                body["fail_idx"] = [1]
        return FakeResponse(200, body)

    @route("POST", "/cgi-bin/freepublish/batchget")
    def batchget(self, req: FakeRequest) -> FakeResponse:
        if (refused := self._check_token(req)) is not None:
            return refused
        data, refused = self._json(req)
        if refused is not None:
            return refused
        offset, count = int(data.get("offset", 0)), int(data.get("count", 0))
        if not 1 <= count <= 20 or offset < 0:
            return _err(40003, "invalid count")
        with self._state:
            newest = list(reversed(list(self.articles.values())))
        items = []
        for article in newest[offset: offset + count]:
            news = {k: article.draft.get(k, "") for k in ("title", "author", "digest", "content_source_url",
                                                           "thumb_media_id")}
            if not data.get("no_content"):
                news["content"] = article.draft.get("content", "")
            news.update(url=article.url, is_deleted=article.deleted)
            items.append({"article_id": article.article_id, "content": {"news_item": [news]},
                          "update_time": article.update_time})
        return FakeResponse(200, {"total_count": len(newest), "item_count": len(items), "item": items})

    @route("POST", "/cgi-bin/freepublish/delete")
    def delete(self, req: FakeRequest) -> FakeResponse:
        if (refused := self._check_token(req)) is not None:
            return refused
        data, refused = self._json(req)
        if refused is not None:
            return refused
        with self._state:
            article = self.articles.get(str(data.get("article_id")))
            if article is None or article.deleted:
                return _err(40007, "invalid article_id")
            article.deleted = True
        return _ok()
