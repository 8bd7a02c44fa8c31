"""Sina Weibo (新浪微博): one status with at most one picture, through `statuses/share.json`.

Where the numbers come from (../shared/channels.md, "Weibo"):

* `POST /2/statuses/share.json` — multipart when `pic` is sent, else a form; fields `status`,
  `pic`, `rip`; the token goes in the header `Authorization: OAuth2 <token>` (channels.md allows
  it instead of an `access_token` field, and a header never ends up in a URL, a form dump or
  an exception message).
* `status` at most 140, counted `ceil((ascii + 2*non_ascii)/2)`, each URL counting 10
  (`url_weight`; unconfirmed for https, so it is a class attribute a subclass can change).
* `status` must contain a URL on the account's safe domain (安全域名), else 10017: the story's
  link is always in the text; setting `safe_domain` (default: the link's host) is checked
  before sending.
* `pic`: one JPEG/GIF/PNG under 5 MB (`pic_max_bytes` = 5,000,000: 5 MB read as 10^6, the
  safe side). The cover's `weibo_image` rendition (media/profiles.py, 2048 px, ≤4.5 MB), else
  the first image's; a video-only story sends its `web_poster` frame.
* Errors: 10022/10023/10024 rate limits → transient (Retry-After if the answer has one, else
  `rate_limit_retry_after` = 600 s, ours); 10017, 20005, 20006, 20012 → permanent;
  20016/20017/20019/20111 (too many / similar / duplicate) → outcome unknown: the dispatcher
  reconciles and never re-sends; 21327 expired and 21332 invalid token (and the other 213xx
  token codes) → permanent, "re-authorise the account". 429/5xx are transient (HttpClient).
* About 30 posts per hour per user: `posts_per_hour` (setting `posts_per_hour`), enforced by
  the dispatcher's per-account throttle, not here.
* Reconcile: Weibo cannot search by text, so `GET /2/statuses/user_timeline.json` (the
  authorised user's own latest statuses) is scanned for the same text. Weibo rewrites links
  to t.cn short links in the stored text, so texts are compared with every URL masked.
* Retract: `POST /2/statuses/destroy.json` with `id`; 20101 ("target weibo does not exist",
  Weibo's documented code, not in channels.md) means it is already gone.
* Quota (reported through `AccountData.note_quota` for account health): a rate-limit error
  10022-10024 means none is left this hour; when someone records quotas, `maintain` asks
  `GET /2/account/rate_limit_status.json` (Weibo's API, not in channels.md: user_limit,
  remaining_user_hits, reset_time_in_seconds, limit_time_unit, and the same for the IP).

Text layout: `【label】title summary #tag# #tag# link` — the campaign label first, the title
never cut, the summary cut to what is left (at a sentence end, else a clause mark or a word
boundary, with "…"), hashtags dropped from the end when even they do not fit.

Settings: safe_domain, rip, profile_url, uid, posts_per_hour, reconcile_count (default 50,
at most 100), token_warn_days (default 7); plus read_timeout / connect_timeout.
Credentials: {"access_token"} (optionally "expires_at", an ISO date, for `maintain`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from channels.base import (
    AccountData,
    Channel,
    ChannelError,
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
from channels.text import (
    CLAUSE_ENDS,
    SENTENCE_ENDS,
    SUMMARY_SKIP,
    html_to_text,
    markdown_to_safe_html,
    one_line,
)

DEFAULT_BASE = "https://api.weibo.com"
SHARE_PATH = "/2/statuses/share.json"
TIMELINE_PATH = "/2/statuses/user_timeline.json"
DESTROY_PATH = "/2/statuses/destroy.json"
RATE_LIMIT_STATUS_PATH = "/2/account/rate_limit_status.json"

RATE_LIMIT_CODES = frozenset({"10022", "10023", "10024"})
RATE_LIMIT_SCOPES = {"10022": "requests per hour from this IP", "10023": "requests per hour for this user",
                     "10024": "share requests per hour for this user"}
DUPLICATE_CODES = frozenset({"20016", "20017", "20019", "20111"})
TOKEN_CODES = {"21327": "the access token has expired", "21332": "the access token is invalid"}
GONE_CODES = frozenset({"20101"})
PERMANENT_REASONS = {
    "10017": "a parameter was refused (the status must contain a URL on the app's safe domain)",
    "20005": "the picture's type is not supported (JPEG/GIF/PNG only)",
    "20006": "the picture is too big (under 5 MB)",
    "20012": "the text is too long (140 Weibo characters)",
}

_URL = re.compile(r"https?://\S+")
_CLOSERS = "”’」』）)》〉】\"'"
_TAG_DROP = re.compile(r"[#\s@]+")
_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


# ----------------------------------------------------------------------------- counting


def weibo_count(text: str, url_weight: int = 10) -> int:
    """Weibo's length: ceil((ascii + 2*non_ascii)/2), each URL (`https?://` up to the next
    whitespace) counting `url_weight`. With url_weight=10 it equals base.weibo_length."""
    units = sum(1 if ord(ch) < 128 else 2 for ch in _URL.sub("", text))
    return math.ceil(units / 2) + url_weight * len(_URL.findall(text))


def _tokens(text: str) -> list[str]:
    """The text as cuttable pieces: whole URLs (never cut inside) and single characters."""
    out: list[str] = []
    pos = 0
    for match in _URL.finditer(text):
        out.extend(text[pos:match.start()])
        out.append(match.group(0))
        pos = match.end()
    out.extend(text[pos:])
    return out


def cut_to_weibo(text: str, limit: int, url_weight: int = 10) -> str:
    """`text` shortened to at most `limit` Weibo characters.

    The whole text if it fits; else the longest prefix ending at a sentence end (。！？；, with
    the closing quotes after it) that is at least a third of the limit; else the longest
    prefix ending at a clause mark (，、：), a space or a CJK character (never inside an
    ASCII word or a URL) followed by "…"; else a hard cut with "…". "" when nothing fits.
    """
    text = text.strip()
    if weibo_count(text, url_weight) <= limit:
        return text
    if limit < 1:
        return ""
    units_limit = 2 * limit  # ceil(u/2) <= limit  <=>  u <= 2*limit
    tokens = _tokens(text)
    weights = [2 * url_weight if len(t) > 1 else (1 if ord(t) < 128 else 2) for t in tokens]
    prefix = [0]
    for w in weights:
        prefix.append(prefix[-1] + w)

    def fits(end: int, extra: int = 0) -> bool:
        return prefix[end] + extra <= units_limit

    floor = max(1, units_limit // 3)
    best = 0
    for end in range(1, len(tokens) + 1):  # sentence ends, closers included
        if not fits(end):
            break
        if tokens[end - 1] in SENTENCE_ENDS:
            stop = end
            while stop < len(tokens) and tokens[stop] in _CLOSERS and fits(stop + 1):
                stop += 1
            if prefix[stop] >= floor:
                best = stop
    if best:
        return "".join(tokens[:best]).rstrip()

    ellipsis = 2  # "…" is not ASCII: 2 units
    clause = soft = hard = 0
    for end in range(1, len(tokens) + 1):
        if not fits(end, ellipsis):
            break
        hard = end
        last, nxt = tokens[end - 1], (tokens[end] if end < len(tokens) else " ")
        if last in CLAUSE_ENDS and prefix[end - 1] >= floor:
            clause = end - 1  # the clause mark itself gives way to "…"
        in_word = all(len(t) == 1 and t.isascii() and t.isalnum() for t in (last, nxt))
        if not in_word:
            soft = end

    def finish(end: int) -> str | None:
        head = "".join(tokens[:end]).rstrip(" ，、,：:")
        if not head:
            return None
        # a URL right before "…" would swallow it (a URL runs to the next space)
        out = head + (" …" if _URL.search(head.split(" ")[-1]) else "…")
        return out if weibo_count(out, url_weight) <= limit else None

    for end in (clause, soft, *range(hard, 0, -1)):
        if end and (out := finish(end)):
            return out
    return ""


def mid_to_bid(mid: str) -> str:
    """Weibo's base62 post code of a numeric mid (the `weibo.com/<uid>/<bid>` form): the
    decimal mid in groups of 7 digits from the right, each group 4 base62 digits (the first
    one unpadded). 3501756485200075 -> z0JH2lOMb."""
    if not mid.isdigit():
        return mid
    groups = []
    end = len(mid)
    while end > 0:
        start = max(0, end - 7)
        groups.append((int(mid[start:end]), start > 0))
        end = start
    out = []
    for value, padded in reversed(groups):
        digits = ""
        while value:
            value, rest = divmod(value, 62)
            digits = _BASE62[rest] + digits
        out.append(digits.rjust(4, "0") if padded else (digits or "0"))
    return "".join(out)


def _mask_urls(text: str) -> str:
    """Texts compared by reconcile: URLs masked (Weibo stores t.cn links), spaces squeezed."""
    return " ".join(_URL.sub("<url>", text or "").split())


def _host_on(host: str, domain: str) -> bool:
    host, domain = host.lower().rstrip("."), domain.lower().strip().lstrip(".").rstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def _domain_of(value: str) -> str:
    """A safe_domain setting as a bare host ("https://x.cn/" and "x.cn" both give x.cn)."""
    value = value.strip()
    return (urlsplit(value).hostname or "") if "//" in value else value.split("/")[0].split(":")[0]


# ----------------------------------------------------------------------------- the channel


class WeiboChannel(Channel):
    """新浪微博: a status (label, title, summary, #topics#, link) and one picture."""

    name: ClassVar[str] = "weibo"
    title_zh: ClassVar[str] = "微博"
    # Our limit, in Weibo characters: the title is never cut, and with 【label】 and the link
    # it must fit the 140 of the status; a title over 100 leaves no room for anything else.
    title_max: ClassVar[int | None] = 100
    body_max: ClassVar[int | None] = 140  # the whole status, Weibo characters (channels.md)
    length_rule: ClassVar[str] = "weibo"
    url_weight: ClassVar[int] = 10  # (unconfirmed for https) what one URL counts
    max_images: ClassVar[int | None] = 1  # share.json takes one `pic`
    image_profiles: ClassVar[tuple[str, ...]] = ("weibo_image",)
    video_profiles: ClassVar[tuple[str, ...]] = ("web_poster",)  # the pic of a video-only story
    accepted_types: ClassVar[tuple[str, ...]] = ("image/jpeg", "image/gif", "image/png")
    pic_max_bytes: ClassVar[int] = 5_000_000
    min_seconds_between_requests: ClassVar[float] = 0.5
    max_parallel_posts: ClassVar[int | None] = 4  # ours: Weibo also limits per IP (10022), not only per token
    posts_per_hour: ClassVar[int] = 30  # per account; the dispatcher's throttle enforces it
    rate_limit_retry_after: ClassVar[float] = 600.0  # seconds, when a rate limit has no Retry-After
    summary_min: ClassVar[int] = 8  # a summary shorter than this (Weibo characters) is left out
    reconcile_count: ClassVar[int] = 50  # statuses of the timeline reconcile looks at (≤100)
    token_warn_days: ClassVar[int] = 7
    supports_live: ClassVar[bool] = True
    supports_retract: ClassVar[bool] = True
    credential_keys: ClassVar[tuple[str, ...]] = ("access_token",)

    # ------------------------------------------------------------------ render

    def render(self, story: StoryData, renditions: RenditionSet) -> Post:
        title = " ".join((story.title or "").split())
        if not title:
            raise RenderError("a Weibo post needs a title")
        if self.count(title) > self.title_max:
            raise RenderError(f"the title is {self.count(title)} Weibo characters; the most is {self.title_max}")
        link = (story.link or "").strip()
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(ch.isspace() for ch in link):
            raise RenderError("a Weibo post needs the story's absolute link (a URL on the safe domain, "
                              f"else Weibo refuses it with 10017); got {link!r}")
        label = " ".join((story.label or "").split())
        head = f"【{label}】{title}" if label else title

        tags: list[str] = []
        for tag in story.tags:
            clean = _TAG_DROP.sub("", tag or "")
            if clean and f"#{clean}#" not in tags:
                tags.append(f"#{clean}#")

        def compose(summary: str, kept: list[str]) -> str:
            return " ".join(p for p in (head, summary, " ".join(kept), link) if p)

        if self.count(compose("", [])) > self.body_max:
            raise RenderError(
                f"label, title and link alone are {self.count(compose('', []))} Weibo characters; "
                f"the most is {self.body_max}: shorten the title")
        while tags and self.count(compose("", tags)) > self.body_max:
            tags.pop()  # hashtags go before the summary does not fit at all
        budget = self.body_max - self.count(compose("", tags)) - 1  # one space before the summary
        summary = ""
        if budget >= self.summary_min:
            source = " ".join((story.summary or "").split()) or one_line(
                html_to_text(markdown_to_safe_html(story.body_markdown or ""), SUMMARY_SKIP))
            summary = cut_to_weibo(source, budget, self.url_weight)
        status = compose(summary, tags)
        length = self.count(status)
        if length > self.body_max:  # pragma: no cover - the budget above prevents it
            raise RenderError(f"status is {length} Weibo characters; the most is {self.body_max}")

        files = self._pic(story, renditions)
        fields: dict[str, Any] = {
            "status": status,
            "label": label,
            "title": title,
            "summary": summary,
            "tags": [t.strip("#") for t in tags],
            "link": link,
            "weibo_length": length,
        }
        return Post(channel=self.name, story_id=story.story_id, version=story.version, fields=fields,
                    files=files)

    def count(self, text: str) -> int:
        return weibo_count(text, self.url_weight)

    def _pic(self, story: StoryData, renditions: RenditionSet) -> tuple[PostFile, ...]:
        images: list[MediaItem] = [m for m in story.media if m.kind == "image"]
        images.sort(key=lambda m: 0 if m.role == "cover" else 1)  # stable: the cover, else the first image
        chosen: tuple[MediaItem, Rendition] | None = None
        if images:
            item = images[0]
            rendition = renditions.get(item.sha256, {}).get("weibo_image")
            if rendition is None:
                raise RenderError(f"{item.role} image {item.sha256[:12]} has no weibo_image rendition")
            chosen = (item, rendition)
        else:
            for item in story.media:
                if item.kind == "video":
                    poster = renditions.get(item.sha256, {}).get("web_poster")
                    if poster is not None:
                        chosen = (item, poster)
                        break
        if chosen is None:
            return ()
        item, rendition = chosen
        if rendition.mime not in self.accepted_types:
            raise RenderError(f"the Weibo picture must be JPEG, GIF or PNG; {rendition.profile} is {rendition.mime}")
        if rendition.bytes >= self.pic_max_bytes:
            raise RenderError(f"the Weibo picture must be under {self.pic_max_bytes} bytes; "
                              f"{rendition.profile} is {rendition.bytes}")
        ext = {"image/jpeg": "jpg", "image/gif": "gif", "image/png": "png"}[rendition.mime]
        return (PostFile(role="pic", key=rendition.key, name=f"weibo-{story.story_id}.{ext}", mime=rendition.mime,
                         bytes=rendition.bytes, sha256=rendition.sha256, width=rendition.width,
                         height=rendition.height),)

    # ------------------------------------------------------------------ outbox

    def outbox_texts(self, post: Post) -> dict[str, str]:
        return {"status.txt": str(post.fields.get("status", ""))}

    def outbox_checklist(self, post: Post) -> list[str]:
        return ["登录本账号的微博网页版或客户端，点“发微博”",
                "粘贴 status.txt 的全部文字（不要改动活动标签、话题和链接）",
                "添加 files/ 中的图片（只发这一张）" if post.files else "本条微博不带图片",
                "发布后打开这条微博，复制链接，在 Fanout 中“登记已发布”"]

    # ------------------------------------------------------------------ I/O

    def hourly_limit(self, account: AccountData) -> int:
        """Posts per hour the dispatcher allows this account (setting `posts_per_hour`)."""
        return int(account.setting("posts_per_hour", self.posts_per_hour))

    def publish(self, post: Post, account: AccountData) -> Receipt:
        if post.channel != self.name or not isinstance(post.fields.get("status"), str):
            raise PermanentChannelError(f"not a Weibo post (channel {post.channel!r})")
        status: str = post.fields["status"]
        headers = _auth(account)
        self._check_safe_domain(status, post, account)
        if len(post.files) > 1:
            raise PermanentChannelError(f"Weibo takes one picture; the post has {len(post.files)}")
        data: dict[str, str] = {"status": status}
        rip = account.setting("rip")
        if rip:
            data["rip"] = str(rip)
        files = None
        if post.files:
            pic = post.files[0]
            files = {"pic": (pic.name, _read_file(pic), pic.mime)}
        client = self.http(account, DEFAULT_BASE, "weibo")
        try:
            body = client.request("POST", SHARE_PATH, sends_post=True, data=data, files=files, headers=headers)
        except ChannelError as exc:
            mapped = self._mapped(exc, "posting")
            if exc.code in RATE_LIMIT_CODES:  # none left this hour; Retry-After, if sent, says when
                after = exc.header_retry_after
                account.note_quota(remaining=0, period="hour", what=RATE_LIMIT_SCOPES[exc.code],
                                   resets_at=datetime.now(UTC) + timedelta(seconds=after) if after else None,
                                   source=f"error {exc.code}")
            if mapped is exc:
                raise
            raise mapped from exc
        if not isinstance(body, dict) or not (body.get("idstr") or body.get("id")):
            # a 200 without a status: it may have been posted all the same
            raise OutcomeUnknownError("Weibo answered share.json without a status id")
        return self._receipt(body, account)

    def reconcile(self, post: Post, account: AccountData) -> Receipt | None:
        wanted = _mask_urls(str(post.fields.get("status", "")))
        if not wanted:
            raise PermanentChannelError("not a Weibo post: no status text to look for")
        count = max(1, min(100, int(account.setting("reconcile_count", self.reconcile_count))))
        client = self.http(account, DEFAULT_BASE, "weibo")
        try:
            body = client.request("GET", TIMELINE_PATH, params={"count": count}, headers=_auth(account))
        except ChannelError as exc:
            mapped = self._mapped(exc, "reading the timeline")
            if mapped is exc:
                raise
            raise mapped from exc
        statuses = body.get("statuses") if isinstance(body, dict) else None
        if not isinstance(statuses, list):
            raise TransientChannelError("Weibo answered user_timeline.json without statuses")
        for item in statuses:  # newest first
            if isinstance(item, dict) and _mask_urls(str(item.get("text", ""))) == wanted:
                return self._receipt(item, account)
        return None

    def retract(self, receipt: Receipt, account: AccountData) -> None:
        remote_id = str(receipt.remote_id or "")
        if not remote_id.isdigit():
            raise PermanentChannelError(f"not a Weibo receipt: {remote_id!r}")
        client = self.http(account, DEFAULT_BASE, "weibo")
        try:
            client.request("POST", DESTROY_PATH, data={"id": remote_id}, headers=_auth(account))
        except ChannelError as exc:
            if exc.code in GONE_CODES:
                return  # already deleted (by us before, or by hand)
            mapped = self._mapped(exc, "deleting")
            if mapped is exc:
                raise
            raise mapped from exc

    def maintain(self, account: AccountData, now: datetime) -> list[str]:
        """Weibo tokens cannot be renewed without the account holder: warn ahead of expiry. When
        someone records quotas (`account.report_quota`), ask Weibo how many calls are left."""
        warnings = self._token_warnings(account, now)
        if account.report_quota is not None and account.credentials.get("access_token"):
            refused = self._report_rate_limit(account, now)
            if refused and not any("expired" in w for w in warnings):
                warnings.append(refused)
        return warnings

    def _report_rate_limit(self, account: AccountData, now: datetime) -> str | None:
        """rate_limit_status.json → `note_quota`; a warning when the token is refused, else None
        (the quota is for information: any other failure is only a missing number)."""
        try:
            body = self.http(account, DEFAULT_BASE, "weibo").request("GET", RATE_LIMIT_STATUS_PATH,
                                                                     headers=_auth(account))
        except ChannelError as exc:
            code = exc.code or ""
            if code in TOKEN_CODES or code.startswith("213"):
                return f"weibo account {account.name!r}: the access token was refused ({code}); re-authorise the account"
            return None
        if not isinstance(body, dict) or not isinstance(body.get("remaining_user_hits"), int):
            return None
        seconds = body.get("reset_time_in_seconds")
        unit = str(body.get("limit_time_unit") or "").lower().rstrip("s")
        account.note_quota(remaining=body["remaining_user_hits"], limit=body.get("user_limit"),
                           period=unit if unit in ("minute", "hour", "day") else None,
                           resets_at=_aware(now) + timedelta(seconds=seconds) if isinstance(seconds, int) else None,
                           what=(f"API calls for this user (IP: {body.get('remaining_ip_hits')} of "
                                 f"{body.get('ip_limit')} left)"),
                           source="account/rate_limit_status")
        return None

    def _token_warnings(self, account: AccountData, now: datetime) -> list[str]:
        if not account.credentials.get("access_token"):
            return [f"weibo account {account.name!r} has no access_token: authorise it"]
        raw = account.credentials.get("expires_at")
        if not raw:
            return []
        try:
            expires = datetime.fromisoformat(str(raw))
        except ValueError:
            return [f"weibo account {account.name!r}: credentials expires_at is not an ISO date"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires <= now:
            return [(f"weibo account {account.name!r}: the access token expired at {expires.isoformat()}; "
                     "re-authorise the account")]
        days = int(account.setting("token_warn_days", self.token_warn_days))
        if expires - now <= timedelta(days=days):
            return [(f"weibo account {account.name!r}: the access token expires at {expires.isoformat()}; "
                     "re-authorise the account before then")]
        return []

    # ------------------------------------------------------------------ helpers

    def _check_safe_domain(self, status: str, post: Post, account: AccountData) -> None:
        link_host = urlsplit(str(post.fields.get("link", ""))).hostname or ""
        domain = _domain_of(str(account.setting("safe_domain", link_host)))
        hosts = [urlsplit(u).hostname or "" for u in _URL.findall(status)]
        if not any(_host_on(h, domain) for h in hosts):
            raise PermanentChannelError(
                f"the status has no URL on the safe domain {domain!r} (Weibo would refuse it with 10017); "
                "check the story link and the account's safe_domain setting", code="10017")

    def _mapped(self, exc: ChannelError, doing: str) -> ChannelError:
        """A Weibo error code as the typed error the dispatcher acts on."""
        code = exc.code or ""
        if isinstance(exc, (TransientChannelError, OutcomeUnknownError)):
            return exc
        if code in RATE_LIMIT_CODES:
            after = exc.header_retry_after
            return TransientChannelError(f"Weibo rate limit {code} while {doing}: {exc}", code=code,
                                         retry_after=after if after is not None else self.rate_limit_retry_after)
        if code in DUPLICATE_CODES:
            return OutcomeUnknownError(f"Weibo says {code} (too many / similar / duplicate) while {doing}: {exc}; "
                                       "reconcile before anything else, never re-send", code=code)
        if code in TOKEN_CODES or code.startswith("213"):
            reason = TOKEN_CODES.get(code, "the access token was refused")
            return PermanentChannelError(f"Weibo error {code} while {doing}: {reason}; "
                                         "re-authorise the Weibo account and save its new access_token", code=code)
        if code in PERMANENT_REASONS:
            return PermanentChannelError(f"Weibo error {code} while {doing}: {PERMANENT_REASONS[code]} ({exc})",
                                         code=code)
        return PermanentChannelError(f"Weibo error {code or '?'} while {doing}: {exc}", code=exc.code)

    def _receipt(self, status: Mapping[str, Any], account: AccountData) -> Receipt:
        idstr = str(status.get("idstr") or status.get("id"))
        mid = str(status.get("mid") or idstr)
        user = status.get("user") if isinstance(status.get("user"), dict) else {}
        uid = str(account.setting("uid", "") or user.get("idstr") or user.get("id") or "")
        profile = str(account.setting("profile_url", "") or "").rstrip("/")
        bid = mid_to_bid(mid)
        if profile:
            url = f"{profile}/{bid}"
        elif uid:
            url = f"https://weibo.com/{uid}/{bid}"
        else:
            url = f"https://m.weibo.cn/status/{idstr}"
        extra = {"mid": mid, "bid": bid, "created_at": str(status.get("created_at", ""))}
        if uid:
            extra["uid"] = uid
        return Receipt(remote_id=idstr, url=url, extra=extra)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _auth(account: AccountData) -> dict[str, str]:
    token = account.credentials.get("access_token")
    if not token or not isinstance(token, str):
        raise PermanentChannelError(f"weibo account {account.name!r} has no access_token: authorise the account")
    return {"Authorization": f"OAuth2 {token}"}


def _read_file(pic: PostFile) -> bytes:
    if not pic.path:
        raise PermanentChannelError(f"picture {pic.name} has no local path (the dispatcher fills it before publish)")
    try:
        with open(pic.path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise PermanentChannelError(f"picture {pic.name} cannot be read: {exc.strerror}") from exc
    if hashlib.sha256(data).hexdigest() != pic.sha256:
        raise PermanentChannelError(f"picture {pic.name} does not match its sha256 (the stored file changed)")
    return data
