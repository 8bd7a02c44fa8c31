"""channels/text.py: what the sanitizer keeps and removes, plain text, summaries."""

from __future__ import annotations

import re

import pytest

from channels.text import (
    absolutize_html,
    markdown_to_safe_html,
    plain_text,
    sanitize_html,
    summarize,
)

# (id, markdown, substrings that must appear, substrings that must not appear)
SANITIZE_ROWS = [
    ("script-block", "前文\n\n<script>alert(1)</script>\n\n后文", ["前文", "后文"], ["<script", "alert(1)"]),
    ("script-inline", "文字<script>alert(1)</script>结束", ["文字", "结束"], ["<script", "alert(1)"]),
    ("js-link-markdown", "[点这里](javascript:alert(1))", ["点这里"], ["javascript", "href=", "[点这里]("]),
    ("js-link-html", '<a href="javascript:alert(1)">点这里</a>', ["点这里"], ["javascript:"]),
    ("js-link-entity", '<a href="java&#x09;script:alert(1)">x</a>', [], ["script:", "href="]),
    ("data-url-img", '<img src="data:image/png;base64,AAAA" alt="图">', ['alt="图"'], ["data:"]),
    ("onerror", "<img src=x onerror=alert(1)>", ['<img src="x"'], ["onerror", "alert"]),
    ("onclick", '<p onclick="steal()">段落</p>', ["<p>段落</p>"], ["onclick", "steal"]),
    ("iframe", '<iframe src="https://evil.example/"></iframe>正文', ["正文"], ["<iframe", "evil.example"]),
    ("style-tag", "<style>body{display:none}</style>正文", ["正文"], ["<style", "display"]),
    ("style-attr", '<p style="position:fixed">x</p>', ["<p>x</p>"], ["position"]),
    ("object", '<object data="x.swf"></object>ok', ["ok"], ["<object", "x.swf"]),
    ("form", '<form action="https://evil/"><input name=a></form>ok', ["ok"], ["<form", "<input"]),
    ("svg", "<svg><script>alert(1)</script></svg>ok", ["ok"], ["<svg", "alert"]),
    ("table", "| 项目 | 数量 |\n|:--|--:|\n| 学校 | 3 |", ["<table>", "<th", "<td", "学校", "text-align:right"], []),
    ("chinese", "黄山区**新建**学校3所，*惠及*学生1200名。", ["黄山区<strong>新建</strong>学校3所，<em>惠及</em>学生1200名。"], []),
    ("link-rel", "[区政府](https://www.hsq.gov.cn/)", ['href="https://www.hsq.gov.cn/"', 'rel="noopener noreferrer"'], []),
    ("mailto", "[写信](mailto:news@example.cn)", ['href="mailto:news@example.cn"'], []),
    ("heading-demoted", "# 一级标题\n\n## 二级", ["<h2>一级标题</h2>", "<h3>二级</h3>"], ["<h1"]),
    ("ruby", "<ruby>歙<rt>shè</rt></ruby>县", ["<ruby>歙<rt>shè</rt></ruby>县"], []),
    ("comment", "<!-- 内部备注 -->正文", ["正文"], ["内部备注", "<!--"]),
    ("long-url-breaks", "见 https://www.hsq.gov.cn/jtj/a/b?x=1&y=2 。",
     ["https://<wbr>www.<wbr>hsq.<wbr>gov.<wbr>cn/<wbr>jtj/<wbr>a/<wbr>b?<wbr>x=<wbr>1&amp;<wbr>y=<wbr>2 。"], ["&<wbr>amp;"]),
    ("url-in-code-verbatim", "`https://www.hsq.gov.cn/jtj/a/b/c/d`", ["<code>https://www.hsq.gov.cn/jtj/a/b/c/d</code>"], ["<wbr>"]),
    ("short-url-untouched", "见 https://x.cn/a 。", ["https://x.cn/a"], ["<wbr>"]),
]


@pytest.mark.parametrize("md, present, absent", [r[1:] for r in SANITIZE_ROWS], ids=[r[0] for r in SANITIZE_ROWS])
def test_markdown_to_safe_html(md: str, present: list[str], absent: list[str]) -> None:
    out = markdown_to_safe_html(md)
    for needle in present:
        assert needle in out, f"{needle!r} missing from {out!r}"
    for needle in absent:
        assert needle.lower() not in out.lower(), f"{needle!r} survived in {out!r}"


