"""Every registered channel keeps the contract of channels/base.py.

Parametrized over `channels.registry()`. Each channel gets the story with every rendition
media/profiles.py makes (so each finds the profiles it names) and, to publish, the platform it
talks to: a site folder in tmp_path (website, rss) or its loopback fake from tests/fakes/
(weibo, douyin, wechat_mp, wordpress, webhook). 视频号 has no API: it must refuse to publish.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterator, get_type_hints

import pytest

from channels import get_channel, registry
from channels.base import (
    AccountData,
    Channel,
    ChannelError,
    MediaItem,
    PermanentChannelError,
    Post,
    Receipt,
    RenderError,
    Rendition,
    StoryData,
)
from media.profiles import PROFILES as MEDIA_PROFILES
from media.profiles import ImageProfile, PosterProfile, VideoProfile
from tests.unit.test_channel_website import PUBLIC_URL, MediaLibrary, _jpeg
from tests.unit.test_channel_website import make_story as make_web_story

REGISTRY = registry()
NAMES = sorted(REGISTRY)
PROFILES = set(MEDIA_PROFILES)
LIVE = [n for n in NAMES if REGISTRY[n].supports_live]


def _size(profile) -> tuple[int, int]:  # noqa: ANN001 - a media profile
    if isinstance(profile, ImageProfile):
        return profile.width, profile.height or profile.width * 2 // 3
    if isinstance(profile, VideoProfile):
        return profile.max_width, profile.max_height
    w, h = profile.aspect or (16, 9)
    return profile.max_width, profile.max_width * h // w


def make_story(lib: MediaLibrary, story_id: int, *, images: int = 1, video: bool = False,
               **kwargs: object) -> tuple[StoryData, dict[str, dict[str, Rendition]]]:
    """The website test's story, with every rendition of every profile and a link to its page."""
    story, renditions = make_web_story(lib, story_id, images=images, video=video, **kwargs)
    full: dict[str, dict[str, Rendition]] = {}
    for item in story.media:
        have = dict(renditions[item.sha256])
        for name, profile in MEDIA_PROFILES.items():
            if name in have:
                continue
            w, h = _size(profile)
            if item.kind == "image" and isinstance(profile, ImageProfile):
                have[name] = lib.rendition(name, _jpeg(min(w, 400), min(h, 400), f"{item.sha256}-{name}"),
                                           "image/jpeg", w, h)
            elif item.kind == "video" and isinstance(profile, VideoProfile):
                clip = b"\x00\x00\x00\x18ftypmp42" + hashlib.sha256(f"{item.sha256}{name}".encode()).digest() * 32
                have[name] = lib.rendition(name, clip, "video/mp4", w, h, 58.0)
            elif item.kind == "video" and isinstance(profile, PosterProfile):
                have[name] = lib.rendition(name, _jpeg(min(w, 400), min(h, 400), f"{item.sha256}-{name}"),
                                           "image/jpeg", w, h)
        full[item.sha256] = have
    return replace(story, link=f"{PUBLIC_URL}stories/{story_id}/", short_title="新建学校投入使用"), full


def account_for(name: str, tmp_path: Path, **settings: object) -> AccountData:
    return AccountData(id=1, channel=name, name=f"{name}-contract",
                       settings={"site_dir": str(tmp_path / "www"), "public_url": PUBLIC_URL, **settings})


@contextlib.contextmanager
def platform(name: str, tmp_path: Path) -> Iterator[AccountData]:
    """A live account of `name` on its platform: a site folder, or its fake on loopback."""
    base = account_for(name, tmp_path, read_timeout=5)
    if name in ("website", "rss"):
        yield base
        return
    if name == "weibo":
        from tests.fakes.weibo import FakeWeibo

        with FakeWeibo() as fake:
            yield replace(base, api_base=fake.url, credentials=fake.credentials(),
                          settings={**base.settings, "safe_domain": "127.0.0.1"})
    elif name == "douyin":
        from tests.fakes.douyin import FakeDouyin

        with FakeDouyin() as fake:
            yield replace(base, api_base=fake.url, credentials=fake.issue())
    elif name == "wechat_mp":
        from tests.fakes.wechat_mp import FakeWechatMp

        with FakeWechatMp() as fake:
            yield replace(base, api_base=fake.url, credentials={"appid": fake.appid, "secret": fake.secret},
                          settings={**base.settings, "poll_interval": 0.01, "poll_timeout": 2.0})
    elif name == "wordpress":
        from tests.fakes.wordpress import FakeWordpress

        with FakeWordpress() as fake:
            user, password = next(iter(fake.users.items()))
            yield replace(base, api_base=fake.url, credentials={"username": user, "app_password": password})
    elif name == "webhook":
        from tests.fakes.webhook import FakeWebhookReceiver

        with FakeWebhookReceiver("contract-secret") as fake:
            yield replace(base, api_base=fake.hook_url, credentials={"secret": "contract-secret"},
                          settings={**base.settings, "status_url": fake.status_url})
    else:
        raise AssertionError(f"no platform for {name}: add its fake here")


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


