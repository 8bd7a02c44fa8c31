"""Automatic proof checks (校) run before each review step of 三审三校.

`run_checks` looks at one story version (a `ProofInput`, plain data) and returns `Finding`s:
"block" findings stop the review step until fixed, "warn" findings need a reviewer's
acknowledgement (by `Finding.key`, which stays the same across runs of the same problem).

Where the numbers and lists come from:

* Channel limits: the `title_max`, `body_max`, `length_rule` and `title_zh` class attributes
  each channel declares in channels/<x>.py (numbers from ../shared/channels.md), counted with
  `channels.base.text_length`. Website and RSS refuse an over-long title or body at render
  time, so over-limit is "block"; a channel that cuts text itself sets
  `cuts_text: ClassVar[bool] = True` and gets "warn" instead. Website and RSS count their
  body limit on the Markdown source (channels/sitefiles.check_story), so for channels that
  refuse, the body length is the larger of the plain-text and the Markdown length.
* Sensitive words: FANOUT_HOME/proofing/sensitive.txt, one word or phrase per line; edited by
  administrators through `write_word_list`. The shipped default holds only neutral
  placeholder entries for tests and demos: each media center loads its own list.
* Wrong-character pairs: FANOUT_HOME/proofing/typos.txt, lines "错→对" ("错=>对" and
  "错<TAB>对" are accepted too). The default lists common misused words of Chinese
  copy-editing (成语 and everyday words whose wrong form is unambiguous).
* Word-list limits (20,000 lines, 100 characters a line) keep an admin's paste bounded.

Matching uses one pyahocorasick automaton per list over all checked text (title, short
title, summary, label and the body as plain text from `channels.text.plain_text`), after a
length-preserving normalisation: full-width ASCII to half-width, ASCII lower-cased,
zero-width characters ignored. Automatons are cached per process, keyed by the list file's
(path, mtime_ns, size, inode), so editing the file — here or in another process — rebuilds
it on the next run. Nothing happens at import time.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from channels.base import Channel, text_length
from channels.text import plain_text
from services.config import Settings
from services.errors import ValidationError

log = logging.getLogger(__name__)

BLOCK = "block"
WARN = "warn"
WORD_LISTS = ("sensitive", "typos")
LIST_NAMES_ZH = {"sensitive": "敏感词表", "typos": "错别字表"}
MAX_LIST_LINES = 20_000
MAX_LINE_CHARS = 100
CONTEXT_CHARS = 8  # characters of context either side of a match
MAX_CONTEXTS = 3  # contexts kept per matched word
TYPO_SEPARATORS = ("→", "=>", "\t")
IMAGE_ROLES = ("cover", "image")

DEFAULT_SENSITIVE = """\
# Fanout sensitive-word list (敏感词表): one word or phrase per line.
# 每行一个词或短语；以 # 开头的行是注释，空行忽略。
# Matching ignores ASCII case and full-width/half-width (ＡＢＣ = abc).
# A match blocks the review step until the text is changed.
# The entries below are neutral placeholders for tests and demos only:
# replace them with the list your media center maintains.
示例敏感词
测试屏蔽词
演示违禁语
"""

DEFAULT_TYPOS = """\
# Fanout wrong-character list (错别字表): one pair per line, "错→对".
# 也可写作 "错=>对" 或 "错<TAB>对"；以 # 开头的行是注释，空行忽略。
# A match is a warning with the suggested correction.
按装→安装
既使→即使
再接再励→再接再厉
迫不急待→迫不及待
不径而走→不胫而走
一愁莫展→一筹莫展
谈笑风声→谈笑风生
默守成规→墨守成规
布署→部署
震憾→震撼
度过难关→渡过难关
松驰→松弛
气慨→气概
烦燥→烦躁
美仑美奂→美轮美奂
甘败下风→甘拜下风
金榜提名→金榜题名
走头无路→走投无路
食不裹腹→食不果腹
按步就班→按部就班
一如继往→一如既往
穿流不息→川流不息
出奇不意→出其不意
针贬时弊→针砭时弊
世外桃园→世外桃源
人情事故→人情世故
竭泽而鱼→竭泽而渔
"""

DEFAULT_LISTS = {"sensitive": DEFAULT_SENSITIVE, "typos": DEFAULT_TYPOS}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Finding:
    """One problem the proof checks found. `key` identifies it for acknowledgement."""

    key: str
    code: str  # "limit" | "sensitive" | "typo" | "cover" | "alt" | "label" | "render"
    severity: str  # "block" | "warn"
    message: str
    message_zh: str
    channel: str | None = None
    detail: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "code": self.code, "severity": self.severity, "message": self.message,
                "message_zh": self.message_zh, "channel": self.channel, "detail": dict(self.detail)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Finding":
        return cls(key=str(d["key"]), code=str(d["code"]), severity=str(d["severity"]),
                   message=str(d.get("message", "")), message_zh=str(d.get("message_zh", "")),
                   channel=d.get("channel"), detail=dict(d.get("detail") or {}))

    @property
    def is_blocking(self) -> bool:
        return self.severity == BLOCK


@dataclass(frozen=True)
class ProofMedia:
    """A story's media item as the checks see it. `position` is 1-based (0 = use list order)."""

    role: str  # "cover", "image" or "video"
    alt: str = ""
    position: int = 0


