"""Text helpers every channel shares: Markdown to sanitized HTML, plain text, summaries.

Editors write Markdown (CommonMark plus GFM tables and ~~strikethrough~~) and may mix in
inline HTML, so the Markdown is parsed with `html=True` and the result always goes through
nh3 (the Rust `ammonia` sanitizer) with the explicit allow-lists below. Nothing an editor
types can add a script, an event handler, a `javascript:`/`data:` URL, an iframe or a style
sheet to a page or a feed. The allow-lists are ours: the usual article vocabulary
(paragraphs, headings, lists, tables, quotes, code, ruby annotations for rare characters),
nothing interactive.

Markdown headings are shifted down one level (`#` becomes `<h2>`): the page title is the
one `<h1>`. Long URLs in running text get `<wbr>` break points so justified CJK lines are
not torn apart. Sentence ends for `summarize` are the CJK full stops 。！？； (and ASCII
! ? ;). No text is rewritten (no ASCII-to-fullwidth conversion, nothing inside URLs or
code). No work happens at import: the Markdown parser is built on first use.
"""

from __future__ import annotations

import functools
import html
import re
from html.parser import HTMLParser

import nh3

# ----------------------------------------------------------------------------- allow-lists

ALLOWED_TAGS: frozenset[str] = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
    "dd", "del", "dfn", "div", "dl", "dt", "em", "figcaption", "figure",
    "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p",
    "pre", "q", "rp", "rt", "ruby", "s", "samp", "small", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul", "var", "wbr",
})

ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "*": frozenset({"lang", "dir", "title"}),
    "a": frozenset({"href"}),
    "img": frozenset({"src", "alt", "width", "height"}),
    "ol": frozenset({"start", "reversed"}),
    "td": frozenset({"colspan", "rowspan", "style"}),
    "th": frozenset({"colspan", "rowspan", "scope", "style"}),
    "time": frozenset({"datetime"}),
    "col": frozenset({"span"}),
    "colgroup": frozenset({"span"}),
}

# Only the table alignment markdown-it writes survives in a style attribute.
ALLOWED_STYLE_PROPERTIES: frozenset[str] = frozenset({"text-align"})

URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})

LINK_REL = "noopener noreferrer"

# Removed together with everything inside them (not just the tags).
DROP_WITH_CONTENT: frozenset[str] = frozenset({
    "script", "style", "iframe", "object", "embed", "noscript", "template", "textarea",
    "select", "button", "form", "svg", "math", "frameset", "frame", "applet",
})

SENTENCE_ENDS = "。！？；!?;"
CLAUSE_ENDS = "，、,：:"
# Closing quotes/brackets that belong to the sentence before them: 他说：“好。”
_CLOSERS = "”’」』）)》〉】\"'"

_CJK = re.compile(r"[\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf"
                  r"\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")


def is_cjk(ch: str) -> bool:
    """True for a CJK ideograph, kana, or full-width/CJK punctuation character."""
    return bool(ch) and bool(_CJK.match(ch))


# ----------------------------------------------------------------------------- Markdown


@functools.lru_cache(maxsize=1)
def _markdown():  # -> MarkdownIt; imported lazily to keep import time near zero
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"])
    # Let every link parse, so a refused scheme becomes its link text (nh3 drops the href)
    # instead of the literal "[text](javascript:…)" Markdown shown to readers.
    parser.validateLink = lambda url: True
    return parser


def markdown_to_html(md: str) -> str:
    """Markdown to HTML *without* sanitizing (internal; always pass the result to `sanitize_html`)."""
    parser = _markdown()
    tokens = parser.parse(md or "")
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            level = int(token.tag[1])
            token.tag = f"h{min(6, level + 1)}"
    return parser.renderer.render(tokens, parser.options, {})


def sanitize_html(fragment: str) -> str:
    """Clean an HTML fragment with the allow-lists of this module (links get rel=noopener)."""
    return nh3.clean(
        fragment or "",
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        filter_style_properties=set(ALLOWED_STYLE_PROPERTIES),
        strip_comments=True,
    )


