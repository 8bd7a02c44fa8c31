"""三审三校 in the service layer: each rule holds and each violation is refused, on SQLite and
PostgreSQL — same reviewer twice, the author reviewing, a skipped level, an edit after a
sign-off, publishing before approval, a rendering that changed after approval (held, then
re-approved for that one channel), blocking findings, unacknowledged warnings, questions."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from media import profiles
from services import dispatch, proofing, review
from services.db import session_scope
from services.errors import NotApproved, PermissionDenied, ValidationError
from services.models import AuditEvent, Delivery, Signature
from services.stories import StoryInput, edit_story
from services.users import create_user
from tests.helpers import RecordingQueue, add_site_accounts, approve, desk, make_story, run_pipeline


@pytest.fixture
def story(home, settings, storage, tmp_path):
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
        return make_story(session, storage, tmp_path, body="全县新增公办学位 1200 个。")


def _user(session, name):
    return desk(session)[name]


def _submit(settings, story_id, who="editor"):
    with session_scope() as session:
        return review.submit(session, settings, story_id, _user(session, who))


def _sign(settings, storage, story_id, who, approve_it=True, **kwargs):
    kwargs.setdefault("acknowledge", "all")
    with session_scope() as session:
        user = who if not isinstance(who, str) else _user(session, who)
        if not isinstance(who, str):
            user = session.merge(who)
        return review.sign(session, settings, storage, story_id, user, approve=approve_it, **kwargs).id


def _state(story_id):
    with session_scope() as session:
        return review.current_version(session, story_id)[1].review_state


def test_three_levels_in_order_by_three_people_approve_every_rendering(settings, storage, story):
    _submit(settings, story)
    assert _state(story) == "submitted"
    for name, after in (("r1", "level1"), ("r2", "level2"), ("r3", "approved")):
        _sign(settings, storage, story, name, opinion="同意")
        assert _state(story) == after
    with session_scope() as session:
        signatures = session.scalars(select(Signature).order_by(Signature.level)).all()
        assert [(s.level, s.reviewer.username, s.decision) for s in signatures] == [
            (1, "r1", "approve"), (2, "r2", "approve"), (3, "r3", "approve")]
        for s in signatures:  # each sign-off binds to what both accounts will receive
            assert len(s.post_hashes) == 2 and all(len(h) == 64 for h in s.post_hashes.values())
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(story))).all()
        assert actions.count("approve") == 3 and "submit" in actions


def test_publishing_before_approval_is_refused(settings, storage, story):
    for step in ("draft", "submitted", "level1"):
        with pytest.raises(NotApproved) as refused:
            with session_scope() as session:
                dispatch.plan_publication(session, RecordingQueue(), story)
        assert refused.value.exit_code == 3 and "not approved" in refused.value.message
        assert "尚未通过三审" in refused.value.message_zh
        if step == "draft":
            _submit(settings, story)
        elif step == "submitted":
            _sign(settings, storage, story, "r1")
    with session_scope() as session:
        assert session.scalars(select(Delivery)).all() == []


def test_a_reviewer_cannot_skip_a_level(settings, storage, story):
    _submit(settings, story)
    with pytest.raises(PermissionDenied, match="not a level-1 reviewer"):
        _sign(settings, storage, story, "r2")  # 复审 reviewer while it waits for 初审
    with pytest.raises(ValidationError, match="waits for level 1"):
        _sign(settings, storage, story, "r1", level=2)  # a stale page asking for another level
    assert _state(story) == "submitted"


def test_the_same_reviewer_cannot_sign_two_levels(settings, storage, story):
    with session_scope() as session:
        both, _ = create_user(session, "r12", roles=["reviewer"], levels=[1, 2], password="pw-r12-123")
    _submit(settings, story)
    _sign(settings, storage, story, both)
    with pytest.raises(PermissionDenied, match="three levels need three different reviewers"):
        _sign(settings, storage, story, both)
    assert _state(story) == "level1"


def test_the_author_never_reviews_their_own_story(settings, storage, tmp_path, home):
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
        writer, _ = create_user(session, "writer", roles=["editor", "reviewer"], levels=[1], password="pw-w-12345")
        from services.stories import create_story

        story_id = create_story(session, storage, StoryInput(title="自己写的稿子", body_markdown="正文"),
                                actor=writer).id
    with session_scope() as session:
        review.submit(session, settings, story_id, session.merge(writer))
    with pytest.raises(PermissionDenied, match="author may not review"):
        _sign(settings, storage, story_id, writer)


def test_rejection_returns_to_the_author_with_the_opinion_and_a_new_round_starts(settings, storage, story):
    _submit(settings, story)
    _sign(settings, storage, story, "r1")
    with pytest.raises(ValidationError, match="needs an opinion"):
        _sign(settings, storage, story, "r2", approve_it=False)
    _sign(settings, storage, story, "r2", approve_it=False, opinion="数据需核实来源")
    assert _state(story) == "rejected"
    with session_scope() as session:
        status = review.status(session, story)
    assert status["signatures"][-1]["opinion"] == "数据需核实来源"
    with pytest.raises(NotApproved):
        with session_scope() as session:
            dispatch.plan_publication(session, RecordingQueue(), story)
    _submit(settings, story)  # resubmitted: round 2 starts again at 初审
    with session_scope() as session:
        assert review.current_version(session, story)[1].review_round == 2
    for name in ("r1", "r2", "r3"):
        _sign(settings, storage, story, name)
    assert _state(story) == "approved"


def test_withdrawal_only_by_the_author_and_only_before_the_first_sign_off(settings, storage, story):
    _submit(settings, story)
    with pytest.raises(PermissionDenied, match="only the author"):
        with session_scope() as session:
            review.withdraw(session, story, _user(session, "r1"))
    with session_scope() as session:
        review.withdraw(session, story, _user(session, "editor"))
    assert _state(story) == "draft"
    _submit(settings, story)
    _sign(settings, storage, story, "r1")
    with pytest.raises(ValidationError, match="only before its first sign-off"):
        with session_scope() as session:
            review.withdraw(session, story, _user(session, "editor"))


def test_an_edit_after_a_sign_off_makes_a_new_version_and_restarts_review(settings, storage, story):
    _submit(settings, story)
    _sign(settings, storage, story, "r1")
    with session_scope() as session:
        version = edit_story(session, storage, story, StoryInput(title="改过的标题", body_markdown="新的正文"),
                             actor=_user(session, "editor"))
        assert version.number == 2
    with session_scope() as session:
        data = review.status(session, story)
    assert data["review_state"] == "draft" and data["versions"][0]["review_state"] == "superseded"
    assert data["signatures"] == []  # signatures bind to v1, not to the new version
    with pytest.raises(ValidationError, match="nothing to sign"):
        _sign(settings, storage, story, "r2")
    _submit(settings, story)
    for name in ("r1", "r2", "r3"):
        _sign(settings, storage, story, name)
    assert _state(story) == "approved"


def test_blocking_findings_stop_approval_and_warnings_need_acknowledgement(settings, storage, home, tmp_path):
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
        story_id = make_story(session, storage, tmp_path, body="正文里有示例敏感词。")
    proofing.write_word_list(settings, "sensitive", "示例敏感词\n")
    _submit(settings, story_id)
    with pytest.raises(ValidationError, match="blocking proof findings") as refused:
        _sign(settings, storage, story_id, "r1")
    assert "示例敏感词" in refused.value.message_zh
    assert _state(story_id) == "submitted"

    with session_scope() as session:  # fix the text: a new version, and a warning (no alt text)
        from services.stories import MediaInput

        edit_story(session, storage, story_id, StoryInput(title="测试稿件", body_markdown="正文已改。", media=[
            MediaInput(path=tmp_path / f"cover-测试稿件.jpg", role="cover", alt="")]), keep_media=False,
            actor=_user(session, "editor"))
    _submit(settings, story_id)
    with pytest.raises(ValidationError, match="unacknowledged warnings") as refused:
        _sign(settings, storage, story_id, "r1", acknowledge=[])
    assert "替代文字" in refused.value.message_zh
    with session_scope() as session:
        keys = [f.key for f in proofing.warnings(review.latest_findings(
            session, review.current_version(session, story_id)[1]))]
    assert keys
    _sign(settings, storage, story_id, "r1", acknowledge=keys)
    with session_scope() as session:
        signature = session.scalar(select(Signature).where(Signature.decision == "approve"))
        assert sorted(signature.acknowledged) == sorted(keys)


def test_a_rendering_changed_after_approval_is_held_until_that_channel_is_reapproved(
        settings, storage, story, monkeypatch):
    approve(settings, storage, story)
    # The website's image profile changes after 终审 (a new version of web_480): its rendering differs.
    changed = dataclasses.replace(profiles.PROFILES["web_480"], version=profiles.PROFILES["web_480"].version + 1)
    monkeypatch.setitem(profiles.PROFILES, "web_480", changed)
    queue = RecordingQueue()
    with session_scope() as session:
        planned = dispatch.plan_publication(session, queue, story)
    outcomes = [dispatch.render_delivery(settings, storage, queue, d, worker="t") for d in planned.created]
    with session_scope() as session:
        by_channel = {d.account.channel: d for d in session.scalars(select(Delivery))}
    assert by_channel["website"].state == "held" and by_channel["website"].last_error_code == "needs_reapproval"
    assert by_channel["rss"].state == "ready"  # only the changed channel waits
    assert sorted(outcomes) == ["held", "ready"]
    held_id = by_channel["website"].id
    with pytest.raises(PermissionDenied, match="only a 终审 reviewer"):
        with session_scope() as session:
            review.reapprove_delivery(session, settings, storage, queue, held_id, _user(session, "r1"))
    with session_scope() as session:
        review.reapprove_delivery(session, settings, storage, queue, held_id, _user(session, "r3"))
    assert held_id in queue.of("render")
    assert run_pipeline(settings, storage, queue, [held_id, by_channel["rss"].id]) == ["published", "published"]


def test_an_account_added_after_approval_needs_its_own_approval(settings, storage, story, monkeypatch):
    approve(settings, storage, story)
    from services.accounts import add_account

    with session_scope() as session:
        late = add_account(session, settings, "website", "乡镇网站", account_settings={
            "site_dir": str(settings.resolved_home / "township-site")}).id
    queue = RecordingQueue()
    with session_scope() as session:
        planned = dispatch.plan_publication(session, queue, story)
    results = {d: dispatch.render_delivery(settings, storage, queue, d) for d in planned.created}
    with session_scope() as session:
        late_delivery = session.scalar(select(Delivery).where(Delivery.account_id == late))
    assert results[late_delivery.id] == "held" and "no approved rendering" in late_delivery.last_error


def test_questions_go_to_the_next_level_and_are_answered_there(settings, storage, story):
    _submit(settings, story)
    with session_scope() as session:
        asked = review.escalate(session, story, _user(session, "r1"), "数据口径是否与统计局一致？").id
    with pytest.raises(PermissionDenied, match="level-2 reviewer"):
        with session_scope() as session:
            review.answer(session, asked, _user(session, "r3"), "一致")
    with session_scope() as session:
        review.answer(session, asked, _user(session, "r2"), "一致，可以发布。")
    with session_scope() as session:
        questions = review.status(session, story)["questions"]
    assert questions == [{"id": asked, "from_level": 1, "question": "数据口径是否与统计局一致？", "asked_by": "r1",
                          "answer": "一致，可以发布。", "answered_by": "r2"}]
    with pytest.raises(PermissionDenied):  # only the reviewer of the waiting level may ask
        with session_scope() as session:
            review.escalate(session, story, _user(session, "r2"), "？")


def test_the_inbox_shows_each_level_its_own_work(settings, storage, story):
    _submit(settings, story)
    with session_scope() as session:
        assert [s.id for s in review.inbox(session, _user(session, "r1"))[1]] == [story]
        assert review.inbox(session, _user(session, "r2")) == {2: []}
        assert review.counts(session) == {1: 1, 2: 0, 3: 0}
    _sign(settings, storage, story, "r1")
    with session_scope() as session:
        assert review.counts(session) == {1: 0, 2: 1, 3: 0}
        assert [s.id for s in review.inbox(session, _user(session, "r2"))[2]] == [story]


def test_permissions_are_checked_in_the_service_layer(settings, storage, story, tmp_path):
    from services.stories import create_story

    with session_scope() as session:
        ops, _ = create_user(session, "ops1", roles=["ops"], password="pw-ops-12345")
    with pytest.raises(PermissionDenied, match="lacks role editor"):
        with session_scope() as session:
            create_story(session, storage, StoryInput(title="运维不能写稿"), actor=session.merge(ops))
    with pytest.raises(PermissionDenied, match="lacks role editor"):
        with session_scope() as session:
            edit_story(session, storage, story, StoryInput(title="改"), actor=_user(session, "r1"))
    with pytest.raises(PermissionDenied, match="not an editor"):
        with session_scope() as session:
            review.submit(session, settings, story, _user(session, "r1"))
    approve(settings, storage, story)
    with pytest.raises(PermissionDenied, match="lacks role editor or ops"):
        with session_scope() as session:
            dispatch.plan_publication(session, RecordingQueue(), story, actor=_user(session, "r1"))
    with session_scope() as session:  # ops may release an approved story
        assert len(dispatch.plan_publication(session, RecordingQueue(), story, actor=session.merge(ops)).created) == 2


def test_submission_warms_the_previews_so_sign_off_finds_them_cached(settings, storage, story):
    from services.models import RenditionRecord

    queue = RecordingQueue()
    with session_scope() as session:
        review.submit(session, settings, story, _user(session, "editor"), queue=queue)
        version_id = review.current_version(session, story)[1].id
    assert queue.sent == [("prepare_review", version_id, None)]  # after the commit
    made = review.warm_previews(settings, storage, version_id)
    with session_scope() as session:
        cached = session.scalars(select(RenditionRecord)).all()
    # website: 480/960/1440/thumb, rss: feed_image — for the one cover
    assert made == 5 and {r.profile for r in cached} == {"web_480", "web_960", "web_1440", "web_thumb", "feed_image"}
    _sign(settings, storage, story, "r1")
    with session_scope() as session:
        assert len(session.scalars(select(RenditionRecord)).all()) == 5  # nothing encoded again
