"""Douyin (抖音) through the open platform's user-authorised video API (channels.md, Douyin).

Where the numbers come from (../shared/channels.md unless said otherwise):

* Base `https://open.douyin.com`; an account's --api-base replaces scheme and host only.
  Every API call carries the header `access-token` and the query `?open_id=`; the token
  never goes into a URL, a form or a message.
* Tokens: `POST /oauth/refresh_token/` (form: client_key, grant_type=refresh_token,
  refresh_token) gives a new access token (15 days); `expires_in` arrives as an int or as a
  string. Error 10010 = the refresh token (30 days) expired: only a person can authorise the
  account again. `POST /oauth/renew_refresh_token/` (form: client_key, refresh_token) renews
  the refresh token, at most 5 times per authorisation; the open platform answers 10020 when
  the renewals are used up (that code is from the platform's docs, not in channels.md).
* Upload: one `POST /api/douyin/v1/video/upload_video/` (multipart `video`) up to 128 MB;
  above `chunked_above_bytes` (50 MB, "recommended above 50 MB") the part upload
  (`init_video_part_upload/`, `upload_video_part/?upload_id=&part_number=N`,
  `complete_video_part_upload/?upload_id=`) with 20 MB parts ("parts ≥5 MB, ~20 MB advised").
  A new upload is needed for every create. Cover: `upload_image/` (multipart `image`), whose
  image id goes into `custom_cover_image_url`.
* Publish: `POST /api/douyin/v1/video/create_video/` JSON `{video_id, text, ...}` →
  `data.item_id`; `text` holds the title with `#话题`, 55 characters at most (unconfirmed:
  a ClassVar here, counted in code points). `video_data/` gives share_url and create_time.
* Errors come as HTTP 200 with `data.error_code`: 2190008/28001008 token expired (refresh
  once, retry the call), 2190002 invalid token, 2100004/28001005 busy (transient),
  2100005/28001007 bad parameter (permanent), 2190001/28003017 quota and 28003018 rate
  (transient, retried after `quota_retry_after` / `rate_retry_after` seconds).
* The daily series is ~1 minute of vertical video: rendition `douyin_video` (1080×1920, the
  campaign label drawn over its first seconds, `label_on_video`) and `douyin_cover`.

Quota: Douyin reports none until it is used up; a quota error (2190001/28003017) is handed to
`AccountData.note_quota` as none left (when it resets, the platform does not say).

Reconcile: the platform has no lookup by text, so `video_list/` is paged newest first
(`reconcile_pages` pages of `reconcile_page_size`) and the post is the video whose title is
exactly the rendered `text`.

Settings: part_bytes (20 MB), chunked_above_bytes (50 MB, never above 128 MB),
quota_retry_after (3600), rate_retry_after (60), busy_retry_after (none: the dispatcher's
backoff), reconcile_pages (10), reconcile_page_size (1..20), connect_timeout/read_timeout.
Credentials: client_key, client_secret (not sent by any call here), access_token,
refresh_token, open_id, and the bookkeeping this module writes: access_expires_at,
refresh_expires_at (ISO 8601, UTC), renew_count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from channels.base import (
    AccountData,
    Channel,
    ChannelError,
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
from channels.text import CLAUSE_ENDS, SENTENCE_ENDS

DEFAULT_BASE = "https://open.douyin.com"
MB = 1024 * 1024

PATH_REFRESH = "/oauth/refresh_token/"
PATH_RENEW = "/oauth/renew_refresh_token/"
PATH_UPLOAD = "/api/douyin/v1/video/upload_video/"
PATH_PART_INIT = "/api/douyin/v1/video/init_video_part_upload/"
PATH_PART = "/api/douyin/v1/video/upload_video_part/"
PATH_PART_COMPLETE = "/api/douyin/v1/video/complete_video_part_upload/"
PATH_IMAGE = "/api/douyin/v1/video/upload_image/"
PATH_CREATE = "/api/douyin/v1/video/create_video/"
PATH_DATA = "/api/douyin/v1/video/video_data/"
PATH_LIST = "/api/douyin/v1/video/video_list/"
PATH_DELETE = "/api/douyin/v1/video/delete/"

TOKEN_EXPIRED = frozenset({"2190008", "28001008"})
TOKEN_INVALID = frozenset({"2190002"})
BUSY = frozenset({"2100004", "28001005"})
BAD_PARAMETER = frozenset({"2100005", "28001007"})
QUOTA = frozenset({"2190001", "28003017"})
RATE = frozenset({"28003018"})
REFRESH_EXPIRED = "10010"
RENEWALS_EXHAUSTED = "10020"  # open-platform docs; not in channels.md

REAUTHORISE = "a person must authorise the Douyin account again (扫码授权) and store its new tokens"


class DouyinChannel(Channel):
    """抖音: one vertical video per story, its text the label, the title and #话题."""

    name: ClassVar[str] = "douyin"
    title_zh: ClassVar[str] = "抖音"
    # The whole `text` (label + title + #话题) shares these 55 characters (unconfirmed).
    text_max: ClassVar[int] = 55
    title_max: ClassVar[int | None] = 55
    body_max: ClassVar[int | None] = None  # Douyin has no body: only `text` is sent
    length_rule: ClassVar[str] = "chars"
    cuts_text: ClassVar[bool] = True  # an over-long title is cut with "…" (proofing warns)
    title_min_chars: ClassVar[int] = 8  # less room than this for the title is a RenderError
    max_images: ClassVar[int | None] = 1  # the cover; gallery images are not sent
    image_profiles: ClassVar[tuple[str, ...]] = ("douyin_cover",)
    video_profiles: ClassVar[tuple[str, ...]] = ("douyin_video",)
    label_on_video: ClassVar[bool] = True
    accepted_types: ClassVar[tuple[str, ...]] = ("video/mp4", "image/jpeg", "image/png")
    min_seconds_between_requests: ClassVar[float] = 0.0
    max_parallel_posts: ClassVar[int | None] = 4  # ours: each post uploads a video, chunked when large
    supports_live: ClassVar[bool] = True
    supports_retract: ClassVar[bool] = True
    credential_keys: ClassVar[tuple[str, ...]] = ("client_key", "access_token", "refresh_token", "open_id")
    # Upload sizes (channels.md): direct up to 128 MB, part upload advised above 50 MB.
    direct_max_bytes: ClassVar[int] = 128 * MB
    chunked_above_bytes: ClassVar[int] = 50 * MB
    part_bytes: ClassVar[int] = 20 * MB
    # Token upkeep (channels.md: access 15 days, refresh 30 days, at most 5 renewals).
    max_renewals: ClassVar[int] = 5
    refresh_access_within: ClassVar[timedelta] = timedelta(days=1)
    renew_refresh_within: ClassVar[timedelta] = timedelta(days=5)
    refresh_margin: ClassVar[timedelta] = timedelta(minutes=5)  # publish refreshes this close to expiry
    quota_retry_after: ClassVar[float] = 3600.0
    rate_retry_after: ClassVar[float] = 60.0
    reconcile_pages: ClassVar[int] = 10
    reconcile_page_size: ClassVar[int] = 20  # video_list `count` per page (20 assumed to be the maximum)

    # ------------------------------------------------------------------ render

    def render(self, story: StoryData, renditions: RenditionSet) -> Post:
        videos = [m for m in story.media if m.kind == "video"]
        if not videos:
            raise RenderError(f"story {story.story_id} has no video: Douyin only publishes videos")
        video = renditions.get(videos[0].sha256, {}).get("douyin_video")
        if video is None:
            raise RenderError(f"video {videos[0].sha256[:12]} has no douyin_video rendition")
        files = [_post_file("video", video, story.story_id)]
        covers = [m for m in story.media_by_role("cover") if m.kind == "image"]
        if covers:
            cover = renditions.get(covers[0].sha256, {}).get("douyin_cover")
            if cover is None:
                raise RenderError(f"cover image {covers[0].sha256[:12]} has no douyin_cover rendition")
            files.append(_post_file("cover", cover, story.story_id))
        text, hashtags = compose_text(story.label, story.title, story.tags, self.text_max, self.title_min_chars)
        fields = {"text": text, "hashtags": hashtags}
        return Post(channel=self.name, story_id=story.story_id, version=story.version, fields=fields,
                    files=tuple(files))

    def outbox_checklist(self, post: Post) -> list[str]:
        steps = ["用已授权的账号登录抖音创作者中心（creator.douyin.com）或抖音 App",
                 "上传 files/ 中的竖屏视频（活动标签已叠加在片头，不要裁剪）"]
        if any(f.role == "cover" for f in post.files):
            steps.append("选择“上传封面”，使用 files/ 中的封面图")
        steps += ["把 text.txt 的全部内容粘贴为作品描述（活动标签在最前，话题不要改动）",
                  "发布后复制作品的分享链接，在 Fanout 中“登记已发布”"]
        return steps

    # ------------------------------------------------------------------ publish

    def publish(self, post: Post, account: AccountData) -> Receipt:
        text, video, cover = self._check_post(post)
        api = _Api(self, account)
        api.refresh_if_due()
        cover_id = self._upload_image(api, cover) if cover is not None else None
        video_id = self._upload_video(api, video)
        body: dict[str, Any] = {"video_id": video_id, "text": text}
        if cover_id:
            body["custom_cover_image_url"] = cover_id
        data = api.call("POST", PATH_CREATE, "create the video", sends_post=True, json=body)
        item_id = data.get("item_id")
        if not item_id:
            # The platform said "ok" without an id: whether the video exists is unknown.
            raise OutcomeUnknownError("create_video answered without an item_id; reconcile before retrying")
        item_id = str(item_id)
        extra: dict[str, Any] = {"video_id": video_id}
        url = None
        try:  # the video exists now: a failed status call must not make the post look failed
            found = self._video_data(api, item_id)
        except ChannelError:
            found = None
        if found:
            url = found.get("share_url") or None
            if found.get("create_time") is not None:
                extra["create_time"] = found["create_time"]
        return Receipt(remote_id=item_id, url=url, extra=extra)

    def reconcile(self, post: Post, account: AccountData) -> Receipt | None:
        text = post.fields.get("text") if post.channel == self.name else None
        if not isinstance(text, str) or not text:
            raise PermanentChannelError("not a Douyin post: it has no text to look for")
        api = _Api(self, account)
        api.refresh_if_due()
        pages = _int_setting(account, "reconcile_pages", self.reconcile_pages, 1, 100)
        count = _int_setting(account, "reconcile_page_size", self.reconcile_page_size, 1, self.reconcile_page_size)
        cursor: Any = 0
        for _ in range(pages):
            data = api.call("GET", PATH_LIST, "list the account's videos", params={"cursor": cursor, "count": count})
            for item in data.get("list") or ():
                if isinstance(item, Mapping) and item.get("title") == text and item.get("item_id"):
                    extra = {k: item[k] for k in ("create_time", "video_status") if item.get(k) is not None}
                    return Receipt(remote_id=str(item["item_id"]), url=item.get("share_url") or None, extra=extra)
            if not data.get("has_more") or data.get("cursor") in (None, cursor):
                break
            cursor = data["cursor"]
        return None

    def retract(self, receipt: Receipt, account: AccountData) -> None:
        if not receipt.remote_id:
            raise PermanentChannelError("the receipt has no Douyin item_id to delete")
        api = _Api(self, account)
        api.refresh_if_due()
        try:
            api.call("POST", PATH_DELETE, "delete the video", json={"item_id": receipt.remote_id})
        except PermanentChannelError as exc:
            if exc.code not in BAD_PARAMETER:
                raise
            # A retried retraction: the first delete may have gone through already.
            if self._video_data(api, receipt.remote_id) is not None:
                raise

    # ------------------------------------------------------------------ upkeep

    def maintain(self, account: AccountData, now: datetime) -> list[str]:
        """Refresh the access token within a day of its expiry; renew the refresh token within
        5 days of its expiry (at most 5 times). Returns warnings for ops; never raises for a
        platform answer (beat keeps running for the other accounts)."""
        creds = account.credentials
        if account.mode != "live" or not creds:
            return []
        who = f"Douyin account {account.name!r} (id {account.id})"
        if not creds.get("refresh_token") or not creds.get("client_key"):
            return [f"{who} has no refresh_token/client_key credential: {REAUTHORISE}"]
        now = _aware(now)
        api = _Api(self, account, clock=lambda: now)
        warnings: list[str] = []
        access_at = _parse_time(creds.get("access_expires_at"))
        if access_at is None or access_at - now <= self.refresh_access_within:
            try:
                api.refresh()
            except ChannelError as exc:
                warnings.append(f"{who}: could not refresh the access token: {exc}")
                if exc.code == REFRESH_EXPIRED:
                    return warnings
        creds = api.account.credentials
        refresh_at = _parse_time(creds.get("refresh_expires_at"))
        count = _int(creds.get("renew_count"), 0)
        if refresh_at is None:
            warnings.append(f"{who}: the refresh token's expiry is unknown (the platform did not say); "
                            f"check the authorisation date")
            return warnings
        if refresh_at <= now:
            warnings.append(f"{who}: the refresh token expired at {refresh_at.isoformat()}: {REAUTHORISE}")
            return warnings
        if refresh_at - now <= self.renew_refresh_within:
            if count < self.max_renewals:
                try:
                    api.renew()
                except ChannelError as exc:
                    warnings.append(f"{who}: the refresh token expires at {refresh_at.isoformat()} and could not "
                                    f"be renewed: {exc}")
                    return warnings
                creds = api.account.credentials
                refresh_at = _parse_time(creds.get("refresh_expires_at")) or refresh_at
                count = _int(creds.get("renew_count"), count)
            else:
                warnings.append(f"{who}: the refresh token expires at {refresh_at.isoformat()} and cannot be "
                                f"renewed ({count}/{self.max_renewals} renewals used): {REAUTHORISE} before then")
                return warnings
        if count >= self.max_renewals:
            warnings.append(f"{who}: all {self.max_renewals} refresh-token renewals are used; the refresh token "
                            f"expires at {refresh_at.isoformat()}: {REAUTHORISE} before then")
        return warnings

    # ------------------------------------------------------------------ internals

    def _check_post(self, post: Post) -> tuple[str, PostFile, PostFile | None]:
        if post.channel != self.name:
            raise PermanentChannelError(f"a {post.channel!r} post cannot be published on the Douyin channel")
        text = post.fields.get("text")
        if not isinstance(text, str) or not text.strip():
            raise PermanentChannelError("the Douyin post has no text")
        if len(text) > self.text_max:
            raise PermanentChannelError(f"the Douyin text has {len(text)} characters; at most {self.text_max}")
        videos = [f for f in post.files if f.role == "video"]
        covers = [f for f in post.files if f.role == "cover"]
        if not videos:
            raise PermanentChannelError("the Douyin post carries no video")
        for f in videos[:1] + covers[:1]:
            if not f.path or not os.path.isfile(f.path):
                raise PermanentChannelError(f"{f.role} file {f.name} is not available locally (path not set or missing)")
        return text, videos[0], (covers[0] if covers else None)

    def _upload_image(self, api: _Api, cover: PostFile) -> str:
        data = api.call("POST", PATH_IMAGE, "upload the cover image",
                        files=lambda: {"image": (cover.name, _read(cover.path), cover.mime)})
        image = data.get("image") or {}
        image_id = image.get("image_id") if isinstance(image, Mapping) else None
        if not image_id:
            raise TransientChannelError("upload_image answered without data.image.image_id")
        return str(image_id)

    def _upload_video(self, api: _Api, video: PostFile) -> str:
        assert video.path is not None
        size = os.path.getsize(video.path)
        account = api.account
        direct_limit = min(self.direct_max_bytes,
                           _int_setting(account, "chunked_above_bytes", self.chunked_above_bytes, 1, self.direct_max_bytes))
        if size <= direct_limit:
            data = api.call("POST", PATH_UPLOAD, "upload the video",
                            files=lambda: {"video": (video.name, _read(video.path), video.mime)})
        else:
            part = _int_setting(account, "part_bytes", self.part_bytes, 1, 1024 * MB)
            init = api.call("POST", PATH_PART_INIT, "start the part upload")
            upload_id = init.get("upload_id")
            if not upload_id:
                raise TransientChannelError("init_video_part_upload answered without data.upload_id")
            number = 0
            with open(video.path, "rb") as fh:
                while True:
                    chunk = fh.read(part)
                    if not chunk:
                        break
                    number += 1
                    api.call("POST", PATH_PART, f"upload video part {number}",
                             params={"upload_id": upload_id, "part_number": number},
                             files=lambda chunk=chunk: {"video": (video.name, chunk, video.mime)})
            data = api.call("POST", PATH_PART_COMPLETE, "complete the part upload", params={"upload_id": upload_id})
        found = data.get("video") or {}
        video_id = found.get("video_id") if isinstance(found, Mapping) else None
        if not video_id:
            raise TransientChannelError("the video upload answered without data.video.video_id")
        return str(video_id)

    def _video_data(self, api: _Api, item_id: str) -> Mapping[str, Any] | None:
        data = api.call("POST", PATH_DATA, "read the video's status", json={"item_ids": [item_id]})
        for item in data.get("list") or ():
            if isinstance(item, Mapping) and str(item.get("item_id")) == item_id:
                return item
        return None

    def map_error(self, exc: ChannelError, what: str, account: AccountData, logid: str | None = None) -> ChannelError:
        """A typed error for a Douyin answer (codes from channels.md), with the platform's
        code, its description and the logid Douyin support asks for."""
        code = exc.code
        where = f" (logid {logid})" if logid else ""
        reason = f"could not {what}: {exc}{where}"
        if code in TOKEN_EXPIRED:
            return PermanentChannelError(f"Douyin {reason}: the access token was refused as expired even after a "
                                         f"refresh", code=code)
        if code in TOKEN_INVALID:
            return PermanentChannelError(f"Douyin {reason}: the access token is invalid; {REAUTHORISE}", code=code)
        if code in BUSY:
            busy = account.setting("busy_retry_after")
            return TransientChannelError(f"Douyin is busy: {reason}", code=code,
                                         retry_after=float(busy) if busy is not None else None)
        if code in QUOTA:
            return TransientChannelError(f"Douyin quota used up: {reason}", code=code,
                                         retry_after=_float_setting(account, "quota_retry_after", self.quota_retry_after))
        if code in RATE:
            return TransientChannelError(f"Douyin rate limit: {reason}", code=code,
                                         retry_after=_float_setting(account, "rate_retry_after", self.rate_retry_after))
        if code in BAD_PARAMETER:
            return PermanentChannelError(f"Douyin refused a parameter: {reason}", code=code)
        if code == REFRESH_EXPIRED:
            return PermanentChannelError(f"Douyin refresh token expired: {reason}; {REAUTHORISE}", code=code)
        if code == RENEWALS_EXHAUSTED:
            return PermanentChannelError(f"Douyin refresh token renewals used up: {reason}; {REAUTHORISE}", code=code)
        if not isinstance(exc, PermanentChannelError):
            return exc
        return PermanentChannelError(f"Douyin {reason}", code=code)


