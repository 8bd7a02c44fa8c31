"""channels/weibo.py against tests/fakes/weibo.py on loopback (../shared/channels.md, "Weibo").

Render: the label first, Weibo's own count (a URL counts `url_weight`), the summary cut to
what is left, #话题# hashtags, the link last, one picture (the cover's weibo_image). Publish:
rows of (what the fake is told → Receipt, or exception type + Weibo code + retry_after), each
also checked for the access token leaking into the error. Then reconcile (by text, through
t.cn rewriting), retract, maintain and the fake's own contract.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from channels.base import (
    AccountData,
    MediaItem,
    OutcomeUnknownError,
    PermanentChannelError,
    Post,
    Receipt,
    RenderError,
    Rendition,
    StoryData,
    TransientChannelError,
    weibo_length,
)
from channels.weibo import WeiboChannel, cut_to_weibo, mid_to_bid, weibo_count
from tests.fakes.weibo import DESTROY, SHARE, TIMELINE, FakeWeibo
from tests.unit.test_channel_website import LABEL, MediaLibrary, _jpeg, make_story

TOKEN = "good-token-123"
UID = "5566778899"
LINK = "https://media.example.cn/stories/{id}/"


# ----------------------------------------------------------------------------- helpers


@pytest.fixture()
def lib(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "store")


@pytest.fixture()
def fake():
    with FakeWeibo(tokens={TOKEN: UID, "other-token-456": "1112223334"}, safe_domain="media.example.cn") as server:
        yield server


def weibo_story(lib: MediaLibrary, story_id: int, *, images: int = 1, video: bool = False,
                **kwargs) -> tuple[StoryData, dict[str, dict[str, Rendition]]]:
    """make_story plus a weibo_image rendition of every image and the story's link."""
    story, renditions = make_story(lib, story_id, images=images, video=video, **kwargs)
    for item in story.media:
        if item.kind == "image":
            data = _jpeg(320, 213, f"weibo-{item.sha256}")
            renditions[item.sha256] = {**renditions[item.sha256],
                                       "weibo_image": lib.rendition("weibo_image", data, "image/jpeg", 320, 213)}
    return replace(story, link=LINK.format(id=story_id)), renditions


def account(fake: FakeWeibo | None = None, token: str | None = TOKEN, **settings: object) -> AccountData:
    return AccountData(id=7, channel="weibo", name="weibo-test", api_base=fake.url if fake else None,
                       credentials={"access_token": token} if token else {}, settings=settings)


def rendered(lib: MediaLibrary, story_id: int = 1, **kwargs) -> Post:
    story, renditions = weibo_story(lib, story_id, **kwargs)
    return WeiboChannel().render(story, renditions).with_paths(lib.paths)


