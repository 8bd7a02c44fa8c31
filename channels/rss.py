"""RSS 2.0 and Atom feeds of the site, written with feedgen 1.0 (channels.md, RSS/feedgen).

`render` makes one feed item: title, site-relative link `stories/<id>/`, summary, sanitized
`content_html` whose image and video URLs are site-relative, categories, and an enclosure
(the story's web_video rendition, else the cover's feed_image) with its real byte length.
`publish` copies the files into the site's content-addressed media paths, upserts the item
into `_data/rss.json` and regenerates `feed.xml` (RSS 2.0) and `atom.xml` from that manifest
with absolute URLs made from the account's public_url.

What validators check and feedgen gets wrong by default (channels.md): guid must be a full
URL with isPermaLink="true" (`guid(url, permalink=True)`; `id()` would write "false");
`enclosure()` without a length writes length="None"; lastBuildDate/updated default to "now",
so they are set to the newest item's date and the output is byte-identical for the same
items; pubDate is RFC 822 with a 4-digit year and a numeric zone (+0800, Asia/Shanghai).
RSS content:encoded is CDATA; Atom content is type="html" (feedgen would write the invalid
type="CDATA" there). feedgen formats dates inside `locale.setlocale(LC_ALL, 'C')`, which is
process-wide, so feed generation holds a module lock (the publish pool runs threads).

Settings: site_dir, public_url (required); site_title, site_description, feed_max_items
(default 50; the manifest keeps the newest max(4 × that, 200) items so a retraction can
bring an older one back into the feed).
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timezone
from typing import Any, ClassVar, Mapping
from zoneinfo import ZoneInfo

from channels import sitefiles
from channels.base import (
    AccountData,
    Channel,
    MediaItem,
    PermanentChannelError,
    Post,
    Receipt,
    RenderError,
    RenditionSet,
    StoryData,
)
from channels.text import absolutize_html, markdown_to_safe_html, sanitize_html, summarize

SHANGHAI = ZoneInfo("Asia/Shanghai")
MANIFEST = "rss"
MANIFEST_FORMAT = 1
RSS_PATH = "feed.xml"
ATOM_PATH = "atom.xml"
GENERATOR = "Fanout"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_REMOTE_ID = re.compile(r"^rss-([1-9][0-9]{0,17})$")
_FEED_LOCK = threading.Lock()


class RssChannel(Channel):
    """The site's RSS 2.0 feed (feed.xml) and Atom feed (atom.xml)."""

    name: ClassVar[str] = "rss"
    title_zh: ClassVar[str] = "RSS 订阅"
    short_zh: ClassVar[str] = "RSS"
    title_max: ClassVar[int | None] = 128
    body_max: ClassVar[int | None] = 100_000  # characters of Markdown
    summary_max: ClassVar[int] = 200  # characters of an automatic <description>
    length_rule: ClassVar[str] = "chars"
    max_images: ClassVar[int | None] = 60
    image_profiles: ClassVar[tuple[str, ...]] = ("feed_image",)
    video_profiles: ClassVar[tuple[str, ...]] = ("web_video",)
    accepted_types: ClassVar[tuple[str, ...]] = ("image/jpeg", "image/png", "image/webp", "video/mp4")
    min_seconds_between_requests: ClassVar[float] = 0.0
    supports_live: ClassVar[bool] = True
    supports_retract: ClassVar[bool] = True
    default_max_items: ClassVar[int] = 50

    # ------------------------------------------------------------------ render

    def render(self, story: StoryData, renditions: RenditionSet) -> Post:
        title = sitefiles.check_story(story, title_max=self.title_max, body_max=self.body_max,
                                      where="the feed")
        files = sitefiles.PostFiles()
        add = files.add

        images = sitefiles.story_images(story, self.max_images, "the feed")
        videos = [m for m in story.media if m.kind == "video"]

        # The enclosure first, so its file keeps the "enclosure" role.
        enclosure = None
        enclosure_rendition = None
        if videos:
            enclosure_rendition = renditions.get(videos[0].sha256, {}).get("web_video")
            if enclosure_rendition is None:
                raise RenderError(f"video {videos[0].sha256[:12]} has no web_video rendition")
        elif images and images[0].role == "cover":
            enclosure_rendition = renditions.get(images[0].sha256, {}).get("feed_image")
        if enclosure_rendition is not None:
            enclosure = {"url": add("enclosure", enclosure_rendition), "length": int(enclosure_rendition.bytes),
                         "type": enclosure_rendition.mime}
            if enclosure["length"] <= 0:
                raise RenderError(f"enclosure {enclosure_rendition.profile} has no byte length")

        figures = [self._figure(m, renditions, add) for m in images]
        lead = figures[:1] if images and images[0].role == "cover" else []
        gallery = figures[len(lead):]
        video_links = []
        for m in videos:
            rendition = renditions.get(m.sha256, {}).get("web_video")
            if rendition is None:
                raise RenderError(f"video {m.sha256[:12]} has no web_video rendition")
            video_links.append({"src": add("video", rendition), "caption": (m.caption or m.alt or "").strip()})

        body_html = markdown_to_safe_html(story.body_markdown or "")
        content = sitefiles.template_env().get_template("rss/content.html").render({
            "label": (story.label or "").strip(),
            "lead_images": lead,
            "gallery": gallery,
            "videos": video_links,
            "body_html": body_html,
        })
        content_html = sanitize_html(content).strip()
        summary = " ".join((story.summary or "").split()) or summarize(story.body_markdown or "", self.summary_max)
        categories: list[str] = []
        for term in (story.theme, *story.tags):
            term = " ".join((term or "").split())
            if term and term not in categories:
                categories.append(term)
        fields = {
            "title": title,
            "label": (story.label or "").strip(),
            "link": f"stories/{story.story_id}/",
            "summary": summary,
            "content_html": content_html,
            "release_at": story.release_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
            "author": (story.author or "").strip(),
            "categories": categories,
            "enclosure": enclosure,
        }
        return Post(channel=self.name, story_id=story.story_id, version=story.version,
                    fields=fields, files=files.files())

    @staticmethod
    def _figure(item: MediaItem, renditions: RenditionSet, add) -> dict[str, Any]:
        rendition = renditions.get(item.sha256, {}).get("feed_image")
        if rendition is None:
            raise RenderError(f"{item.role} image {item.sha256[:12]} has no feed_image rendition")
        return {"src": add(item.role, rendition), "alt": (item.alt or "").strip(),
                "caption": (item.caption or "").strip(), "width": rendition.width, "height": rendition.height}

    # ------------------------------------------------------------------ publish

    def publish(self, post: Post, account: AccountData) -> Receipt:
        site = sitefiles.site_settings(account)
        max_items = sitefiles.int_setting(account, "feed_max_items", self.default_max_items, high=1000)
        sitefiles.check_post(post, self.name, ("title", "link", "content_html", "release_at"))
        link = post.fields["link"]
        if link != f"stories/{post.story_id}/":
            raise PermanentChannelError(f"post link {link!r} does not belong to story {post.story_id}")
        content_hash = post.content_hash()
        with sitefiles.site_lock(site.dir):
            for f in post.files:
                sitefiles.copy_media(site.dir, f.path, f.sha256, sitefiles.ext_for(f.mime, f.key))
            manifest = _load(site)
            items = manifest["items"]
            current = items.get(str(post.story_id))
            if current and int(current.get("version", 0)) > post.version:
                raise PermanentChannelError(
                    f"story {post.story_id} version {post.version} is older than the item in the feed "
                    f"(version {current['version']}); not replacing it")
            items[str(post.story_id)] = {
                "title": post.fields["title"],
                "link": link,
                "summary": post.fields.get("summary", ""),
                "content_html": post.fields["content_html"],
                "release_at": post.fields["release_at"],
                "author": post.fields.get("author", ""),
                "categories": list(post.fields.get("categories", ())),
                "enclosure": post.fields.get("enclosure"),
                "version": post.version,
                "content_hash": content_hash,
            }
            _note_newest(manifest)
            _prune(manifest, keep=max(4 * max_items, 200))
            sitefiles.save_manifest(site.dir, MANIFEST, manifest)
            write_feeds(site, manifest, max_items)
        return Receipt(remote_id=f"rss-{post.story_id}", url=site.absolute(link),
                       extra={"content_hash": content_hash})

    def reconcile(self, post: Post, account: AccountData) -> Receipt | None:
        site = sitefiles.site_settings(account)
        entry = _load(site)["items"].get(str(post.story_id))
        if not entry or entry.get("content_hash") != post.content_hash():
            return None
        return Receipt(remote_id=f"rss-{post.story_id}", url=site.absolute(entry["link"]),
                       extra={"content_hash": entry["content_hash"]})

    def retract(self, receipt: Receipt, account: AccountData) -> None:
        site = sitefiles.site_settings(account)
        max_items = sitefiles.int_setting(account, "feed_max_items", self.default_max_items, high=1000)
        match = _REMOTE_ID.match(receipt.remote_id or "")
        if not match:
            raise PermanentChannelError(f"not an rss receipt: {receipt.remote_id!r}")
        with sitefiles.site_lock(site.dir):
            manifest = _load(site)
            manifest["items"].pop(match.group(1), None)
            sitefiles.save_manifest(site.dir, MANIFEST, manifest)
            write_feeds(site, manifest, max_items)


