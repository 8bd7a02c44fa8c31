"""channels/rss.py: the items it renders and the RSS 2.0 / Atom documents it writes.

Feeds are parsed back with feedparser (what readers use) and with lxml for the exact
attributes validators look at (isPermaLink, pubDate format, atom:link rel=self, enclosure).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from channels import sitefiles
from channels.base import PermanentChannelError, Receipt, RenderError
from channels.rss import RssChannel
from tests.unit.test_channel_website import (
    LABEL,
    PUBLIC_URL,
    MediaLibrary,
    make_story,
    publish_story,
    site_account,
    snapshot,
)

NS = {"atom": "http://www.w3.org/2005/Atom", "content": "http://purl.org/rss/1.0/modules/content/",
      "dc": "http://purl.org/dc/elements/1.1/"}
RFC822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                    r"\d{4} \d{2}:\d{2}:\d{2} \+0800$")


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    return tmp_path / "www"


def publish_three(lib: MediaLibrary, site: Path, **settings) -> list[tuple]:
    """Story 1: cover only (enclosure = feed_image); 2: video; 3: no media. Released days 0, 1, 2."""
    ch = RssChannel()
    account = site_account(site, channel="rss", **settings)
    return [
        publish_story(ch, lib, account, 1, day=0, images=2),
        publish_story(ch, lib, account, 2, day=1, images=1, video=True),
        publish_story(ch, lib, account, 3, day=2, images=0, author=""),
    ]


# ----------------------------------------------------------------------------- render


def test_render_item(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 5, images=2, video=True)
    post = RssChannel().render(story, renditions)
    f = post.fields
    assert f["title"] == story.title and f["link"] == "stories/5/"
    assert f["release_at"] == "2026-11-22T08:00:00+08:00"
    assert datetime.fromisoformat(f["release_at"]).tzinfo is not None
    assert f["categories"] == ["基础教育", "教育", "民生实事"]
    assert f["author"] == "融媒体中心记者 王芳"
    video = renditions[story.media[-1].sha256]["web_video"]
    assert f["enclosure"] == {"url": f"media/{video.sha256[:2]}/{video.sha256}.mp4", "length": video.bytes,
                              "type": "video/mp4"}
    html = f["content_html"]
    assert html.startswith(f"<p><strong>{LABEL}</strong></p>")
    assert "<script" not in html and "javascript:" not in html and "alert(" not in html
    srcs = re.findall(r'src="([^"]+)"', html)
    assert len(srcs) == 2 and all(s.startswith("media/") for s in srcs)  # site-relative, made absolute at publish
    assert {pf.role for pf in post.files} == {"enclosure", "cover", "image"}
    assert post.files[0].key == video.key


def test_enclosure_is_cover_feed_image_without_video(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 6, images=1)
    post = RssChannel().render(story, renditions)
    feed_image = renditions[story.media[0].sha256]["feed_image"]
    assert post.fields["enclosure"] == {"url": f"media/{feed_image.sha256[:2]}/{feed_image.sha256}.jpg",
                                        "length": feed_image.bytes, "type": "image/jpeg"}
    story, renditions = make_story(lib, 7, images=0)
    assert RssChannel().render(story, renditions).fields["enclosure"] is None


RENDER_ERROR_ROWS = [
    ("empty-title", {"title": ""}, "title is empty"),
    ("naive-release", {"release_at": datetime(2026, 11, 22, 8)}, "timezone-aware"),
    ("title-too-long", {"title": "长" * 129}, "at most 128"),
]


@pytest.mark.parametrize("change, message", [r[1:] for r in RENDER_ERROR_ROWS], ids=[r[0] for r in RENDER_ERROR_ROWS])
def test_render_errors(lib: MediaLibrary, change: dict, message: str) -> None:
    story, renditions = make_story(lib, 8)
    with pytest.raises(RenderError, match=message):
        RssChannel().render(replace(story, **change), renditions)


def test_video_without_web_video_is_refused(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 9, images=0, video=True)
    vid = story.media[-1].sha256
    with pytest.raises(RenderError, match="web_video"):
        RssChannel().render(story, {vid: {"web_poster": renditions[vid]["web_poster"]}})


# ----------------------------------------------------------------------------- RSS 2.0


def test_rss_feed_is_valid(lib: MediaLibrary, site: Path) -> None:
    published = publish_three(lib, site)
    raw = (site / "feed.xml").read_bytes()
    parsed = feedparser.parse(raw)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert parsed.feed.title == "融媒体中心" and parsed.feed.link == PUBLIC_URL
    assert parsed.feed.subtitle and parsed.feed.language == "zh-CN"
    assert [e.link for e in parsed.entries] == [PUBLIC_URL + f"stories/{i}/" for i in (3, 2, 1)]  # newest first
    for entry in parsed.entries:
        assert entry.id == entry.link and entry.id.startswith("http://")
        assert "<script" not in entry.content[0].value

    root = etree.fromstring(raw)
    channel = root.find("channel")
    self_links = channel.findall("atom:link", NS)
    assert [(a.get("rel"), a.get("href")) for a in self_links] == [("self", PUBLIC_URL + "feed.xml")]
    items = channel.findall("item")
    assert len(items) == 3
    for item in items:
        guid = item.find("guid")
        assert guid.get("isPermaLink") == "true" and guid.text == item.findtext("link")
        assert RFC822.match(item.findtext("pubDate")), item.findtext("pubDate")
        content = item.findtext("content:encoded", namespaces=NS)
        assert content and "<script" not in content and "javascript:" not in content
        for url in re.findall(r'(?:src|href)="([^"]+)"', content):
            assert url.startswith(("http://", "https://")), url
    assert items[0].findtext("pubDate") == "Tue, 24 Nov 2026 08:00:00 +0800"
    assert channel.findtext("lastBuildDate") == items[0].findtext("pubDate")  # newest item, not "now"
    assert items[2].findtext("dc:creator", namespaces=NS) == "融媒体中心记者 王芳"
    assert items[0].findtext("dc:creator", namespaces=NS) == "融媒体中心"  # no author: the site

    # enclosures: real length (never "None") and type, file present at that URL
    assert b'length="None"' not in raw
    enclosures = {item.findtext("link"): item.find("enclosure") for item in items}
    assert enclosures[PUBLIC_URL + "stories/3/"] is None
    for story_id, mime in ((1, "image/jpeg"), (2, "video/mp4")):
        enc = enclosures[PUBLIC_URL + f"stories/{story_id}/"]
        rel = enc.get("url").removeprefix(PUBLIC_URL)
        assert enc.get("type") == mime
        assert int(enc.get("length")) == os.path.getsize(site / rel) > 0
    post2 = published[1][0]
    assert published[1][1] == Receipt(remote_id="rss-2", url=PUBLIC_URL + "stories/2/",
                                      extra={"content_hash": post2.content_hash()})


def test_atom_feed_is_valid(lib: MediaLibrary, site: Path) -> None:
    publish_three(lib, site, site_title="黄山区融媒体中心")
    raw = (site / "atom.xml").read_bytes()
    parsed = feedparser.parse(raw)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.id == PUBLIC_URL and parsed.feed.title == "黄山区融媒体中心" and parsed.feed.updated
    assert parsed.feed.updated == "2026-11-24T08:00:00+08:00"
    assert len(parsed.entries) == 3
    for entry in parsed.entries:
        assert entry.id.startswith(PUBLIC_URL + "stories/") and entry.title and entry.updated
        assert entry.link == entry.id
    root = etree.fromstring(raw)
    atom = "{http://www.w3.org/2005/Atom}"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    assert [(ln.get("rel"), ln.get("href")) for ln in root.findall(f"{atom}link")] == [
        ("self", PUBLIC_URL + "atom.xml"), ("alternate", PUBLIC_URL)]
    for entry in root.findall(f"{atom}entry"):
        content = entry.find(f"{atom}content")
        assert content.get("type") == "html" and "<script" not in content.text
    video_entry = root.findall(f"{atom}entry")[1]
    links = video_entry.findall(f"{atom}link")
    assert [ln.get("rel") for ln in links] == [None, "enclosure"]  # one alternate, one enclosure
    enclosure = links[1]
    rel = enclosure.get("href").removeprefix(PUBLIC_URL)
    assert enclosure.get("type") == "video/mp4" and int(enclosure.get("length")) == os.path.getsize(site / rel)


def test_feeds_are_reproducible(lib: MediaLibrary, site: Path, tmp_path: Path) -> None:
    publish_three(lib, site)
    before = snapshot(site)
    rss, atom = (site / "feed.xml").read_bytes(), (site / "atom.xml").read_bytes()
    publish_three(lib, site)
    assert snapshot(site) == before  # nothing rewritten
    # the same items published in another order, into another site, give the same bytes
    other = tmp_path / "www2"
    ch = RssChannel()
    account = site_account(other, channel="rss")
    for story_id, day, images, video, author in ((3, 2, 0, False, ""), (1, 0, 2, False, "融媒体中心记者 王芳"),
                                                 (2, 1, 1, True, "融媒体中心记者 王芳")):
        publish_story(ch, lib, account, story_id, day=day, images=images, video=video, author=author)
    assert (other / "feed.xml").read_bytes() == rss
    assert (other / "atom.xml").read_bytes() == atom


def test_feed_max_items_and_retract(lib: MediaLibrary, site: Path) -> None:
    published = publish_three(lib, site, feed_max_items=2)
    account = site_account(site, channel="rss", feed_max_items=2)
    parsed = feedparser.parse((site / "feed.xml").read_bytes())
    assert [e.link for e in parsed.entries] == [PUBLIC_URL + "stories/3/", PUBLIC_URL + "stories/2/"]
    ch = RssChannel()
    post3, receipt3 = published[2]
    assert ch.reconcile(post3, account) == receipt3
    ch.retract(receipt3, account)
    assert ch.reconcile(post3, account) is None
    parsed = feedparser.parse((site / "feed.xml").read_bytes())
    assert [e.link for e in parsed.entries] == [PUBLIC_URL + "stories/2/", PUBLIC_URL + "stories/1/"]
    for _, receipt in published[:2]:
        ch.retract(receipt, account)
    raw = (site / "feed.xml").read_bytes()
    assert feedparser.parse(raw).bozo == 0 and b"<item>" not in raw
    # an emptied feed keeps a reproducible date: the newest release it ever carried
    assert b"<lastBuildDate>Tue, 24 Nov 2026 08:00:00 +0800</lastBuildDate>" in raw
    with pytest.raises(PermanentChannelError):
        ch.retract(Receipt(remote_id="story-1"), account)


def test_public_url_change_rewrites_absolute_urls(lib: MediaLibrary, site: Path) -> None:
    publish_three(lib, site)
    ch = RssChannel()
    account = site_account(site, channel="rss", public_url="https://news.example.cn/")
    publish_story(ch, lib, account, 3, day=2, images=0, author="")
    raw = (site / "feed.xml").read_text(encoding="utf-8")
    assert PUBLIC_URL not in raw and raw.count("https://news.example.cn/stories/") >= 6


def test_old_version_does_not_replace_item(lib: MediaLibrary, site: Path) -> None:
    ch = RssChannel()
    account = site_account(site, channel="rss")
    publish_story(ch, lib, account, 4, version=2, title="第二版")
    with pytest.raises(PermanentChannelError, match="older"):
        publish_story(ch, lib, account, 4, version=1, title="第一版")
    assert "第二版" in (site / "feed.xml").read_text(encoding="utf-8")


def test_cdata_terminator_in_content_is_safe(lib: MediaLibrary, site: Path) -> None:
    ch = RssChannel()
    account = site_account(site, channel="rss")
    publish_story(ch, lib, account, 5, images=0, body='<abbr title="]]>">缩写</abbr> 与 ]]> 文字')
    parsed = feedparser.parse((site / "feed.xml").read_bytes())
    assert parsed.bozo == 0 and "缩写" in parsed.entries[0].content[0].value


def test_rss_files_use_shared_media_paths(lib: MediaLibrary, site: Path) -> None:
    (post, _), *_ = publish_three(lib, site)
    for pf in post.files:
        assert (site / sitefiles.media_relpath(pf.sha256, sitefiles.ext_for(pf.mime))).is_file()
