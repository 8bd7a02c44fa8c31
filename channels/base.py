"""The channel contract: plain data in, a Post out of `render`, a Receipt out of `publish`.

Every channel module subclasses `Channel`, declares its platform limits as typed class
attributes (the numbers come from ../shared/channels.md) and implements:

* `render(story, renditions) -> Post` — pure: no database, no network, no clock. The same
  inputs always give the same Post, so a Post can be hashed and approved (三审三校).
* `publish(post, account) -> Receipt` — the I/O. It raises `TransientChannelError` (safe to
  retry: the request did not reach the platform, or the platform said "later") or
  `PermanentChannelError` (retrying cannot help), or `OutcomeUnknownError` when the request
  may have reached the platform and nobody knows whether it was posted. It never returns False.
* `reconcile(post, account) -> Receipt | None` — asks the platform whether a post whose
  outcome is unknown was made; `None` means "certainly not posted".
* `retract(receipt, account)` — removes a published post where the platform allows it.

`channels` never imports `services`: it receives the dataclasses below, built by
services/dispatch.py from the database.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, ClassVar, Mapping
from urllib.parse import urlsplit

import requests
import requests.adapters

USER_AGENT = "Fanout/0.1 (+https://github.com/fanout; county media center distribution)"
DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds for every platform call


# --------------------------------------------------------------------------- errors


class ChannelError(Exception):
    """Base of every error a channel raises. `code` is the platform's own error code;
    `header_retry_after` the answer's Retry-After seconds, whatever its status (Weibo sends its
    rate limits as 400/403 with one), for a channel that maps its codes to decide."""

    header_retry_after: float | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientChannelError(ChannelError):
    """Retry later: the post certainly did not happen (or the platform asked us to wait)."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentChannelError(ChannelError):
    """Retrying cannot help: bad content, bad credentials, a refused request."""


class OutcomeUnknownError(ChannelError):
    """The request may have reached the platform: reconcile before doing anything else.

    `hint` is what the platform did say (e.g. 公众号's publish_id of a submitted article): the
    dispatcher stores it with the delivery and hands it back to `reconcile(..., hint=...)`,
    whichever worker process runs the reconcile.
    """

    def __init__(self, message: str, *, code: str | None = None, hint: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, code=code)
        self.hint = dict(hint or {})


class RenderError(PermanentChannelError):
    """The story cannot be rendered for this channel (e.g. over a hard limit)."""


# --------------------------------------------------------------------------- plain data


@dataclass(frozen=True)
class Rendition:
    """One derived media file in the store: `key` is its storage key (content addressed)."""

    profile: str
    key: str
    mime: str
    bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None


@dataclass(frozen=True)
class MediaItem:
    """One source asset of a story (image or video) and the renditions made of it."""

    role: str  # "cover", "image" or "video"
    sha256: str
    kind: str  # "image" or "video"
    mime: str
    alt: str = ""
    caption: str = ""
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    in_point: float | None = None  # video: the editor's in/out points, seconds (None: whole / auto cut)
    out_point: float | None = None


# Renditions of a story's media: source sha256 -> profile name -> Rendition.
RenditionSet = Mapping[str, Mapping[str, Rendition]]


@dataclass(frozen=True)
class StoryData:
    """What a channel knows of a story version. Built by services/dispatch.py."""

    story_id: int
    version: int
    title: str
    body_markdown: str
    release_at: datetime  # timezone-aware; the moment the delivery was released
    summary: str = ""
    short_title: str = ""
    tags: tuple[str, ...] = ()
    theme: str = ""
    unit: str = ""
    label: str = ""  # the campaign label, already rendered ("黄山市黄山区30项民生实事之…")
    author: str = ""
    media: tuple[MediaItem, ...] = ()
    link: str = ""  # the story's page on the media center's site (absolute URL), "" when unknown

    def media_by_role(self, role: str) -> list[MediaItem]:
        return [m for m in self.media if m.role == role]


