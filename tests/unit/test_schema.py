"""Schema and migrations: the head is applied, keys that reliability depends on are enforced
by the database, the audit trail cannot be edited, timestamps come back timezone-aware."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.db import session_scope
from services.migrations import current_head
from services.models import AuditEvent, Delivery


def test_database_is_at_migration_head(home):
    with session_scope() as session:
        assert session.scalar(text("SELECT version_num FROM alembic_version")) == current_head()


def test_audit_events_cannot_be_updated_or_deleted_through_the_orm(home):
    with session_scope() as session:
        session.add(AuditEvent(action="create", object_type="story", object_id="1", summary="x"))
    with pytest.raises(PermissionError):
        with session_scope() as session:
            event = session.scalar(select(AuditEvent))
            event.summary = "rewritten"
    with pytest.raises(PermissionError):
        with session_scope() as session:
            session.delete(session.scalar(select(AuditEvent)))
    with session_scope() as session:
        assert session.scalar(select(AuditEvent.summary)) == "x"


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET summary = 'changed'", "DELETE FROM audit_events"])
def test_audit_events_are_append_only_in_the_database_itself(home, statement):
    with session_scope() as session:
        session.add(AuditEvent(action="login", object_type="user", object_id="1"))
    with pytest.raises(DBAPIError, match="append-only"):
        with session_scope() as session:
            session.execute(text(statement))
    with session_scope() as session:
        assert session.scalar(text("SELECT count(*) FROM audit_events")) == 1


def test_one_delivery_per_story_version_and_account(home, settings, storage, tmp_path):
    from tests.helpers import add_site_accounts, make_story

    with session_scope() as session:
        account_id = add_site_accounts(session, settings)[0]
        story_id = make_story(session, storage, tmp_path)
    with session_scope() as session:
        from services.stories import get_story

        version_id = get_story(session, story_id).current.id
        session.add(Delivery(story_id=story_id, story_version_id=version_id, account_id=account_id))
    with pytest.raises(IntegrityError):
        with session_scope() as session:
            session.add(Delivery(story_id=story_id, story_version_id=version_id, account_id=account_id))


def test_timestamps_round_trip_as_aware_utc(home):
    moment = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
    with session_scope() as session:
        session.add(AuditEvent(action="x", object_type="t", object_id="1", at=moment))
    with session_scope() as session:
        stored = session.scalar(select(AuditEvent.at))
    assert stored == moment and stored.tzinfo is not None
