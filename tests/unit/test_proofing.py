"""services/proofing.py: the automatic proof checks (校) and their editable word lists."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest

from channels.base import Channel
from channels.rss import RssChannel
from channels.website import WebsiteChannel
from services import proofing
from services.errors import ValidationError
from services.proofing import Finding, ProofInput, ProofMedia, run_checks

ROOT = Path(__file__).resolve().parents[2]

SENSITIVE_LIST = "# test list\n示例敏感词\nabc违规\n"


class CutWeibo(Channel):
    """A Weibo-like test channel: Weibo counting, cuts over-long text instead of refusing."""

    name: ClassVar[str] = "test_weibo"
    title_zh: ClassVar[str] = "测试微博"
    title_max: ClassVar[int | None] = None
    body_max: ClassVar[int | None] = 140
    length_rule: ClassVar[str] = "weibo"
    cuts_text: ClassVar[bool] = True


class RefuseShort(Channel):
    """A refusing test channel with a small Weibo-counted title limit."""

    name: ClassVar[str] = "test_short"
    title_zh: ClassVar[str] = "短标题平台"
    title_max: ClassVar[int | None] = 10
    body_max: ClassVar[int | None] = None
    length_rule: ClassVar[str] = "weibo"


COVER = ProofMedia(role="cover", alt="县城新建学校的外景", position=1)
CLEAN = ProofInput(title="黄山区新建三所学校", body_markdown="今年秋季，三所新学校**如期开学**。",
                   summary="三所新学校开学", media=(COVER,))


def make(**changes) -> ProofInput:  # noqa: ANN003
    fields = {k: getattr(CLEAN, k) for k in ("title", "body_markdown", "summary", "short_title", "label",
                                            "label_template", "media")}
    fields.update(changes)
    return ProofInput(**fields)


WEB = (WebsiteChannel, RssChannel)

# (id, input, channels, expected {key: severity}, {key: substrings of message_zh})
ROWS = [
    ("clean", CLEAN, WEB, {}, {}),
    ("title over website by 6", make(title="标" * 70), WEB,
     {"limit:website:title": "block"}, {"limit:website:title": ["网站", "6", "70/64"]}),
    ("title over website and rss", make(title="题" * 130), WEB,
     {"limit:website:title": "block", "limit:rss:title": "block"}, {"limit:rss:title": ["RSS", "2"]}),
    ("duplicate channel classes give one finding", make(title="标" * 65), (WebsiteChannel, WebsiteChannel),
     {"limit:website:title": "block"}, {"limit:website:title": ["1 字"]}),
    ("title whitespace collapsed like the website", make(title="标" * 32 + "     " + "题" * 31), WEB, {}, {}),
    ("weibo body over, cut → warn", make(body_markdown="微" * 150), (CutWeibo,),
     {"limit:test_weibo:body": "warn"}, {"limit:test_weibo:body": ["测试微博", "10", "截断"]}),
    ("weibo counts ASCII as half", make(body_markdown="a" * 280), (CutWeibo,), {}, {}),
    ("weibo ASCII over by one", make(body_markdown="a" * 282), (CutWeibo,),
     {"limit:test_weibo:body": "warn"}, {"limit:test_weibo:body": ["超出 1 字"]}),
    ("refusing weibo-counted title", make(title="标题" * 6), (RefuseShort,),
     {"limit:test_short:title": "block"}, {"limit:test_short:title": ["短标题平台", "2"]}),
    ("sensitive word, full-width and upper case", make(body_markdown="会上有人说ＡＢＣ违规，也有人说Abc违规。"), WEB,
     {"sensitive:abc违规": "block"}, {"sensitive:abc违规": ["abc违规", "2 处"]}),
    ("sensitive word in the title", make(title="示例敏感词出现在标题"), WEB,
     {"sensitive:示例敏感词": "block"}, {}),
    ("sensitive word split by a zero-width space", make(summary="示例\u200b敏感词"), WEB,
     {"sensitive:示例敏感词": "block"}, {}),
    ("sensitive word across paragraphs does not match", make(body_markdown="示例敏\n\n感词"), WEB, {}, {}),
    ("typo pair with suggestion", make(body_markdown="请按装最新版本，再接再励。"), WEB,
     {"typo:按装": "warn", "typo:再接再励": "warn"},
     {"typo:按装": ["疑似错别字：“按装”应为“安装”"], "typo:再接再励": ["再接再厉"]}),
    ("typo in the label", make(label="再接再励之民生实事"), WEB, {"typo:再接再励": "warn"}, {}),
    ("missing cover", make(media=()), WEB, {"cover:missing": "warn"}, {"cover:missing": ["缺少封面图"]}),
    ("missing alt with position", make(media=(COVER, ProofMedia("image", "操场", 2), ProofMedia("image", " ", 3))),
     WEB, {"alt:3": "warn"}, {"alt:3": ["第 3 张图片缺少替代文字"]}),
    ("cover without alt, position from order", make(media=(ProofMedia("video"), ProofMedia("cover"))), WEB,
     {"alt:2": "warn"}, {"alt:2": ["第 2 张图片", "封面"]}),
    ("label missing with a campaign template", make(label_template="黄山市黄山区30项民生实事之{name}"), WEB,
     {"label:missing": "block"}, {"label:missing": ["缺少栏目标识（活动标签）"]}),
    ("label given with a campaign template", make(label_template="…之{name}", label="黄山区民生实事之教育"), WEB, {}, {}),
    ("no template, no label needed", make(label="", label_template=None), WEB, {}, {}),
    ("empty body", make(body_markdown="  \n\n"), WEB, {"body:empty": "warn"}, {"body:empty": ["正文为空"]}),
]


@pytest.fixture
def lists(settings):  # noqa: ANN001, ANN201
    proofing.write_word_list(settings, "sensitive", SENSITIVE_LIST)
    return settings


@pytest.mark.parametrize(("data", "channels", "expected", "zh"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_checks_table(lists, data, channels, expected, zh) -> None:  # noqa: ANN001
    findings = run_checks(lists, data, channels)
    assert {f.key: f.severity for f in findings} == expected
    by_key = {f.key: f for f in findings}
    for key, parts in zh.items():
        for part in parts:
            assert part in by_key[key].message_zh, (part, by_key[key].message_zh)
    for f in findings:
        assert f.message and "\n" not in f.message and "\n" not in f.message_zh
        assert f.severity in ("block", "warn")
        assert f.code in ("limit", "sensitive", "typo", "cover", "alt", "label", "render")
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=lambda s: s != "block")  # blocking first


def test_limit_and_sensitive_details(lists) -> None:  # noqa: ANN001
    data = make(title="标" * 70, body_markdown="前文很长很长很长很长的句子ＡＢＣ违规后文也很长很长很长很长。\n\n" + "abc违规。" * 4)
    by_key = {f.key: f for f in run_checks(lists, data, WEB)}
    limit = by_key["limit:website:title"]
    assert limit.channel == "website"
    assert {k: limit.detail[k] for k in ("field", "limit", "length", "over")} == \
        {"field": "title", "limit": 64, "length": 70, "over": 6}
    assert "6" in limit.message and "website" in limit.message
    sens = by_key["sensitive:abc违规"].detail
    assert sens["word"] == "abc违规" and sens["count"] == 5
    assert len(sens["contexts"]) == 3
    assert sens["contexts"][0] == "…长很长很长的句子ＡＢＣ违规后文也很长很长很…"  # original text, ±8 chars


def test_website_body_counts_markdown_source(lists) -> None:  # noqa: ANN001
    # The website refuses on the Markdown length (sitefiles.check_story): markup counts there.
    body = "[链接](https://example.com/" + "x" * 99_990 + ")"
    by_key = {f.key: f for f in run_checks(lists, make(body_markdown=body), (WebsiteChannel,))}
    assert by_key["limit:website:body"].severity == "block"
    assert by_key["limit:website:body"].detail["counted"] == "markdown"


def test_finding_json_round_trip_and_filters() -> None:
    f = Finding(key="typo:按装", code="typo", severity="warn", message="m", message_zh="疑似错别字",
                detail={"word": "按装", "count": 2, "contexts": ["…按装…"]})
    g = Finding(key="label:missing", code="label", severity="block", message="m", message_zh="缺少栏目标识",
                channel=None)
    assert Finding.from_json(f.to_json()) == f
    assert Finding.from_json(g.to_json()) == g
    assert len({f, g}) == 2  # hashable despite the detail dict
    assert proofing.blocking([f, g]) == [g] and proofing.warnings([f, g]) == [f]


def test_default_lists_created_on_first_use(settings) -> None:  # noqa: ANN001
    path = proofing.word_list_path(settings, "typos")
    assert path == settings.resolved_home / "proofing" / "typos.txt"
    assert not path.exists()
    text = proofing.read_word_list(settings, "typos")
    assert path.read_text(encoding="utf-8") == text
    pairs = proofing.parse_word_list("typos", text)
    assert len(pairs) >= 20
    assert not set(pairs) & set(pairs.values()), "a correct word is listed as wrong"
    sensitive = proofing.parse_word_list("sensitive", proofing.read_word_list(settings, "sensitive"))
    assert {"示例敏感词", "测试屏蔽词"} <= set(sensitive)
    # Text written with every correct form raises no typo finding.
    correct = "，".join(pairs.values()) + "。"
    findings = run_checks(settings, make(body_markdown=correct), WEB)
    assert [f.key for f in findings if f.code == "typo"] == []
    wrong = "，".join(pairs) + "。"
    assert {f.key for f in run_checks(settings, make(body_markdown=wrong), WEB)} >= {f"typo:{w}" for w in pairs}
    with pytest.raises(ValidationError):
        proofing.word_list_path(settings, "../secret")


def test_write_returns_count_and_accepts_all_separators(settings) -> None:  # noqa: ANN001
    text = "# comment\n\n按装→安装\r\n既使=>即使\n松驰\t松弛\n按装→安装\n"
    assert proofing.write_word_list(settings, "typos", text) == 3
    assert "\r" not in proofing.read_word_list(settings, "typos")
    keys = {f.key for f in run_checks(settings, make(body_markdown="既使松驰也要按装"), WEB)}
    assert {"typo:按装", "typo:既使", "typo:松驰"} <= keys
    assert proofing.write_word_list(settings, "sensitive", "\ufeff甲\n乙\n# 丙\n") == 2


def test_editing_the_list_takes_effect_on_next_run(settings) -> None:  # noqa: ANN001
    data = make(body_markdown="本文提到了甲乙词和丙丁词。")
    proofing.write_word_list(settings, "sensitive", "甲乙词\n")
    assert [f.key for f in run_checks(settings, data, WEB)] == ["sensitive:甲乙词"]
    # Same size, written immediately: must still be seen (mtime bumped, new inode).
    proofing.write_word_list(settings, "sensitive", "丙丁词\n")
    assert [f.key for f in run_checks(settings, data, WEB)] == ["sensitive:丙丁词"]
    # An edit made outside write_word_list (another process, an editor) is seen too.
    path = proofing.word_list_path(settings, "sensitive")
    path.write_text("丙丁词\n甲乙词\n", encoding="utf-8")
    assert sorted(f.key for f in run_checks(settings, data, WEB)) == ["sensitive:丙丁词", "sensitive:甲乙词"]
    proofing.write_word_list(settings, "sensitive", "")
    assert run_checks(settings, data, WEB) == []


def test_automaton_is_cached(settings, monkeypatch) -> None:  # noqa: ANN001
    built = []
    real = proofing._Matcher.__init__

    def counting(self, entries):  # noqa: ANN001, ANN202
        built.append(len(entries))
        real(self, entries)

    monkeypatch.setattr(proofing._Matcher, "__init__", counting)
    for _ in range(3):
        run_checks(settings, CLEAN, WEB)
    assert len(built) == 2  # one sensitive, one typos automaton for three runs
    proofing.write_word_list(settings, "typos", "布署→部署\n")
    run_checks(settings, CLEAN, WEB)
    assert len(built) == 3


BAD_LISTS = [
    ("typos line without separator", "typos", "按装→安装\n按装安装\n", "第 2 行"),
    ("typos pair with same words", "typos", "安装→安装\n", "第 1 行"),
    ("typos pair with empty side", "typos", "按装→\n", "第 1 行"),
    ("101-character line", "sensitive", "正常\n" + "长" * 101 + "\n", "第 2 行"),
    ("too many lines", "sensitive", "词\n" * 20_001, "20001"),
    ("not UTF-8 bytes", "sensitive", b"\xff\xfe\x00bad", "UTF-8"),
    ("lone surrogate", "sensitive", "坏\ud800字\n", "无效字符"),
    ("control character", "sensitive", "坏\x00字\n", "控制字符"),
]


@pytest.mark.parametrize(("name", "text", "zh_part"), [r[1:] for r in BAD_LISTS], ids=[r[0] for r in BAD_LISTS])
def test_bad_list_input_is_refused_and_file_unchanged(settings, name, text, zh_part) -> None:  # noqa: ANN001
    before = proofing.read_word_list(settings, name)
    path = proofing.word_list_path(settings, name)
    with pytest.raises(ValidationError) as info:
        proofing.write_word_list(settings, name, text)
    assert zh_part in info.value.message_zh
    assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.message_zh)
    assert path.read_text(encoding="utf-8") == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_exactly_100_characters_is_accepted(settings) -> None:  # noqa: ANN001
    assert proofing.write_word_list(settings, "sensitive", "长" * 100 + "\n") == 1


def test_performance_50k_body_5k_words(settings) -> None:  # noqa: ANN001
    rng = random.Random(20240601)
    cjk = [chr(c) for c in range(0x4E00, 0x9FA6)]
    words = {"".join(rng.choices(cjk, k=rng.randint(3, 6))) for _ in range(5_200)}
    words = sorted(words)[:5_000]
    assert proofing.write_word_list(settings, "sensitive", "\n".join(words) + "\n") == 5_000
    paragraphs = []
    while sum(len(p) for p in paragraphs) < 50_000:
        paragraphs.append("".join(rng.choices(cjk, k=rng.randint(60, 200))) + "。")
    planted = words[:5]
    paragraphs[10] = planted[0] + paragraphs[10]
    paragraphs[20] += "".join(planted[1:]) + "ＡＢＣ。"
    body = "\n\n".join(paragraphs)[:50_000]
    data = make(body_markdown=body)
    t0 = time.perf_counter()
    run_checks(settings, data, WEB)  # builds both automatons
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    findings = run_checks(settings, data, WEB)
    elapsed = time.perf_counter() - t0
    t0 = time.perf_counter()
    matches = proofing._matcher(settings, "sensitive").find(body)
    match_only = time.perf_counter() - t0
    print(f"\nproofing: 50,000-char body x 5,000 words: first run {first * 1000:.1f} ms (build), "
          f"cached run {elapsed * 1000:.1f} ms, sensitive automaton pass {match_only * 1000:.2f} ms")
    assert {f"sensitive:{w}" for w in planted} <= {f.key for f in findings}
    assert set(planted) <= set(matches)
    assert elapsed < 0.5


def test_import_does_no_work_and_pulls_no_web_stack() -> None:
    code = ("import sys, services.proofing; "
            "bad = [m for m in ('fastapi', 'celery', 'ahocorasick') if m in sys.modules]; "
            "assert not bad, bad")
    env = {**os.environ, "FANOUT_HOME": "/nonexistent/fanout-home"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_match_offsets_are_character_offsets_in_the_original_text() -> None:
    matcher = proofing._Matcher({w: w for w in ("示例敏感词", "敏感", "abc违规", "x")})
    text = "Ａ前言x，示例敏感词；ＡＢＣ违规\u200b和示例敏\u200b感词。坏\ud800字"
    found = matcher.find(text)
    assert found["示例敏感词"] == [(5, 10), (18, 24)]
    assert found["敏感"] == [(7, 9), (20, 23)]
    assert found["abc违规"] == [(11, 16)]
    assert found["x"] == [(3, 4)]
    for word, spans in found.items():
        for a, b in spans:
            assert proofing.normalize(text[a:b]).replace("\u200b", "") == word


def test_typo_inside_its_own_correction_is_not_flagged(settings) -> None:  # noqa: ANN001
    proofing.write_word_list(settings, "typos", "装→安装\n")
    assert [f.key for f in run_checks(settings, make(body_markdown="请安装软件。"), WEB)] == []
    finding = run_checks(settings, make(body_markdown="请安装软件，再装一个。"), WEB)[0]
    assert finding.key == "typo:装" and finding.detail["count"] == 1
