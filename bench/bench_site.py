"""Benchmark: publishing the 101st story into a static site of 100, incremental vs full rebuild.

Incremental is what WebsiteChannel.publish does: render one story, copy its media (content
addressed, skipped when present), write its page, the manifest and the index pages, each
only if its bytes changed. The baseline, measured in the same run on the same site, is
what a non-incremental static generator does for the same event: render all 101 stories
and rewrite every page, the manifest and the index (same atomic-write code, with the
"unchanged, skip" check switched off). Media copies are excluded from both (they already
exist). Median of several rounds; prints `ratio: X.XXx` (baseline / incremental).

    .venv/bin/python bench/bench_site.py [--stories 100] [--rounds 7]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels import sitefiles  # noqa: E402
from channels.base import AccountData, MediaItem, Rendition, StoryData  # noqa: E402
from channels.website import MANIFEST, WebsiteChannel, build_index, story_page, write_css  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
BODY = "\n\n".join(
    f"第{i}段。今年以来，黄山区围绕基础教育民生实事，新建学校、扩充学位，项目已全部完工并通过验收；"
    f"全区新增学位1200个，惠及学生和家长。" for i in range(12))


def make_story(store: Path, paths: dict[str, str], story_id: int) -> tuple[StoryData, dict]:
    source = hashlib.sha256(f"src-{story_id}".encode()).hexdigest()
    renditions = {}
    for profile, (w, h) in {"web_480": (480, 320), "web_960": (960, 640), "web_1440": (1440, 960),
                            "web_thumb": (320, 240)}.items():
        data = f"{story_id}-{profile}".encode() * 200
        sha = hashlib.sha256(data).hexdigest()
        key = f"renditions/{sha}"
        path = store / sha
        if not path.exists():
            path.write_bytes(data)
        paths[key] = str(path)
        renditions[profile] = Rendition(profile=profile, key=key, mime="image/jpeg", bytes=len(data), sha256=sha,
                                        width=w, height=h)
    story = StoryData(
        story_id=story_id, version=1, title=f"黄山区民生实事第{story_id}期：新建学校投入使用",
        body_markdown=BODY, release_at=datetime(2026, 1, 1, 8, tzinfo=SHANGHAI) + timedelta(days=story_id),
        tags=("教育",), theme="基础教育", unit="区教体局", label="黄山市黄山区30项民生实事之基础教育民生实事",
        media=(MediaItem(role="cover", sha256=source, kind="image", mime="image/jpeg", alt="新校舍"),))
    return story, {source: renditions}


def full_rebuild(channel: WebsiteChannel, stories: list, account: AccountData, paths: dict[str, str]) -> None:
    """The baseline: render every story and rewrite every file (no "unchanged" skip)."""
    site = sitefiles.site_settings(account)
    posts = [channel.render(story, renditions) for story, renditions in stories]
    with mock.patch.object(sitefiles, "_same_bytes", lambda path, data: False), sitefiles.site_lock(site.dir):
        manifest = {"format": 1, "stories": {}}
        write_css(site)
        for post in posts:
            rel = post.fields["path"]
            sitefiles.atomic_write(sitefiles.site_path(site.dir, rel), story_page(post.fields, site))
            manifest["stories"][str(post.story_id)] = {**post.fields["card"], "version": post.version,
                                                        "content_hash": post.content_hash(), "path": rel}
        sitefiles.save_manifest(site.dir, MANIFEST, manifest)
        build_index(site, manifest["stories"], channel.default_page_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        root = Path(tmp)
        store = root / "store"
        store.mkdir()
        paths: dict[str, str] = {}
        account = AccountData(id=1, channel="website", name="bench",
                              settings={"site_dir": str(root / "www"), "public_url": "http://127.0.0.1:8000/site/"})
        channel = WebsiteChannel()
        stories = [make_story(store, paths, i) for i in range(1, args.stories + 1)]
        for story, renditions in stories:  # the existing site of N stories (not timed)
            channel.publish(channel.render(story, renditions).with_paths(paths), account)

        incremental, rebuild = [], []
        for n in range(args.rounds):
            story, renditions = make_story(store, paths, args.stories + 1 + n)
            # media of the new story is already in the site for both measurements
            for r in next(iter(renditions.values())).values():
                sitefiles.copy_media(root / "www", paths[r.key], r.sha256, "jpg")
            start = time.perf_counter()
            receipt = channel.publish(channel.render(story, renditions).with_paths(paths), account)
            incremental.append(time.perf_counter() - start)
            channel.retract(receipt, account)  # back to N stories (not timed)

            start = time.perf_counter()
            full_rebuild(channel, [*stories, (story, renditions)], account, paths)
            rebuild.append(time.perf_counter() - start)
            channel.retract(receipt, account)  # the same N-story site again (not timed)

        inc, full = statistics.median(incremental), statistics.median(rebuild)
        print(f"site of {args.stories} stories, {args.rounds} rounds (median)")
        print(f"incremental publish of story {args.stories + 1}: {inc * 1000:.1f} ms")
        print(f"full rebuild of {args.stories + 1} pages:        {full * 1000:.1f} ms")
        print(f"ratio: {full / inc:.2f}x")


if __name__ == "__main__":
    main()
