"""The ops failure list and its actions: what is listed (failed, unknown, held, stuck), the
filters, and retry / reconcile / give-up — each audited, each refused where it could harm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from services import dispatch, failures
from services.audit import events
from services.db import session_scope
from services.errors import PermissionDenied, ValidationError
from services.models import Delivery, User, utcnow
from services.users import create_user
from tests.helpers import RecordingQueue, add_site_accounts, approve, desk, make_story


@pytest.fixture
def four(home, settings, storage, tmp_path):
    """Four deliveries (two stories × website + RSS), put in the states ops must see."""
    with session_scope() as session:
        add_site_accounts(session, settings)
        first = make_story(session, storage, tmp_path, title="第一篇")
        second = make_story(session, storage, tmp_path, title="第二篇")
    approve(settings, storage, first)
    approve(settings, storage, second)
    queue = RecordingQueue()
    ids = []
    for story_id in (first, second):
        with session_scope() as session:
            ids += dispatch.plan_publication(session, queue, story_id).created
    failed, unknown, stuck, fine = ids
    old = utcnow() - timedelta(hours=2)
    with session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == failed).values(
            state="failed", last_error="HTTP 401: rest_cannot_create", last_error_code="rest_cannot_create"))
        session.execute(update(Delivery).where(Delivery.id == unknown).values(
            state="unknown", last_error="no answer in 30s after sending", last_error_code="unknown"))
        session.execute(update(Delivery).where(Delivery.id == stuck).values(state="publishing", updated_at=old))
        session.execute(update(Delivery).where(Delivery.id == fine).values(state="published"))
        ops, _ = create_user(session, "ops1", roles=["ops"], password="pw-ops1-1234")
    return {"failed": failed, "unknown": unknown, "stuck": stuck, "fine": fine}


def _ops(session) -> User:
    from services.users import find_user

    return find_user(session, "ops1")


def test_the_list_shows_what_needs_a_person_and_filters(four, settings):
    with session_scope() as session:
        rows = failures.failures(session, settings)
        kinds = {r.delivery.id: r.kind for r in rows}
        assert kinds == {four["failed"]: "failed", four["unknown"]: "unknown", four["stuck"]: "stuck"}
        assert failures.counts(rows) == {"failed": 1, "unknown": 1, "held": 0, "stuck": 1}
        by_code = failures.failures(session, settings, code="rest_cannot_create")
        assert [r.delivery.id for r in by_code] == [four["failed"]] and "rest_cannot_create" in by_code[0].why
        rss = failures.failures(session, settings, channel="rss")
        assert {r.delivery.account.channel for r in rss} == {"rss"}
        stuck = next(r for r in rows if r.kind == "stuck")
        assert stuck.why.startswith("publishing since") and not stuck.can_retry


def test_retry_reconcile_and_give_up_are_audited(four, settings):
    queue = RecordingQueue()
    with session_scope() as session:
        with pytest.raises(PermissionDenied):
            failures.retry(session, queue, four["failed"], desk(session)["editor"])
    with session_scope() as session:
        delivery = failures.retry(session, queue, four["failed"], _ops(session))
        assert (delivery.state, delivery.attempts, delivery.last_error) == ("planned", 0, None)
        assert queue.sent == []  # after the commit
    assert queue.of("render") == [four["failed"]]
    with session_scope() as session:
        failures.reconcile(session, queue, four["unknown"], _ops(session))
    assert queue.of("reconcile") == [four["unknown"]]
    with session_scope() as session:
        with pytest.raises(ValidationError, match="needs a reason"):
            failures.give_up(session, four["unknown"], _ops(session), " ")
    with session_scope() as session:
        delivery = failures.give_up(session, four["unknown"], _ops(session), "平台已人工核实未发出")
        assert delivery.state == "failed" and "may be on the platform" in delivery.last_error
    with session_scope() as session:
        with pytest.raises(ValidationError):
            failures.give_up(session, four["fine"], _ops(session), "x")  # published: nothing to give up
        actions = [e.action for e in events(session, limit=50)]
    assert {"delivery.retry", "delivery.reconcile", "delivery.give_up"} <= set(actions)


def test_a_failure_that_may_have_been_posted_is_not_retried(four):
    with session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == four["failed"]).values(last_error_code="unreconciled"))
    with session_scope() as session:
        with pytest.raises(ValidationError, match="post twice"):
            failures.retry(session, RecordingQueue(), four["failed"], _ops(session))
        assert session.get(Delivery, four["failed"]).state == "failed"