def test_registry_has_every_channel_of_the_design() -> None:
    assert set(REGISTRY) == {"website", "rss", "weibo", "douyin", "wechat_mp", "wechat_channels", "wordpress",
                             "webhook"}
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
    assert cls.body_max is None or (isinstance(cls.body_max, int) and cls.body_max > cls.title_max)
    assert isinstance(cls.max_images, int) and cls.max_images >= 0
    assert cls.length_rule in ("chars", "weibo")
    for profiles in (cls.image_profiles, cls.video_profiles):
        assert isinstance(profiles, tuple) and all(isinstance(p, str) for p in profiles)
        assert set(profiles) <= PROFILES
    assert cls.image_profiles or cls.video_profiles
    assert all(isinstance(k, str) and k for k in cls.credential_keys)
    assert cls.supports_live or not cls.supports_retract  # no API, nothing to delete through
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
    story, renditions = make_story(lib, 43, video=True)
    with pytest.raises(RenderError):
        get_channel(name).render(replace(story, title="", short_title=""), renditions)


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_rendition_is_a_render_error_not_a_crash(name: str, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 46, video=True)
    channel = get_channel(name)
    needed = set(channel.image_profiles) | set(channel.video_profiles)
    stripped = {sha: {p: r for p, r in rs.items() if p not in needed} for sha, rs in renditions.items()}
    try:
        post = channel.render(story, stripped)
    except RenderError:
        return
    assert not post.files, f"{name} sent files it had no rendition for"


MISSING = [{}, {"site_dir": "/nonexistent-site"}, {"public_url": PUBLIC_URL}]


@pytest.mark.parametrize("settings", MISSING, ids=["none", "no-public-url", "no-site-dir"])
@pytest.mark.parametrize("name", NAMES)
def test_publish_without_what_it_needs_raises_a_channel_error(name: str, settings: dict, lib: MediaLibrary) -> None:
    """No site settings, no credentials, no API base: a typed error, never a half-done post."""
    story, renditions = make_story(lib, 44, video=True)
    post = get_channel(name).render(story, renditions).with_paths(lib.paths)
    account = AccountData(id=9, channel=name, name="bare", settings={**settings, "connect_timeout": 1,
                                                                    "read_timeout": 1},
                          api_base="http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(ChannelError):
        get_channel(name).publish(post, account)
    assert not Path("/nonexistent-site").exists()


@pytest.mark.parametrize("name", LIVE)
def test_publish_then_reconcile_then_retract(name: str, lib: MediaLibrary, tmp_path: Path) -> None:
    story, renditions = make_story(lib, 45, images=2, video=True)
    channel = get_channel(name)
    with platform(name, tmp_path) as account:
        post = channel.render(story, renditions)
        assert channel.reconcile(post, account) is None  # not posted yet
        receipt = channel.publish(post.with_paths(lib.paths), account)
        assert isinstance(receipt, Receipt) and receipt.remote_id
        assert receipt.url is None or receipt.url.startswith(("http://", "https://"))
        found = channel.reconcile(post, account)
        assert isinstance(found, Receipt) and found.remote_id == receipt.remote_id
        channel.retract(receipt, account)
        assert channel.reconcile(post, account) is None


@pytest.mark.parametrize("name", [n for n in NAMES if not REGISTRY[n].supports_live])
def test_a_channel_without_an_api_refuses_to_publish(name: str, lib: MediaLibrary, tmp_path: Path) -> None:
    story, renditions = make_story(lib, 47, video=True)
    channel = get_channel(name)
    post = channel.render(story, renditions)
    assert channel.outbox_texts(post) and len(channel.outbox_checklist(post)) >= 3
    with pytest.raises(PermanentChannelError):
        channel.publish(post.with_paths(lib.paths), account_for(name, tmp_path))


@pytest.mark.parametrize("name", NAMES)
def test_the_label_comes_first_in_what_readers_see(name: str, lib: MediaLibrary) -> None:
    story, renditions = make_story(lib, 48, video=True)
    post = get_channel(name).render(story, renditions)

    def strings(value: object) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for inner in value.values():
                yield from strings(inner)
        elif isinstance(value, (list, tuple)):
            for inner in value:
                yield from strings(inner)

    texts = [t for t in strings(dict(post.fields)) if len(t) > 20]
    assert any(story.label in t[:200] for t in texts), f"{name}: no text starts with the campaign label"


def test_channels_import_neither_services_nor_media_and_do_no_work_at_import() -> None:
    code = (
        "import sys, channels, channels.base, channels.text, channels.sitefiles\n"
        "channels.registry()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('services', 'media'))\n"
        "heavy = sorted(m for m in ('feedgen', 'markdown_it', 'jinja2', 'lxml') if m in sys.modules)\n"
        "print(bad, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True).stdout.strip()
    assert out == "[] []"
