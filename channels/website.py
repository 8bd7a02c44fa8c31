"""The media center's own website: a static site written into a web root (channels.md, Website).

`render` turns a story into its page (Jinja2 templates in channels/templates/website/, only
site-relative URLs, so one render serves any public URL) plus the data of its index card.
`publish` copies the media into content-addressed paths (`media/<sha[:2]>/<sha>.<ext>`),
writes `stories/<id>/index.html`, records the story in `_data/website.json` and rebuilds the
index pages (`index.html`, archive pages `page/<n>/index.html` numbered from the oldest),
all under the site lock and with atomic, incremental writes (channels/sitefiles.py):
readers never see half a page and unchanged files keep their bytes and mtimes.

Limits are ours, not a platform's: a 64-character title keeps the index and browser tabs
readable; the body and image caps only stop accidents (a pasted book, a folder of photos).
Image widths 480/960/1440 are the web renditions media/profiles.py makes; `IMAGE_SIZES` says
that the article column is at most 36em (~612 px at 17 px) wide.

Settings: site_dir, public_url (required); site_title, site_description, site_footer,
icp_beian, index_page_size (default 20).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
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
    Rendition,
    RenditionSet,
    StoryData,
)
from channels.text import markdown_to_safe_html, summarize

SHANGHAI = ZoneInfo("Asia/Shanghai")
MANIFEST = "website"
MANIFEST_FORMAT = 1
WIDTH_PROFILES = ("web_480", "web_960", "web_1440")
NOMINAL_WIDTHS = {"web_480": 480, "web_960": 960, "web_1440": 1440}
FALLBACK_PROFILE = "web_960"  # the `src` for browsers without srcset
IMAGE_SIZES = "(min-width: 40em) 36em, calc(100vw - 2.5rem)"
STORY_ROOT = "../../"  # from stories/<id>/index.html back to the site root
CSS_ASSET = "website/site.css"
CSS_PATH = "assets/site.css"
_REMOTE_ID = re.compile(r"^story-([1-9][0-9]{0,17})$")


def date_zh(moment: datetime) -> str:
    """2026年11月22日 (the date in Asia/Shanghai, no zero padding)."""
    local = moment.astimezone(SHANGHAI)
    return f"{local.year}年{local.month}月{local.day}日"


def datetime_zh(moment: datetime) -> str:
    """2026年11月22日 08:05 (Asia/Shanghai)."""
    local = moment.astimezone(SHANGHAI)
    return f"{date_zh(local)} {local:%H:%M}"


def story_dir(story_id: int) -> str:
    return f"stories/{int(story_id)}/"


def page_url(page: int) -> str:
    """Site-relative URL of archive page `page` (1 holds the oldest stories)."""
    return f"page/{int(page)}/"


class WebsiteChannel(Channel):
    """Static website: one page per story, an index of cards, newest first."""

    name: ClassVar[str] = "website"
    title_zh: ClassVar[str] = "网站"
    title_max: ClassVar[int | None] = 64
    body_max: ClassVar[int | None] = 100_000  # characters of Markdown
    summary_max: ClassVar[int] = 120  # characters of an automatic summary
    length_rule: ClassVar[str] = "chars"
    max_images: ClassVar[int | None] = 60
    image_profiles: ClassVar[tuple[str, ...]] = ("web_480", "web_960", "web_1440", "web_thumb")
    video_profiles: ClassVar[tuple[str, ...]] = ("web_video", "web_poster")
    accepted_types: ClassVar[tuple[str, ...]] = ("image/jpeg", "image/png", "image/webp", "video/mp4")
    min_seconds_between_requests: ClassVar[float] = 0.0
    supports_live: ClassVar[bool] = True
    supports_retract: ClassVar[bool] = True
    default_page_size: ClassVar[int] = 20

    # ------------------------------------------------------------------ render

    def render(self, story: StoryData, renditions: RenditionSet) -> Post:
        title = sitefiles.check_story(story, title_max=self.title_max, body_max=self.body_max,
                                      where="the website")
        files = sitefiles.PostFiles()
        images = sitefiles.story_images(story, self.max_images, "the website")
        figures = [self._figure(m, renditions, files, first=(i == 0)) for i, m in enumerate(images)]
        videos = [self._video(m, renditions, files, images, story) for m in story.media if m.kind == "video"]
        thumb = self._thumb(story, images, renditions, files)

        body_html = markdown_to_safe_html(story.body_markdown or "")
        summary = " ".join((story.summary or "").split()) or summarize(story.body_markdown or "", self.summary_max)
        release = story.release_at.astimezone(SHANGHAI)
        lead = [f for f, m in zip(figures, images) if m.role == "cover"]
        gallery = [f for f, m in zip(figures, images) if m.role != "cover"]
        if not lead and gallery and not story.media_by_role("cover"):
            lead, gallery = gallery[:1], gallery[1:]  # no cover: the first image leads
        tags = [t for t in (" ".join(t.split()) for t in story.tags) if t]
        context = {
            "title": title,
            "label": (story.label or "").strip(),
            "release_at": release.isoformat(timespec="seconds"),
            "datetime_zh": datetime_zh(release),
            "unit": (story.unit or "").strip(),
            "theme": (story.theme or "").strip(),
            "tags": tags,
            "body_html": body_html,
            "lead_images": lead,
            "gallery": gallery,
            "videos": videos,
            "sizes": IMAGE_SIZES,
        }
        article_html = sitefiles.template_env().get_template("website/article.html").render(context)
        url = story_dir(story.story_id)
        fields: dict[str, Any] = {
            "title": title,
            "label": context["label"],
            "summary": summary,
            "body_html": body_html,
            "theme": context["theme"],
            "unit": context["unit"],
            "tags": tags,
            "release_at": context["release_at"],
            "date_zh": date_zh(release),
            "url": url,
            "path": url + "index.html",
            "article_html": article_html,
            "card": {
                "title": title,
                "label": context["label"],
                "summary": summary,
                "release_at": context["release_at"],
                "date_zh": date_zh(release),
                "url": url,
                "thumb": thumb,
            },
        }
        fields["page_html"] = story_page(fields, _preview_site())
        return Post(channel=self.name, story_id=story.story_id, version=story.version,
                    fields=fields, files=files.files())

    def _figure(self, item: MediaItem, renditions: RenditionSet, files: sitefiles.PostFiles, *,
                first: bool) -> dict[str, Any]:
        available = renditions.get(item.sha256, {})
        chosen = [available[p] for p in WIDTH_PROFILES if p in available]
        if not chosen:
            raise RenderError(f"{item.role} image {item.sha256[:12]} has no web rendition "
                              f"({', '.join(WIDTH_PROFILES)})")
        by_width: dict[int, str] = {}
        for profile, rendition in ((p, available[p]) for p in WIDTH_PROFILES if p in available):
            width = rendition.width or NOMINAL_WIDTHS[profile]
            by_width.setdefault(width, files.add(item.role, rendition))
        src_rendition = available.get(FALLBACK_PROFILE) or chosen[0]
        src = files.add(item.role, src_rendition)
        return {
            "src": STORY_ROOT + src,
            "srcset": ", ".join(f"{STORY_ROOT}{path} {w}w" for w, path in sorted(by_width.items())),
            "width": src_rendition.width,
            "height": src_rendition.height,
            "alt": (item.alt or "").strip(),
            "caption": (item.caption or "").strip(),
            "lazy": not first,
        }

    def _video(self, item: MediaItem, renditions: RenditionSet, files: sitefiles.PostFiles,
               images: list[MediaItem], story: StoryData) -> dict[str, Any]:
        available = renditions.get(item.sha256, {})
        video = available.get("web_video")
        if video is None:
            raise RenderError(f"video {item.sha256[:12]} has no web_video rendition")
        poster = available.get("web_poster")
        if poster is None and images:  # fall back to the cover's middle size
            poster = renditions.get(images[0].sha256, {}).get(FALLBACK_PROFILE)
        return {
            "src": STORY_ROOT + files.add("video", video),
            "mime": video.mime,
            "poster": STORY_ROOT + files.add("poster", poster) if poster else "",
            "width": video.width,
            "height": video.height,
            "alt": (item.alt or "").strip(),
            "caption": (item.caption or "").strip(),
        }

    def _thumb(self, story: StoryData, images: list[MediaItem], renditions: RenditionSet,
               files: sitefiles.PostFiles) -> dict[str, Any] | None:
        candidates: list[Rendition | None] = []
        for item in images:
            available = renditions.get(item.sha256, {})
            candidates += [available.get("web_thumb"), available.get("web_480")]
        for item in story.media:
            if item.kind == "video":
                candidates.append(renditions.get(item.sha256, {}).get("web_poster"))
        for rendition in candidates:
            if rendition is not None:
                return {"src": files.add("thumb", rendition), "width": rendition.width, "height": rendition.height}
        return None

    # ------------------------------------------------------------------ publish

    def publish(self, post: Post, account: AccountData) -> Receipt:
        site = sitefiles.site_settings(account)
        page_size = sitefiles.int_setting(account, "index_page_size", self.default_page_size, high=500)
        sitefiles.check_post(post, self.name, ("title", "article_html", "card", "path", "url", "release_at"))
        content_hash = post.content_hash()
        rel_page = sitefiles.check_relpath(post.fields["path"])
        if rel_page != story_dir(post.story_id) + "index.html":
            raise PermanentChannelError(f"post path {rel_page!r} does not belong to story {post.story_id}")
        with sitefiles.site_lock(site.dir):
            for f in post.files:
                sitefiles.copy_media(site.dir, f.path, f.sha256, sitefiles.ext_for(f.mime, f.key))
            manifest = _load(site)
            stories = manifest["stories"]
            current = stories.get(str(post.story_id))
            if current and int(current.get("version", 0)) > post.version:
                raise PermanentChannelError(
                    f"story {post.story_id} version {post.version} is older than the published version "
                    f"{current['version']}; not replacing it")
            write_css(site)
            sitefiles.atomic_write(sitefiles.site_path(site.dir, rel_page), story_page(post.fields, site))
            stories[str(post.story_id)] = {
                **dict(post.fields["card"]),
                "version": post.version,
                "content_hash": content_hash,
                "path": rel_page,
            }
            sitefiles.save_manifest(site.dir, MANIFEST, manifest)
            build_index(site, stories, page_size)
        return Receipt(remote_id=f"story-{post.story_id}", url=site.absolute(post.fields["url"]),
                       extra={"path": rel_page, "content_hash": content_hash})

    def reconcile(self, post: Post, account: AccountData) -> Receipt | None:
        site = sitefiles.site_settings(account)
        entry = _load(site)["stories"].get(str(post.story_id))
        if not entry or entry.get("content_hash") != post.content_hash():
            return None
        if not sitefiles.site_path(site.dir, entry["path"]).is_file():
            return None
        return Receipt(remote_id=f"story-{post.story_id}", url=site.absolute(entry["url"]),
                       extra={"path": entry["path"], "content_hash": entry["content_hash"]})

    def retract(self, receipt: Receipt, account: AccountData) -> None:
        site = sitefiles.site_settings(account)
        page_size = sitefiles.int_setting(account, "index_page_size", self.default_page_size, high=500)
        match = _REMOTE_ID.match(receipt.remote_id or "")
        if not match:
            raise PermanentChannelError(f"not a website receipt: {receipt.remote_id!r}")
        story_id = int(match.group(1))
        with sitefiles.site_lock(site.dir):
            manifest = _load(site)
            manifest["stories"].pop(str(story_id), None)
            sitefiles.save_manifest(site.dir, MANIFEST, manifest)
            sitefiles.remove_file(site.dir, story_dir(story_id) + "index.html")
            build_index(site, manifest["stories"], page_size)


# ----------------------------------------------------------------------------- helpers


def _preview_site() -> sitefiles.SiteSettings:
    """The settings a render previews with (the real ones are only known at publish)."""
    return sitefiles.SiteSettings(dir=Path("/nonexistent"), public_url="http://localhost/")


def _page_context(site: sitefiles.SiteSettings, root: str) -> dict[str, Any]:
    return {
        "site": {"title": site.title, "description": site.description, "footer": site.footer,
                 "icp_beian": site.icp_beian},
        "root": root,
        "css_version": sitefiles.template_asset(CSS_ASSET)[1],
    }


def story_page(fields: Mapping[str, Any], site: sitefiles.SiteSettings) -> str:
    """The whole HTML document of a story page for this site's settings."""
    context = _page_context(site, STORY_ROOT)
    context["story"] = {"title": fields["title"], "article_html": fields["article_html"]}
    context["description"] = fields.get("summary", "")
    return sitefiles.template_env().get_template("website/story.html").render(context)


