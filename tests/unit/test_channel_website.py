"""channels/website.py and channels/sitefiles.py: render, publish, incremental, atomic, safe.

Stories, renditions and accounts are built in memory; rendition files are small real JPEGs
(Pillow) and a few bytes standing in for an MP4, written under tmp_path. The helpers at the
top (`MediaLibrary`, `make_story`, `site_account`) are shared by the RSS and contract tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import re
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels import sitefiles
from channels.base import (
    AccountData,
    MediaItem,
    PermanentChannelError,
    Post,
    Receipt,
    RenderError,
    Rendition,
    StoryData,
    TransientChannelError,
)
from channels.website import WebsiteChannel

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE_TIME = datetime(2026, 11, 22, 8, 0, tzinfo=SHANGHAI)
PUBLIC_URL = "http://127.0.0.1:8000/site/"
LABEL = "黄山市黄山区30项民生实事之基础教育民生实事"
IMAGE_SIZES = {"web_480": (480, 320), "web_960": (960, 640), "web_1440": (1440, 960), "web_thumb": (320, 240),
               "feed_image": (1080, 720), "web_poster": (1280, 720)}


# ----------------------------------------------------------------------------- helpers


def _jpeg(width: int, height: int, seed: str) -> bytes:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a project dependency
        return b"\xff\xd8\xff\xe0" + f"{seed}-{width}x{height}".encode() + b"\xff\xd9"
    colour = tuple(hashlib.sha256(seed.encode()).digest()[:3])
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "JPEG", quality=60)
    return buf.getvalue()


class MediaLibrary:
    """Rendition files on disk, as the media store would hand them to the dispatcher."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.paths: dict[str, str] = {}

    def rendition(self, profile: str, data: bytes, mime: str, width: int | None = None,
                  height: int | None = None, duration: float | None = None) -> Rendition:
        sha = hashlib.sha256(data).hexdigest()
        key = f"renditions/{sha[:2]}/{sha}/{profile}"
        path = self.root / f"{sha}.bin"
        path.write_bytes(data)
        self.paths[key] = str(path)
        return Rendition(profile=profile, key=key, mime=mime, bytes=len(data), sha256=sha,
                         width=width, height=height, duration=duration)

    def image(self, seed: str, role: str = "cover", alt: str = "新校舍外景", caption: str = "",
              profiles: tuple[str, ...] = ("web_480", "web_960", "web_1440", "web_thumb", "feed_image")
              ) -> tuple[MediaItem, dict[str, Rendition]]:
        source = hashlib.sha256(f"source-{seed}".encode()).hexdigest()
        renditions = {}
        for profile in profiles:
            w, h = IMAGE_SIZES[profile]
            renditions[profile] = self.rendition(profile, _jpeg(w, h, f"{seed}-{profile}"), "image/jpeg", w, h)
        item = MediaItem(role=role, sha256=source, kind="image", mime="image/jpeg", alt=alt, caption=caption,
                         width=2880, height=1920)
        return item, renditions

    def video(self, seed: str) -> tuple[MediaItem, dict[str, Rendition]]:
        source = hashlib.sha256(f"video-{seed}".encode()).hexdigest()
        clip = b"\x00\x00\x00\x18ftypmp42" + seed.encode() * 64
        renditions = {
            "web_video": self.rendition("web_video", clip, "video/mp4", 1280, 720, 58.0),
            "web_poster": self.rendition("web_poster", _jpeg(1280, 720, f"{seed}-poster"), "image/jpeg", 1280, 720),
        }
        item = MediaItem(role="video", sha256=source, kind="video", mime="video/mp4", alt="学校宣传片",
                         caption="视频：新学校的一天", duration=58.0)
        return item, renditions