def markdown_to_safe_html(md: str) -> str:
    """The editor's Markdown (with inline HTML) as sanitized HTML, safe to put in any page.

    Long URLs in running text get `<wbr>` break points (see `soft_wrap_urls`).
    """
    return soft_wrap_urls(sanitize_html(markdown_to_html(md))).strip()


# A URL-looking run of ASCII in (escaped) text; 24+ characters is longer than a CJK line's
# share of the measure on a phone, where a justified line would otherwise be torn apart.
_LONG_URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]{24,}")
_URL_BREAK = re.compile(r"(/+|\?|=|&amp;|[._-])(?=[^<\s])")


def soft_wrap_urls(fragment: str) -> str:
    """Add `<wbr>` after / ? = & . - _ inside long URLs in the text of an HTML fragment.

    Justified CJK paragraphs (`text-align: justify; word-break: normal`) otherwise stretch
    the line before an unbreakable URL; `<wbr>` adds break points and is not copied with
    the text. Tags, attribute values and `<pre>`/`<code>` content are left alone.
    """
    out: list[str] = []
    verbatim = 0
    for part in re.split(r"(<[^>]*>)", fragment or ""):
        if part.startswith("<"):
            tag = re.match(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)", part)
            if tag and tag.group(2).lower() in ("pre", "code"):
                verbatim += -1 if tag.group(1) else 1
            out.append(part)
        elif verbatim <= 0 and part:
            out.append(_LONG_URL.sub(lambda m: _URL_BREAK.sub(r"\1<wbr>", m.group(0)), part))
        else:
            out.append(part)
    return "".join(out)


# ----------------------------------------------------------------------------- plain text

_BLOCK_TAGS = frozenset({
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "tr",
    "figure", "figcaption", "ul", "ol", "li", "dl", "dt", "dd", "hr", "caption", "thead",
    "tbody", "tfoot",
})


def join_lines(left: str, right: str) -> str:
    """Join two pieces of running text: no space between CJK characters, one space otherwise."""
    if not left:
        return right
    if not right:
        return left
    if is_cjk(left[-1]) or is_cjk(right[0]):
        return left + right
    return left + " " + right


class _TextExtractor(HTMLParser):
    """Sanitized HTML to plain text: blocks become lines, list items get markers."""

    def __init__(self, skip: frozenset[str] = frozenset()) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current = ""
        self.pre = 0
        self.lists: list[list[int | None]] = []  # per open list: [counter or None]
        self.skip = skip  # elements whose text is left out
        self.skipping = 0

    def _break(self) -> None:
        if self.current.strip():
            self.lines.append(self.current.strip())
        self.current = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.skip:
            self._break()
            self.skipping += 1
            return
        if tag == "br":
            self._break()
            return
        if tag in ("td", "th") and self.current and not self.current.endswith(" "):
            self.current += " "
        if tag in _BLOCK_TAGS:
            self._break()
        if tag == "pre":
            self.pre += 1
        elif tag == "ul":
            self.lists.append([None])
        elif tag == "ol":
            start = dict(attrs).get("start") or "1"
            self.lists.append([int(start) if start.isdigit() else 1])
        elif tag == "li" and self.lists:
            counter = self.lists[-1]
            if counter[0] is None:
                self.current = "· "
            else:
                self.current = f"{counter[0]}. "
                counter[0] += 1
        elif tag == "img":
            pass  # images carry no running text; alt text belongs to the image

    def handle_endtag(self, tag: str) -> None:
        if tag in self.skip:
            self.skipping = max(0, self.skipping - 1)
            self.current = ""
            return
        if tag in _BLOCK_TAGS:
            self._break()
        if tag == "pre" and self.pre:
            self.pre -= 1
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre:
            for i, part in enumerate(data.split("\n")):
                if i:
                    self._break()
                self.current += part
            return
        pieces = re.split(r"\s*\n\s*", data)
        for i, piece in enumerate(pieces):
            piece = re.sub(r"[ \t\r\f\v]+", " ", piece)
            if i == 0:
                if self.current.endswith(" ") and piece.startswith(" "):
                    piece = piece.lstrip()
                self.current += piece
            else:
                self.current = join_lines(self.current.rstrip(), piece.lstrip())

    def text(self) -> str:
        self._break()
        return "\n".join(self.lines)


