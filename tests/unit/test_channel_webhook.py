"""channels/webhook.py against tests/fakes/webhook.py (a partner's receiver on loopback).

Rows of (what the receiver is told / answers → Receipt, or exception type + code +
retry_after), the render (label first, media chosen, a stable idempotency key, no clock),
the signature the receiver checks, reconcile with and without a status URL, retract, and
that the secret never leaves the process.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.base import (
    AccountData,
    OutcomeUnknownError,
    PermanentChannelError,
    Receipt,
    RenderError,
    TransientChannelError,
)
from channels.webhook import WebhookChannel, sign, site_root
from tests.fakes.webhook import HOOK_PATH, FakeWebhookReceiver
from tests.unit.test_channel_website import LABEL, MediaLibrary, make_story

SECRET = "whsec-9f8e7d6c5b4a3f2e"
SITE = "https://www.hsq.example.cn/site/"


@pytest.fixture()
def fake():
    with FakeWebhookReceiver(SECRET) as server:
        yield server


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


def account(fake: FakeWebhookReceiver | None, secret: str | None = SECRET, api_base: str | None = "",
            **settings: object) -> AccountData:
    return AccountData(id=5, channel="webhook", name="市融媒体平台",
                       api_base=(fake.hook_url if fake else None) if api_base == "" else api_base,
                       credentials={} if secret is None else {"secret": secret},
                       settings={"read_timeout": 5, **settings})


def story_for(lib: MediaLibrary, story_id: int, **kwargs):
    story, renditions = make_story(lib, story_id, **kwargs)
    return replace(story, link=f"{SITE}stories/{story_id}/"), renditions


def assert_no_secret(*objects: object) -> None:
    for obj in objects:
        assert SECRET not in str(obj) and SECRET not in repr(obj)


def never(*_args) -> float:
    raise AssertionError("render must not read the clock")


# ----------------------------------------------------------------------------- render


def test_render_payload_and_key(lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 7, images=2, video=True)
    post = WebhookChannel(clock=never).render(story, renditions)
    f = post.fields
    assert f["event"] == "story.published" and f["site_root"] == SITE
    assert f["idempotency_key"].startswith("fanout-7-v1-") and len(f["idempotency_key"]) == len("fanout-7-v1-") + 16
    s = f["story"]
    assert (s["id"], s["version"], s["title"], s["label"]) == (7, 1, story.title, LABEL)
    assert s["body_html"].startswith(f'<p class="fanout-label">{LABEL}</p>') and "<script" not in s["body_html"]
    assert s["release_at"] == "2026-11-22T08:00:00+08:00" and s["tags"] == ["教育", "民生实事"]
    assert s["link"] == f"{SITE}stories/7/" and s["unit"] == "区教体局" and s["theme"] == "基础教育"
    cover, image, video = story.media
    chosen = [renditions[cover.sha256]["web_960"], renditions[image.sha256]["web_960"],
              renditions[video.sha256]["web_video"], renditions[video.sha256]["web_poster"]]
    assert [m["role"] for m in f["media"]] == ["cover", "image", "video", "poster"]
    assert [m["sha256"] for m in f["media"]] == [r.sha256 for r in chosen] == [pf.sha256 for pf in post.files]
    assert f["media"][0]["path"] == f"media/{chosen[0].sha256[:2]}/{chosen[0].sha256}.jpg"
    assert f["media"][2]["path"].endswith(".mp4") and f["media"][0]["alt"] == "第1张图片：学生在新教室上课"


def test_key_is_stable_and_follows_the_content(lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 8)
    key = WebhookChannel().render(story, renditions).fields["idempotency_key"]
    assert WebhookChannel().render(replace(story), renditions).fields["idempotency_key"] == key
    assert WebhookChannel().render(replace(story, title="新标题"), renditions).fields["idempotency_key"] != key
    assert WebhookChannel().render(replace(story, version=2), renditions).fields["idempotency_key"].startswith(
        "fanout-8-v2-")


@pytest.mark.parametrize("link,root", [
    (f"{SITE}stories/7/", SITE), ("https://a.example/stories/7/index.html", "https://a.example/"),
    ("https://a.example/news/2026/7.html", "https://a.example/"), ("", ""), ("not a url", ""),
])
def test_site_root(link: str, root: str) -> None:
    assert site_root(link) == root


@pytest.mark.parametrize("change,message", [
    ({"title": ""}, "title is empty"), ({"title": "题" * 101}, "at most 100"),
    ({"release_at": datetime(2026, 11, 22, 8)}, "timezone-aware"),
])
def test_render_errors(lib: MediaLibrary, change: dict, message: str) -> None:
    story, renditions = story_for(lib, 9)
    with pytest.raises(RenderError, match=message):
        WebhookChannel().render(replace(story, **change), renditions)


def test_render_needs_the_web_renditions(lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 10, video=True)
    no_video = {k: {p: r for p, r in rs.items() if p != "web_video"} for k, rs in renditions.items()}
    with pytest.raises(RenderError, match="no web_video"):
        WebhookChannel().render(story, no_video)
    no_960 = {k: {p: r for p, r in rs.items() if p != "web_960"} for k, rs in renditions.items()}
    with pytest.raises(RenderError, match="no web_960"):
        WebhookChannel().render(story, no_960)


# ----------------------------------------------------------------------------- publish


def test_publish_sends_a_signed_event_with_media_urls(fake: FakeWebhookReceiver, lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 11, images=1, video=True)
    post = WebhookChannel().render(story, renditions)
    now = int(time.time())
    receipt = WebhookChannel(clock=lambda: now + 0.7).publish(post, account(fake))  # no local paths needed

    key = post.fields["idempotency_key"] + "-a5"  # the key is per account (id 5)
    assert receipt == Receipt(remote_id="wh-1", url=f"{fake.url}/items/1",
                              extra={"idempotency_key": key, "story_id": 11, "version": 1,
                                     "content_hash": post.content_hash(), "duplicate": False})
    assert fake.posts == {key: 1}
    req = fake.requests[-1]
    assert req.path == HOOK_PATH and req.header("X-Fanout-Timestamp") == str(now)
    assert req.header("X-Fanout-Signature") == sign(SECRET, str(now), req.body)
    assert req.header("X-Fanout-Idempotency-Key") == key and req.header("X-Fanout-Event") == "story.published"
    assert req.header("Content-Type") == "application/json; charset=utf-8"
    assert "黄山区".encode() in req.body  # raw UTF-8, not \u escapes
    body = json.loads(req.body)
    assert body["story"] == post.fields["story"] and body["idempotency_key"] == key
    urls = [m["url"] for m in body["media"]]
    assert urls == [f"{SITE}{m['path']}" for m in post.fields["media"]]
    assert all(set(m) == {"role", "url", "mime", "bytes", "sha256", "width", "height", "alt", "caption"}
               for m in body["media"])


def test_media_base_url_setting_wins(fake: FakeWebhookReceiver, lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 12, images=1)
    post = WebhookChannel().render(replace(story, link=""), renditions)
    with pytest.raises(PermanentChannelError) as raised:
        WebhookChannel().publish(post, account(fake))
    assert raised.value.code == "no_media_base" and not fake.requests
    WebhookChannel().publish(post, account(fake, media_base_url="https://cdn.example.cn/fanout/"))
    sha = post.fields["media"][0]["sha256"]
    assert json.loads(fake.requests[-1].body)["media"][0]["url"] == f"https://cdn.example.cn/fanout/{sha[:2]}/{sha}.jpg"


def _send_first(fake: FakeWebhookReceiver) -> dict:
    return {"deliver_first": True}


ROWS = [
    # (id, receiver setup → options, exception (None = Receipt), code, retry_after, recorded, remote id)
    ("ok", lambda f: None, None, None, None, 1, "wh-1"),
    ("duplicate-409", _send_first, None, None, None, 1, "KEY"),
    ("duplicate-200", lambda f: (setattr(f, "duplicate_status", 200), {"deliver_first": True})[1], None, None, None,
     1, "wh-1"),
    ("wrong-secret", lambda f: {"secret": "another-secret"}, PermanentChannelError, "401", None, 0, None),
    ("our-clock-is-stale", lambda f: {"clock": time.time() - 1000}, PermanentChannelError, "401", None, 0, None),
    ("their-clock-is-ahead", lambda f: setattr(f, "clock_offset", 301), PermanentChannelError, "401", None, 0, None),
    ("refused-422", lambda f: f.misbehave("status", status=422), PermanentChannelError, "422", None, 0, None),
    ("rate-limited", lambda f: f.misbehave("retry_after", seconds=12), TransientChannelError, "429", 12.0, 0, None),
    ("unavailable-503", lambda f: f.misbehave("status", status=503), TransientChannelError, "503", None, 0, None),
    ("reset", lambda f: f.misbehave("reset"), OutcomeUnknownError, None, None, 0, None),
    ("hangs-after-recording", lambda f: f.misbehave("hang_after", seconds=1.5), OutcomeUnknownError, None, None, 1,
     None),
    ("no-url", lambda f: {"api_base": None}, PermanentChannelError, "no_url", None, 0, None),
    ("url-setting", lambda f: {"api_base": None, "settings": {"url": f.hook_url}}, None, None, None, 1, "wh-1"),
    ("ftp-url", lambda f: {"api_base": "ftp://127.0.0.1/hook"}, PermanentChannelError, "bad_url", None, 0, None),
    ("no-secret", lambda f: {"secret": None}, PermanentChannelError, "no_credentials", None, 0, None),
]


@pytest.mark.parametrize("name,setup,error,code,retry_after,recorded,remote_id", ROWS, ids=[r[0] for r in ROWS])
def test_publish_outcomes(fake: FakeWebhookReceiver, lib: MediaLibrary, name, setup, error, code, retry_after,
                          recorded, remote_id) -> None:
    story, renditions = story_for(lib, 13, images=1)
    post = WebhookChannel().render(story, renditions)
    options = setup(fake) or {}
    if options.get("deliver_first"):
        WebhookChannel().publish(post, account(fake))
    acct = account(fake, options.get("secret", SECRET), options.get("api_base", ""),
                   **{"read_timeout": 0.5, **options.get("settings", {})})
    clock = options.get("clock")
    channel = WebhookChannel(clock=lambda: clock) if clock else WebhookChannel()
    if error is None:
        receipt = channel.publish(post, acct)
        key = post.fields["idempotency_key"] + "-a5"  # the key is per account (id 5)
        assert receipt.remote_id == (key if remote_id == "KEY" else remote_id)
        assert receipt.extra["idempotency_key"] == key
        assert receipt.extra["duplicate"] is bool(options.get("deliver_first"))
    else:
        with pytest.raises(error) as raised:
            channel.publish(post, acct)
        if code is not None:
            assert raised.value.code == code
        if retry_after is not None:
            assert raised.value.retry_after == retry_after
        assert_no_secret(raised.value)
    assert sum(fake.posts.values()) == recorded
    assert_no_secret(acct)


def test_the_receiver_refuses_a_tampered_body(fake: FakeWebhookReceiver, lib: MediaLibrary) -> None:
    import requests

    story, renditions = story_for(lib, 14, images=1)
    post = WebhookChannel().render(story, renditions)
    WebhookChannel().publish(post, account(fake))
    sent = fake.requests[-1]
    tampered = sent.body.replace("黄山区".encode(), "别处".encode())
    headers = {k: v for k, v in sent.headers.items() if k.lower().startswith("x-fanout") or k == "Content-Type"}
    r = requests.post(fake.hook_url, data=tampered, headers=headers, timeout=5)
    assert r.status_code == 401 and fake.rejected[-1] == "bad signature"
    assert sum(fake.deliveries.values()) == 1


# ----------------------------------------------------------------------------- reconcile


def test_unknown_outcome_reconciled_by_redelivery_under_the_same_key(fake: FakeWebhookReceiver,
                                                                     lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 15, images=1)
    post = WebhookChannel().render(story, renditions)
    key = post.fields["idempotency_key"] + "-a5"  # the key is per account (id 5)
    fake.misbehave("hang_after", seconds=1.5)
    with pytest.raises(OutcomeUnknownError):
        WebhookChannel().publish(post, account(fake, read_timeout=0.5))
    found = WebhookChannel().reconcile(post, account(fake))
    assert isinstance(found, Receipt) and found.remote_id == key and found.extra["duplicate"] is True
    assert fake.posts == {key: 1} and fake.deliveries[key] == 2  # sent twice, posted once


def test_reconcile_without_status_url_and_no_answer_stays_retryable(fake: FakeWebhookReceiver,
                                                                    lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 16, images=1)
    post = WebhookChannel().render(story, renditions)
    fake.misbehave("hang_after", seconds=1.5, times=2)
    with pytest.raises(TransientChannelError, match="still unconfirmed"):
        WebhookChannel().reconcile(post, account(fake, read_timeout=0.5))
    fake.behave()
    assert WebhookChannel().reconcile(post, account(fake)).extra["duplicate"] is True
    assert sum(fake.posts.values()) == 1


def test_reconcile_with_a_status_url_asks_instead_of_sending(fake: FakeWebhookReceiver, lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 17, images=1)
    post = WebhookChannel().render(story, renditions)
    acct = account(fake, status_url=fake.status_url)
    assert WebhookChannel().reconcile(post, acct) is None
    assert [r.method for r in fake.requests] == ["GET"] and not fake.posts
    receipt = WebhookChannel().publish(post, acct)
    found = WebhookChannel().reconcile(post, acct)
    assert (found.remote_id, found.url) == (receipt.remote_id, receipt.url) == ("wh-1", f"{fake.url}/items/1")
    assert sum(fake.deliveries.values()) == 1
    fake.misbehave("status", status=503)
    with pytest.raises(TransientChannelError):  # could not ask: not "not posted"
        WebhookChannel().reconcile(post, acct)
    with pytest.raises(PermanentChannelError) as raised:
        WebhookChannel().reconcile(post, account(fake, secret="wrong", status_url=fake.status_url))
    assert raised.value.code == "401"


# ----------------------------------------------------------------------------- retract and upkeep


def test_retract_sends_a_signed_retraction(fake: FakeWebhookReceiver, lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 18, images=1)
    post = WebhookChannel().render(story, renditions)
    key = post.fields["idempotency_key"] + "-a5"  # the key is per account (id 5)
    receipt = WebhookChannel().publish(post, account(fake))
    WebhookChannel().retract(receipt, account(fake))
    assert fake.items[key]["state"] == "retracted"
    body = json.loads(fake.requests[-1].body)
    assert body == {"event": "story.retracted", "idempotency_key": f"{key}-retracted", "retracts": key,
                    "remote_id": "wh-1", "story": {"id": 18, "version": 1}}
    WebhookChannel().retract(receipt, account(fake))  # 409: the receiver has the retraction already
    assert fake.deliveries[f"{key}-retracted"] == 2
    # a receipt whose remote id is the key (a 409 answer) works too; unknown to the receiver is done
    WebhookChannel().retract(Receipt(remote_id="fanout-99-v1-0123456789abcdef"), account(fake))
    assert fake.rejected[-1] == "unknown item"
    with pytest.raises(PermanentChannelError, match="not a webhook receipt"):
        WebhookChannel().retract(Receipt(remote_id="wh-1"), account(fake))
    fake.misbehave("status", status=502)
    with pytest.raises(TransientChannelError):
        WebhookChannel().retract(receipt, account(fake))


def test_the_secret_never_leaves_the_process(fake: FakeWebhookReceiver, lib: MediaLibrary) -> None:
    story, renditions = story_for(lib, 19, images=1)
    post = WebhookChannel().render(story, renditions)
    receipt = WebhookChannel().publish(post, account(fake))
    WebhookChannel().reconcile(post, account(fake, status_url=fake.status_url))
    WebhookChannel().retract(receipt, account(fake))
    assert_no_secret(post, receipt, account(fake))
    for req in fake.requests:
        assert SECRET.encode() not in req.body and SECRET not in str(req.headers) and SECRET not in str(req.query)


def test_maintain(fake: FakeWebhookReceiver) -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    assert WebhookChannel().maintain(account(fake), now) == []
    assert "secret" in WebhookChannel().maintain(account(fake, secret=None), now)[0]
    assert "no URL" in WebhookChannel().maintain(account(None, api_base=None), now)[0]
    assert not fake.requests


def test_two_accounts_on_one_receiver_are_two_posts(lib):
    """The city and county desks of one partner platform share its receiver: each account's
    key is its own, so the second is a post of its own, not a 409 duplicate of the first."""
    story, renditions = story_for(lib, 31)
    post = WebhookChannel().render(story, renditions)
    with FakeWebhookReceiver(SECRET) as fake:
        first = WebhookChannel().publish(post, account(fake))
        second = WebhookChannel().publish(post, replace(account(fake), id=6))
        assert first.remote_id != second.remote_id
        assert not first.extra["duplicate"] and not second.extra["duplicate"]
        assert sorted(fake.posts) == sorted([post.fields["idempotency_key"] + "-a5",
                                             post.fields["idempotency_key"] + "-a6"])
