"""Every registered channel keeps the contract of channels/base.py.

Parametrized over `channels.registry()`. Channels that need a site (website, rss) are given
one in tmp_path; a channel that talks to a platform would get its fake server here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

import pytest

from channels import get_channel, registry
from channels.base import AccountData, Channel, ChannelError, Post, Receipt, RenderError
from tests.unit.test_channel_website import PUBLIC_URL, MediaLibrary, make_story

REGISTRY = registry()
NAMES = sorted(REGISTRY)
PROFILES = {"web_480", "web_960", "web_1440", "web_thumb", "web_video", "web_poster", "feed_image"}


def account_for(name: str, tmp_path: Path, **settings: object) -> AccountData:
    return AccountData(id=1, channel=name, name=f"{name}-contract",
                       settings={"site_dir": str(tmp_path / "www"), "public_url": PUBLIC_URL, **settings})


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


def test_registry_has_the_site_channels() -> None:
    assert {"website", "rss"} <= set(REGISTRY)
    assert isinstance(get_channel("website"), Channel)
    with pytest.raises(KeyError, match="known"):
        get_channel("nope")


@pytest.mark.parametrize("name", NAMES)
def test_declarations(name: str) -> None:
    cls = REGISTRY[name]
    assert issubclass(cls, Channel) and cls.name == name
    assert cls.title_zh and any("\u4e00" <= ch <= "\u9fff" for ch in cls.title_zh)
    hints = get_type_hints(cls, include_extras=True)
    own = cls.__dict__
    for attr in ("title_max", "body_max", "max_images", "image_profiles", "video_profiles"):
        assert attr in own, f"{name} does not declare {attr} itself"
        assert attr in hints
    assert isinstance(cls.title_max, int) and 0 < cls.title_max
    assert isinstance(cls.body_max, int) and cls.body_max > cls.title_max
    assert isinstance(cls.max_images, int) and cls.max_images >= 1
    assert cls.length_rule in ("chars", "weibo")
    for profiles in (cls.image_profiles, cls.video_profiles):
        assert isinstance(profiles, tuple) and all(isinstance(p, str) for p in profiles)
        assert set(profiles) <= PROFILES
    assert cls.image_profiles
    for method in ("render", "publish", "reconcile", "retract"):
        assert getattr(cls, method) is not getattr(Channel, method), f"{name}.{method} not implemented"


@pytest.mark.parametrize("name", NAMES)
def test_render_is_deterministic_and_round_trips(name: str, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 42, images=2, video=True)
    channel = get_channel(name)
    first = channel.render(story, renditions)
    second = get_channel(name).render(story, renditions)
    assert first is not second and first.content_hash() == second.content_hash()
    assert first.channel == name and first.story_id == 42 and first.version == 1
    # through real JSON text, as the database stores it
    restored = Post.from_json(json.loads(json.dumps(first.to_json(), ensure_ascii=False)))
    assert restored == first and restored.content_hash() == first.content_hash()
    with_paths = first.with_paths(lib.paths)
    assert all(f.path for f in with_paths.files)
    assert Post.from_json(json.loads(json.dumps(with_paths.to_json()))) == first  # paths are not content
    assert with_paths.content_hash() == first.content_hash()


@pytest.mark.parametrize("name", NAMES)
def test_empty_title_is_a_render_error(name: str, lib: MediaLibrary) -> None:
    from dataclasses import replace

    story, renditions = make_story(lib, 43)
    with pytest.raises(RenderError):
        get_channel(name).render(replace(story, title=""), renditions)


MISSING = [{}, {"site_dir": "/nonexistent-site"}, {"public_url": PUBLIC_URL}]


@pytest.mark.parametrize("settings", MISSING, ids=["none", "no-public-url", "no-site-dir"])
@pytest.mark.parametrize("name", NAMES)
def test_publish_without_required_settings_raises(name: str, settings: dict, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 44)
    post = get_channel(name).render(story, renditions).with_paths(lib.paths)
    account = AccountData(id=9, channel=name, name="bare", settings=settings)
    with pytest.raises(ChannelError):
        get_channel(name).publish(post, account)
    assert not Path("/nonexistent-site").exists()


@pytest.mark.parametrize("name", NAMES)
def test_publish_then_reconcile(name: str, lib: MediaLibrary, tmp_path: Path) -> None:
    story, renditions = make_story(lib, 45, images=1, video=True)
    channel = get_channel(name)
    account = account_for(name, tmp_path)
    post = channel.render(story, renditions)
    assert channel.reconcile(post, account) is None  # not posted yet
    receipt = channel.publish(post.with_paths(lib.paths), account)
    assert isinstance(receipt, Receipt) and receipt.remote_id and receipt.url.startswith(PUBLIC_URL)
    found = channel.reconcile(post, account)
    assert isinstance(found, Receipt) and found.remote_id == receipt.remote_id and found.url == receipt.url
    channel.retract(receipt, account)
    assert channel.reconcile(post, account) is None


def test_channels_import_neither_services_nor_media_and_do_no_work_at_import() -> None:
    code = (
        "import sys, channels, channels.website, channels.rss, channels.text, channels.sitefiles\n"
        "channels.registry()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('services', 'media'))\n"
        "heavy = sorted(m for m in ('feedgen', 'markdown_it', 'jinja2', 'lxml') if m in sys.modules)\n"
        "print(bad, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True).stdout.strip()
    assert out == "[] []"