def test_every_link_gets_rel_and_no_handler_survives_a_mixed_document() -> None:
    md = ("[a](https://a.example/) <a href='https://b.example/' rel='opener' target=_blank onmouseover=x()>b</a>\n\n"
          "<div onload=x()><img src=https://c.example/i.jpg onload=y()></div>")
    out = markdown_to_safe_html(md)
    anchors = re.findall(r"<a [^>]*>", out)
    assert len(anchors) == 2
    assert all('rel="noopener noreferrer"' in a for a in anchors)
    assert "target" not in out
    assert not re.search(r"\son\w+=", out)


def test_sanitize_is_idempotent() -> None:
    html = markdown_to_safe_html("段落 [链接](https://x.example/)\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert sanitize_html(html).strip() == html


PLAIN_ROWS = [
    ("cjk-softbreak", "第一行\n第二行。", "第一行第二行。"),
    ("latin-softbreak", "line one\nline two", "line one line two"),
    ("markup-gone", "**粗体**和[链接](https://x.example/)", "粗体和链接"),
    ("script-text-gone", "前<script>alert(1)</script>后", "前后"),
    ("paragraphs", "一段。\n\n二段。", "一段。\n二段。"),
    ("entities", "A &amp; B &lt;c&gt;", "A & B <c>"),
    ("list", "- 甲\n- 乙", "· 甲\n· 乙"),
    ("long-url-whole", "见 https://www.hsq.gov.cn/jtj/a/b?x=1&y=2 。", "见 https://www.hsq.gov.cn/jtj/a/b?x=1&y=2 。"),
]


@pytest.mark.parametrize("md, expected", [r[1:] for r in PLAIN_ROWS], ids=[r[0] for r in PLAIN_ROWS])
def test_plain_text(md: str, expected: str) -> None:
    assert plain_text(md) == expected


SUMMARY_ROWS = [
    ("fits", "短文。", 10, "短文。"),
    ("cut-at-full-stop", "第一句话写完了。第二句话还很长很长很长很长。", 12, "第一句话写完了。"),
    ("cut-at-question", "真的吗？是真的！后面还有很多很多文字", 8, "真的吗？是真的！"),
    ("keeps-closing-quote", "他说：“好。”然后就走了很远很远很远。", 9, "他说：“好。”"),
    ("semicolon", "一是教育；二是医疗；三是帮扶", 11, "一是教育；二是医疗；"),
    ("clause-fallback", "这是一个没有句号但是有逗号的长句子，后面接着还有很多内容没有结束", 20, "这是一个没有句号但是有逗号的长句子…"),
    ("hard-cut", "没有任何标点符号的一段非常长的文字内容需要被截断", 10, "没有任何标点符号的…"),
    ("headings-left-out", "## 标题\n\n正文第一句。\n\n### 小节\n\n第二句。", 30, "正文第一句。第二句。"),
    ("table-left-out", "导语。\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nEnd.", 30, "导语。End."),
]


@pytest.mark.parametrize("md, limit, expected", [r[1:] for r in SUMMARY_ROWS], ids=[r[0] for r in SUMMARY_ROWS])
def test_summarize(md: str, limit: int, expected: str) -> None:
    out = summarize(md, limit)
    assert out == expected
    assert len(out) <= limit


def test_summarize_rejects_zero() -> None:
    with pytest.raises(ValueError):
        summarize("文字", 0)


ABS_ROWS = [
    ("relative-src", '<img src="media/ab/x.jpg">', '<img src="https://s.example/site/media/ab/x.jpg">'),
    ("absolute-untouched", '<a href="https://other.example/a">x</a>', '<a href="https://other.example/a">x</a>'),
    ("mailto-untouched", '<a href="mailto:a@b.cn">x</a>', '<a href="mailto:a@b.cn">x</a>'),
    ("srcset", '<img srcset="media/a.jpg 480w, media/b.jpg 960w">',
     '<img srcset="https://s.example/site/media/a.jpg 480w, https://s.example/site/media/b.jpg 960w">'),
    ("query-escaped", '<a href="p?a=1&amp;b=2">x</a>', '<a href="https://s.example/site/p?a=1&amp;b=2">x</a>'),
]


@pytest.mark.parametrize("fragment, expected", [r[1:] for r in ABS_ROWS], ids=[r[0] for r in ABS_ROWS])
def test_absolutize_html(fragment: str, expected: str) -> None:
    assert absolutize_html(fragment, "https://s.example/site/") == expected
