"""The dashboard's numbers against the database: per-hour / per-day buckets, failure rates,
beat silence, the next releases and whether each has its story."""

from __future__ import annotations

from datetime import timedelta

import pytest

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


def _image_asset(storage, tmp_path) -> str:  # noqa: ANN001
    from services.stories import MediaInput, StoryInput, create_story
    from tests.helpers import desk, jpeg

    with session_scope() as session:
        story = create_story(session, storage, StoryInput(title="缓存", media=[
            MediaInput(path=jpeg(tmp_path / "c.jpg", size=(1600, 1200)), role="cover")]),
            actor=desk(session)["editor"])
        return story.current.media[0].asset_sha256


def test_cache_hit_rate_and_render_time_on_the_dashboard_and_metrics(home, settings, storage, tmp_path):
    """One encode then one reuse of a rendition: 1 miss, 1 hit, 50 % — in the row, on the
    dashboard and on /metrics; the encode's time is recorded and shows as the profile's median."""
    from sqlalchemy import select

    from services import metrics
    from services.models import RenditionRecord
    from services.renditions import ensure_rendition

    sha = _image_asset(storage, tmp_path)
    with session_scope() as session:
        before = dashboard.overview(session, settings)["cache"]
    assert (before["hits"], before["misses"], before["hit_rate"]) == (0, 0, None)
    first = ensure_rendition(settings, storage, sha, "web_480")
    second = ensure_rendition(settings, storage, sha, "web_480")
    assert (first[1], second[1]) == (False, True)
    with session_scope() as session:
        row = session.scalar(select(RenditionRecord).where(RenditionRecord.profile == "web_480"))
        assert (row.cache_hits, row.cache_misses) == (1, 1)
        assert row.encode_seconds > 0 and row.encoded_at is not None
        data = dashboard.overview(session, settings)
        text = metrics.exposition(session, settings)[0].decode()
    assert (data["cache"]["hits"], data["cache"]["misses"], data["cache"]["hit_rate"]) == (1, 1, 0.5)
    assert data["cache"]["renditions"] == 1 and data["cache"]["bytes"] == row.bytes
    assert data["render"] == [{"profile": "web_480", "count": 1, "median": row.encode_seconds,
                               "p95": row.encode_seconds, "max": row.encode_seconds}]
    assert 'fanout_rendition_cache_hits_total{profile="web_480"} 1.0' in text
    assert 'fanout_rendition_cache_misses_total{profile="web_480"} 1.0' in text
    assert 'fanout_render_seconds_count{profile="web_480"} 1.0' in text
    assert f'fanout_render_seconds_sum{{profile="web_480"}} {row.encode_seconds!r}' in text
    assert f"fanout_rendition_cache_bytes {float(row.bytes)!r}" in text

    # A batch of three image profiles from one decode: three misses sharing one wall time.
    from services.renditions import ensure_renditions

    ensure_renditions(settings, storage, sha, ["web_480", "web_960", "web_1440", "web_thumb"])
    with session_scope() as session:
        rows = {r.profile: r for r in session.scalars(select(RenditionRecord))}
        assert {p: (r.cache_hits, r.cache_misses) for p, r in rows.items()} == {
            "web_480": (2, 1), "web_960": (0, 1), "web_1440": (0, 1), "web_thumb": (0, 1)}
        shares = {rows[p].encode_seconds for p in ("web_960", "web_1440", "web_thumb")}
        assert len(shares) == 1 and shares.pop() > 0
        assert dashboard.overview(session, settings)["cache"]["hit_rate"] == 2 / 6


def test_a_twin_profile_linked_to_an_encoded_file_is_a_hit_not_a_miss(home, settings, storage, tmp_path):
    """Douyin's and 视频号's clip are the same encode: the second one links the first one's file."""
    from sqlalchemy import select

    from services.models import RenditionRecord
    from services.renditions import RenditionParams, ensure_rendition
    from services.stories import MediaInput, StoryInput, create_story
    from tests.helpers import desk, video

    with session_scope() as session:
        story = create_story(session, storage, StoryInput(title="孪生", media=[
            MediaInput(path=video(tmp_path / "v.mp4", seconds=2), role="video")]), actor=desk(session)["editor"])
        sha = story.current.media[0].asset_sha256
    cut = RenditionParams(start=0.0, end=1.5)
    assert ensure_rendition(settings, storage, sha, "douyin_video", params=cut)[1] is False
    assert ensure_rendition(settings, storage, sha, "channels_video", params=cut)[1] is True
    with session_scope() as session:
        rows = {r.profile: r for r in session.scalars(select(RenditionRecord))}
        assert (rows["douyin_video"].cache_hits, rows["douyin_video"].cache_misses) == (0, 1)
        assert (rows["channels_video"].cache_hits, rows["channels_video"].cache_misses) == (1, 0)
        assert rows["douyin_video"].encode_seconds > 0.05  # a real ffmpeg run, not a rounding artefact
        assert rows["channels_video"].encode_seconds is None