# ----------------------------------------------------------------------------- the API session


class _Api:
    """One account's calls: auth header and open_id on each, one token refresh on expiry,
    refreshed tokens persisted through `account.with_credentials`."""

    def __init__(self, channel: DouyinChannel, account: AccountData,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.channel = channel
        self.account = account
        self.clock = clock or (lambda: datetime.now(UTC))
        self.client = channel.http(account, DEFAULT_BASE, "douyin")
        self.client.session.hooks["response"].append(self._remember)
        self.refreshed = False
        self._last_body: Any = None

    def _remember(self, response: Any, *_args: Any, **_kwargs: Any) -> None:
        try:
            self._last_body = response.json() if response.content else None
        except ValueError:
            self._last_body = None

    def _logid(self) -> str | None:
        body = self._last_body
        if not isinstance(body, Mapping):
            return None
        for part in (body.get("extra"), body.get("data"), body):
            if isinstance(part, Mapping):
                for key in ("logid", "log_id"):
                    if part.get(key):
                        return str(part[key])
        return None

    def _require(self, *keys: str) -> None:
        missing = [k for k in keys if not self.account.credentials.get(k)]
        if missing:
            raise PermanentChannelError(f"Douyin account {self.account.name!r} has no {', '.join(missing)} "
                                        f"credential: {REAUTHORISE}")

    def call(self, method: str, path: str, what: str, *, sends_post: bool = False,
             params: Mapping[str, Any] | None = None, json: Any = None,
             files: Callable[[], dict[str, Any]] | None = None) -> Mapping[str, Any]:
        """`data` of a successful answer; the typed error otherwise. `files` is a factory, so a
        retried call sends the file again from the start."""
        self._require("access_token", "open_id")
        while True:
            creds = self.account.credentials
            kwargs: dict[str, Any] = {"headers": {"access-token": str(creds["access_token"])},
                                      "params": {"open_id": str(creds["open_id"]), **(params or {})}}
            if json is not None:
                kwargs["json"] = json
            if files is not None:
                kwargs["files"] = files()
            try:
                body = self.client.request(method, path, sends_post=sends_post, **kwargs)
            except PermanentChannelError as exc:
                if exc.code in TOKEN_EXPIRED and not self.refreshed:
                    self.refresh()  # the call was refused, not done: safe to send again
                    continue
                if exc.code in QUOTA:
                    self.account.note_quota(remaining=0, what="open-platform call quota", source=f"error {exc.code}")
                raise self.channel.map_error(exc, what, self.account, self._logid()) from exc
            except (TransientChannelError, OutcomeUnknownError):
                raise  # HTTP 429/5xx, no connection, or no answer after sending: already typed
            data = body.get("data") if isinstance(body, Mapping) else None
            if not isinstance(data, Mapping):
                if sends_post:
                    raise OutcomeUnknownError(f"Douyin answered {what} without a data object; reconcile")
                raise TransientChannelError(f"Douyin answered {what} without a data object")
            return data

    def refresh_if_due(self) -> None:
        at = _parse_time(self.account.credentials.get("access_expires_at"))
        if at is not None and at - self.clock() <= self.channel.refresh_margin:
            self.refresh()

    def _oauth(self, path: str, what: str, form: dict[str, str]) -> Mapping[str, Any]:
        try:
            body = self.client.request("POST", path, data=form)
        except PermanentChannelError as exc:
            raise self.channel.map_error(exc, what, self.account, self._logid()) from exc
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, Mapping):
            raise TransientChannelError(f"Douyin answered {what} without a data object")
        return data

    def refresh(self) -> None:
        """A new access token from the refresh token (persisted); 10010 → re-authorise."""
        self._require("client_key", "refresh_token")
        creds = self.account.credentials
        data = self._oauth(PATH_REFRESH, "refresh the access token",
                           {"client_key": str(creds["client_key"]), "grant_type": "refresh_token",
                            "refresh_token": str(creds["refresh_token"])})
        if not data.get("access_token"):
            raise TransientChannelError("Douyin answered the token refresh without an access_token")
        now = self.clock()
        updates: dict[str, Any] = {"access_token": str(data["access_token"])}
        if data.get("refresh_token"):
            updates["refresh_token"] = str(data["refresh_token"])
        if data.get("open_id"):
            updates["open_id"] = str(data["open_id"])
        seconds = _seconds(data.get("expires_in"))
        if seconds is not None:
            updates["access_expires_at"] = _iso(now + timedelta(seconds=seconds))
        seconds = _seconds(data.get("refresh_expires_in"))
        if seconds is not None:
            updates["refresh_expires_at"] = _iso(now + timedelta(seconds=seconds))
        self.account = self.account.with_credentials(updates)
        self.refreshed = True

    def renew(self) -> None:
        """A renewed refresh token (persisted, renew_count + 1)."""
        self._require("client_key", "refresh_token")
        creds = self.account.credentials
        data = self._oauth(PATH_RENEW, "renew the refresh token",
                           {"client_key": str(creds["client_key"]), "refresh_token": str(creds["refresh_token"])})
        if not data.get("refresh_token"):
            raise TransientChannelError("Douyin answered the renewal without a refresh_token")
        updates: dict[str, Any] = {"refresh_token": str(data["refresh_token"]),
                                   "renew_count": _int(creds.get("renew_count"), 0) + 1}
        seconds = _seconds(data.get("expires_in"))
        if seconds is not None:
            updates["refresh_expires_at"] = _iso(self.clock() + timedelta(seconds=seconds))
        self.account = self.account.with_credentials(updates)