@dataclass(frozen=True)
class ProofInput:
    """What the checks look at: one story version's text and media."""

    title: str
    body_markdown: str = ""
    summary: str = ""
    short_title: str = ""
    label: str = ""
    label_template: str | None = None  # the campaign's label template; None = not in a campaign
    expected_label: str | None = None  # the template rendered with the story's fields, when it renders
    media: tuple[ProofMedia, ...] = ()


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == BLOCK]


def warnings(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == WARN]


# --------------------------------------------------------------------------- checks


def run_checks(settings: Settings, data: ProofInput, channels: Sequence[type[Channel]]) -> list[Finding]:
    """All proof findings for `data` against `channels`: blocking ones first, then warnings,
    each group in check order (limits, label, sensitive words, wrong characters, body, media)."""
    body_text = plain_text(data.body_markdown or "")
    findings: list[Finding] = []
    findings += _check_limits(data, body_text, channels)
    findings += _check_label(data)
    texts = [data.title, data.short_title, data.summary, data.label, body_text]
    text = "\n".join(t for t in texts if t)
    findings += _check_sensitive(settings, text)
    findings += _check_typos(settings, text)
    if not body_text.strip():
        findings.append(Finding(key="body:empty", code="limit", severity=WARN,
                                message="the body is empty", message_zh="正文为空"))
    findings += _check_media(data.media)
    return sorted(findings, key=lambda f: f.severity != BLOCK)


def _check_limits(data: ProofInput, body_text: str, channels: Sequence[type[Channel]]) -> list[Finding]:
    out: list[Finding] = []
    seen: set[str] = set()
    title = " ".join((data.title or "").split())  # what website/RSS measure (sitefiles.check_story)
    body_md = data.body_markdown or ""
    for cls in channels:
        name = cls.name or cls.__name__
        if name in seen:
            continue
        seen.add(name)
        cuts = bool(getattr(cls, "cuts_text", False))
        where = cls.title_zh or name
        rule = cls.length_rule
        if cls.title_max is not None:
            length = text_length(title, rule)
            if length > cls.title_max:
                out.append(_limit_finding(name, where, "title", "标题", cls.title_max, length, rule, cuts,
                                          "text"))
        if cls.body_max is not None:
            length, counted = text_length(body_text, rule), "text"
            if not cuts and len(body_md) > length:  # website and RSS count the Markdown source
                length, counted = len(body_md), "markdown"
            if length > cls.body_max:
                out.append(_limit_finding(name, where, "body", "正文", cls.body_max, length, rule, cuts,
                                          counted))
    return out


def _limit_finding(channel: str, where: str, fld: str, fld_zh: str, limit: int, length: int,
                   rule: str, cuts: bool, counted: str) -> Finding:
    over = length - limit
    counts = f"（{length}/{limit}）" if rule == "chars" else f"（按平台计数规则，{length}/{limit}）"
    if cuts:
        message = f"{channel}: {fld} is {over} over the limit ({length}/{limit}); the channel will cut it"
        message_zh = f"{where}：{fld_zh}超出 {over} 字{counts}，发布时将被截断"
    else:
        message = f"{channel}: {fld} is {over} over the limit ({length}/{limit}); the channel refuses it"
        message_zh = f"{where}：{fld_zh}超出 {over} 字{counts}"
    return Finding(key=f"limit:{channel}:{fld}", code="limit", severity=WARN if cuts else BLOCK,
                   message=message, message_zh=message_zh, channel=channel,
                   detail={"field": fld, "limit": limit, "length": length, "over": over, "rule": rule,
                           "counted": counted, "cut": cuts})