def test_render_summary_median_p95_and_window(home, settings, storage, tmp_path):
    """Nearest-rank median and p95 of the encodes in the window; older encodes are left out."""
    from services.models import RenditionRecord
    from services.rendition_stats import render_summary

    sha = _image_asset(storage, tmp_path)
    now = utcnow()
    with session_scope() as session:
        for i in range(1, 21):  # 1..20 seconds, within the last day
            session.add(RenditionRecord(asset_sha256=sha, profile="douyin_video", profile_version=1, params=f"in={i}",
                                        storage_key=f"k{i}", mime="video/mp4", bytes=1, sha256="x",
                                        encode_seconds=float(i), encoded_at=now - timedelta(hours=i)))
        session.add(RenditionRecord(asset_sha256=sha, profile="douyin_video", profile_version=1, params="old",
                                    storage_key="old", mime="video/mp4", bytes=1, sha256="x",
                                    encode_seconds=999.0, encoded_at=now - timedelta(days=8)))
    with session_scope() as session:
        summary = render_summary(session, now)
    assert summary == [{"profile": "douyin_video", "count": 20, "median": 10.0, "p95": 19.0, "max": 20.0}]


def test_tree_rss_sums_a_process_and_its_descendants(tmp_path):
    """/proc parsing: children found through `ppid` in /proc/<pid>/stat (a comm with spaces and
    parentheses included), resident pages from statm; unrelated processes left out."""
    import os

    from services.ops import tree_rss_bytes

    page = os.sysconf("SC_PAGE_SIZE")
    procs = {10: (1, "celery", 100), 11: (10, "celery (pool) 1", 50), 12: (11, "ffmpeg", 400), 13: (1, "bash", 7)}
    for pid, (ppid, comm, pages) in procs.items():
        folder = tmp_path / str(pid)
        folder.mkdir()
        (folder / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560\n")
        (folder / "statm").write_text(f"9999 {pages} 10 1 0 50 0\n")
    (tmp_path / "self").mkdir()  # not a pid: ignored
    assert tree_rss_bytes(10, proc=tmp_path) == (100 + 50 + 400) * page
    assert tree_rss_bytes(11, proc=tmp_path) == (50 + 400) * page
    assert tree_rss_bytes(99, proc=tmp_path) is None


def test_worker_load_from_the_heartbeat_on_the_dashboard_and_metrics(home, settings):
    import os

    from services import metrics
    from services.ops import WorkerLoad, beat_heartbeat, sample_load

    mine = sample_load(os.getpid(), tasks_active=2, tasks_done=40)
    assert mine.rss_bytes > 10 * 1024 * 1024 and mine.cpu_count == os.cpu_count()
    assert mine.load_1m == pytest.approx(os.getloadavg()[0], abs=2.0)
    beat_heartbeat("media1@host", queues="media", pid=os.getpid(), pool="prefork", concurrency=1,
                   load=WorkerLoad(load_1m=1.5, load_5m=0.75, load_15m=0.25, cpu_count=4, rss_bytes=300 * 1048576,
                                   tasks_active=1, tasks_done=17))
    beat_heartbeat("publish1@host", queues="publish", pid=os.getpid(), pool="thread", concurrency=8)  # no load yet
    with session_scope() as session:
        workers = {w.hostname: w for w in dashboard.overview(session, settings)["workers"]}
        text = metrics.exposition(session, settings)[0].decode()
    media = workers["media1@host"]
    assert (media.load_1m, media.load_5m, media.load_15m, media.cpu_count) == (1.5, 0.75, 0.25, 4)
    assert (media.rss_bytes, media.tasks_active, media.tasks_done) == (300 * 1048576, 1, 17)
    assert workers["publish1@host"].tasks_done is None
    assert 'fanout_worker_tasks_active{worker="media1@host"} 1.0' in text
    assert 'fanout_worker_tasks_done_total{worker="media1@host"} 17.0' in text
    assert 'fanout_worker_load1{worker="media1@host"} 1.5' in text
    assert 'worker="publish1@host"' not in text  # nothing reported, nothing made up