def make_story(lib: MediaLibrary, story_id: int, *, day: int = 0, version: int = 1, title: str | None = None,
               body: str | None = None, images: int = 1, video: bool = False, label: str = LABEL,
               author: str = "融媒体中心记者 王芳") -> tuple[StoryData, dict[str, dict[str, Rendition]]]:
    """A story released `day` days after BASE_TIME with a cover, images-1 gallery images, maybe a video."""
    media: list[MediaItem] = []
    renditions: dict[str, dict[str, Rendition]] = {}
    for i in range(images):
        item, rs = lib.image(f"s{story_id}-img{i}", role="cover" if i == 0 else "image",
                             alt=f"第{i + 1}张图片：学生在新教室上课", caption="摄影：李明" if i == 0 else "")
        media.append(item)
        renditions[item.sha256] = rs
    if video:
        item, rs = lib.video(f"s{story_id}")
        media.append(item)
        renditions[item.sha256] = rs
    story = StoryData(
        story_id=story_id,
        version=version,
        title=title if title is not None else f"黄山区第{story_id}所新建学校投入使用",
        body_markdown=body if body is not None else (
            "今年以来，黄山区*新建*学校3所，新增学位1200个。\n\n"
            "<script>alert('x')</script>\n\n"
            "## 建设进展\n\n"
            "详情见[区教体局网站](https://www.hsq.gov.cn/jtj/)。项目由区教体局负责实施；"
            "目前已全部完工并通过验收。\n"),
        release_at=BASE_TIME + timedelta(days=day),
        summary="",
        tags=("教育", "民生实事"),
        theme="基础教育",
        unit="区教体局",
        label=label,
        author=author,
        media=tuple(media),
    )
    return story, renditions


def site_account(site_dir: Path, channel: str = "website", **settings: object) -> AccountData:
    merged = {"site_dir": str(site_dir), "public_url": PUBLIC_URL, **settings}
    return AccountData(id=1, channel=channel, name=f"{channel}-test", settings=merged)