@dataclass(frozen=True)
class AccountData:
    """A channel account as the channel sees it: credentials already decrypted."""

    id: int
    channel: str
    name: str
    mode: str = "live"  # "live" or "outbox"
    api_base: str | None = None
    credentials: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Called by a channel that obtained new credentials (a refreshed token): the dispatcher
    # stores the merged mapping encrypted. `None` (tests, previews): nothing is kept.
    save_credentials: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    # Called with a platform's quota figures when an answer carries them (a quota query in
    # `maintain`, a "quota used up" error): the services keep the latest for ops. `None`
    # (tests, previews): nothing is kept, and a call made only to ask for the quota is skipped.
    report_quota: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)

    def note_quota(self, *, remaining: int | None, limit: int | None = None, period: str | None = None,
                   resets_at: datetime | None = None, what: str = "", source: str = "") -> None:
        """Hand what the platform said about the account's quota to `report_quota`: calls (or
        posts) `remaining` of `limit` per `period` ("minute", "hour", "day" or None), when it
        resets, what it counts and which answer said so."""
        if self.report_quota is None:
            return
        self.report_quota({"remaining": remaining, "limit": limit, "period": period,
                           "resets_at": resets_at.isoformat(timespec="seconds") if resets_at else None,
                           "what": what, "source": source})

    def setting(self, key: str, default: Any = None) -> Any:
        value = self.settings.get(key)
        return default if value in (None, "") else value

    def timeout(self) -> tuple[float, float]:
        """(connect, read) seconds; settings `connect_timeout` / `read_timeout` override."""
        return (float(self.setting("connect_timeout", DEFAULT_TIMEOUT[0])),
                float(self.setting("read_timeout", DEFAULT_TIMEOUT[1])))

    def with_credentials(self, updates: Mapping[str, Any]) -> "AccountData":
        """A copy with `updates` merged into the credentials, handed to `save_credentials`."""
        merged = {**self.credentials, **updates}
        if self.save_credentials is not None:
            self.save_credentials(merged)
        return replace(self, credentials=merged)

    def __repr__(self) -> str:  # never let credentials reach a log line
        return f"AccountData(id={self.id}, channel={self.channel!r}, name={self.name!r}, mode={self.mode!r})"


@dataclass(frozen=True)
class PostFile:
    """A file a Post carries. `path` is filled in by the dispatcher just before publish."""

    role: str
    key: str
    name: str
    mime: str
    bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    path: str | None = None