def _check_label(data: ProofInput) -> list[Finding]:
    label = (data.label or "").strip()
    if data.label_template is not None and not label:
        return [Finding(key="label:missing", code="label", severity=BLOCK,
                        message="the story belongs to a campaign but has no campaign label",
                        message_zh="缺少栏目标识（活动标签）",
                        detail={"template": data.label_template})]
    if data.expected_label is not None and label != data.expected_label:
        return [Finding(key="label:mismatch", code="label", severity=BLOCK,
                        message=f"the label {label!r} is not the campaign's {data.expected_label!r}",
                        message_zh=f"标签“{label}”与活动标签“{data.expected_label}”不一致（活动标签模板已改动？请重新保存稿件）",
                        detail={"template": data.label_template, "expected": data.expected_label})]
    return []


def _check_media(media: Sequence[ProofMedia]) -> list[Finding]:
    out: list[Finding] = []
    if not any(m.role == "cover" for m in media):
        out.append(Finding(key="cover:missing", code="cover", severity=WARN,
                           message="the story has no cover image", message_zh="缺少封面图"))
    for index, item in enumerate(media, start=1):
        if item.role not in IMAGE_ROLES or (item.alt or "").strip():
            continue
        position = item.position if item.position > 0 else index
        if item.role == "cover":
            message_zh = f"第 {position} 张图片（封面图）缺少替代文字"
        else:
            message_zh = f"第 {position} 张图片缺少替代文字"
        out.append(Finding(key=f"alt:{position}", code="alt", severity=WARN,
                           message=f"{item.role} image {position} has no alt text", message_zh=message_zh,
                           detail={"position": position, "role": item.role}))
    return out


def _check_sensitive(settings: Settings, text: str) -> list[Finding]:
    matcher = _matcher(settings, "sensitive")
    out: list[Finding] = []
    for word, spans in matcher.find(text).items():
        contexts = [_context(text, s, e) for s, e in spans[:MAX_CONTEXTS]]
        out.append(Finding(key=f"sensitive:{word}", code="sensitive", severity=BLOCK,
                           message=f"sensitive word {word!r} found {len(spans)} time(s)",
                           message_zh=f"含敏感词“{word}”（{len(spans)} 处）",
                           detail={"word": word, "count": len(spans), "contexts": contexts}))
    return out


def _check_typos(settings: Settings, text: str) -> list[Finding]:
    matcher = _matcher(settings, "typos")
    out: list[Finding] = []
    for wrong, spans in matcher.find(text).items():
        right = matcher.values[wrong]
        spans = [s for s in spans if not _inside_word(text, s[0], wrong, right)]
        if not spans:
            continue
        contexts = [_context(text, s, e) for s, e in spans[:MAX_CONTEXTS]]
        out.append(Finding(key=f"typo:{wrong}", code="typo", severity=WARN,
                           message=f"possible misused word {wrong!r}, should be {right!r} ({len(spans)} time(s))",
                           message_zh=f"疑似错别字：“{wrong}”应为“{right}”（{len(spans)} 处）",
                           detail={"word": wrong, "suggestion": right, "count": len(spans),
                                   "contexts": contexts}))
    return out


def _inside_word(text: str, start: int, wrong: str, right: str) -> bool:
    """Whether the match of `wrong` at `start` is part of an occurrence of the correct `right`
    (possible only when an admin lists a pair whose correction contains the wrong form)."""
    norm_wrong, norm_right = normalize(wrong), normalize(right)
    k = norm_right.find(norm_wrong)
    while k >= 0:
        if start - k >= 0 and normalize(text[start - k:start - k + len(norm_right)]) == norm_right:
            return True
        k = norm_right.find(norm_wrong, k + 1)
    return False


def _context(text: str, start: int, end: int) -> str:
    """The match with up to CONTEXT_CHARS either side, on one line, "…" where cut."""
    a, b = max(0, start - CONTEXT_CHARS), min(len(text), end + CONTEXT_CHARS)
    snippet = " ".join(text[a:b].split())
    return ("…" if a > 0 else "") + snippet + ("…" if b < len(text) else "")


# --------------------------------------------------------------------------- matching

# Invisible characters that would split a word without showing: dropped before matching.
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")


