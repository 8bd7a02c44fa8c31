"""WeChat Channels (微信视频号): an outbox channel — Fanout prepares the package, a person posts it.

channels.md: no official server API publishes a video for an ordinary account (tools that do
drive channels.weixin.qq.com with a browser and a QR-code login), so `supports_live` is False:
`publish`, `reconcile` and `retract` raise PermanentChannelError, and the dispatcher writes the
outbox package (`outbox_texts` + the files + `outbox_checklist`) for a person, who posts it
and records the URL in Fanout.

The package, per channels.md: the ≤60 s vertical clip (`channels_video`: 1080×1920 blurred
fill, cut at a natural pause, the campaign label drawn over its first seconds —
`label_on_video`), the 3:4 portrait and 4:3 landscape covers (`channels_cover_3x4`,
`channels_cover_4x3`, poster frames of the same video), the description and a short title.

* Description: the campaign label first, then the title, the summary (the story's, else one
  cut from the body at a sentence end), then the story's tags as `#话题` (whitespace and `#`
  taken out of each, since a topic ends at a space). At most `description_max` = 1000
  characters (code points; unconfirmed) — the summary is what gets cut.
* Short title: 6–16 characters (channels.md). The editor's `short_title`, else the title,
  with separators (，、；。！ etc.) turned into spaces; a title over 16 is cut at the last
  space that leaves at least 6 characters, else after 16 characters (no "…": the field does
  not take it). Only Chinese, letters, digits, spaces and 《》“”：+？%℃ are kept by the upload
  page (unconfirmed, `short_title_punctuation`): anything else is a RenderError naming it, as
  is a result under 6 characters (the editor must write a short title) or an editor's short
  title over 16 (it is not cut behind the editor's back).

A story without a video, or without one of the three renditions, is a RenderError. The clip's
duration is checked against `max_video_seconds` when the rendition reports it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from channels import sitefiles
from channels.base import (
    AccountData,
    Channel,
    PermanentChannelError,
    Post,
    PostFile,
    Receipt,
    RenderError,
    Rendition,
    RenditionSet,
    StoryData,
)
from channels.text import summarize

OUTBOX_ONLY = "WeChat Channels (视频号) has no publishing API: outbox only"
# Separators a short title may not carry; they become spaces.
_SEPARATORS = "，,、；;。.！!·•—–-_…/|～~()（）【】[]「」『』<>"
_LATIN_OR_DIGIT = re.compile(r"[A-Za-z0-9]")

FILE_NAMES = {"channels_video": "video.mp4", "channels_cover_3x4": "cover_3x4.jpg",
              "channels_cover_4x3": "cover_4x3.jpg"}
FILE_ROLES = {"channels_video": "video", "channels_cover_3x4": "cover_3x4", "channels_cover_4x3": "cover_4x3"}


class WechatChannelsChannel(Channel):
    """视频号: outbox package (clip, covers, description, short title, checklist)."""

    name: ClassVar[str] = "wechat_channels"
    title_zh: ClassVar[str] = "微信视频号"
    short_zh: ClassVar[str] = "视频号"
    title_max: ClassVar[int | None] = 16  # the short title (channels.md: 6–16 characters)
    short_title_min: ClassVar[int] = 6
    cuts_text: ClassVar[bool] = True  # the short title is cut from a long title (proofing warns only)
    body_max: ClassVar[int | None] = 1000  # the description, in characters (unconfirmed)
    description_max: ClassVar[int] = 1000  # same number, named for what it limits (unconfirmed)
    length_rule: ClassVar[str] = "chars"
    max_images: ClassVar[int | None] = 0  # no image posts: the covers are frames of the video
    image_profiles: ClassVar[tuple[str, ...]] = ()
    video_profiles: ClassVar[tuple[str, ...]] = ("channels_video", "channels_cover_3x4", "channels_cover_4x3")
    label_on_video: ClassVar[bool] = True
    max_video_seconds: ClassVar[float] = 60.0
    accepted_types: ClassVar[tuple[str, ...]] = ("video/mp4", "image/jpeg")
    short_title_punctuation: ClassVar[str] = "《》“”：:+？?%℃ "  # what the upload page keeps (unconfirmed)
    supports_live: ClassVar[bool] = False
    supports_retract: ClassVar[bool] = False

    # ------------------------------------------------------------------ render

    def render(self, story: StoryData, renditions: RenditionSet) -> Post:
        title = " ".join((story.title or "").split())
        if not title:
            raise RenderError("title is empty")
        if story.release_at.tzinfo is None:
            raise RenderError("release_at must be timezone-aware")
        videos = [m for m in story.media if m.kind == "video"]
        if not videos:
            raise RenderError("WeChat Channels (视频号) posts a video: the story has none")
        video = videos[0]
        available = renditions.get(video.sha256, {})
        chosen: dict[str, Rendition] = {}
        for profile in self.video_profiles:
            if profile not in available:
                raise RenderError(f"video {video.sha256[:12]} has no {profile} rendition")
            chosen[profile] = available[profile]
        clip = chosen["channels_video"]
        if clip.duration is not None and clip.duration > self.max_video_seconds + 0.5:
            raise RenderError(f"the channels_video clip is {clip.duration:.1f} s; "
                              f"WeChat Channels takes at most {self.max_video_seconds:g} s")

        label = " ".join((story.label or "").split())
        short_title = self.short_title(story.short_title, title)
        topics = _topics(story.tags)
        description = self.description(label, title, story, topics)

        files = []
        for profile, rendition in chosen.items():
            try:
                sitefiles.check_key(rendition.key)
            except sitefiles.UnsafePathError as exc:
                raise RenderError(f"refusing rendition {profile}: {exc}") from exc
            files.append(PostFile(role=FILE_ROLES[profile], key=rendition.key, name=FILE_NAMES[profile],
                                  mime=rendition.mime, bytes=rendition.bytes, sha256=rendition.sha256.lower(),
                                  width=rendition.width, height=rendition.height))
        fields: dict[str, Any] = {
            "short_title": short_title,
            "description": description,
            "label": label,
            "title": title,
            "topics": topics,
            "video_seconds": round(clip.duration, 1) if clip.duration is not None else None,
            "link": story.link or "",
        }
        return Post(channel=self.name, story_id=story.story_id, version=story.version,
                    fields=fields, files=tuple(files))

    def short_title(self, editors: str, title: str) -> str:
        """The 6–16 character short title (see the module docstring); RenderError if none fits."""
        given = _short_clean(editors)
        if given:
            self._check_short_chars(given, "short title")
            if len(given) > (self.title_max or 16):
                raise RenderError(f"short title has {len(given)} characters; WeChat Channels allows "
                                  f"{self.short_title_min}–{self.title_max}: shorten it")
            if len(given) < self.short_title_min:
                raise RenderError(f"short title has {len(given)} characters; WeChat Channels needs "
                                  f"{self.short_title_min}–{self.title_max}: write a longer one")
            return given
        text = _short_clean(title)
        self._check_short_chars(text, "title (used as the short title)")
        limit = self.title_max or 16
        if len(text) > limit:
            window = text[:limit + 1]
            cut = window.rfind(" ")
            text = text[:cut] if cut >= self.short_title_min else text[:limit]
            text = text.rstrip(" 《“：:+")
        if len(text) < self.short_title_min:
            raise RenderError(f"the title gives a short title of {len(text)} characters ({text!r}); WeChat Channels "
                              f"needs {self.short_title_min}–{limit}: ask the editor for a short title of "
                              f"{self.short_title_min}–{limit} characters")
        return text

    def _check_short_chars(self, text: str, what: str) -> None:
        bad = sorted({ch for ch in text if not (_is_ideograph(ch) or _LATIN_OR_DIGIT.match(ch)
                                                or ch in self.short_title_punctuation)})
        if bad:
            raise RenderError(f"{what} has characters the WeChat Channels short title does not take: "
                              f"{' '.join(bad)}; write a short title with only Chinese, letters, digits and "
                              f"《》“”：+？%℃")

    def description(self, label: str, title: str, story: StoryData, topics: list[str]) -> str:
        """Label, title, summary, #topics — within `description_max` (the summary is cut)."""
        head = "\n".join(p for p in (label, title) if p)
        tail = " ".join(f"#{t}" for t in topics)
        fixed = len(head) + (len(tail) + 2 if tail else 0)
        if fixed > self.description_max:
            raise RenderError(f"label, title and topics take {fixed} characters; the WeChat Channels description "
                              f"allows at most {self.description_max}")
        room = self.description_max - fixed - 1  # the newline before the summary
        source = " ".join((story.summary or "").split())
        if source and len(source) <= room:
            summary = source
        elif room >= 10:  # too little room for a useful summary: leave it out
            summary = summarize(source or story.body_markdown or "", room)
        else:
            summary = ""
        text = head + (f"\n{summary}" if summary else "") + (f"\n\n{tail}" if tail else "")
        if len(text) > self.description_max:  # pragma: no cover - summarize keeps within `room`
            raise RenderError(f"description has {len(text)} characters; at most {self.description_max}")
        return text

    # ------------------------------------------------------------------ no API

    def publish(self, post: Post, account: AccountData) -> Receipt:
        raise PermanentChannelError(OUTBOX_ONLY, code="outbox_only")

    def reconcile(self, post: Post, account: AccountData) -> Receipt | None:
        raise PermanentChannelError(OUTBOX_ONLY, code="outbox_only")

    def retract(self, receipt: Receipt, account: AccountData) -> None:
        raise PermanentChannelError(f"{OUTBOX_ONLY}; delete the post by hand at channels.weixin.qq.com",
                                    code="outbox_only")

    def maintain(self, account: AccountData, now: datetime) -> list[str]:
        return []

    # ------------------------------------------------------------------ outbox

    def outbox_texts(self, post: Post) -> dict[str, str]:
        return {"description.txt": post.fields["description"], "short_title.txt": post.fields["short_title"]}

    def outbox_checklist(self, post: Post) -> list[str]:
        f = post.fields
        seconds = f"，{f['video_seconds']:g} 秒" if f.get("video_seconds") is not None else ""
        label = f.get("label") or ""
        video, cover_3x4, cover_4x3 = (f"files/{FILE_NAMES[p]}" for p in self.video_profiles)
        steps = [
            ("用电脑浏览器打开 https://channels.weixin.qq.com ，用绑定该视频号的微信扫码登录"
             "（提示登录失效时重新扫码）"),
            f"点击「发表视频」，上传 {video}（竖版 1080×1920{seconds}，片头已带活动标签）",
            (f"封面：点击「编辑封面」，上传 {cover_3x4}（3:4 竖版）；如需横版封面，"
             f"使用 {cover_4x3}（4:3）"),
            ("描述：打开 description.txt，全文复制粘贴到「添加描述」（活动标签在开头，请勿改动；"
             "末尾的 #话题 保留）"),
            f"短标题：复制 short_title.txt 的内容粘贴到「短标题」（{self.short_title_min}–{self.title_max} 个字）",
            ("如本次活动在视频号有对应的「活动」或话题，在页面中选择参加"
             + (f"（活动标签：{label}）" if label else "")),
            "核对视频、封面、描述和短标题无误后，点击「发表」",
            "发表后在「内容管理」中找到这条视频，复制视频链接",
            "回到 Fanout，在这条投递上点击“登记已发布”，粘贴视频链接",
        ]
        return steps


# ----------------------------------------------------------------------------- helpers


def _is_ideograph(ch: str) -> bool:
    """A CJK ideograph (not CJK punctuation or a full-width form)."""
    return ("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"
            or ch == "\u3007")


def _short_clean(text: str) -> str:
    """Separators to spaces, whitespace collapsed."""
    out = "".join(" " if ch in _SEPARATORS else ch for ch in (text or ""))
    return " ".join(out.split())


def _topics(tags: tuple[str, ...]) -> list[str]:
    """#话题 names: no whitespace or '#' inside, duplicates dropped, order kept."""
    out: list[str] = []
    for tag in tags:
        name = "".join(ch for ch in tag if not ch.isspace() and ch not in "#＃")
        if name and name not in out:
            out.append(name)
    return out
