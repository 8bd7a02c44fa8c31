"""The dashboard's numbers against the database: per-hour / per-day buckets, failure rates,
beat silence, the next releases and whether each has its story."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from services import dashboard, dispatch
from services.db import session_scope
from services.models import Delivery, utcnow
from tests.helpers import RecordingQueue, add_site_accounts, approve, make_story


def test_buckets_rates_and_beat(home, settings, storage, tmp_path):
    with session_scope() as session:
        add_site_accounts(session, settings)
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)
    with session_scope() as session:
        website_id, rss_id = dispatch.plan_publication(session, RecordingQueue(), story_id).created
    now = utcnow()
    with session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == website_id).values(
            state="published", published_at=now - timedelta(minutes=60)))
        session.execute(update(Delivery).where(Delivery.id == rss_id).values(
            state="failed", updated_at=now - timedelta(days=3)))
    with session_scope() as session:
        data = dashboard.overview(session, settings, now=now)
    hours, days = data["activity"]["hours"], data["activity"]["days"]
    assert sum(hours["published"]) == 1 and hours["published"][-2] == 1  # an hour ago: the bucket before this hour's
    assert sum(hours["failed"]) == 0 and data["activity"]["failure_rate_24h"] == 0.0
    assert sum(days["failed"]) == 1 and days["failed"][-4] == 1 and data["activity"]["failure_rate_30d"] == 0.5
    assert data["totals"]["published"] == 1 and data["totals"]["failed"] == 1
    assert data["beat"]["silent"] and data["beat"]["at"] is None
    with session_scope() as session:
        dashboard.record_tick(session, "released=0")
    with session_scope() as session:
        beat = dashboard.overview(session, settings)["beat"]
    assert not beat["silent"] and beat["summary"] == "released=0"
