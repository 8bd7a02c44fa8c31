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


def test_0008_downgrades_and_upgrades_again_keeping_the_cache(home, database_url):
    """0008 (cache counters, worker load, account upkeep/quota) goes down to 0007 and back up: a
    rendition made before it counts as one miss and no hit; the head matches the models."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine, inspect

    from services.db import dispose_engines
    from services.migrations import alembic_config
    from services.models import Base

    config = alembic_config(database_url)
    dispose_engines()
    command.downgrade(config, "0007")
    engine = create_engine(database_url)
    try:
        columns = {t: {c["name"] for c in inspect(engine).get_columns(t)}
                   for t in ("renditions", "worker_heartbeats", "channel_accounts")}
        assert not columns["renditions"] & {"cache_hits", "cache_misses", "encode_seconds", "encoded_at"}
        assert not columns["worker_heartbeats"] & {"load_1m", "rss_bytes", "tasks_active", "tasks_done"}
        assert not columns["channel_accounts"] & {"upkeep_warnings", "quota", "quota_at"}
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO assets (sha256, kind, mime, bytes, storage_key, original_name, created_at) "
                              "VALUES (:s, 'image', 'image/jpeg', 1, 'k', '', CURRENT_TIMESTAMP)"), {"s": "a" * 64})
            conn.execute(text("INSERT INTO renditions (asset_sha256, profile, profile_version, params, storage_key, "
                              "mime, bytes, sha256, created_at) VALUES (:s, 'web_480', 1, '', 'r', 'image/jpeg', 5, "
                              ":h, CURRENT_TIMESTAMP)"), {"s": "a" * 64, "h": "b" * 64})
        engine.dispose()
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT cache_hits, cache_misses, encode_seconds FROM renditions")).one() == (
                0, 1, None)
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == current_head()
    finally:
        engine.dispose()