@functools.lru_cache(maxsize=1)
def _fold_table() -> dict[int, int]:
    """Full-width ASCII (U+FF01–U+FF5E) to half-width, the ideographic space to a space,
    ASCII upper case to lower case. Every mapping is one character to one, so offsets in
    the normalised text are offsets in the original text."""
    table = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
    table[0x3000] = 0x20
    table = {k: (v + 32 if 0x41 <= v <= 0x5A else v) for k, v in table.items()}
    table.update({cp: cp + 32 for cp in range(0x41, 0x5B)})
    return table


def normalize(text: str) -> str:
    """The form both word lists and checked text are matched in (length-preserving)."""
    return text.translate(_fold_table())


class _Matcher:
    """One Aho-Corasick automaton over a word list: normalised key -> the listed word.

    Keys and text go into the automaton as their UTF-8 bytes spelled as Latin-1 characters.
    pyahocorasick finds a node's child by a linear scan of its children, so with CJK keys the
    root has thousands of children and a 50,000-character text against 5,000 words took
    ~90 ms here; over bytes a node has at most 256 children and the same pass takes ~8 ms.
    UTF-8 is self-synchronising, so every match is whole characters.
    """

    def __init__(self, entries: Mapping[str, str]) -> None:
        import ahocorasick

        self.values: dict[str, str] = {}  # listed word -> value (typos: the correction)
        self.automaton = ahocorasick.Automaton()
        for word, value in entries.items():
            key = _as_bytes_str(normalize(word))
            if not key or self.automaton.exists(key):
                continue
            self.automaton.add_word(key, (len(key), word))
            self.values[word] = value
        self.size = len(self.values)
        if self.size:
            self.automaton.make_automaton()

    def find(self, text: str) -> dict[str, list[tuple[int, int]]]:
        """Listed word -> (start, end) character offsets in `text` of each match."""
        if not self.size or not text:
            return {}
        folded = normalize(text)
        index: list[int] | None = None
        if _INVISIBLE.search(folded):
            index = [i for i, ch in enumerate(folded) if not _INVISIBLE.match(ch)]
            folded = "".join(folded[i] for i in index)
        data = _as_bytes_str(folded)
        hits = [(end + 1 - length, end + 1, word) for end, (length, word) in self.automaton.iter(data)]
        if not hits:
            return {}
        # Byte offsets to character offsets in one pass over the sorted offsets.
        chars: dict[int, int] = {}
        position = count = 0
        for offset in sorted({o for a, b, _ in hits for o in (a, b)}):
            count += len(data[position:offset].encode("latin-1").decode("utf-8", "surrogatepass"))
            position = offset
            chars[offset] = count
        found: dict[str, list[tuple[int, int]]] = {}
        for a, b, word in sorted(hits):
            start, end = chars[a], chars[b]
            if index is not None:
                start, end = index[start], index[end - 1] + 1
            found.setdefault(word, []).append((start, end))
        return found


def _as_bytes_str(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


_CACHE_LOCK = threading.Lock()
_CACHE: "OrderedDict[tuple[str, str], tuple[tuple[int, int, int], _Matcher]]" = OrderedDict()
_CACHE_MAX = 16  # (home, list) pairs kept per process; one home in production


def _matcher(settings: Settings, name: str) -> _Matcher:
    path = word_list_path(settings, name)
    if not path.exists():
        read_word_list(settings, name)  # writes the default
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cache_key = (str(path), name)
    with _CACHE_LOCK:
        hit = _CACHE.get(cache_key)
        if hit is not None and hit[0] == stamp:
            _CACHE.move_to_end(cache_key)
            return hit[1]
        # Stamped before reading: a change between stat and read only causes one more rebuild.
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            entries = parse_word_list(name, text)
        except ValidationError as exc:  # edited by hand into a bad shape: use the good lines
            log.warning("proofing: %s has errors (%s); using the lines that parse", path, exc.message)
            entries = parse_word_list(name, text, strict=False)
        matcher = _Matcher(entries)
        _CACHE[cache_key] = (stamp, matcher)
        _CACHE.move_to_end(cache_key)
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
        log.info("proofing: built %s automaton with %d entries from %s", name, matcher.size, path)
        return matcher


def _forget(path: Path, name: str) -> None:
    with _CACHE_LOCK:
        _CACHE.pop((str(path), name), None)


# --------------------------------------------------------------------------- word lists


def _check_name(name: str) -> str:
    if name not in WORD_LISTS:
        raise ValidationError(f"unknown word list {name!r}; expected one of {', '.join(WORD_LISTS)}",
                              f"未知的词表“{name}”")
    return name


def word_list_path(settings: Settings, name: str) -> Path:
    """FANOUT_HOME/proofing/<name>.txt for name "sensitive" or "typos"."""
    return settings.resolved_home / "proofing" / f"{_check_name(name)}.txt"


def read_word_list(settings: Settings, name: str) -> str:
    """The list file's text; on first use the file is created with the default content."""
    path = word_list_path(settings, name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    _write_atomic(path, DEFAULT_LISTS[name], exclusive=True)
    return path.read_text(encoding="utf-8")


def write_word_list(settings: Settings, name: str, text: str | bytes) -> int:
    """Validate and replace a word list (atomically); returns its number of entries.

    Raises ValidationError (English and Chinese messages) and leaves the file unchanged when
    the text is not UTF-8, has more than MAX_LIST_LINES lines or a line longer than
    MAX_LINE_CHARS characters, or (typos) a line that is not "错→对", "错=>对" or "错<TAB>对".
    """
    path = word_list_path(settings, name)
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"the {name} list is not valid UTF-8 (byte {exc.start})",
                                  f"{LIST_NAMES_ZH[name]}不是有效的 UTF-8 文本（第 {exc.start} 字节）") from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"the {name} list is not valid UTF-8 (character {exc.start})",
                              f"{LIST_NAMES_ZH[name]}含有无效字符（第 {exc.start} 个字符）") from exc
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    entries = parse_word_list(name, text)
    if text and not text.endswith("\n"):
        text += "\n"
    _write_atomic(path, text)
    _forget(path, name)
    return len(entries)