# Left out of summaries: headings, tables, code and captions are not the story's prose.
SUMMARY_SKIP: frozenset[str] = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "figcaption"})


def html_to_text(fragment: str, skip: frozenset[str] = frozenset()) -> str:
    """Plain text of an HTML fragment (one line per block), leaving out `skip` elements."""
    parser = _TextExtractor(skip)
    parser.feed(fragment or "")
    parser.close()
    return parser.text()


def plain_text(md: str) -> str:
    """The Markdown's text without markup: one line per paragraph/heading/list item.

    Goes through the sanitizer first, so the text of a `<script>` never appears.
    """
    return html_to_text(markdown_to_safe_html(md))


_CJK_PUNCT_END = "。！？；：，、…”’」』）》】"


def one_line(text: str) -> str:
    """Blocks joined into one paragraph: directly after CJK punctuation, else with a space
    (so a heading without a full stop does not run into the next sentence)."""
    out = ""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        out = line if not out else out + ("" if out[-1] in _CJK_PUNCT_END else " ") + line
    return out


def summarize(md: str, max_chars: int) -> str:
    """A summary of at most `max_chars` characters, cut after a sentence end where possible.

    The text is the body's prose (headings, tables, code and captions left out). Order of
    preference: the whole text if it fits; the longest prefix ending in 。！？；
    (closing quotes after the stop are kept) that is at least a third of `max_chars`; the
    longest prefix ending at a clause mark (，、：) followed by "…"; a hard cut followed by "…".
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    return cut_at_sentence(one_line(html_to_text(markdown_to_safe_html(md), SUMMARY_SKIP)), max_chars)


def cut_at_sentence(text: str, max_chars: int) -> str:
    """One line of text in at most `max_chars` characters, by `summarize`'s preferences: whole;
    after a sentence end (closing quotes kept) in the last two thirds; at a clause mark + "…";
    a hard cut + "…"."""
    if len(text) <= max_chars:
        return text
    window = text[:max_chars]
    floor = max(1, max_chars // 3)
    for i in range(len(window) - 1, floor - 2, -1):
        if window[i] in SENTENCE_ENDS:
            end = i + 1
            while end < len(window) and window[end] in _CLOSERS:
                end += 1
            return window[:end].rstrip()
    window = text[: max_chars - 1]
    for i in range(len(window) - 1, floor - 2, -1):
        if window[i] in CLAUSE_ENDS:
            return window[:i].rstrip() + "…"
    return window.rstrip() + "…"


# ----------------------------------------------------------------------------- URLs in HTML

_URL_ATTR = re.compile(r'(\s(?:src|href|poster)=")([^"]*)(")')
_SRCSET_ATTR = re.compile(r'(\ssrcset=")([^"]*)(")')


def absolutize_html(fragment: str, base_url: str) -> str:
    """Resolve the relative src/href/poster/srcset URLs of sanitized HTML against `base_url`.

    Expects double-quoted attributes, which is what nh3 and our templates write. Absolute
    URLs, `mailto:` and fragments are left as they are (`urljoin` semantics).
    """
    from urllib.parse import urljoin

    def one(match: re.Match[str]) -> str:
        value = html.unescape(match.group(2)).strip()
        return match.group(1) + html.escape(urljoin(base_url, value), quote=True) + match.group(3)

    def srcset(match: re.Match[str]) -> str:
        out = []
        for candidate in html.unescape(match.group(2)).split(","):
            parts = candidate.strip().split()
            if parts:
                out.append(" ".join([urljoin(base_url, parts[0]), *parts[1:]]))
        return match.group(1) + html.escape(", ".join(out), quote=True) + match.group(3)

    return _SRCSET_ATTR.sub(srcset, _URL_ATTR.sub(one, fragment or ""))