@dataclass(frozen=True)
class Post:
    """The exact thing a channel will send. JSON round-trips; `content_hash` is stable."""

    channel: str
    story_id: int
    version: int
    fields: Mapping[str, Any]
    files: tuple[PostFile, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = [{k: v for k, v in f.items() if k != "path"} for f in data["files"]]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Post":
        return cls(
            channel=data["channel"],
            story_id=int(data["story_id"]),
            version=int(data["version"]),
            fields=dict(data["fields"]),
            files=tuple(PostFile(**f) for f in data.get("files", ())),
        )

    def content_hash(self) -> str:
        """sha256 of what the platform receives: the fields and each file's bytes' hash."""
        canonical = json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def with_paths(self, paths: Mapping[str, str]) -> "Post":
        """A copy whose files carry local paths (`paths` maps storage key -> local path)."""
        return replace(self, files=tuple(replace(f, path=paths[f.key]) for f in self.files))


@dataclass(frozen=True)
class Receipt:
    """What the platform answered: its id for the post and where a person can see it."""

    remote_id: str
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- contract


class Channel:
    """Base of every channel. Subclasses override the class attributes and the methods."""

    name: ClassVar[str] = ""
    title_zh: ClassVar[str] = ""  # shown in the editor UI
    short_zh: ClassVar[str] = ""  # the name in tables, badges and report columns (title_zh when empty)
    # Limits (None = no limit). `length_rule` names how the platform counts characters:
    # "chars" (code points), "weibo" (ceil((ascii + 2*non_ascii)/2), URLs count 10).
    title_max: ClassVar[int | None] = None
    body_max: ClassVar[int | None] = None
    length_rule: ClassVar[str] = "chars"
    max_images: ClassVar[int | None] = None
    image_profiles: ClassVar[tuple[str, ...]] = ()
    video_profiles: ClassVar[tuple[str, ...]] = ()
    # Draw the story's campaign label over the first seconds of its videos (vertical social
    # clips, where the label has no text of its own around it); the website shows it as text.
    label_on_video: ClassVar[bool] = False
    accepted_types: ClassVar[tuple[str, ...]] = ("image/jpeg", "image/png", "image/webp", "video/mp4")
    min_seconds_between_requests: ClassVar[float] = 0.0
    # How many accounts' posts one delivery task sends to this platform at once (a group task's
    # size is the smaller of this and FANOUT_PUBLISH_BATCH_SIZE); None: the setting alone.
    max_parallel_posts: ClassVar[int | None] = None
    supports_live: ClassVar[bool] = True
    supports_retract: ClassVar[bool] = True
    # Credentials a live account must have (DESIGN.md's names); without them it posts via the outbox.
    credential_keys: ClassVar[tuple[str, ...]] = ()

    def render(self, story: StoryData, renditions: RenditionSet) -> Post:  # pragma: no cover - abstract
        raise NotImplementedError

    def publish(self, post: Post, account: AccountData) -> Receipt:  # pragma: no cover - abstract
        raise NotImplementedError

    def reconcile(self, post: Post, account: AccountData) -> Receipt | None:  # pragma: no cover
        """`None`: certainly not posted. A channel whose OutcomeUnknownError carries a `hint`
        also accepts `hint=` (the stored mapping) as a keyword argument."""
        raise NotImplementedError

    def retract(self, receipt: Receipt, account: AccountData) -> None:  # pragma: no cover
        raise NotImplementedError

    # -- outbox mode: no credentials, or no API (视频号): a person posts the package by hand

    def outbox_texts(self, post: Post) -> dict[str, str]:
        """Text files of the outbox package, name -> content (every string field by default)."""
        return {f"{key}.txt": value for key, value in post.fields.items() if isinstance(value, str) and value}

    def outbox_checklist(self, post: Post) -> list[str]:
        """What the person must do, in Chinese, step by step (README of the package)."""
        return [f"登录{self.title_zh or self.name}账号的发布页面",
                "按顺序上传 files/ 中的文件" if post.files else "本条内容没有附件",
                "逐项粘贴 .txt 文件中的文字（不要改动活动标签）",
                "发布后复制帖子链接，在 Fanout 中“登记已发布”"]

    # -- account upkeep, run by beat: refresh tokens before they expire

    def maintain(self, account: AccountData, now: datetime) -> list[str]:
        """Keep the account usable (e.g. renew tokens); returns warnings for ops (English)."""
        return []

    def http(self, account: AccountData, default_base: str, error_shape: str) -> "HttpClient":
        """The HTTP client for `account`: its --api-base (scheme and host) or the platform's
        documented base, the account's timeouts and this channel's request spacing."""
        return HttpClient(account.api_base or default_base, error_shape=error_shape,
                          min_interval=self.min_seconds_between_requests, timeout=account.timeout())


# --------------------------------------------------------------------------- HTTP helper


class _KeptAdapter(requests.adapters.HTTPAdapter):
    """The process's connection pools, shared by every HttpClient's session: a post to a host
    reuses a kept-alive connection instead of a new TCP (and TLS) handshake. urllib3's pools are
    thread-safe; a session closing does not close them."""

    def close(self) -> None:
        pass


_ADAPTERS: dict[int, _KeptAdapter] = {}  # by process id: a forked child never uses its parent's sockets
_ADAPTER_LOCK = threading.Lock()
POOL_HOSTS = 64  # hosts whose pools are kept (accounts of one platform share a host)
POOL_PER_HOST = 64  # connections kept per host: a worker's threads × a group's concurrent sends


def _shared_adapter() -> _KeptAdapter:
    """This process's adapter, made on first use."""
    pid = os.getpid()
    with _ADAPTER_LOCK:
        if pid not in _ADAPTERS:
            _ADAPTERS[pid] = _KeptAdapter(pool_connections=POOL_HOSTS, pool_maxsize=POOL_PER_HOST)
        return _ADAPTERS[pid]


class HttpClient:
    """The one way channels talk HTTP: timeouts, User-Agent, throttle, error mapping.

    `error_shape` picks how a platform reports errors (../shared/channels.md):
    "weibo" (non-200 + JSON error_code), "douyin"/"wechat" (HTTP 200 + code in the body),
    "wordpress" (real 4xx/5xx + {"code", "message"}), "plain" (status code only).
    Connection errors before a byte was sent are transient; a read timeout after the request
    was sent is `OutcomeUnknownError` when `sends_post` is set, transient otherwise.
    """

    def __init__(self, base_url: str, *, error_shape: str = "plain", min_interval: float = 0.0,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.error_shape = error_shape
        self.min_interval = min_interval
        self.timeout = timeout
        self._own_session = session is None
        if session is None:  # its own cookies, headers and hooks; connections from the process pool
            session = requests.Session()
            session.mount("http://", _shared_adapter())
            session.mount("https://", _shared_adapter())
            session.trust_env = False  # the environment is read once per host instead (_environment)
        self.session = session
        self.session.headers["User-Agent"] = USER_AGENT
        self._last_request = 0.0

    def request(self, method: str, path: str, *, sends_post: bool = False, **kwargs: Any) -> Any:
        wait = self._last_request + self.min_interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        kwargs.setdefault("timeout", self.timeout)
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        if self._own_session:
            proxies, verify = _environment(*_origin(url))
            kwargs.setdefault("proxies", proxies)
            kwargs.setdefault("verify", verify)
        self._last_request = time.monotonic()
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.ConnectTimeout as exc:
            raise TransientChannelError(f"connect timeout: {url}") from exc
        except requests.ConnectionError as exc:
            if sends_post and not _refused_before_sending(exc):
                raise OutcomeUnknownError(f"connection lost after sending: {url}") from exc
            raise TransientChannelError(f"connection failed: {url}: {exc.__class__.__name__}") from exc
        except requests.Timeout as exc:
            if sends_post:
                raise OutcomeUnknownError(f"no answer in {self.timeout[1]}s after sending: {url}") from exc
            raise TransientChannelError(f"read timeout: {url}") from exc
        return self._check(response)

    def _check(self, response: requests.Response) -> Any:
        try:
            return self._checked(response)
        except ChannelError as exc:
            exc.header_retry_after = _retry_after(response)
            raise

    def _checked(self, response: requests.Response) -> Any:
        retry_after = _retry_after(response)
        if response.status_code == 429:
            raise TransientChannelError("rate limited (HTTP 429)", code="429", retry_after=retry_after)
        if response.status_code >= 500:
            raise TransientChannelError(f"platform error HTTP {response.status_code}",
                                        code=str(response.status_code), retry_after=retry_after)
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if response.status_code >= 400:
            code, message = _error_fields(self.error_shape, body)
            raise PermanentChannelError(
                f"HTTP {response.status_code}: {message or response.reason}", code=code or str(response.status_code))
        if self.error_shape in ("douyin", "wechat") and isinstance(body, dict):
            code, message = _error_fields(self.error_shape, body)
            if code not in (None, "0"):
                raise PermanentChannelError(f"platform error {code}: {message}", code=code)
        return body if body is not None else response.content


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


@functools.lru_cache(maxsize=512)
def _environment(scheme: str, netloc: str) -> tuple[dict[str, str], bool | str]:
    """The proxies (HTTP(S)_PROXY / NO_PROXY) and CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE)
    the environment gives a host, as requests reads them — once per host and process: requests
    itself re-reads the whole environment on every call (0.7 ms a post, measured)."""
    proxies = requests.utils.get_environ_proxies(f"{scheme}://{netloc}/")
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return proxies, verify


def _refused_before_sending(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return any(s in text for s in ("Connection refused", "NewConnectionError", "Name or service not known",
                                   "Failed to resolve", "ECONNREFUSED"))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_fields(shape: str, body: Any) -> tuple[str | None, str]:
    if not isinstance(body, dict):
        return None, ""
    if shape == "weibo":
        code = body.get("error_code")
        return (str(code) if code is not None else None), str(body.get("error", ""))
    if shape == "douyin":
        data = body.get("data") or {}
        extra = body.get("extra") or {}
        code = data.get("error_code", extra.get("error_code"))
        return (str(code) if code is not None else None), str(data.get("description", extra.get("description", "")))
    if shape == "wechat":
        code = body.get("errcode")
        return (str(code) if code is not None else None), str(body.get("errmsg", ""))
    if shape == "wordpress":
        return body.get("code"), str(body.get("message", ""))
    return None, ""


# --------------------------------------------------------------------------- text helpers


def weibo_length(text: str) -> int:
    """Weibo's count: ceil((ascii + 2*non_ascii) / 2); each URL counts as 10 (channels.md)."""
    import math
    import re

    urls = re.findall(r"https?://\S+", text)
    rest = re.sub(r"https?://\S+", "", text)
    units = sum(1 if ord(ch) < 128 else 2 for ch in rest)
    return math.ceil(units / 2) + 10 * len(urls)


def text_length(text: str, rule: str = "chars") -> int:
    if rule == "weibo":
        return weibo_length(text)
    return len(text)