def write_css(site: sitefiles.SiteSettings) -> bool:
    data, _ = sitefiles.template_asset(CSS_ASSET)
    return sitefiles.atomic_write(sitefiles.site_path(site.dir, CSS_PATH), data)


def _load(site: sitefiles.SiteSettings) -> dict[str, Any]:
    manifest = sitefiles.load_manifest(site.dir, MANIFEST)
    manifest.setdefault("format", MANIFEST_FORMAT)
    stories = manifest.setdefault("stories", {})
    if not isinstance(stories, dict):
        raise PermanentChannelError("manifest _data/website.json has no stories object")
    return manifest


def newest_first(stories: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Manifest entries sorted newest release first (then higher story id first)."""
    def key(item: tuple[str, Mapping[str, Any]]) -> tuple[datetime, int]:
        story_id, entry = item
        return datetime.fromisoformat(entry["release_at"]), int(story_id)

    return [entry for _, entry in sorted(stories.items(), key=key, reverse=True)]


def index_pages(site: sitefiles.SiteSettings, stories: Mapping[str, Mapping[str, Any]],
                page_size: int) -> dict[str, str]:
    """Every index page of the site: site-relative path -> HTML.

    `index.html` shows the newest `page_size` stories. The archive pages are numbered from
    the oldest: `page/<k>/` holds stories (k-1)*page_size .. k*page_size-1 in release order
    (shown newest first), so a new story changes only index.html and the last archive page
    (and the one before it when a page fills), not every page as newest-first numbering would.
    """
    newest = newest_first(stories)
    oldest = newest[::-1]
    total = len(oldest)
    archive = -(-total // page_size)  # number of archive pages
    template = sitefiles.template_env().get_template("website/index.html")

    def render(rel: str, root: str, page: int, cards: list, newer: str | None, older: str | None) -> None:
        context = _page_context(site, root)
        context.update({"cards": cards, "page": page, "newer_url": newer, "older_url": older,
                        "description": site.description})
        out[rel] = template.render(context)

    out: dict[str, str] = {}
    older = None
    if total > page_size:  # the archive page holding the story just older than those on the index
        older = page_url(((total - page_size - 1) // page_size) + 1)
    render("index.html", "./", 0, newest[:page_size], None, older)
    for k in range(1, archive + 1):
        cards = oldest[(k - 1) * page_size: k * page_size][::-1]
        newer = page_url(k + 1) if k < archive else ""
        render(page_url(k) + "index.html", "../../", k, cards, newer, page_url(k - 1) if k > 1 else None)
    return out


def build_index(site: sitefiles.SiteSettings, stories: Mapping[str, Mapping[str, Any]], page_size: int) -> int:
    """Write the index pages (only those whose bytes changed), drop surplus ones; return writes."""
    pages = index_pages(site, stories, page_size)
    written = sum(sitefiles.atomic_write(sitefiles.site_path(site.dir, rel), html) for rel, html in pages.items())
    page_root = sitefiles.site_path(site.dir, "page")
    if page_root.is_dir():
        for child in sorted(page_root.iterdir()):
            rel = f"page/{child.name}/index.html"
            if child.name.isdigit() and rel not in pages:
                sitefiles.remove_file(site.dir, rel)
    return written
