"""A fake Weibo open API on loopback, following ../shared/channels.md ("Weibo").

* `POST /2/statuses/share.json`: token as `access_token` (query or form) or header
  `Authorization: OAuth2 <token>`; `status` (required: 10016), `pic` (multipart), `rip`.
  Checks in Weibo's order of concern: token (21301 missing, 21332 invalid, 21327 expired, 403),
  hourly rate limit per token (10023, 403, optional Retry-After), a URL on the safe domain
  (10017), length by Weibo's count (20012), picture type by its magic bytes (20005) and size
  (20006), identical text already posted by the user (20019). Success: a status object with
  id, idstr, mid, text, created_at, user and the pic URLs; the post is counted with
  `record_post(status text)`.
* `GET /2/statuses/user_timeline.json` (`count`, default 20, at most 100): the token's own
  statuses, newest first.
* `POST /2/statuses/destroy.json` (`id`): deletes the user's own status (20101 when there is no
  such status, 20102 when it is someone else's).
* `GET /2/account/rate_limit_status.json`: Weibo's rate-limit report (ip_limit,
  limit_time_unit "HOURS", remaining_ip_hits, remaining_user_hits, reset_time,
  reset_time_in_seconds, user_limit). The fake ties it to its share limit: user_limit is
  `posts_per_hour` and remaining_user_hits what is left of it this hour for the token;
  ip_limit / remaining_ip_hits are `ip_limit` and what is left after every token's shares.

Errors are non-200 with `{"request": path, "error_code": "<code as a string>", "error": msg}`.
Controls: `expire_token`, `revoke_token`, `add_token`, `posts_per_hour`,
`rate_limit_retry_after`, `fail_next(code)`, `safe_domain`, `max_pic_bytes`, `shorten_urls`
(store links as t.cn short links, as Weibo does).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.base import FakePlatform, FakeRequest, FakeResponse, route

SHARE = "/2/statuses/share.json"
TIMELINE = "/2/statuses/user_timeline.json"
DESTROY = "/2/statuses/destroy.json"
RATE_LIMIT_STATUS = "/2/account/rate_limit_status.json"
_URL = re.compile(r"https?://\S+")
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"))
CST = timezone(timedelta(hours=8))
MESSAGES = {
    "10001": "System error",
    "10016": "Miss required parameter (status)",
    "10017": "Parameter (status)'s value invalid, expect (a url in safe domain)",
    "10022": "IP requests out of rate limit",
    "10023": "User requests out of rate limit",
    "10024": "User requests for (share) out of rate limit",
    "20005": "Unsupported image type, only suport JPG, GIF, PNG",
    "20006": "Image size too large",
    "20012": "Text too long, please input text less than 140 characters",
    "20016": "Out of limit",
    "20017": "Repeated weibo text",
    "20019": "Repeat content",
    "20101": "Target weibo does not exist",
    "20102": "Not your own weibo",
    "20111": "Repeated weibo text",
    "21301": "Auth faild",
    "21327": "expired_token",
    "21332": "invalid_access_token",
}


def weibo_length(text: str, url_weight: int = 10) -> int:
    """The platform's count, written out independently of channels/weibo.py."""
    urls = _URL.findall(text)
    rest = _URL.sub("", text)
    return math.ceil(sum(1 if ord(c) < 128 else 2 for c in rest) / 2) + url_weight * len(urls)


