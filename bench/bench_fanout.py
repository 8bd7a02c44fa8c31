"""Benchmark: 2,000 deliveries across 40 accounts on Redis with real workers, vs no-op tasks.

Not a test. Setup (not timed): a fresh FANOUT_HOME on PostgreSQL (database `fanout_bench`,
recreated) and Redis (db 2, a key prefix of its own); 40 signed-webhook accounts pointing at
the loopback fake of tests/fakes/webhook.py answering after 20 ms; 50 approved text stories
(50 × 40 = 2,000 deliveries); the workers `fanout up` starts (media: prefork 1, publish:
threads 8).

* baseline = 2,000 `fanout.noop` tasks sent to the publish queue (same broker, same worker,
  same pool), timed from the first send until the last one ran (each INCRs a Redis counter).
* ours = `plan_publication` of the 50 stories at once (the release), timed until every one
  of the 2,000 deliveries is `published`. Review made the renditions, so each story's 40
  deliveries go to the publish queue as `fanout.deliver` tasks of publish_batch_size (20):
  one render, one claim and one record per task, the 20 ms POSTs sent concurrently.

Baseline and ours run in interleaved rounds (3 by default, fresh stories each round) and the
median round's ratio counts: this machine is shared and noisy, and a burst of other load
during one measurement would otherwise decide the result.

Prints deliveries/s, no-op tasks/s and their ratio (target ≥ 0.5), the 50th/95th percentile
of release-to-published latency, and the CPU seconds each process spent during the run (the
machine has two cores: the publish worker, PostgreSQL and this process with the fake share
them). FANOUT_PUBLISH_BATCH_SIZE=1 measures one delivery per task.

    .venv/bin/python bench/bench_fanout.py [--stories 50] [--accounts 40] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DB_NAME = "fanout_bench"
TARGET = 0.5


def _recreate_database() -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine("postgresql+psycopg://127.0.0.1/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DB_NAME}"))
    admin.dispose()
    return f"postgresql+psycopg://127.0.0.1/{DB_NAME}"


def _cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group `pgid` (Linux /proc)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp … utime(11) stime(12)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stories", type=int, default=50)
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=3, help="baseline/ours pairs, interleaved; the median counts")
    args = parser.parse_args()
    total = args.stories * args.accounts

    home = Path(tempfile.mkdtemp(prefix="fanout-bench-fanout-"))
    prefix = f"b{uuid.uuid4().hex[:8]}:"
    os.environ.update({"FANOUT_HOME": str(home), "FANOUT_DATABASE_URL": _recreate_database(),
                       "FANOUT_BROKER_URL": "redis://127.0.0.1:6379/2", "FANOUT_BROKER_PREFIX": prefix,
                       "FANOUT_PUBLIC_URL": "http://127.0.0.1:8000/site/"})
    import redis

    import worker
    from services import dispatch, processes
    from services.accounts import add_account
    from services.config import get_settings
    from services.db import session_scope
    from services.migrations import upgrade
    from services.models import Delivery
    from services.stories import StoryInput, create_story
    from services.storage import open_storage
    from tests.fakes.webhook import FakeWebhookReceiver
    from tests.helpers import approve, desk

    settings = get_settings()
    settings.ensure_dirs()
    upgrade(settings.db_url)
    storage = open_storage(settings)
    client = redis.Redis.from_url("redis://127.0.0.1:6379/2")
    with FakeWebhookReceiver("bench-secret") as fake:
        fake.latency = args.latency
        print(f"setup: {args.accounts} webhook accounts, {args.rounds} × {args.stories} approved stories "
              f"({total} deliveries a round), fake answers after {args.latency * 1000:.0f} ms ...", flush=True)
        started = time.perf_counter()
        with session_scope() as session:
            for n in range(args.accounts):
                add_account(session, settings, "webhook", f"乡镇融媒{n + 1:02d}", api_base=fake.hook_url,
                            credentials={"secret": "bench-secret"},
                            account_settings={"status_url": fake.status_url, "media_base_url": "http://127.0.0.1/m/"})
            editor = desk(session)["editor"]
            story_ids = [create_story(session, storage, StoryInput(
                title=f"群众满意度提升行动第{n + 1}期", body_markdown="今年以来，全区新增学位1200个。\n\n项目已完工。",
                summary="摘要", label="群众满意度提升行动之基础教育篇", theme="基础教育", unit="区教体局"),
                actor=editor).id for n in range(args.stories * args.rounds)]
        for story_id in story_ids:
            approve(settings, storage, story_id)
        print(f"  {time.perf_counter() - started:.1f}s", flush=True)

        children = processes.start_workers(settings, tag="bench")
        config = worker.celery_config(settings)
        queue = worker.task_queue()
        results = []
        try:
            processes.wait_for_queues({"media", "publish"}, timeout=120, children=children)
            for round_no in range(args.rounds):
                # baseline: no-op tasks through the same broker, worker and pool
                counter = f"{prefix}noop-count"
                client.delete(counter)
                t0 = time.perf_counter()
                with worker.app.connection_for_write(config["broker_url"],
                                                     transport_options=config["broker_transport_options"]) as conn:
                    for _ in range(total):
                        worker.noop.apply_async((counter,), connection=conn)
                while int(client.get(counter) or 0) < total:
                    if time.perf_counter() - t0 > 600:
                        raise SystemExit("no-op tasks did not finish in 10 minutes")
                    time.sleep(0.02)
                noop_seconds = time.perf_counter() - t0

                # ours: release this round's stories at once, wait for every delivery to be published
                stories = story_ids[round_no * args.stories:(round_no + 1) * args.stories]
                cpu_before = {child.name: _cpu_seconds(child.process.pid) for child in children}
                own_before = sum(os.times()[:2])
                t0 = time.perf_counter()
                released = time.time()
                with session_scope() as session:
                    for story_id in stories:
                        dispatch.plan_publication(session, queue, story_id)
                plan_seconds = time.perf_counter() - t0
                while True:
                    with session_scope() as session:
                        mine = session.query(Delivery).filter(Delivery.story_id.in_(stories))
                        done = mine.filter(Delivery.state == "published").count()
                        bad = mine.filter(Delivery.state.in_(["failed", "unknown"])).count()
                    if done + bad >= total:
                        break
                    if time.perf_counter() - t0 > 1200:
                        raise SystemExit(f"deliveries did not finish in 20 minutes ({done}/{total})")
                    time.sleep(0.1)
                ours_seconds = time.perf_counter() - t0
                cpu = {child.name: _cpu_seconds(child.process.pid) - cpu_before[child.name] for child in children}
                cpu["bench (planning, fake platform, polling)"] = sum(os.times()[:2]) - own_before
                with session_scope() as session:
                    latencies = sorted(d.published_at.timestamp() - released for d in session.query(Delivery).filter(
                        Delivery.story_id.in_(stories), Delivery.state == "published"))
                result = {"noop": total / noop_seconds, "ours": total / ours_seconds, "done": done, "bad": bad,
                          "plan": plan_seconds, "cpu": cpu, "p50": statistics.median(latencies),
                          "p95": latencies[int(0.95 * (len(latencies) - 1))], "max": latencies[-1]}
                result["ratio"] = result["ours"] / result["noop"]
                results.append(result)
                print(f"round {round_no + 1}: no-op {result['noop']:6.1f}/s, deliveries {result['ours']:6.1f}/s "
                      f"({done} published, {bad} failed/unknown), ratio {result['ratio']:.2f}; planning "
                      f"{plan_seconds:.2f}s; p50 {result['p50']:.2f}s p95 {result['p95']:.2f}s; CPU s: "
                      + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items()), flush=True)
        finally:
            processes.stop(children, grace=10)
        posts = fake.posts
    twice = sum(1 for count in posts.values() if count > 1)
    middle = sorted(results, key=lambda r: r["ratio"])[len(results) // 2]
    print(f"no-op tasks : {total} a round, median round {middle['noop']:7.1f}/s (publish queue, threads 8)")
    print(f"deliveries  : {total} a round, median round {middle['ours']:7.1f}/s "
          f"({args.latency * 1000:.0f} ms platform, batch {settings.publish_batch_size})")
    print(f"release-to-published latency (median round): p50 {middle['p50']:.2f}s  p95 {middle['p95']:.2f}s  "
          f"max {middle['max']:.2f}s")
    print(f"posted twice: {twice} (of {len(posts)} posts)")
    print(f"ratio deliveries/no-op, median of {len(results)} interleaved rounds: {middle['ratio']:.2f} "
          f"(rounds: {', '.join(format(r['ratio'], '.2f') for r in results)}; target >= {TARGET}) "
          f"{'OK' if middle['ratio'] >= TARGET else 'MISSED'}")
    subprocess.run(["rm", "-rf", str(home)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