def publish_story(channel, lib: MediaLibrary, account: AccountData, story_id: int, **kwargs) -> tuple[Post, Receipt]:
    story, renditions = make_story(lib, story_id, **kwargs)
    post = channel.render(story, renditions)
    return post, channel.publish(post.with_paths(lib.paths), account)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Balance(HTMLParser):
    """Checks that every non-void element is closed in order and no attribute repeats."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [a for a, _ in attrs]
        if len(names) != len(set(names)):
            self.errors.append(f"repeated attribute in <{tag}>")
        if tag == "img" and "alt" not in names:
            self.errors.append("<img> without alt")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag for void element </{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def assert_well_formed(document: str) -> None:
    checker = _Balance()
    checker.feed(document)
    checker.close()
    assert checker.doctype, "missing <!DOCTYPE html>"
    assert not checker.errors, checker.errors
    assert not checker.stack, f"unclosed: {checker.stack}"


def snapshot(site: Path) -> dict[str, tuple[int, int]]:
    """mtime_ns and inode of every file of the site (the lock file excluded)."""
    out = {}
    for path in sorted(site.rglob("*")):
        if path.is_file() and path.name != sitefiles.LOCK_NAME:
            st = path.stat()
            out[str(path.relative_to(site))] = (st.st_mtime_ns, st.st_ino)
    return out


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    return tmp_path / "www"


# ----------------------------------------------------------------------------- render


def test_render_story_page(lib: MediaLibrary, tmp_path: Path) -> None:
    story, renditions = make_story(lib, 7, images=3, video=True)
    post = WebsiteChannel().render(story, renditions)
    page = post.fields["page_html"]

    assert post.channel == "website" and post.story_id == 7
    assert '<html lang="zh-CN">' in page and '<meta charset="utf-8">' in page and 'name="viewport"' in page
    # the campaign label sits at the top of the article, before the title
    assert page.index(f'<p class="story-label">{LABEL}</p>') < page.index('<h1 class="story-title">')
    assert "<h1 class=\"story-title\">黄山区第7所新建学校投入使用</h1>" in page
    # responsive images: three widths, sizes, intrinsic size, alt text; only the first is eager
    imgs = re.findall(r"<img [^>]*>", page)
    assert len(imgs) == 3
    for img in imgs:
        assert re.search(r'srcset="[^"]* 480w, [^"]* 960w, [^"]* 1440w"', img), img
        assert 'sizes="' in img and 'width="960"' in img and 'height="640"' in img
        assert 'alt="第' in img
    assert "loading=" not in imgs[0] and all('loading="lazy"' in img for img in imgs[1:])
    cover_960 = renditions[story.media[0].sha256]["web_960"]
    assert f'src="../../media/{cover_960.sha256[:2]}/{cover_960.sha256}.jpg"' in imgs[0]
    assert "<figcaption>摄影：李明</figcaption>" in page
    # video with its poster, both content addressed
    video = renditions[story.media[-1].sha256]
    assert re.search(r'<video controls preload="metadata"[^>]* poster="../../media/%s/%s\.jpg"'
                     % (video["web_poster"].sha256[:2], video["web_poster"].sha256), page)
    assert f'<source src="../../media/{video["web_video"].sha256[:2]}/{video["web_video"].sha256}.mp4" type="video/mp4">' in page
    # the editor's script is gone, the rest of the body is there
    assert "<script" not in page and "alert(" not in page
    assert "<em>新建</em>" in page and 'rel="noopener noreferrer"' in page
    # only relative URLs inside the site, no filesystem paths
    assert str(tmp_path) not in page and "file:" not in page
    assert not re.search(r'(?:src|href|poster|srcset)="/', page)
    for url in re.findall(r'(?:src|href|poster)="([^"]+)"', page):
        assert url.startswith(("../../", "https://")), url
    assert "2026年11月22日 08:00" in page
    assert_well_formed(page)


def test_render_fields_and_files(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 8, images=2, video=True)
    post = WebsiteChannel().render(story, renditions)
    f = post.fields
    assert f["title"] == story.title and f["label"] == LABEL and f["theme"] == "基础教育" and f["unit"] == "区教体局"
    assert f["tags"] == ["教育", "民生实事"]
    assert f["release_at"] == "2026-11-22T08:00:00+08:00"
    assert f["summary"] == ("今年以来，黄山区新建学校3所，新增学位1200个。"
                            "详情见区教体局网站。项目由区教体局负责实施；目前已全部完工并通过验收。")
    assert "<script" not in f["body_html"]
    assert f["card"]["date_zh"] == "2026年11月22日" and f["card"]["url"] == "stories/8/"
    assert f["card"]["thumb"]["src"].startswith("media/")
    # every file is a rendition: its key and sha256, one PostFile per key
    all_renditions = {r.key: r for rs in renditions.values() for r in rs.values()}
    keys = [pf.key for pf in post.files]
    assert len(keys) == len(set(keys))
    for pf in post.files:
        r = all_renditions[pf.key]
        assert (pf.sha256, pf.bytes, pf.mime, pf.width) == (r.sha256, r.bytes, r.mime, r.width)
        assert pf.path is None
    roles = {pf.role for pf in post.files}
    assert {"cover", "image", "video", "poster", "thumb"} <= roles
    # feed-only renditions are not part of the website post
    assert not any(pf.key.endswith("/feed_image") for pf in post.files)


def test_render_is_deterministic_and_pure(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 9, images=2, video=True)
    first = WebsiteChannel().render(story, renditions)
    for path in lib.paths.values():  # render never reads the files
        os.unlink(path)
    second = WebsiteChannel().render(replace(story), {k: dict(v) for k, v in renditions.items()})
    assert first.content_hash() == second.content_hash()
    assert first == second
    changed = WebsiteChannel().render(replace(story, title=story.title + "（更新）"), renditions)
    assert changed.content_hash() != first.content_hash()


def test_summary_from_story_wins(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 10)
    post = WebsiteChannel().render(replace(story, summary="编辑写的摘要。"), renditions)
    assert post.fields["summary"] == "编辑写的摘要。"
    assert 'content="编辑写的摘要。"' in post.fields["page_html"]


def test_story_without_cover_leads_with_first_image(lib: MediaLibrary) -> None:
    item, rs = lib.image("nocover", role="image", alt="现场")
    story, _ = make_story(lib, 11, images=0)
    post = WebsiteChannel().render(replace(story, media=(item,)), {item.sha256: rs})
    page = post.fields["page_html"]
    assert 'alt="现场"' in page and "loading=" not in re.search(r"<img [^>]*>", page).group(0)


RENDER_ERROR_ROWS = [
    ("empty-title", {"title": ""}, "title is empty"),
    ("blank-title", {"title": " \u3000 "}, "title is empty"),
    ("title-65", {"title": "题" * 65}, "at most 64"),
    ("naive-release", {"release_at": datetime(2026, 11, 22, 8, 0)}, "timezone-aware"),
    ("body-too-long", {"body_markdown": "字" * 100_001}, "at most 100000"),
]


@pytest.mark.parametrize("change, message", [r[1:] for r in RENDER_ERROR_ROWS], ids=[r[0] for r in RENDER_ERROR_ROWS])
def test_render_errors(lib: MediaLibrary, change: dict, message: str) -> None:
    story, renditions = make_story(lib, 12)
    with pytest.raises(RenderError, match=message):
        WebsiteChannel().render(replace(story, **change), renditions)


def test_title_of_exactly_64_renders(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 13, title="题" * 64)
    assert WebsiteChannel().render(story, renditions).fields["title"] == "题" * 64


def test_image_without_web_renditions_is_refused(lib: MediaLibrary) -> None:
    item, rs = lib.image("bare", profiles=("feed_image",))
    story, _ = make_story(lib, 14, images=0)
    with pytest.raises(RenderError, match="no web rendition"):
        WebsiteChannel().render(replace(story, media=(item,)), {item.sha256: rs})


def test_title_is_escaped(lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 15, title='<img src=x onerror=alert(1)>"标题"', label="<b>标签</b>")
    page = WebsiteChannel().render(story, renditions).fields["page_html"]
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;标签&lt;/b&gt;" in page


# ----------------------------------------------------------------------------- path safety

UNSAFE_KEY_ROWS = [
    ("dotdot", {"key": "../../etc/passwd"}),
    ("dotdot-middle", {"key": "renditions/../../../secret"}),
    ("absolute", {"key": "/etc/passwd"}),
    ("nul", {"key": "renditions/a\x00b"}),
    ("backslash", {"key": "..\\..\\win.ini"}),
    ("sha-not-hex", {"sha256": "../" + "a" * 61}),
    ("sha-short", {"sha256": "abc"}),
    ("html-mime", {"mime": "text/html", "key": "renditions/page.html"}),
]


@pytest.mark.parametrize("change", [r[1] for r in UNSAFE_KEY_ROWS], ids=[r[0] for r in UNSAFE_KEY_ROWS])
def test_unsafe_rendition_is_refused(lib: MediaLibrary, change: dict) -> None:
    story, renditions = make_story(lib, 16)
    cover = story.media[0].sha256
    bad = dict(renditions[cover])
    bad["web_960"] = replace(bad["web_960"], **change)
    with pytest.raises(RenderError, match="refusing rendition"):
        WebsiteChannel().render(story, {cover: bad})


SITE_PATH_ROWS = [
    ("../outside.html", False), ("stories/../../outside", False), ("/etc/passwd", False),
    ("stories/1/\x00.html", False), ("C:/x", False), ("stories\\1", False), ("./index.html", False),
    ("", False), ("stories/1/index.html", True), ("media/ab/" + "ab" * 32 + ".jpg", True),
]


@pytest.mark.parametrize("rel, ok", SITE_PATH_ROWS, ids=[repr(r[0]) for r in SITE_PATH_ROWS])
def test_site_path_confinement(site: Path, rel: str, ok: bool) -> None:
    if ok:
        assert site.resolve() in sitefiles.site_path(site, rel).parents
    else:
        with pytest.raises(sitefiles.UnsafePathError):
            sitefiles.site_path(site, rel)


def test_tampered_post_path_is_refused(lib: MediaLibrary, site: Path, tmp_path: Path) -> None:
    story, renditions = make_story(lib, 17)
    post = WebsiteChannel().render(story, renditions)
    evil = replace(post, fields={**post.fields, "path": "../../outside.html"})
    with pytest.raises(PermanentChannelError):
        WebsiteChannel().publish(evil.with_paths(lib.paths), site_account(site))
    assert not (tmp_path / "outside.html").exists()
    other = replace(post, fields={**post.fields, "path": "stories/99/index.html"})
    with pytest.raises(PermanentChannelError, match="does not belong"):
        WebsiteChannel().publish(other.with_paths(lib.paths), site_account(site))


def test_copy_media_verifies_hash_and_is_idempotent(site: Path, tmp_path: Path) -> None:
    src = tmp_path / "clip.bin"
    src.write_bytes(b"real bytes")
    sha = hashlib.sha256(b"real bytes").hexdigest()
    with pytest.raises(PermanentChannelError, match="expected"):
        sitefiles.copy_media(site, src, "0" * 64, "mp4")
    assert not list(site.rglob("*.mp4")) and not list(site.rglob("*.tmp"))
    rel = sitefiles.copy_media(site, src, sha, "mp4")
    assert rel == f"media/{sha[:2]}/{sha}.mp4"
    dest = site / rel
    assert dest.read_bytes() == b"real bytes" and (dest.stat().st_mode & 0o777) == 0o644
    before = dest.stat().st_mtime_ns
    assert sitefiles.copy_media(site, src, sha, "mp4") == rel
    assert dest.stat().st_mtime_ns == before
    with pytest.raises(sitefiles.UnsafePathError):
        sitefiles.copy_media(site, src, sha, "../mp4")


def test_atomic_write_incremental(site: Path) -> None:
    target = site / "a" / "page.html"
    assert sitefiles.atomic_write(target, "第一版") is True
    inode = target.stat().st_ino
    assert sitefiles.atomic_write(target, "第一版".encode()) is False
    assert target.stat().st_ino == inode
    assert sitefiles.atomic_write(target, "第二版") is True
    assert target.read_text(encoding="utf-8") == "第二版"
    assert target.stat().st_ino != inode  # replaced, not rewritten in place
    assert [p.name for p in target.parent.iterdir()] == ["page.html"]  # no temp file left


def test_site_lock_excludes_other_holders(site: Path) -> None:
    entered = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with sitefiles.site_lock(site):
            entered.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert entered.wait(5)
        with pytest.raises(TransientChannelError, match="locked"):
            with sitefiles.site_lock(site, timeout=0.2):
                pass
    finally:
        release.set()
        t.join()
    with sitefiles.site_lock(site, timeout=1):  # free again
        pass


# ----------------------------------------------------------------------------- publish


def test_publish_writes_page_media_index_manifest(lib: MediaLibrary, site: Path) -> None:
    ch = WebsiteChannel()
    account = site_account(site, site_title="黄山区融媒体中心", icp_beian="皖ICP备00000000号")
    post, receipt = publish_story(ch, lib, account, 21, images=2, video=True)

    assert receipt == Receipt(remote_id="story-21", url=PUBLIC_URL + "stories/21/",
                              extra={"path": "stories/21/index.html", "content_hash": post.content_hash()})
    page = (site / "stories/21/index.html").read_text(encoding="utf-8")
    assert "黄山区融媒体中心" in page and LABEL in page and "<script" not in page
    assert post.fields["article_html"] in page  # the reviewed article, only the site shell differs
    assert_well_formed(page)
    for pf in post.files:
        dest = site / f"media/{pf.sha256[:2]}/{pf.sha256}.{sitefiles.ext_for(pf.mime)}"
        assert dest.read_bytes() == Path(lib.paths[pf.key]).read_bytes()
        assert (dest.stat().st_mode & 0o777) == 0o644
    # every page URL points at a file that exists
    for url in re.findall(r'(?:src|href|poster)="\.\./\.\./([^"?#]+)', page):
        assert (site / url).exists() or (site / url / "index.html").exists(), url
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="./stories/21/"' in index and "2026年11月22日" in index and "皖ICP备00000000号" in index
    assert_well_formed(index)
    css = (site / "assets/site.css").read_text(encoding="utf-8")
    assert '"PingFang SC"' in css and "text-emphasis: filled dot" in css
    manifest = json.loads((site / "_data/website.json").read_text(encoding="utf-8"))
    entry = manifest["stories"]["21"]
    assert entry["content_hash"] == post.content_hash() and entry["version"] == 1
    assert entry["label"] == LABEL and entry["url"] == "stories/21/" and entry["thumb"]["src"].startswith("media/")
    assert not list(site.rglob("*.tmp"))


def test_republish_unchanged_writes_nothing(lib: MediaLibrary, site: Path) -> None:
    ch = WebsiteChannel()
    account = site_account(site)
    story, renditions = make_story(lib, 22, images=2, video=True)
    post = ch.render(story, renditions).with_paths(lib.paths)
    first = ch.publish(post, account)
    before = snapshot(site)
    assert len(before) >= 9
    again = ch.publish(ch.render(story, renditions).with_paths(lib.paths), account)
    assert again == first
    assert snapshot(site) == before


def test_index_newest_first_and_updates(lib: MediaLibrary, site: Path) -> None:
    ch = WebsiteChannel()
    account = site_account(site)
    publish_story(ch, lib, account, 31, day=0)
    index_one = (site / "index.html").read_bytes()
    publish_story(ch, lib, account, 32, day=2)
    publish_story(ch, lib, account, 33, day=1)
    index = (site / "index.html").read_text(encoding="utf-8")
    assert index.encode() != index_one
    order = re.findall(r'href="\./stories/(\d+)/"', index)
    assert order == ["32", "33", "31"]
    dates = re.findall(r"<time [^>]*>([^<]+)</time>", index)
    assert dates == ["2026年11月24日", "2026年11月23日", "2026年11月22日"]
    # the first story's page was not rewritten by the later publishes
    page31 = site / "stories/31/index.html"
    mtime = page31.stat().st_mtime_ns
    publish_story(ch, lib, account, 34, day=3)
    assert page31.stat().st_mtime_ns == mtime


def test_new_version_replaces_page_and_old_version_is_refused(lib: MediaLibrary, site: Path) -> None:
    ch = WebsiteChannel()
    account = site_account(site)
    publish_story(ch, lib, account, 41, version=1, title="初版标题")
    publish_story(ch, lib, account, 41, version=2, title="修订后的标题")
    page = (site / "stories/41/index.html").read_text(encoding="utf-8")
    assert "修订后的标题" in page and "初版标题" not in page
    index = (site / "index.html").read_text(encoding="utf-8")
    assert index.count('href="./stories/41/"') == 1 and "修订后的标题" in index
    with pytest.raises(PermanentChannelError, match="older"):
        publish_story(ch, lib, account, 41, version=1, title="初版标题")
    assert "修订后的标题" in (site / "stories/41/index.html").read_text(encoding="utf-8")


def test_reconcile_and_retract(lib: MediaLibrary, site: Path) -> None:
    ch = WebsiteChannel()
    account = site_account(site)
    post, receipt = publish_story(ch, lib, account, 51)
    _, _ = publish_story(ch, lib, account, 52, day=1)
    assert ch.reconcile(post, account) == receipt
    story, renditions = make_story(lib, 51, version=2, title="另一版本")
    assert ch.reconcile(ch.render(story, renditions), account) is None

    media_before = sorted(p for p in site.rglob("media/**/*") if p.is_file())
    ch.retract(receipt, account)
    assert not (site / "stories/51").exists()
    assert (site / "stories/52/index.html").exists()
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "stories/51/" not in index and "stories/52/" in index
    assert "51" not in json.loads((site / "_data/website.json").read_text(encoding="utf-8"))["stories"]
    assert ch.reconcile(post, account) is None
    assert sorted(p for p in site.rglob("media/**/*") if p.is_file()) == media_before
    ch.retract(receipt, account)  # retracting twice is harmless
    with pytest.raises(PermanentChannelError):
        ch.retract(Receipt(remote_id="rss-52"), account)


def test_index_pagination_is_stable_and_incremental(lib: MediaLibrary, site: Path) -> None:
    ch = WebsiteChannel()
    account = site_account(site, index_page_size=2)
    receipts = [publish_story(ch, lib, account, 60 + i, day=i, images=0)[1] for i in range(5)]

    def cards(rel: str) -> list[str]:
        return re.findall(r'href="(?:\./|\.\./\.\./)stories/(\d+)/"', (site / rel).read_text(encoding="utf-8"))

    assert cards("index.html") == ["64", "63"]
    # archive pages are numbered from the oldest, newest first within a page
    assert [cards(f"page/{k}/index.html") for k in (1, 2, 3)] == [["61", "60"], ["63", "62"], ["64"]]
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'rel="next" href="./page/2/"' in index and 'rel="prev"' not in index
    page3 = (site / "page/3/index.html").read_text(encoding="utf-8")
    assert 'rel="prev" href="../../"' in page3 and 'rel="next" href="../../page/2/"' in page3
    page1 = (site / "page/1/index.html").read_text(encoding="utf-8")
    assert 'rel="prev" href="../../page/2/"' in page1 and 'rel="next"' not in page1
    assert_well_formed(page3)

    before = snapshot(site)
    publish_story(ch, lib, account, 65, day=5, images=0)
    after = snapshot(site)
    changed = sorted(rel for rel in after if before.get(rel) != after[rel])
    assert changed == ["_data/website.json", "index.html", "page/3/index.html", "stories/65/index.html"]
    assert cards("page/3/index.html") == ["65", "64"]

    for receipt in receipts[:3]:
        ch.retract(receipt, account)
    assert [cards(f"page/{k}/index.html") for k in (1, 2)] == [["64", "63"], ["65"]]
    assert not (site / "page/3").exists()


MISSING_SETTINGS_ROWS = [
    ("no-site-dir", {"public_url": PUBLIC_URL}, "site_dir"),
    ("no-public-url", {"site_dir": "/tmp/x"}, "public_url"),
    ("relative-site-dir", {"site_dir": "www", "public_url": PUBLIC_URL}, "absolute"),
    ("bad-public-url", {"site_dir": "/tmp/x", "public_url": "ftp://x/"}, "public_url"),
    ("bad-page-size", {"site_dir": "/tmp/x", "public_url": PUBLIC_URL, "index_page_size": "many"}, "index_page_size"),
]


@pytest.mark.parametrize("settings, message", [r[1:] for r in MISSING_SETTINGS_ROWS], ids=[r[0] for r in MISSING_SETTINGS_ROWS])
def test_publish_with_bad_settings_raises(lib: MediaLibrary, settings: dict, message: str) -> None:
    story, renditions = make_story(lib, 70)
    post = WebsiteChannel().render(story, renditions).with_paths(lib.paths)
    account = AccountData(id=1, channel="website", name="w", settings=settings)
    with pytest.raises(PermanentChannelError, match=message):
        WebsiteChannel().publish(post, account)


def test_publish_without_file_paths_raises(lib: MediaLibrary, site: Path) -> None:
    story, renditions = make_story(lib, 71)
    post = WebsiteChannel().render(story, renditions)  # paths not filled in
    with pytest.raises(PermanentChannelError, match="no local path"):
        WebsiteChannel().publish(post, site_account(site))
    assert not (site / "stories").exists()


# ----------------------------------------------------------------------------- concurrency


def _publish_many(site_dir: str, store: str, first_id: int, count: int, barrier) -> None:
    lib = MediaLibrary(Path(store))
    ch = WebsiteChannel()
    account = site_account(Path(site_dir), index_page_size=500)
    posts = []
    for story_id in range(first_id, first_id + count):  # render first: publishes then overlap
        story, renditions = make_story(lib, story_id, day=story_id % 7, images=1 if story_id % 5 == 0 else 0)
        posts.append(ch.render(story, renditions).with_paths(lib.paths))
    barrier.wait(30)
    for post in posts:
        ch.publish(post, account)


def test_two_processes_publishing_keep_a_valid_manifest(site: Path, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    count = 15
    procs = [ctx.Process(target=_publish_many,
                         args=(str(site), str(tmp_path / f"store{n}"), 100 + 50 * n, count, barrier))
             for n in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    manifest = json.loads((site / "_data/website.json").read_text(encoding="utf-8"))
    expected = {str(i) for i in (*range(100, 100 + count), *range(150, 150 + count))}
    assert set(manifest["stories"]) == expected
    index = (site / "index.html").read_text(encoding="utf-8")
    assert set(re.findall(r'href="\./stories/(\d+)/"', index)) == expected
    assert not list(site.rglob("*.tmp"))


def test_reader_never_sees_a_partial_page(lib: MediaLibrary, site: Path) -> None:
    ch = WebsiteChannel()
    account = site_account(site)
    long_a = "\n\n".join(f"第{i}段：甲版本的正文内容，用来让页面足够大。" * 20 for i in range(200))
    long_b = "\n\n".join(f"第{i}段：乙版本。" * 30 for i in range(200))
    valid = set()
    for version, body in ((1, long_a), (2, long_b)):
        story, renditions = make_story(lib, 80, version=version, body=body)
        post = ch.render(story, renditions)
        ch.publish(post.with_paths(lib.paths), account)
        valid.add((site / "stories/80/index.html").read_bytes())
    assert len(valid) == 2 and min(len(v) for v in valid) > 100_000

    page = site / "stories/80/index.html"
    posts = []
    for version in range(3, 15):  # rendered up front: the loop below only rebuilds the site
        story, renditions = make_story(lib, 80, version=version, body=long_a if version % 2 else long_b)
        posts.append(ch.render(story, renditions).with_paths(lib.paths))
    stop = threading.Event()
    seen: list[bytes] = []

    def reader() -> None:
        while not stop.is_set():
            seen.append(page.read_bytes())

    t = threading.Thread(target=reader)
    t.start()
    try:
        for post in posts:
            ch.publish(post, account)
    finally:
        stop.set()
        t.join()
    assert len(seen) > 20
    bad = [len(s) for s in seen if s not in valid]
    assert not bad, f"{len(bad)} partial reads, e.g. {bad[:3]} bytes"


# ----------------------------------------------------------------------------- stylesheet


def test_stylesheet_has_chinese_typography() -> None:
    css, _ = sitefiles.template_asset("website/site.css")
    text = css.decode("utf-8")
    body = re.search(r"\nbody \{([^}]*)\}", text).group(1)
    assert ('"PingFang SC", "Hiragino Sans GB", "Noto Sans CJK SC", "Source Han Sans SC",\n'
            '    "Microsoft YaHei", sans-serif') in text
    assert "line-height: 1.8" in body and "text-autospace: normal" in body
    paragraphs = re.search(r"\.story-body p,[^{]*\{([^}]*)\}", text).group(1)
    for decl in ("text-align: justify", "line-break: strict", "word-break: normal", "overflow-wrap: anywhere"):
        assert decl in paragraphs
    em = re.search(r"\nem \{([^}]*)\}", text).group(1)
    for decl in ("font-style: normal", "text-emphasis: filled dot", "text-emphasis-position: under right"):
        assert decl in em
    assert "--measure: 36em" in text
    assert "@import" not in text and "url(" not in text  # nothing fetched from elsewhere