class FakeWeibo(FakePlatform):
    """Weibo's share/timeline/destroy API. `tokens` maps access token -> user id; the safe
    domain defaults to the host of the tests' site (PUBLIC_URL is on 127.0.0.1)."""

    def __init__(self, *, tokens: dict[str, str] | None = None, safe_domain: str = "127.0.0.1",
                 posts_per_hour: int = 30, max_pic_bytes: int = 5 * 1024 * 1024, max_length: int = 140,
                 url_weight: int = 10) -> None:
        super().__init__()
        self.tokens: dict[str, str] = dict(tokens or {"good-token-123": "5566778899"})
        self.expired: set[str] = set()
        self.safe_domain = safe_domain
        self.posts_per_hour = posts_per_hour
        self.rate_limit_retry_after: float | None = None  # Retry-After header on 10023, if set
        self.ip_limit = 10000  # rate_limit_status's ip_limit
        self.max_pic_bytes = max_pic_bytes
        self.max_length = max_length
        self.url_weight = url_weight
        self.shorten_urls = False
        self.statuses: list[dict[str, Any]] = []  # oldest first, deleted ones removed
        self.deleted: list[dict[str, Any]] = []
        self.uploads: list[tuple[str, str, bytes]] = []  # (filename, content type, bytes) of pics
        self._forced: deque[tuple[str, int]] = deque()
        self._sent: dict[str, deque[float]] = {}
        self._next_id = 5_012_345_678_901_234
        self._clock = datetime(2026, 11, 22, 8, 0, tzinfo=CST)
        self._state = threading.RLock()

    # ------------------------------------------------------------------ controls

    def credentials(self, token: str | None = None) -> dict[str, str]:
        """An account's credentials JSON for `token` (default: the first known token)."""
        return {"access_token": token or next(iter(self.tokens))}

    def add_token(self, token: str, uid: str) -> None:
        self.tokens[token] = uid

    def expire_token(self, token: str) -> None:
        self.expired.add(token)

    def revoke_token(self, token: str) -> None:
        self.tokens.pop(token, None)

    def fail_next(self, code: str, *, status: int = 400, times: int = 1) -> None:
        """Answer the next `times` share.json calls with Weibo error `code` (nothing posted)."""
        for _ in range(times):
            self._forced.append((str(code), status))

    def texts(self) -> list[str]:
        return [s["text"] for s in self.statuses]

    def error_body(self, status: int) -> Any:
        code = {429: "10023", 404: "10014"}.get(status, "10001" if status >= 500 else str(status))
        return {"request": "", "error_code": code, "error": MESSAGES.get(code, f"HTTP {status}")}

    # ------------------------------------------------------------------ helpers

    def _error(self, req: FakeRequest, code: str, status: int = 400, headers: dict[str, str] | None = None,
               message: str | None = None) -> FakeResponse:
        return FakeResponse(status, {"request": req.path, "error_code": code, "error": message or MESSAGES[code]},
                            headers or {})

    def _user(self, req: FakeRequest) -> tuple[str | None, FakeResponse | None]:
        token = req.param("access_token")
        auth = req.header("Authorization") or ""
        if not token and auth.startswith("OAuth2 "):
            token = auth[len("OAuth2 "):].strip()
        if not token:
            return None, self._error(req, "21301", 403)
        if token not in self.tokens:
            return None, self._error(req, "21332", 403)
        if token in self.expired:
            return None, self._error(req, "21327", 403)
        return token, None

    def _rate_limited(self, token: str) -> bool:
        now = time.monotonic()
        sent = self._sent.setdefault(token, deque())
        while sent and now - sent[0] >= 3600:
            sent.popleft()
        return len(sent) >= self.posts_per_hour

    def _on_safe_domain(self, text: str) -> bool:
        domain = self.safe_domain.lower()
        for url in _URL.findall(text):
            host = (urlsplit(url).hostname or "").lower()
            if host == domain or host.endswith("." + domain):
                return True
        return False

    def _stored_text(self, text: str) -> str:
        if not self.shorten_urls:
            return text
        return _URL.sub(lambda m: "http://t.cn/" + hashlib.sha1(m.group(0).encode()).hexdigest()[:7], text)

    # ------------------------------------------------------------------ routes

    @route("POST", SHARE)
    def share(self, req: FakeRequest) -> FakeResponse:
        with self._state:
            token, denied = self._user(req)
            if denied:
                return denied
            assert token is not None
            if self._forced:
                code, status = self._forced.popleft()
                return self._error(req, code, status)
            if self._rate_limited(token):
                headers = {}
                if self.rate_limit_retry_after is not None:
                    headers["Retry-After"] = f"{self.rate_limit_retry_after:g}"
                return self._error(req, "10023", 403, headers)
            text = req.param("status")
            if not text:
                return self._error(req, "10016")
            if not self._on_safe_domain(text):
                return self._error(req, "10017")
            if weibo_length(text, self.url_weight) > self.max_length:
                return self._error(req, "20012")
            pic = req.files.get("pic")
            if "pic" in req.form:  # sent as a text field: not an image at all
                return self._error(req, "20005")
            if pic is not None:
                if not any(pic.data.startswith(magic) for magic, _ in _MAGIC):
                    return self._error(req, "20005")
                if len(pic.data) > self.max_pic_bytes:
                    return self._error(req, "20006")
            uid = self.tokens[token]
            stored = self._stored_text(text)
            if any(s["text"] == stored and s["user"]["idstr"] == uid for s in self.statuses):
                return self._error(req, "20019")
            self._next_id += 1_000_003
            self._clock += timedelta(minutes=7)
            sid = self._next_id
            status = {
                "created_at": self._clock.strftime("%a %b %d %H:%M:%S %z %Y"),
                "id": sid,
                "idstr": str(sid),
                "mid": str(sid),
                "text": stored,
                "source": "<a href=\"https://open.weibo.com\" rel=\"nofollow\">Fanout</a>",
                "user": {"id": int(uid), "idstr": uid, "screen_name": f"user{uid}"},
            }
            if pic is not None:
                name = hashlib.sha1(pic.data).hexdigest()[:22]
                self.uploads.append((pic.filename, pic.content_type, pic.data))
                status.update({"pic_ids": [name],
                               "thumbnail_pic": f"https://wx1.sinaimg.cn/thumbnail/{name}.jpg",
                               "bmiddle_pic": f"https://wx1.sinaimg.cn/bmiddle/{name}.jpg",
                               "original_pic": f"https://wx1.sinaimg.cn/large/{name}.jpg"})
            self.statuses.append(status)
            self._sent[token].append(time.monotonic())
            self.record_post(text)
            return FakeResponse(200, status)

    @route("GET", TIMELINE)
    def user_timeline(self, req: FakeRequest) -> FakeResponse:
        with self._state:
            token, denied = self._user(req)
            if denied:
                return denied
            assert token is not None
            try:
                count = int(req.param("count") or 20)
            except ValueError:
                return self._error(req, "10017", message="Parameter (count)'s value invalid")
            count = max(1, min(100, count))
            uid = self.tokens[token]
            own = [s for s in reversed(self.statuses) if s["user"]["idstr"] == uid]
            return FakeResponse(200, {"statuses": own[:count], "total_number": len(own),
                                      "previous_cursor": 0, "next_cursor": 0})

    @route("GET", RATE_LIMIT_STATUS)
    def rate_limit_status(self, req: FakeRequest) -> FakeResponse:
        with self._state:
            token, denied = self._user(req)
            if denied:
                return denied
            assert token is not None
            self._rate_limited(token)  # drops shares older than the hour
            sent = self._sent.get(token, deque())
            every = sum(len(q) for q in self._sent.values())
            reset_in = int(3600 - (time.monotonic() - sent[0])) if sent else 3600
            reset_at = datetime.now(CST) + timedelta(seconds=reset_in)
            return FakeResponse(200, {
                "ip_limit": self.ip_limit, "limit_time_unit": "HOURS",
                "remaining_ip_hits": max(0, self.ip_limit - every),
                "remaining_user_hits": max(0, self.posts_per_hour - len(sent)),
                "reset_time": reset_at.strftime("%Y-%m-%d %H:%M:%S"), "reset_time_in_seconds": reset_in,
                "user_limit": self.posts_per_hour})

    @route("POST", DESTROY)
    def destroy(self, req: FakeRequest) -> FakeResponse:
        with self._state:
            token, denied = self._user(req)
            if denied:
                return denied
            assert token is not None
            sid = req.param("id") or ""
            if not sid:
                return self._error(req, "10016", message="Miss required parameter (id)")
            for status in self.statuses:
                if status["idstr"] == sid:
                    if status["user"]["idstr"] != self.tokens[token]:
                        return self._error(req, "20102", 403)
                    self.statuses.remove(status)
                    self.deleted.append(status)
                    return FakeResponse(200, status)
            return self._error(req, "20101")