# ----------------------------------------------------------------------------- feeds


def _load(site: sitefiles.SiteSettings) -> dict[str, Any]:
    manifest = sitefiles.load_manifest(site.dir, MANIFEST)
    manifest.setdefault("format", MANIFEST_FORMAT)
    items = manifest.setdefault("items", {})
    if not isinstance(items, dict):
        raise PermanentChannelError("manifest _data/rss.json has no items object")
    return manifest


def _note_newest(manifest: dict[str, Any]) -> None:
    """Remember the newest release ever fed: the `updated` of a feed emptied by retractions."""
    dates = [i["release_at"] for i in manifest["items"].values()]
    if manifest.get("newest_release_at"):
        dates.append(manifest["newest_release_at"])
    if dates:
        manifest["newest_release_at"] = max(dates, key=datetime.fromisoformat)


def _order(items: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    return sorted(items.items(), key=lambda kv: (datetime.fromisoformat(kv[1]["release_at"]), int(kv[0])),
                  reverse=True)


def _prune(manifest: dict[str, Any], keep: int) -> None:
    ordered = _order(manifest["items"])
    for story_id, _ in ordered[keep:]:
        del manifest["items"][story_id]


def _generator(site: sitefiles.SiteSettings, kind: str, updated: datetime):
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    self_path, self_type = (RSS_PATH, "application/rss+xml") if kind == "rss" else (ATOM_PATH, "application/atom+xml")
    fg.id(site.public_url)
    fg.title(site.title)
    fg.description(site.description)
    fg.author({"name": site.title})
    # feedgen uses the *last* feed link as the RSS <link>: self first, alternate last.
    fg.link(href=site.absolute(self_path), rel="self", type=self_type)
    fg.link(href=site.public_url, rel="alternate", type="text/html")
    fg.language("zh-CN")
    fg.generator(GENERATOR)
    fg.updated(updated)
    fg.lastBuildDate(updated)
    if kind == "rss":
        fg.load_extension("dc", atom=False, rss=True)
    return fg


def feed_documents(site: sitefiles.SiteSettings, manifest: Mapping[str, Any], max_items: int) -> dict[str, bytes]:
    """feed.xml and atom.xml for the newest `max_items` items of the manifest."""
    ordered = _order(manifest.get("items", {}))[:max_items]
    if ordered:
        updated = datetime.fromisoformat(ordered[0][1]["release_at"])
    elif manifest.get("newest_release_at"):
        updated = datetime.fromisoformat(manifest["newest_release_at"])
    else:
        updated = EPOCH
    updated = updated.astimezone(SHANGHAI)
    out: dict[str, bytes] = {}
    with _FEED_LOCK:
        for kind, path in (("rss", RSS_PATH), ("atom", ATOM_PATH)):
            fg = _generator(site, kind, updated)
            for _, item in ordered:
                _add_entry(fg, site, item, kind)
            if kind == "rss":
                out[path] = fg.rss_str(pretty=True)
            else:
                out[path] = _atom_with_enclosures(fg.atom_str(pretty=True), site, ordered)
    return out


def _atom_with_enclosures(document: bytes, site: sitefiles.SiteSettings,
                          ordered: list[tuple[str, Mapping[str, Any]]]) -> bytes:
    """Add `<link rel="enclosure" href type length>` to the Atom entries.

    feedgen 1.0's `atom_entry` rebinds its loop variable and drops rel/type/length from
    entry links, so an enclosure would come out as a second bare (alternate) link.
    """
    from lxml import etree

    ns = "http://www.w3.org/2005/Atom"
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(document, parser)
    enclosures = {site.absolute(item["link"]): item.get("enclosure") for _, item in ordered}
    for entry in root.iter(f"{{{ns}}}entry"):
        enclosure = enclosures.get(entry.findtext(f"{{{ns}}}id") or "")
        if enclosure:
            etree.SubElement(entry, f"{{{ns}}}link", rel="enclosure", href=site.absolute(enclosure["url"]),
                             type=enclosure["type"], length=str(int(enclosure["length"])))
    return etree.tostring(root.getroottree(), pretty_print=True, xml_declaration=True, encoding="UTF-8")


def _add_entry(fg, site: sitefiles.SiteSettings, item: Mapping[str, Any], kind: str) -> None:
    link = site.absolute(item["link"])
    when = datetime.fromisoformat(item["release_at"]).astimezone(SHANGHAI)
    fe = fg.add_entry(order="append")
    fe.title(item["title"])
    if kind == "rss":
        fe.link(href=link, rel="alternate", type="text/html")
    else:
        fe.link(href=link)  # a bare Atom link is rel="alternate"; see _atom_with_enclosures
    fe.guid(link, permalink=True)
    if item.get("summary"):
        fe.summary(item["summary"])
    content = absolutize_html(item["content_html"], site.public_url)
    if kind == "rss":
        fe.content(content.replace("]]>", "]]&gt;"), type="CDATA")
    else:
        fe.content(content, type="html")
    fe.published(when)
    fe.updated(when)
    author = item.get("author") or site.title
    if kind == "rss":
        fe.dc.dc_creator(author)
    else:
        fe.author({"name": author})
    for term in item.get("categories") or ():
        fe.category(term=term)
    enclosure = item.get("enclosure")
    if enclosure and kind == "rss":
        length = int(enclosure["length"])
        if length <= 0:
            raise PermanentChannelError(f"enclosure of {item['link']} has no byte length")
        fe.enclosure(site.absolute(enclosure["url"]), str(length), enclosure["type"])


def write_feeds(site: sitefiles.SiteSettings, manifest: Mapping[str, Any], max_items: int) -> int:
    """Write feed.xml and atom.xml where their bytes changed; return how many were written."""
    documents = feed_documents(site, manifest, max_items)
    return sum(sitefiles.atomic_write(sitefiles.site_path(site.dir, rel), data) for rel, data in documents.items())
