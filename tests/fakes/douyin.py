"""A loopback Douyin open platform (../shared/channels.md, Douyin), for channels/douyin.py.

What it enforces, like the platform:

* Errors are HTTP 200 with `{"data": {"error_code", "description"}, "extra": {"error_code",
  "logid"}}` (`logid_key` picks "logid" or "log_id"); forced HTTP faults get the same shape.
* OAuth endpoints take forms only (not JSON). `/oauth/access_token/` exchanges `auth_code`;
  `/oauth/refresh_token/` needs client_key, grant_type=refresh_token and a live refresh token
  (10010 once it expired); earlier access tokens stay valid until they expire;
  `/oauth/renew_refresh_token/` replaces the refresh token at most `max_renewals` (5) times
  per authorisation, then answers 10020. `expires_in` is an int, or a string when
  `string_expiry` is set. `expire_access_token()` / `expire_refresh_token()` /
  `age_refresh_token(seconds)` move the clocks.
* Every API call needs the header `access-token` (a token in the query is not looked at)
  and the query `open_id` of the token's user: unknown token 2190002, expired 2190008
  (`token_expired_code`, e.g. 28001008), missing/mismatched open_id 2100005.
* Uploads: `upload_video/` (multipart `video`, at most `direct_max_bytes`), the part upload
  (`upload_id` handed out with characters that must be URL-encoded; parts numbered from 1
  without gaps, each but the last at least `min_part_bytes`; assembled on complete), and
  `upload_image/` (multipart `image`, JPEG or PNG). Videos must look like MP4 (an `ftyp` box).
* `create_video/` (JSON): the video_id must exist and be unused (a new upload per create),
  the text at most `text_max` characters, the cover an uploaded image id; the post is counted
  with `record_post(text)`. `set_quota(n)` → 2190001 after n creates; `set_rate_limit(n,
  window)` → 28003018. `video_data/`, `video_list/` (GET or POST, cursor/count, newest
  first), `delete/` (2100005 for an unknown item).
* `fail_next(path, code, times)` answers a route with a Douyin error before it runs.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.base import FakePlatform, FakeRequest, FakeResponse, route

DAY = 86400


@dataclass
class _Token:
    value: str
    expires_at: float
    renewals: int = 0  # refresh tokens: renewals so far in this authorisation
    revoked: bool = False


@dataclass
class _Upload:
    parts: dict[int, bytes] = field(default_factory=dict)


@dataclass
class _Video:
    video_id: str
    data: bytes
    used: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class FakeDouyin(FakePlatform):
    """One Douyin app (client_key/secret) and one authorised user (open_id)."""

    text_max = 55

    def __init__(self, *, client_key: str = "awfake0001", client_secret: str = "fake-client-secret",
                 open_id: str = "_000fakeOpenId", min_part_bytes: int = 5 * 1024 * 1024,
                 direct_max_bytes: int = 128 * 1024 * 1024, access_ttl: int = 15 * DAY,
                 refresh_ttl: int = 30 * DAY, max_renewals: int = 5, string_expiry: bool = False,
                 token_expired_code: int = 2190008, logid_key: str = "logid") -> None:
        super().__init__()
        self.client_key = client_key
        self.client_secret = client_secret
        self.open_id = open_id
        self.min_part_bytes = min_part_bytes
        self.direct_max_bytes = direct_max_bytes
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.max_renewals = max_renewals
        self.string_expiry = string_expiry
        self.token_expired_code = token_expired_code
        self.logid_key = logid_key
        self.auth_codes: set[str] = {"auth-code-1"}
        self.access_tokens: dict[str, _Token] = {}
        self.refresh_tokens: dict[str, _Token] = {}
        self.uploads: dict[str, _Upload] = {}
        self.videos: dict[str, _Video] = {}
        self.images: dict[str, bytes] = {}
        self.items: dict[str, dict[str, Any]] = {}  # item_id -> video entry (insertion = creation order)
        self.deleted: list[str] = []
        self.refreshes = 0
        self.renewals = 0
        self.quota: int | None = None
        self.rate: tuple[int, float] | None = None
        self._creates: list[float] = []
        self._fail: list[list[Any]] = []  # [path, code, times]
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ test controls

    def issue(self) -> dict[str, Any]:
        """Tokens as after a person authorised the account: the credentials JSON Fanout stores."""
        access, refresh = self._new_access(), self._new_refresh(0)
        return {"client_key": self.client_key, "client_secret": self.client_secret, "access_token": access.value,
                "refresh_token": refresh.value, "open_id": self.open_id}

    def expire_access_token(self) -> None:
        with self._lock:
            for token in self.access_tokens.values():
                token.expires_at = time.time() - 1

    def expire_refresh_token(self) -> None:
        with self._lock:
            for token in self.refresh_tokens.values():
                token.expires_at = time.time() - 1

    def age_refresh_token(self, seconds: float) -> None:
        """Bring every refresh token's expiry `seconds` closer."""
        with self._lock:
            for token in self.refresh_tokens.values():
                token.expires_at -= seconds

    def set_quota(self, creates: int | None) -> None:
        self.quota = creates

    def set_rate_limit(self, creates: int, window_seconds: float) -> None:
        self.rate = (creates, window_seconds)

    def fail_next(self, path: str, code: int, times: int = 1) -> None:
        """The next `times` requests to `path` get Douyin error `code` (the handler does not run)."""
        with self._lock:
            self._fail.append([path, code, times])

    def error_body(self, status: int) -> Any:
        return self._error(status, f"HTTP {status}")

    def live_items(self) -> list[dict[str, Any]]:
        return list(self.items.values())

    # ------------------------------------------------------------------ helpers

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    def _expiry(self, seconds: float) -> Any:
        seconds = max(0, int(seconds))
        return str(seconds) if self.string_expiry else seconds

    def _new_access(self) -> _Token:
        token = _Token(f"act.{hashlib.sha256(self._id('a').encode()).hexdigest()[:24]}", time.time() + self.access_ttl)
        self.access_tokens[token.value] = token
        return token

    def _new_refresh(self, renewals: int) -> _Token:
        token = _Token(f"rft.{hashlib.sha256(self._id('r').encode()).hexdigest()[:24]}",
                       time.time() + self.refresh_ttl, renewals)
        self.refresh_tokens[token.value] = token
        return token

    def _error(self, code: int, description: str) -> dict[str, Any]:
        logid = f"2026{next(self._ids):012d}FAKE"
        return {"data": {"error_code": code, "description": description},
                "extra": {"error_code": code, "description": description, self.logid_key: logid,
                          "sub_error_code": 0, "sub_description": ""}}

    def _fail_response(self, code: int, description: str) -> FakeResponse:
        return FakeResponse(200, self._error(code, description))

    def _ok(self, data: dict[str, Any]) -> FakeResponse:
        return FakeResponse(200, {"data": {"error_code": 0, "description": "", **data},
                                  "extra": {"error_code": 0, "description": "",
                                            self.logid_key: f"2026{next(self._ids):012d}FAKE"}})

    def _oauth_error(self, code: int, description: str) -> FakeResponse:
        return FakeResponse(200, {"data": {"error_code": code, "description": description}, "message": "error"})

    def _oauth_ok(self, data: dict[str, Any]) -> FakeResponse:
        return FakeResponse(200, {"data": {"error_code": 0, "description": "", **data}, "message": "success"})

    def _injected(self, req: FakeRequest) -> FakeResponse | None:
        with self._lock:
            for entry in self._fail:
                if entry[0] == req.path:
                    entry[2] -= 1
                    if entry[2] <= 0:
                        self._fail.remove(entry)
                    return self._fail_response(entry[1], f"injected error {entry[1]}")
        return None

    def _auth(self, req: FakeRequest) -> FakeResponse | None:
        """None when the call is authorised; else the platform's error answer."""
        injected = self._injected(req)
        if injected is not None:
            return injected
        token = self.access_tokens.get(req.header("access-token") or "")
        if token is None or token.revoked:
            return self._fail_response(2190002, "access_token无效")
        if token.expires_at <= time.time():
            return self._fail_response(self.token_expired_code, "access_token过期,请刷新或重新授权")
        if req.query.get("open_id") != self.open_id:
            return self._fail_response(2100005, "参数不合法: open_id")
        return None

    def _form_only(self, req: FakeRequest) -> bool:
        return bool(req.form) and req.json is None and not req.files

    # ------------------------------------------------------------------ OAuth

    def _token_answer(self, access: _Token, refresh: _Token) -> dict[str, Any]:
        now = time.time()
        return {"access_token": access.value, "expires_in": self._expiry(access.expires_at - now),
                "refresh_token": refresh.value, "refresh_expires_in": self._expiry(refresh.expires_at - now),
                "open_id": self.open_id, "scope": "video.create,video.data,video.delete,video.list"}

    @route("POST", "/oauth/access_token/")
    def access_token(self, req: FakeRequest) -> FakeResponse:
        if not self._form_only(req) or req.form.get("grant_type") != "authorization_code":
            return self._oauth_error(10002, "参数错误")
        if req.form.get("client_key") != self.client_key or req.form.get("client_secret") != self.client_secret:
            return self._oauth_error(10013, "client_key或client_secret错误")
        with self._lock:
            if req.form.get("code") not in self.auth_codes:
                return self._oauth_error(10007, "授权码过期")
            self.auth_codes.discard(req.form["code"])
            return self._oauth_ok(self._token_answer(self._new_access(), self._new_refresh(0)))

    @route("POST", "/oauth/refresh_token/")
    def refresh_token(self, req: FakeRequest) -> FakeResponse:
        injected = self._injected(req)
        if injected is not None:
            return injected
        if not self._form_only(req) or req.form.get("grant_type") != "refresh_token":
            return self._oauth_error(10002, "参数错误")
        if req.form.get("client_key") != self.client_key:
            return self._oauth_error(10013, "client_key错误")
        with self._lock:
            refresh = self.refresh_tokens.get(req.form.get("refresh_token") or "")
            if refresh is None or refresh.revoked or refresh.expires_at <= time.time():
                return self._oauth_error(10010, "refresh_token过期,请重新授权")
            self.refreshes += 1
            return self._oauth_ok(self._token_answer(self._new_access(), refresh))

    @route("POST", "/oauth/renew_refresh_token/")
    def renew_refresh_token(self, req: FakeRequest) -> FakeResponse:
        if not self._form_only(req):
            return self._oauth_error(10002, "参数错误")
        if req.form.get("client_key") != self.client_key:
            return self._oauth_error(10013, "client_key错误")
        with self._lock:
            old = self.refresh_tokens.get(req.form.get("refresh_token") or "")
            if old is None or old.revoked or old.expires_at <= time.time():
                return self._oauth_error(10010, "refresh_token过期,请重新授权")
            if old.renewals >= self.max_renewals:
                return self._oauth_error(10020, "refresh_token刷新次数超过上限")
            old.revoked = True
            new = self._new_refresh(old.renewals + 1)
            self.renewals += 1
            return self._oauth_ok({"refresh_token": new.value, "expires_in": self._expiry(self.refresh_ttl)})

    # ------------------------------------------------------------------ uploads

    def _store_video(self, data: bytes) -> FakeResponse:
        if data[4:8] != b"ftyp":
            return self._fail_response(2100005, "视频格式不支持")
        video = _Video(self._id("v0200fg10000fake"), data)
        self.videos[video.video_id] = video
        return self._ok({"video": {"video_id": video.video_id, "width": 1080, "height": 1920}})

    @route("POST", "/api/douyin/v1/video/upload_video/")
    def upload_video(self, req: FakeRequest) -> FakeResponse:
        denied = self._auth(req)
        if denied is not None:
            return denied
        upload = req.files.get("video")
        if upload is None:
            return self._fail_response(2100005, "缺少video")
        if len(upload.data) > self.direct_max_bytes:
            return self._fail_response(2100005, "视频过大,请使用分片上传")
        with self._lock:
            return self._store_video(upload.data)

    @route("POST", "/api/douyin/v1/video/init_video_part_upload/")
    def init_part_upload(self, req: FakeRequest) -> FakeResponse:
        denied = self._auth(req)
        if denied is not None:
            return denied
        with self._lock:
            upload_id = f"@9VwN+{next(self._ids):04d}/up==&x"  # needs URL-encoding in a query
            self.uploads[upload_id] = _Upload()
            return self._ok({"upload_id": upload_id})

    @route("POST", "/api/douyin/v1/video/upload_video_part/")
    def upload_part(self, req: FakeRequest) -> FakeResponse:
        denied = self._auth(req)
        if denied is not None:
            return denied
        upload = self.uploads.get(req.query.get("upload_id", ""))
        part = req.files.get("video")
        number = req.query.get("part_number", "")
        if upload is None or part is None or not number.isdigit() or int(number) < 1:
            return self._fail_response(2100005, "参数不合法: upload_id/part_number/video")
        with self._lock:
            upload.parts[int(number)] = part.data
        return self._ok({})

    @route("POST", "/api/douyin/v1/video/complete_video_part_upload/")
    def complete_part_upload(self, req: FakeRequest) -> FakeResponse:
        denied = self._auth(req)
        if denied is not None:
            return denied
        with self._lock:
            upload = self.uploads.pop(req.query.get("upload_id", ""), None)
            if upload is None or not upload.parts:
                return self._fail_response(2100005, "参数不合法: upload_id")
            numbers = sorted(upload.parts)
            if numbers != list(range(1, len(numbers) + 1)):
                return self._fail_response(2100005, f"分片不连续: {numbers}")
            if any(len(upload.parts[n]) < self.min_part_bytes for n in numbers[:-1]):
                return self._fail_response(2100005, f"分片小于{self.min_part_bytes}字节")
            return self._store_video(b"".join(upload.parts[n] for n in numbers))

    @route("POST", "/api/douyin/v1/video/upload_image/")
    def upload_image(self, req: FakeRequest) -> FakeResponse:
        denied = self._auth(req)
        if denied is not None:
            return denied
        image = req.files.get("image")
        if image is None or not (image.data.startswith(b"\xff\xd8") or image.data.startswith(b"\x89PNG")):
            return self._fail_response(2100005, "图片格式不支持")
        with self._lock:
            image_id = f"@8hxd{next(self._ids):04d}+Cover/V=="
            self.images[image_id] = image.data
            return self._ok({"image": {"image_id": image_id, "width": 1080, "height": 1920}})

    # ------------------------------------------------------------------ videos

    @route("POST", "/api/douyin/v1/video/create_video/")
    def create_video(self, req: FakeRequest) -> FakeResponse:
        denied = self._auth(req)
        if denied is not None:
            return denied
        body = req.json if isinstance(req.json, dict) else None
        if body is None:
            return self._fail_response(2100005, "请求体必须是JSON")
        text = body.get("text") or ""
        with self._lock:
            video = self.videos.get(body.get("video_id") or "")
            if video is None or video.used:
                return self._fail_response(2100005, "video_id无效或已使用")
            if len(text) > self.text_max:
                return self._fail_response(2100005, "text过长")
            cover = body.get("custom_cover_image_url")
            if cover is not None and cover not in self.images:
                return self._fail_response(2100005, "封面图片无效")
            now = time.time()
            if self.quota is not None and len(self._creates) >= self.quota:
                return self._fail_response(2190001, "超过调用配额")
            if self.rate is not None:
                limit, window = self.rate
                if sum(1 for t in self._creates if t > now - window) >= limit:
                    return self._fail_response(28003018, "调用过于频繁")
            self._creates.append(now)
            video.used = True
            self.record_post(text)
            serial = next(self._ids)
            item_id = f"@9VwL{serial:04d}+aW/x1w=="
            self.items[item_id] = {
                "item_id": item_id, "title": text, "create_time": int(now), "video_status": 4,
                "share_url": f"https://www.iesdouyin.com/share/video/{7300000000000000000 + serial}/",
                "cover": f"https://p3.douyinpic.com/fake/{serial}.jpeg", "is_top": False, "is_reviewed": False,
                "video_id": video.video_id, "video_sha256": video.sha256, "custom_cover": cover,
                "statistics": {"play_count": 0, "digg_count": 0, "comment_count": 0, "share_count": 0,
                               "download_count": 0, "forward_count": 0},
            }
            return self._ok({"item_id": item_id})

    def _public(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k not in ("video_id", "video_sha256", "custom_cover")}

    @route("POST", "/api/douyin/v1/video/video_data/")
    def video_data(self, req: FakeRequest) -> FakeResponse:
        denied = self._auth(req)
        if denied is not None:
            return denied
        ids = req.json.get("item_ids") if isinstance(req.json, dict) else None
        if not isinstance(ids, list) or not ids:
            return self._fail_response(2100005, "参数不合法: item_ids")
        with self._lock:
            return self._ok({"list": [self._public(self.items[i]) for i in ids if i in self.items]})

    def _video_list(self, req: FakeRequest) -> FakeResponse:
        denied = self._auth(req)
        if denied is not None:
            return denied
        try:
            cursor = int(req.param("cursor", "0") or 0)
            count = int(req.param("count", "10") or 10)
        except (TypeError, ValueError):
            return self._fail_response(2100005, "参数不合法: cursor/count")
        if not 1 <= count <= 20 or cursor < 0:
            return self._fail_response(2100005, "参数不合法: count")
        with self._lock:
            newest = [self._public(i) for i in reversed(self.items.values())]
        page = newest[cursor: cursor + count]
        next_cursor = cursor + len(page)
        return self._ok({"list": page, "cursor": next_cursor, "has_more": next_cursor < len(newest)})

    @route("GET", "/api/douyin/v1/video/video_list/")
    def video_list_get(self, req: FakeRequest) -> FakeResponse:
        return self._video_list(req)

    @route("POST", "/api/douyin/v1/video/video_list/")
    def video_list_post(self, req: FakeRequest) -> FakeResponse:
        return self._video_list(req)

    @route("POST", "/api/douyin/v1/video/delete/")
    def delete(self, req: FakeRequest) -> FakeResponse:
        denied = self._auth(req)
        if denied is not None:
            return denied
        item_id = req.json.get("item_id") if isinstance(req.json, dict) else None
        with self._lock:
            if item_id not in self.items:
                return self._fail_response(2100005, "参数不合法: item_id")
            del self.items[item_id]
            self.deleted.append(item_id)
        return self._ok({})
