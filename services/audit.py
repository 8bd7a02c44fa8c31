"""The audit trail: every create, edit, publish, retraction and login becomes an AuditEvent.

Events are append-only (models.py refuses updates/deletes, and database triggers do too).
`record` adds the event to the caller's unit of work, so it commits or rolls back with the
change it describes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import AuditEvent, User


def record(session: Session, *, actor: User | None, action: str, object_type: str, object_id: Any,
           summary: str = "", story_version: int | None = None, data: dict[str, Any] | None = None) -> None:
    session.add(AuditEvent(
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else "system",
        action=action, object_type=object_type, object_id=str(object_id),
        story_version=story_version, summary=summary, data=data or {},
    ))


def events(session: Session, *, story_id: int | None = None, limit: int = 200) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if story_id is not None:
        query = query.where(AuditEvent.object_type == "story", AuditEvent.object_id == str(story_id))
    return list(session.scalars(query))