# ----------------------------------------------------------------------------- text


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def _hashtag(tag: str) -> str:
    """`#话题` of a tag: no spaces (a space ends a topic), no # or @ inside."""
    cleaned = "".join(ch for ch in (tag or "") if not ch.isspace() and ch not in "#@＃")
    return f"#{cleaned}" if cleaned else ""


def cut_text(text: str, room: int) -> str:
    """`text` in at most `room` characters: whole if it fits, else cut after a sentence or
    clause mark or a space in the second half of the room, else hard, ending in "…"."""
    if len(text) <= room:
        return text
    window = text[: room - 1]
    floor = max(1, (room - 1) // 2)
    for i in range(len(window) - 1, floor - 1, -1):
        if window[i] in SENTENCE_ENDS or window[i] in CLAUSE_ENDS or window[i] == " ":
            return window[:i].rstrip() + "…"
    return window.rstrip() + "…"


def compose_text(label: str, title: str, tags: tuple[str, ...] | list[str], limit: int,
                 title_min: int = 8) -> tuple[str, list[str]]:
    """Douyin's `text`: the campaign label, the title (cut with "…" if needed), then as many
    `#话题` of `tags` as fit, separated by spaces, in at most `limit` code points. The label
    is never cut; if it leaves less than `title_min` characters for a longer title the story
    cannot be rendered (RenderError)."""
    label, title = _one_line(label), _one_line(title)
    if not title:
        raise RenderError("the story has no title; Douyin needs one in its text")
    head = f"{label} " if label else ""
    room = limit - len(head)
    if room < min(len(title), title_min):
        raise RenderError(f"the campaign label has {len(label)} characters and leaves {max(room, 0)} of Douyin's "
                          f"{limit} for the title (at least {min(len(title), title_min)} needed); shorten the label")
    text = head + cut_text(title, room)
    used: list[str] = []
    for tag in tags:
        hashtag = _hashtag(tag)
        if not hashtag or hashtag in used:
            continue
        if len(text) + 1 + len(hashtag) <= limit:
            text = f"{text} {hashtag}"
            used.append(hashtag)
    return text, used


# ----------------------------------------------------------------------------- small helpers


def _post_file(role: str, rendition: Rendition, story_id: int) -> PostFile:
    ext = "mp4" if rendition.mime == "video/mp4" else ("png" if rendition.mime == "image/png" else "jpg")
    return PostFile(role=role, key=rendition.key, name=f"douyin-{story_id}-{role}.{ext}", mime=rendition.mime,
                    bytes=rendition.bytes, sha256=rendition.sha256.lower(), width=rendition.width,
                    height=rendition.height)


def _read(path: str | None) -> bytes:
    assert path is not None
    with open(path, "rb") as fh:
        return fh.read()


def _seconds(value: Any) -> float | None:
    """`expires_in` as seconds: Douyin sends an int or a numeric string."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _int_setting(account: AccountData, key: str, default: int, low: int, high: int) -> int:
    value = account.setting(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PermanentChannelError(f"setting {key}={value!r} is not a whole number") from None
    if not low <= number <= high:
        raise PermanentChannelError(f"setting {key}={number} is outside {low}..{high}")
    return number


def _float_setting(account: AccountData, key: str, default: float) -> float:
    try:
        return max(0.0, float(account.setting(key, default)))
    except (TypeError, ValueError):
        return default


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _aware(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")

