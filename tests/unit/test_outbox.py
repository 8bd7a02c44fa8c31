"""Outbox mode: an account with no API (or set to outbox) gets the exact package, the delivery
waits visibly in `outbox`, and a person's recorded URL marks it published — once, audited."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from services import dispatch, outbox
from services.accounts import add_account
from services.audit import events
from services.db import session_scope
from services.errors import PermissionDenied, ValidationError
from services.models import Delivery
from tests.helpers import RecordingQueue, approve, desk, make_story, run_pipeline


@pytest.fixture
def waiting(home, settings, storage, tmp_path):
    """A story published to a website account in outbox mode: one delivery in the outbox."""
    with session_scope() as session:
        add_account(session, settings, "website", "乡镇网站", mode="outbox")
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)
    queue = RecordingQueue()
    with session_scope() as session:
        created = dispatch.plan_publication(session, queue, story_id).created
    assert run_pipeline(settings, storage, queue, created) == ["outbox"]
    return story_id, created[0]


def test_the_package_is_what_the_api_would_have_received(waiting, settings, storage):
    story_id, delivery_id = waiting
    with session_scope() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery.state == "outbox" and delivery.remote_url is None
        post_hash = delivery.post_hash
        assert [d.id for d in outbox.waiting(session)] == [delivery_id]
    root = outbox.package_dir(settings, delivery_id)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["story_id"], manifest["channel"], manifest["account"]) == (story_id, "website", "乡镇网站")
    assert manifest["content_hash"] == post_hash
    assert manifest["files"], "the cover renditions travel with the package"
    for item in manifest["files"]:
        data = (root / item["file"]).read_bytes()
        assert len(data) == item["bytes"]
        assert "/" not in item["file"][len("files/"):] and ".." not in item["file"]
    assert "登录" in (root / "README.txt").read_text(encoding="utf-8")
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")], "no temp dir left behind"
    names = zipfile.ZipFile(io.BytesIO(outbox.zip_bytes(settings, delivery_id))).namelist()
    assert f"fanout-{delivery_id}/manifest.json" in names and len(names) == len(list(root.rglob("*.*")))
    # a redelivered publish task finds nothing to claim and leaves the package alone
    before = (root / "manifest.json").stat().st_mtime_ns
    assert dispatch.publish_delivery(settings, storage, RecordingQueue(), delivery_id) == "skipped"
    assert (root / "manifest.json").stat().st_mtime_ns == before


@pytest.mark.parametrize(("url", "refused"), [
    ("", "请填写帖子的完整链接"),
    ("weibo.com/123", "请填写帖子的完整链接"),
    ("javascript:alert(1)", "请填写帖子的完整链接"),
    ("https://example.com/" + "a" * 1000, "请填写帖子的完整链接"),
])
def test_a_bad_url_is_refused_and_nothing_changes(waiting, url, refused):
    _, delivery_id = waiting
    with session_scope() as session:
        with pytest.raises(ValidationError) as info:
            outbox.record_posted(session, delivery_id, url, desk(session)["editor"])
        assert refused in info.value.message_zh
    with session_scope() as session:
        assert session.get(Delivery, delivery_id).state == "outbox"


def test_recording_the_url_publishes_once_and_is_audited(waiting):
    story_id, delivery_id = waiting
    url = "https://channels.weixin.qq.com/post/abc"
    with session_scope() as session:
        with pytest.raises(PermissionDenied):
            outbox.record_posted(session, delivery_id, url, desk(session)["r1"])  # a reviewer only
    with session_scope() as session:
        delivery = outbox.record_posted(session, delivery_id, url, desk(session)["editor"])
        assert (delivery.state, delivery.remote_url) == ("published", url)
    with session_scope() as session:
        with pytest.raises(ValidationError, match="not waiting in the outbox"):
            outbox.record_posted(session, delivery_id, url + "2", desk(session)["editor"])
        assert session.get(Delivery, delivery_id).remote_url == url
        assert [e.action for e in events(session, story_id=story_id)].count("outbox.posted") == 1


def test_refreshed_credentials_are_stored_encrypted(home, settings):
    from services.accounts import account_data
    from services.models import ChannelAccount

    with session_scope() as session:
        account = add_account(session, settings, "webhook", "合作平台", credentials={"secret": "old-secret"},
                              api_base="http://127.0.0.1:9/hook")
        data = account_data(settings, account)
        account_id = account.id
    newer = data.with_credentials({"secret": "rotated-secret"})
    assert newer.credentials["secret"] == "rotated-secret"
    with session_scope() as session:
        stored = session.get(ChannelAccount, account_id)
        assert b"rotated-secret" not in stored.credentials_encrypted
        assert account_data(settings, stored).credentials == {"secret": "rotated-secret"}


def test_a_live_account_without_its_credentials_goes_to_the_outbox(home, settings):
    from channels import get_channel
    from channels.base import AccountData

    webhook = get_channel("webhook")
    assert outbox.goes_to_outbox(webhook, AccountData(id=1, channel="webhook", name="a"))
    assert not outbox.goes_to_outbox(webhook, AccountData(id=1, channel="webhook", name="a",
                                                          credentials={"secret": "s"}))
    assert outbox.goes_to_outbox(webhook, AccountData(id=1, channel="webhook", name="a", mode="outbox",
                                                      credentials={"secret": "s"}))
    assert outbox.goes_to_outbox(get_channel("website"), AccountData(id=1, channel="website", name="w")) is False