def leaks(exc: BaseException, secret: str) -> bool:
    """True if `secret` is in the message or repr of `exc` or of any exception it chains."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if secret in str(seen) or secret in repr(seen) or secret in repr(seen.args):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# ----------------------------------------------------------------------------- counting and cutting


COUNT_ROWS = [
    ("", 0),
    ("abc", 2),  # 3 ASCII = 1.5 → 2
    ("abcd", 2),
    ("中文", 2),
    ("a中", 2),  # (1 + 2) / 2 → 2
    ("【标签】", 4),
    ("https://media.example.cn/a/very/long/path/that/is/long/", 10),
    ("看 https://a.cn/x 和 http://b.cn/y", 24),  # 看␣ ␣和␣ = 2+1+1+2+1 = 7 units → 4, + 2 URLs → 24
]


@pytest.mark.parametrize("text,expected", COUNT_ROWS, ids=[f"count-{i}" for i in range(len(COUNT_ROWS))])
def test_weibo_count_is_the_platform_rule_and_matches_base(text: str, expected: int) -> None:
    assert weibo_count(text) == expected
    assert weibo_count(text) == weibo_length(text)


def test_url_weight_is_a_class_setting() -> None:
    assert WeiboChannel.url_weight == 10
    assert weibo_count("a https://x.cn/1", url_weight=23) == 24


CUT_ROWS = [
    # (text, limit, expected)
    ("第一句话。第二句话。", 20, "第一句话。第二句话。"),  # fits whole
    ("第一句话写在这里。第二句话写在这里。", 12, "第一句话写在这里。"),  # sentence end
    ("他说：“我们到了。”然后离开了这个地方很久很久", 12, "他说：“我们到了。”"),  # closing quote kept
    ("没有句号的一段长长的文字，中间有一个逗号然后继续写下去", 16, "没有句号的一段长长的文字…"),  # clause
    ("The county opened three schools", 10, "The county opened…"),  # word boundary, never inside a word
    ("一二三四五六七八九十一二三四五六七八九十", 10, "一二三四五六七八九…"),  # hard cut
    ("详见 https://media.example.cn/a/b 和其他很多很多内容", 14, "详见 https://media.example.cn/a/b …"),
    ("abc", 0, ""),
]


@pytest.mark.parametrize("text,limit,expected", CUT_ROWS, ids=[f"cut-{i}" for i in range(len(CUT_ROWS))])
def test_cut_to_weibo(text: str, limit: int, expected: str) -> None:
    out = cut_to_weibo(text, limit)
    assert out == expected
    assert weibo_count(out) <= limit


def test_mid_to_bid_known_vector() -> None:
    assert mid_to_bid("3501756485200075") == "z0JH2lOMb"  # the widely published example
    assert mid_to_bid("not-a-number") == "not-a-number"


# ----------------------------------------------------------------------------- render


def test_render_layout_label_first_hashtags_link_last(lib: MediaLibrary) -> None:
    story, renditions = weibo_story(lib, 42)
    post = WeiboChannel().render(story, renditions)
    status = post.fields["status"]
    assert status.startswith(f"【{LABEL}】{story.title} ")
    assert status.endswith(" #教育# #民生实事# " + LINK.format(id=42))
    assert "今年以来，黄山区新建学校3所" in status and "建设进展" not in status  # prose, no headings
    assert "<script>" not in status and "alert" not in status
    assert post.fields["weibo_length"] == weibo_length(status) <= 140
    assert post.fields["tags"] == ["教育", "民生实事"] and post.fields["link"] == LINK.format(id=42)
    assert post.channel == "weibo" and post.story_id == 42


def test_render_without_label_starts_with_the_title_and_cleans_tags(lib: MediaLibrary) -> None:
    story, renditions = weibo_story(lib, 3, label="")
    story = replace(story, tags=("教育 公平", "#民生#", "教育公平", " "))
    status = WeiboChannel().render(story, renditions).fields["status"]
    assert status.startswith(story.title) and "【" not in status
    assert "#教育公平# #民生# " in status and status.count("#教育公平#") == 1


def test_long_summary_is_cut_to_exactly_fill_the_limit(lib: MediaLibrary) -> None:
    story, renditions = weibo_story(lib, 4, body="黄" * 400)
    post = WeiboChannel().render(story, renditions)
    assert weibo_length(post.fields["status"]) == 140
    assert post.fields["summary"].endswith("…")


def test_the_summary_field_wins_over_the_body_and_is_cut_at_a_sentence(lib: MediaLibrary) -> None:
    story, renditions = weibo_story(lib, 5)
    story = replace(story, summary="编辑写的摘要第一句。" * 20)
    post = WeiboChannel().render(story, renditions)
    assert post.fields["summary"].startswith("编辑写的摘要第一句。") and post.fields["summary"].endswith("。")
    assert "今年以来" not in post.fields["status"] and weibo_length(post.fields["status"]) <= 140


def test_ascii_counts_half(lib: MediaLibrary) -> None:
    story, renditions = weibo_story(lib, 6, body="The county opened new schools this year and more. " * 20)
    status = WeiboChannel().render(story, renditions).fields["status"]
    assert len(status) > 140 and weibo_length(status) <= 140  # more than 140 characters, within the count


def test_a_bigger_url_weight_leaves_less_room(lib: MediaLibrary) -> None:
    class HeavyUrls(WeiboChannel):
        url_weight = 30

    story, renditions = weibo_story(lib, 7, body="黄" * 400)
    heavy = HeavyUrls().render(story, renditions).fields
    normal = WeiboChannel().render(story, renditions).fields
    assert weibo_count(heavy["status"], 30) == 140 and weibo_length(heavy["status"]) == 120
    assert len(heavy["summary"]) < len(normal["summary"])


def test_hashtags_go_when_even_they_do_not_fit(lib: MediaLibrary) -> None:
    title, label = "黄" * 100, "标" * 20  # 【label】title + link: 133 of 140
    story, renditions = weibo_story(lib, 8, title=title, label=label)
    story = replace(story, tags=("教育", "民生实事", "第三个话题"))
    post = WeiboChannel().render(story, renditions)
    status = post.fields["status"]
    assert status == f"【{label}】{title} #教育# {LINK.format(id=8)}"  # the other two would make it 142
    assert weibo_length(status) <= 140 and post.fields["tags"] == ["教育"]
    assert post.fields["summary"] == ""  # too little room left for a summary


RENDER_ERRORS = [
    ("empty-title", {"title": ""}, "title"),
    ("title-over-limit", {"title": "黄" * 101}, "title is 101"),
    ("label-title-link-too-long", {"title": "黄" * 100, "label": "标" * 40}, "shorten the title"),
    ("no-link", {"link": ""}, "link"),
    ("relative-link", {"link": "stories/9/"}, "link"),
]


@pytest.mark.parametrize("case,changes,message", RENDER_ERRORS, ids=[r[0] for r in RENDER_ERRORS])
def test_render_errors(lib: MediaLibrary, case: str, changes: dict, message: str) -> None:
    story, renditions = weibo_story(lib, 9)
    with pytest.raises(RenderError, match=message):
        WeiboChannel().render(replace(story, **changes), renditions)


def test_the_picture_is_the_covers_weibo_image(lib: MediaLibrary) -> None:
    story, renditions = weibo_story(lib, 10, images=3)
    cover = story.media_by_role("cover")[0]
    reordered = replace(story, media=tuple(reversed(story.media)))  # cover listed last
    for s in (story, reordered):
        post = WeiboChannel().render(s, renditions)
        assert len(post.files) == 1
        assert post.files[0].key == renditions[cover.sha256]["weibo_image"].key
        assert post.files[0].mime == "image/jpeg" and post.files[0].name == "weibo-10.jpg"


def test_without_a_cover_the_first_image_and_without_images_the_video_poster(lib: MediaLibrary) -> None:
    story, renditions = weibo_story(lib, 11, images=2, video=True)
    no_cover = replace(story, media=tuple(replace(m, role="image") if m.role == "cover" else m
                                          for m in story.media))
    first = no_cover.media[0]
    assert WeiboChannel().render(no_cover, renditions).files[0].key == renditions[first.sha256]["weibo_image"].key
    video_only = replace(story, media=tuple(m for m in story.media if m.kind == "video"))
    video = video_only.media[0]
    assert WeiboChannel().render(video_only, renditions).files[0].key == renditions[video.sha256]["web_poster"].key
    assert WeiboChannel().render(replace(story, media=()), renditions).files == ()


def _with_weibo_image(story: StoryData, renditions: dict, **changes) -> dict:
    cover: MediaItem = story.media_by_role("cover")[0]
    out = dict(renditions)
    out[cover.sha256] = {**renditions[cover.sha256],
                         "weibo_image": replace(renditions[cover.sha256]["weibo_image"], **changes)}
    return out


@pytest.mark.parametrize("changes,message", [
    ({"mime": "image/webp"}, "JPEG, GIF or PNG"),
    ({"bytes": 5_000_000}, "under 5000000 bytes"),
], ids=["webp", "five-mb"])
def test_picture_limits_are_render_errors(lib: MediaLibrary, changes: dict, message: str) -> None:
    story, renditions = weibo_story(lib, 12)
    with pytest.raises(RenderError, match=message):
        WeiboChannel().render(story, _with_weibo_image(story, renditions, **changes))


def test_an_image_without_its_weibo_rendition_is_a_render_error(lib: MediaLibrary) -> None:
    story, renditions = weibo_story(lib, 13)
    cover = story.media_by_role("cover")[0]
    renditions[cover.sha256] = {k: v for k, v in renditions[cover.sha256].items() if k != "weibo_image"}
    with pytest.raises(RenderError, match="weibo_image"):
        WeiboChannel().render(story, renditions)


def test_render_is_pure_and_round_trips(lib: MediaLibrary) -> None:
    story, renditions = weibo_story(lib, 14, images=2)
    first, second = WeiboChannel().render(story, renditions), WeiboChannel().render(story, renditions)
    assert first == second and first.content_hash() == second.content_hash()
    restored = Post.from_json(json.loads(json.dumps(first.to_json(), ensure_ascii=False)))
    assert restored == first and restored.content_hash() == first.content_hash()
    changed = WeiboChannel().render(replace(story, title=story.title + "！"), renditions)
    assert changed.content_hash() != first.content_hash()


def test_declarations_and_outbox() -> None:
    ch = WeiboChannel()
    assert (ch.name, ch.title_zh, ch.length_rule, ch.body_max, ch.max_images) == ("weibo", "微博", "weibo", 140, 1)
    assert ch.image_profiles == ("weibo_image",) and ch.posts_per_hour == 30
    assert 0 < ch.min_seconds_between_requests <= 1
    assert ch.hourly_limit(account()) == 30 and ch.hourly_limit(account(posts_per_hour=12)) == 12
    post = Post("weibo", 1, 1, {"status": "【标签】标题 https://media.example.cn/s/1/", "title": "标题"})
    assert ch.outbox_texts(post) == {"status.txt": "【标签】标题 https://media.example.cn/s/1/"}
    checklist = ch.outbox_checklist(post)
    assert any("status.txt" in line for line in checklist) and "本条微博不带图片" in checklist
    assert all(any("\u4e00" <= c <= "\u9fff" for c in line) for line in checklist)


# ----------------------------------------------------------------------------- publish rows


def _set(**attrs) -> Callable[[FakeWeibo], None]:
    def setup(fake: FakeWeibo) -> None:
        for name, value in attrs.items():
            setattr(fake, name, value)
    return setup


def _call(method: str, *args, **kwargs) -> Callable[[FakeWeibo], None]:
    return lambda fake: getattr(fake, method)(*args, **kwargs)


PUBLISH_ROWS = [
    # (id, fake setup, account settings, images, expected error, code, retry_after, posts recorded)
    ("ok-with-pic", None, {}, 1, None, None, None, 1),
    ("ok-text-only", None, {}, 0, None, None, None, 1),
    ("ok-safe-domain-parent", None, {"safe_domain": "example.cn"}, 0, None, None, None, 1),
    ("rate-limit-default-wait", _set(posts_per_hour=0), {}, 0, TransientChannelError, "10023", 600.0, 0),
    ("rate-limit-retry-after", _set(posts_per_hour=0, rate_limit_retry_after=120), {}, 0,
     TransientChannelError, "10023", 120.0, 0),
    ("ip-rate-limit", _call("fail_next", "10022", status=403), {}, 0, TransientChannelError, "10022", 600.0, 0),
    ("share-rate-limit", _call("fail_next", "10024", status=403), {}, 0, TransientChannelError, "10024", 600.0, 0),
    ("expired-token", _call("expire_token", TOKEN), {}, 0, PermanentChannelError, "21327", None, 0),
    ("invalid-token", _call("revoke_token", TOKEN), {}, 0, PermanentChannelError, "21332", None, 0),
    ("platform-safe-domain", _set(safe_domain="other.cn"), {}, 0, PermanentChannelError, "10017", None, 0),
    ("setting-safe-domain", None, {"safe_domain": "other.cn"}, 0, PermanentChannelError, "10017", None, 0),
    ("pic-too-big", _set(max_pic_bytes=100), {}, 1, PermanentChannelError, "20006", None, 0),
    ("too-many", _call("fail_next", "20016"), {}, 0, OutcomeUnknownError, "20016", None, 0),
    ("similar", _call("fail_next", "20017"), {}, 0, OutcomeUnknownError, "20017", None, 0),
    ("repeated", _call("fail_next", "20111"), {}, 0, OutcomeUnknownError, "20111", None, 0),
    ("server-503", _call("misbehave", "status", path=SHARE, status=503), {}, 1,
     TransientChannelError, "503", None, 0),
    ("http-429", _call("misbehave", "retry_after", path=SHARE, seconds=7), {}, 0,
     TransientChannelError, "429", 7.0, 0),
    ("reset-before-handler", _call("misbehave", "reset", path=SHARE), {}, 0, OutcomeUnknownError, None, None, 0),
    ("timeout-after-posting", _call("misbehave", "hang_after", path=SHARE, seconds=1.5), {"read_timeout": 0.5}, 1,
     OutcomeUnknownError, None, None, 1),
]


@pytest.mark.parametrize("case,setup,settings,images,error,code,retry_after,posts", PUBLISH_ROWS,
                         ids=[r[0] for r in PUBLISH_ROWS])
def test_publish_rows(fake: FakeWeibo, lib: MediaLibrary, case, setup, settings, images, error, code,
                      retry_after, posts) -> None:
    post = rendered(lib, 20, images=images)
    if setup:
        setup(fake)
    acct = account(fake, **settings)
    channel = WeiboChannel()
    if error is None:
        receipt = channel.publish(post, acct)
        status = fake.statuses[-1]
        assert receipt.remote_id == status["idstr"] and receipt.url == f"https://weibo.com/{UID}/{mid_to_bid(status['mid'])}"
        assert receipt.extra["mid"] == status["mid"] and receipt.extra["created_at"] == status["created_at"]
        assert status["text"] == post.fields["status"]
        assert len(fake.uploads) == images
    else:
        with pytest.raises(error) as raised:
            channel.publish(post, acct)
        assert raised.value.code == code
        if error is TransientChannelError:
            assert raised.value.retry_after == retry_after
        assert not leaks(raised.value, TOKEN)
        if code in ("21327", "21332"):
            assert "re-authorise" in str(raised.value)
    assert fake.posts[post.fields["status"]] == posts
    if case == "setting-safe-domain":
        assert SHARE not in fake.paths()  # refused before anything was sent


def test_publish_sends_multipart_pic_and_keeps_the_token_in_the_header(fake: FakeWeibo, lib: MediaLibrary) -> None:
    post = rendered(lib, 21, images=1)
    WeiboChannel().publish(post, account(fake, rip="10.1.2.3"))
    request = [r for r in fake.requests if r.path == SHARE][-1]
    assert request.header("Content-Type").startswith("multipart/form-data")
    assert request.form == {"status": post.fields["status"], "rip": "10.1.2.3"}
    assert request.files["pic"].data == Path(post.files[0].path).read_bytes()
    assert request.header("Authorization") == f"OAuth2 {TOKEN}"
    assert "access_token" not in request.query and "access_token" not in request.form


def test_text_only_publish_is_a_form(fake: FakeWeibo, lib: MediaLibrary) -> None:
    post = rendered(lib, 22, images=0)
    WeiboChannel().publish(post, account(fake))
    request = [r for r in fake.requests if r.path == SHARE][-1]
    assert request.header("Content-Type").startswith("application/x-www-form-urlencoded")
    assert request.form == {"status": post.fields["status"]} and not request.files


def test_publishing_twice_is_a_duplicate_then_reconcile_finds_the_first(fake: FakeWeibo, lib: MediaLibrary) -> None:
    post = rendered(lib, 23)
    channel, acct = WeiboChannel(), account(fake)
    first = channel.publish(post, acct)
    with pytest.raises(OutcomeUnknownError) as raised:
        channel.publish(post, acct)
    assert raised.value.code == "20019"
    assert max(fake.posts.values()) == 1 and len(fake.statuses) == 1
    assert channel.reconcile(post, acct) == first


def test_a_platform_length_refusal_is_permanent(fake: FakeWeibo, lib: MediaLibrary) -> None:
    post = rendered(lib, 24, images=0)
    too_long = replace(post, fields={**post.fields, "status": "黄" * 131 + " " + post.fields["link"]})
    assert weibo_length(too_long.fields["status"]) == 142
    with pytest.raises(PermanentChannelError) as raised:
        WeiboChannel().publish(too_long, account(fake))
    assert raised.value.code == "20012" and fake.posts[too_long.fields["status"]] == 0


def test_a_picture_that_is_not_an_image_is_refused_with_20005(fake: FakeWeibo, lib: MediaLibrary,
                                                             tmp_path: Path) -> None:
    post = rendered(lib, 25, images=1)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"RIFF....WEBPVP8 not a jpeg")
    pic = replace(post.files[0], path=str(junk), sha256=hashlib.sha256(junk.read_bytes()).hexdigest())
    with pytest.raises(PermanentChannelError) as raised:
        WeiboChannel().publish(replace(post, files=(pic,)), account(fake))
    assert raised.value.code == "20005"


def test_a_picture_that_changed_on_disk_is_not_sent(fake: FakeWeibo, lib: MediaLibrary, tmp_path: Path) -> None:
    post = rendered(lib, 26, images=1)
    other = tmp_path / "other.jpg"
    other.write_bytes(_jpeg(10, 10, "other"))
    with pytest.raises(PermanentChannelError, match="sha256"):
        WeiboChannel().publish(replace(post, files=(replace(post.files[0], path=str(other)),)), account(fake))
    with pytest.raises(PermanentChannelError, match="local path"):
        WeiboChannel().publish(replace(post, files=(replace(post.files[0], path=None),)), account(fake))
    assert SHARE not in fake.paths()


def test_no_token_is_permanent_and_sends_nothing(fake: FakeWeibo, lib: MediaLibrary) -> None:
    with pytest.raises(PermanentChannelError, match="no access_token"):
        WeiboChannel().publish(rendered(lib, 27), account(fake, token=None))
    assert fake.requests == []


def test_a_refused_connection_is_transient(lib: MediaLibrary) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    acct = replace(account(), api_base=f"http://127.0.0.1:{port}")
    with pytest.raises(TransientChannelError) as raised:
        WeiboChannel().publish(rendered(lib, 28), acct)
    assert not leaks(raised.value, TOKEN)


def test_receipt_url_from_the_profile_url_setting(fake: FakeWeibo, lib: MediaLibrary) -> None:
    receipt = WeiboChannel().publish(rendered(lib, 29), account(fake, profile_url="https://weibo.com/hsqrm/"))
    status = fake.statuses[-1]
    assert receipt.url == f"https://weibo.com/hsqrm/{mid_to_bid(status['mid'])}"


def test_no_credential_in_any_repr(fake: FakeWeibo, lib: MediaLibrary) -> None:
    acct = account(fake)
    post = rendered(lib, 30)
    receipt = WeiboChannel().publish(post, acct)
    for thing in (acct, receipt, post, WeiboChannel()):
        assert TOKEN not in repr(thing)


# ----------------------------------------------------------------------------- reconcile


def test_reconcile_none_then_found_then_none_after_retract(fake: FakeWeibo, lib: MediaLibrary) -> None:
    post, channel, acct = rendered(lib, 40), WeiboChannel(), account(fake, reconcile_count=5)
    assert channel.reconcile(post, acct) is None
    receipt = channel.publish(post, acct)
    for i in range(3):  # newer posts of the same account in front of it
        channel.publish(rendered(lib, 41 + i), acct)
    found = channel.reconcile(post, acct)
    assert isinstance(found, Receipt) and found == receipt
    request = [r for r in fake.requests if r.path == TIMELINE][-1]
    assert request.method == "GET" and request.query == {"count": "5"}
    channel.retract(receipt, acct)
    assert channel.reconcile(post, acct) is None


def test_reconcile_matches_through_tcn_short_links(fake: FakeWeibo, lib: MediaLibrary) -> None:
    fake.shorten_urls = True
    post, channel, acct = rendered(lib, 45), WeiboChannel(), account(fake)
    receipt = channel.publish(post, acct)
    assert "http://t.cn/" in fake.statuses[-1]["text"] and LINK.format(id=45) not in fake.statuses[-1]["text"]
    assert channel.reconcile(post, acct) == receipt
    other = rendered(lib, 46)
    assert channel.reconcile(other, acct) is None  # another story's text does not match


def test_reconcile_after_unknown_outcomes(fake: FakeWeibo, lib: MediaLibrary) -> None:
    channel = WeiboChannel()
    hung, reset = rendered(lib, 47), rendered(lib, 48)
    fake.misbehave("hang_after", path=SHARE, seconds=1.5)
    with pytest.raises(OutcomeUnknownError):
        channel.publish(hung, account(fake, read_timeout=0.5))
    fake.misbehave("reset", path=SHARE)
    with pytest.raises(OutcomeUnknownError):
        channel.publish(reset, account(fake))
    assert channel.reconcile(hung, account(fake)).remote_id == fake.statuses[-1]["idstr"]
    assert channel.reconcile(reset, account(fake)) is None
    assert fake.posts[hung.fields["status"]] == 1 and fake.posts[reset.fields["status"]] == 0


def test_reconcile_only_sees_the_accounts_own_timeline(fake: FakeWeibo, lib: MediaLibrary) -> None:
    post = rendered(lib, 49)
    WeiboChannel().publish(post, account(fake, token="other-token-456"))
    assert WeiboChannel().reconcile(post, account(fake)) is None
    assert WeiboChannel().reconcile(post, account(fake, token="other-token-456")) is not None


@pytest.mark.parametrize("setup,error,code", [
    (_call("expire_token", TOKEN), PermanentChannelError, "21327"),
    (_call("misbehave", "status", path=TIMELINE, status=502), TransientChannelError, "502"),
    (_call("misbehave", "hang_after", path=TIMELINE, seconds=1.5), TransientChannelError, None),
], ids=["expired-token", "server-502", "read-timeout-is-transient"])
def test_reconcile_errors(fake: FakeWeibo, lib: MediaLibrary, setup, error, code) -> None:
    setup(fake)
    with pytest.raises(error) as raised:
        WeiboChannel().reconcile(rendered(lib, 50), account(fake, read_timeout=0.5))
    assert type(raised.value) is error and raised.value.code == code and not leaks(raised.value, TOKEN)


# ----------------------------------------------------------------------------- retract


def test_retract_deletes_and_is_idempotent(fake: FakeWeibo, lib: MediaLibrary) -> None:
    channel, acct = WeiboChannel(), account(fake)
    receipt = channel.publish(rendered(lib, 60), acct)
    channel.retract(receipt, acct)
    assert fake.statuses == [] and [s["idstr"] for s in fake.deleted] == [receipt.remote_id]
    request = [r for r in fake.requests if r.path == DESTROY][-1]
    assert request.method == "POST" and request.form == {"id": receipt.remote_id}
    channel.retract(receipt, acct)  # 20101: already gone, not an error
    assert len(fake.deleted) == 1


@pytest.mark.parametrize("setup,token,remote_id,code", [
    (None, "other-token-456", None, "20102"),
    (_call("expire_token", TOKEN), TOKEN, None, "21327"),
    (None, TOKEN, "story-1", None),
], ids=["not-own-weibo", "expired-token", "not-a-weibo-receipt"])
def test_retract_errors(fake: FakeWeibo, lib: MediaLibrary, setup, token, remote_id, code) -> None:
    receipt = WeiboChannel().publish(rendered(lib, 61), account(fake))
    if setup:
        setup(fake)
    if remote_id:
        receipt = Receipt(remote_id=remote_id)
    with pytest.raises(PermanentChannelError) as raised:
        WeiboChannel().retract(receipt, account(fake, token=token))
    assert raised.value.code == code and not leaks(raised.value, TOKEN)
    assert len(fake.statuses) == 1


# ----------------------------------------------------------------------------- maintain


NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("credentials,expected", [
    ({}, "no access_token"),
    ({"access_token": TOKEN}, None),
    ({"access_token": TOKEN, "expires_at": (NOW + timedelta(days=30)).isoformat()}, None),
    ({"access_token": TOKEN, "expires_at": (NOW + timedelta(days=3)).isoformat()}, "before then"),
    ({"access_token": TOKEN, "expires_at": (NOW - timedelta(hours=1)).isoformat()}, "expired"),
    ({"access_token": TOKEN, "expires_at": "soon"}, "not an ISO date"),
], ids=["no-token", "no-expiry-known", "far", "soon", "expired", "bad-date"])
def test_maintain_warns_before_the_token_expires(credentials: dict, expected: str | None) -> None:
    acct = AccountData(id=1, channel="weibo", name="w", credentials=credentials)
    warnings = WeiboChannel().maintain(acct, NOW)
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and expected in warnings[0] and TOKEN not in warnings[0]


def test_maintain_reports_the_quota_weibo_gives_when_someone_records_it(fake: FakeWeibo, lib: MediaLibrary) -> None:
    """rate_limit_status.json → note_quota (only with a recorder: no extra call otherwise); a
    rate-limit error is none left this hour, with Retry-After as the reset; a refused token warns."""
    seen: list[dict] = []
    fake.posts_per_hour = 3
    WeiboChannel().publish(rendered(lib, 81), account(fake))
    assert WeiboChannel().maintain(account(fake), NOW) == []
    assert not [r for r in fake.requests if r.path.endswith("rate_limit_status.json")]  # nobody records: no call
    recording = replace(account(fake), report_quota=seen.append)
    assert WeiboChannel().maintain(recording, NOW) == []
    assert seen[-1]["remaining"] == 2 and seen[-1]["limit"] == 3 and seen[-1]["period"] == "hour"
    assert seen[-1]["source"] == "account/rate_limit_status" and "10000" in seen[-1]["what"]
    reset = datetime.fromisoformat(seen[-1]["resets_at"])
    assert NOW + timedelta(minutes=50) < reset <= NOW + timedelta(hours=1)

    fake.rate_limit_retry_after = 120
    fake.posts_per_hour = 1
    with pytest.raises(TransientChannelError):
        WeiboChannel().publish(rendered(lib, 82), recording)
    assert seen[-1]["remaining"] == 0 and seen[-1]["source"] == "error 10023" and seen[-1]["period"] == "hour"
    left = datetime.fromisoformat(seen[-1]["resets_at"]) - datetime.now(UTC)
    assert timedelta(seconds=100) < left <= timedelta(seconds=120)

    fake.expire_token(TOKEN)
    warnings = WeiboChannel().maintain(recording, NOW)
    assert len(warnings) == 1 and "21327" in warnings[0] and TOKEN not in warnings[0]


# ----------------------------------------------------------------------------- the fake itself


def test_fake_counts_length_like_the_channel_and_answers_in_weibos_error_shape(fake: FakeWeibo) -> None:
    link = LINK.format(id=1)
    ok = "黄" * 129 + " " + link  # 129 + ceil(1/2) + 10 = 140
    over = "黄" * 130 + " " + link  # 141
    assert weibo_count(ok) == 140 and weibo_count(over) == 141
    r = requests.post(fake.url + SHARE, data={"access_token": TOKEN, "status": ok}, timeout=5)
    assert r.status_code == 200 and r.json()["idstr"] == str(r.json()["id"])
    r = requests.post(fake.url + SHARE, data={"access_token": TOKEN, "status": over}, timeout=5)
    assert r.status_code == 400
    assert r.json() == {"request": SHARE, "error_code": "20012", "error": r.json()["error"]}
    r = requests.post(fake.url + SHARE, data={"status": ok}, timeout=5)
    assert r.status_code == 403 and r.json()["error_code"] == "21301"
    assert fake.posts == {ok: 1}


def test_fake_hourly_limit_counts_per_token(fake: FakeWeibo) -> None:
    fake.posts_per_hour = 2
    for i in range(2):
        r = requests.post(fake.url + SHARE, data={"access_token": TOKEN, "status": f"{i} {LINK.format(id=i)}"},
                          timeout=5)
        assert r.status_code == 200
    r = requests.post(fake.url + SHARE, data={"access_token": TOKEN, "status": f"x {LINK.format(id=9)}"}, timeout=5)
    assert r.status_code == 403 and r.json()["error_code"] == "10023"
    r = requests.post(fake.url + SHARE, data={"access_token": "other-token-456", "status": f"x {LINK.format(id=9)}"},
                      timeout=5)
    assert r.status_code == 200