def parse_word_list(name: str, text: str, *, strict: bool = True) -> dict[str, str]:
    """Entries of a list's text: sensitive -> {word: word}; typos -> {wrong: right}.

    `#` lines and blank lines are skipped; surrounding whitespace is trimmed. With `strict`,
    the first bad line raises ValidationError; otherwise bad lines are skipped.
    """
    _check_name(name)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_LIST_LINES:
        if strict:
            raise ValidationError(f"the {name} list has {len(lines)} lines; at most {MAX_LIST_LINES} are allowed",
                                  f"{LIST_NAMES_ZH[name]}共 {len(lines)} 行，最多允许 {MAX_LIST_LINES} 行")
        lines = lines[:MAX_LIST_LINES]
    entries: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            item = _parse_line(name, raw, number)
        except ValidationError:
            if strict:
                raise
            continue
        if item is not None:
            entries.setdefault(item[0], item[1])
    return entries


def _parse_line(name: str, raw: str, number: int) -> tuple[str, str] | None:
    list_zh = LIST_NAMES_ZH[name]
    if len(raw) > MAX_LINE_CHARS:
        raise ValidationError(f"line {number} of the {name} list has {len(raw)} characters; "
                              f"at most {MAX_LINE_CHARS} are allowed",
                              f"{list_zh}第 {number} 行共 {len(raw)} 个字符，每行最多 {MAX_LINE_CHARS} 个字符")
    if any(ord(ch) < 32 and ch != "\t" for ch in raw) or "\x7f" in raw:
        raise ValidationError(f"line {number} of the {name} list contains a control character",
                              f"{list_zh}第 {number} 行含有控制字符")
    line = raw.strip(" \u3000\ufeff")
    if not line.strip() or line.startswith("#"):
        return None
    if name == "sensitive":
        word = line.strip()
        return word, word
    for sep in TYPO_SEPARATORS:
        if sep in line:
            wrong, _, right = line.partition(sep)
            wrong, right = wrong.strip(), right.strip()
            if wrong and right and wrong != right and not any(s in right for s in TYPO_SEPARATORS):
                return wrong, right
            break
    raise ValidationError(f"line {number} of the typos list must be 'wrong→right' "
                          f"(or 'wrong=>right', 'wrong<TAB>right') with two different words: {line[:40]!r}",
                          f"错别字表第 {number} 行格式应为“错→对”（或“错=>对”、“错<TAB>对”），"
                          f"且两边不同：{line[:40]}")


def _write_atomic(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write `text` to `path` through a temporary file and os.replace (os.link when
    `exclusive`: the default is written only if nobody wrote the file meanwhile).

    The new file's mtime is made later than the old one's, so the automaton cache (keyed by
    mtime_ns, size and inode) always sees the change, even within one clock tick.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        old_mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        old_mtime = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if old_mtime is not None and os.stat(tmp).st_mtime_ns <= old_mtime:
            os.utime(tmp, ns=(old_mtime + 1, old_mtime + 1))
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links
                if not path.exists():
                    os.replace(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
